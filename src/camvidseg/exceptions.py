"""Exceptions raised by camvidseg.

Every error derives from :class:`CamVidSegError` and from the builtin it most resembles, so
``except ValueError`` keeps working for callers who do not know this package.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "CamVidSegError",
    "ConfigError",
    "InvalidImageError",
    "InvalidLabelError",
    "ModelLoadError",
    "PaletteError",
    "UnknownColorError",
    "VideoDecodeError",
    "VideoError",
]


class CamVidSegError(Exception):
    """Base class of every error raised by camvidseg."""


class InvalidImageError(CamVidSegError, ValueError):
    """An image could not be read, or has the wrong shape, dtype or mode."""


class ModelLoadError(CamVidSegError, OSError):
    """The model could not be loaded; the message lists every place that was tried."""


class BackendError(CamVidSegError, RuntimeError):
    """A backend returned something that breaks the model contract (e.g. wrong channel count)."""


class PaletteError(CamVidSegError, ValueError):
    """A class name, id or grouping does not exist in the palette."""


class UnknownColorError(PaletteError):
    """An RGB label image holds colours that are not in the palette."""


class ConfigError(CamVidSegError, ValueError):
    """An option or configuration file is invalid."""


class InvalidLabelError(InvalidImageError):
    """A label map holds ids that are not classes of its label set (nor 255, unlabelled)."""


class VideoError(CamVidSegError, OSError):
    """A video (or folder of frames) could not be opened, or an output video not written."""


class VideoDecodeError(VideoError):
    """A video ended early (truncated) or holds damaged data; the frames before were delivered."""
