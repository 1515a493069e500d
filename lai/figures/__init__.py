"""Figures of a run: data exploration, training, results (each function returns a matplotlib Figure).

Every function builds a :class:`matplotlib.figure.Figure` directly (not through
``pyplot``), so nothing is shown or kept open behind the caller's back; show it
in a notebook by leaving it as a cell's value, write it with :func:`save`.

Conventions shared by all figures: LAI in m2/m2 with the colormap ``LAI_CMAP``
from 0 to ``LAI_VMAX``; SCL classes with the Sen2Cor colours and a legend
naming them; backscatter in dB; a panel whose data are empty (a split with no
triplets, a row not trained) shows a note instead of failing.

File names in a run folder are ``figures/<name>.png``, the names of ``lai.facts.FIGURE_NAMES`` (the notebooks give
them to ``RunContext.show``; most are the drawing function's name, ``reliability`` and ``preprocessing_patch`` are
drawn by ``reliability_diagram`` and ``real_patch``).

Modules by the report's section: :mod:`lai.figures.data` (data exploration), :mod:`lai.figures.results`
(training and results), :mod:`lai.figures.maps` (prediction maps); :mod:`lai.figures.common` holds the
shared conventions and :func:`save`. Every figure function is importable from ``lai.figures``.
"""
from lai.figures.common import (
    DB_CMAP,
    DPI,
    ERROR_CMAP,
    LAI_CMAP,
    LAI_UNITS,
    LAI_VMAX,
    SCL_CMAP,
    SCL_COLORS,
    SCL_NORM,
    lai_cmap,
    note_figure,
    save,
    scl_legend_handles,
)
from lai.figures.data import cloud_statistics, s1_vs_lai, sample_maps, sample_triplets, seasonality_encoding
from lai.figures.maps import choose_triplets, prediction_arrays, real_patch, truth_vs_prediction_maps, uncertainty_map
from lai.figures.results import density, error_by_set, learning_curves, reliability_diagram, table1_comparison

__all__ = ["DB_CMAP", "DPI", "ERROR_CMAP", "LAI_CMAP", "LAI_UNITS", "LAI_VMAX", "SCL_CMAP", "SCL_COLORS", "SCL_NORM",
           "choose_triplets", "cloud_statistics", "density", "error_by_set", "lai_cmap", "learning_curves", "note_figure",
           "prediction_arrays", "real_patch", "reliability_diagram", "s1_vs_lai", "sample_maps", "sample_triplets", "save",
           "scl_legend_handles", "seasonality_encoding", "table1_comparison", "truth_vs_prediction_maps", "uncertainty_map"]
