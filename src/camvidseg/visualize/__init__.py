"""Pictures with Pillow only: segmentation panels, legends, confidence maps and confusion plots.

* :func:`panel`: original | colour mask | overlay side by side, with a legend of the classes
  present (colour, name, area %), readable at any image size: the font scales with the panel and
  the legend wraps into as many columns as fit.
* :func:`legend`: the legend alone, for any palette and classes.
* :func:`confidence_map`: per-pixel confidence through a perceptual colour map (viridis by
  default), computed in numpy.
* :func:`render_confusion` / :func:`save_confusion_plot`: a row-normalised confusion matrix with
  class names on both axes (``camvidseg evaluate --plot``).

The mask and overlay tiles of a panel are exactly :meth:`Segmentation.colorize` and
:meth:`Segmentation.overlay` (enlarged by a whole factor, nearest neighbour, for images smaller
than ``min_tile_side``); :func:`panel_layout` says where each tile is.
"""

from __future__ import annotations

from camvidseg.visualize._colormaps import COLORMAPS, colormap, confidence_map
from camvidseg.visualize._confusion import (
    ConfusionPlot,
    render_confusion,
    save_confusion_plot,
    shade,
)
from camvidseg.visualize._legend import LegendEntry, legend, legend_entries
from camvidseg.visualize._panels import PanelLayout, panel, panel_layout
from camvidseg.visualize._regions import RegionLabel, region_labels
from camvidseg.visualize._text import MAX_FONT_SIZE, MIN_FONT_SIZE

__all__ = [
    "COLORMAPS",
    "MAX_FONT_SIZE",
    "MIN_FONT_SIZE",
    "ConfusionPlot",
    "LegendEntry",
    "PanelLayout",
    "RegionLabel",
    "colormap",
    "confidence_map",
    "legend",
    "legend_entries",
    "panel",
    "panel_layout",
    "region_labels",
    "render_confusion",
    "save_confusion_plot",
    "shade",
]
