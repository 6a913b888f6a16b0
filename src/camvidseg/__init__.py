"""camvidseg: semantic segmentation of street scenes with the CamVid HRNet model.

Importing the package is cheap: the public names below are imported on first use (PEP 562), so
``import camvidseg`` and ``camvidseg --help`` do not pay for numpy, attrs and Pillow until a name
that needs them is touched. ``from camvidseg import Segmenter`` works as usual.

Example:
    >>> from camvidseg import CamVidPalette
    >>> CamVidPalette.camvid32().name_of(17)
    'Road'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from camvidseg._version import __version__
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

if TYPE_CHECKING:
    from camvidseg._types import UNLABELLED
    from camvidseg.backends.base import Backend
    from camvidseg.backends.handles import DEFAULT_HANDLE
    from camvidseg.cleanup import CleanupConfig
    from camvidseg.config import SegmentConfig
    from camvidseg.metrics import ConfusionMatrix, EvaluationResult
    from camvidseg.palette import CamVidPalette, ClassGrouping, get_grouping
    from camvidseg.postprocess import ChannelLayout
    from camvidseg.segmenter import Segmentation, Segmenter
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
    "SegmentConfig",
    "Segmentation",
    "Segmenter",
    "TTAConfig",
    "UnknownColorError",
    "__version__",
    "get_grouping",
]

#: Public name -> module that defines it, imported on first access.
_LAZY: dict[str, str] = {
    "UNLABELLED": "camvidseg._types",
    "Backend": "camvidseg.backends.base",
    "CamVidPalette": "camvidseg.palette",
    "ClassGrouping": "camvidseg.palette",
    "get_grouping": "camvidseg.palette",
    "ChannelLayout": "camvidseg.postprocess",
    "ConfusionMatrix": "camvidseg.metrics",
    "EvaluationResult": "camvidseg.metrics",
    "DEFAULT_HANDLE": "camvidseg.backends.handles",
    "Segmentation": "camvidseg.segmenter",
    "Segmenter": "camvidseg.segmenter",
    "CleanupConfig": "camvidseg.cleanup",
    "SegmentConfig": "camvidseg.config",
    "TTAConfig": "camvidseg.tta",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'camvidseg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
