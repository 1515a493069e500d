"""Synthetic Sentinel-1 / Sentinel-2 LAI triplets in the paper's folder layout, with the true LAI.

The simulator, one module per step (each describes its physics):

* :mod:`~lai.simulate.regions`: the land classes and the table of European regions (crop mix,
  phenology shift, cloud climate, snow, soil moisture, field size, irrigation).
* :mod:`~lai.simulate.land`: one scene's Voronoi fields and their classes, the phenology that gives
  the true LAI, tillage, and the daily weather (latent cloudiness, rain, soil moisture).
* :mod:`~lai.simulate.clouds`: the whole cloud model: climate, cloud fraction per date, clouds,
  cirrus and shadows, and what they do to the SCL and the retrieved LAI.
* :mod:`~lai.simulate.sensors`: :class:`Scene`, what Sentinel-2 (SCL, SNAP LAI) and Sentinel-1
  (water cloud model, speckle) observe of one scene on one date.
* :mod:`~lai.simulate.write`: :func:`plan` the scenes and triplets, write the LNB folder (tiles,
  ``image_series.csv``, ``truth/``, ``simulation.yaml``): :func:`simulate`.
* :mod:`~lai.simulate.random_fields`: the smooth and fractal Gaussian random fields they draw.

Entry points: :data:`REGIONS`, :func:`simulate`, and :class:`Scene` (one scene's
physics, used by the tests and for exploration).
"""
from __future__ import annotations

from lai.simulate.clouds import SHADOW_LAI_GAIN, Sky, cloud_fraction, draw_sky, monthly_climate
from lai.simulate.land import END, PIXEL, START, Landscape, Weather, field_lai, make_landscape, make_weather
from lai.simulate.random_fields import smooth_field
from lai.simulate.regions import (
    ARABLE,
    BARE,
    CEREAL,
    CLASSES,
    CONIFER,
    CROPS,
    DECIDUOUS,
    GRASS,
    MAIZE,
    REGIONS,
    SUNFLOWER,
    WATER,
    Region,
)
from lai.simulate.sensors import ENL, RETRIEVAL_BIAS, RETRIEVAL_NOISE, Observation, Scene
from lai.simulate.write import REVISIT, SIM_VERSION, SIMULATION_FILE, ScenePlan, check_regions, plan, scene_dates, simulate, yaml_text

__all__ = [
    "ARABLE", "BARE", "CEREAL", "CLASSES", "CONIFER", "CROPS", "DECIDUOUS", "END", "ENL", "GRASS", "MAIZE", "PIXEL",
    "REGIONS", "RETRIEVAL_BIAS", "RETRIEVAL_NOISE", "REVISIT", "SHADOW_LAI_GAIN", "SIMULATION_FILE", "SIM_VERSION",
    "START", "SUNFLOWER", "WATER", "Landscape", "Observation", "Region", "Scene", "ScenePlan", "Sky", "Weather", "check_regions",
    "cloud_fraction", "draw_sky", "field_lai", "make_landscape", "make_weather", "monthly_climate", "plan",
    "scene_dates", "simulate", "smooth_field", "yaml_text",
]
