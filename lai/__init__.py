"""lai: Leaf Area Index at t from Sentinel-1 (t-2, t-1, t) and Sentinel-2 LAI (t-2, t-1) with U-Nets.

Data flow, one module per step:
``lnb`` / ``simulate`` -> ``cube`` (+ ``splits``) -> ``loader`` -> ``model`` + ``loss``
-> ``train`` -> ``evaluate`` (+ ``metrics``, ``baselines``) -> ``figures`` -> ``report``,
driven by ``pipeline`` (papermill notebooks) and ``cli``.
"""
import os

__version__ = "0.1.0"

# OpenMP threads (torch's CPU kernels) sleep instead of spinning while they wait: on a CPU shared with
# other jobs, spinning threads take the cores the busy ones need. Measured on the project's 2-core machine
# under load 4-6 (2026-12-02): one training step of the small preset's final model (64x64, batch 16) took
# about 1.0 s with 2 spinning threads, 0.33 s with PASSIVE, 0.2 s with one thread (OMP_NUM_THREADS=1).
# OpenMP reads it once, when torch loads it; set it beforehand to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
