"""lai: Leaf Area Index at t from Sentinel-1 (t-2, t-1, t) and Sentinel-2 LAI (t-2, t-1) with U-Nets.

Data flow, one module per step:
``lnb`` / ``simulate`` -> ``cube`` (+ ``splits``) -> ``loader`` -> ``model`` + ``loss``
-> ``train`` -> ``evaluate`` (+ ``metrics``, ``baselines``) -> ``figures`` -> ``report``,
driven by ``pipeline`` (papermill notebooks) and ``cli``.
"""
__version__ = "0.1.0"
