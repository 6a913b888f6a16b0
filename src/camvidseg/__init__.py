"""camvidseg: semantic segmentation of street scenes with the CamVid HRNet model.

Example:
    >>> from camvidseg import CamVidPalette
    >>> CamVidPalette.camvid32().name_of(17)
    'Road'
"""

from __future__ import annotations

from camvidseg._types import UNLABELLED
from camvidseg._version import __version__
from camvidseg.backends.base import Backend
from camvidseg.cleanup import CleanupConfig
from camvidseg.exceptions import (
    BackendError,
    CamVidSegError,
    ConfigError,
    InvalidImageError,
    InvalidLabelError,
    ModelLoadError,
    PaletteError,
    UnknownColorError,
)
from camvidseg.metrics import ConfusionMatrix, EvaluationResult
from camvidseg.palette import CamVidPalette, ClassGrouping, get_grouping
from camvidseg.postprocess import ChannelLayout
from camvidseg.segmenter import DEFAULT_HANDLE, Segmentation, Segmenter
from camvidseg.tta import TTAConfig

__all__ = [
    "DEFAULT_HANDLE",
    "UNLABELLED",
    "Backend",
    "BackendError",
    "CamVidPalette",
    "CamVidSegError",
    "ChannelLayout",
    "ClassGrouping",
    "CleanupConfig",
    "ConfigError",
    "ConfusionMatrix",
    "EvaluationResult",
    "InvalidImageError",
    "InvalidLabelError",
    "ModelLoadError",
    "PaletteError",
    "Segmentation",
    "Segmenter",
    "TTAConfig",
    "UnknownColorError",
    "__version__",
    "get_grouping",
]
