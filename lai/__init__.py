"""lai: Leaf Area Index at t from Sentinel-1 (t-2, t-1, t) and Sentinel-2 LAI (t-2, t-1) with U-Nets.

Data flow, one module per step:
``lnb`` / ``simulate`` -> ``cube`` (+ ``splits``) -> ``loader`` -> ``model`` + ``loss``
-> ``train`` -> ``evaluate`` (+ ``metrics``, ``baselines``) -> ``figures`` -> ``report``,
driven by ``pipeline`` (papermill notebooks) and ``cli``.
"""
import os

__version__ = "0.1.0"

# OpenMP threads (torch's CPU kernels) sleep instead of spinning while they wait: on a CPU shared with
# other jobs, spinning threads take the cores the busy ones need (a training step of the small preset
# ran 3x slower with 2 spinning threads than with PASSIVE on this 2-core machine under load 4-6,
# benchmarks/cpu_training.py). Read once, when torch first loads OpenMP; set it beforehand to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
