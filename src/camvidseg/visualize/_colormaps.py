"""Confidence maps: per-pixel confidence through a perceptual colour map, in numpy."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from camvidseg._types import ConfidenceMap
from camvidseg.exceptions import ConfigError, InvalidImageError
from camvidseg.segmenter import Segmentation
from camvidseg.visualize._text import RGB

__all__ = ["COLORMAPS", "colormap", "confidence_map"]

#: Colour-map anchors, evenly spaced over ``[0, 1]`` (matplotlib's viridis and magma sampled at
#: ten points); :func:`colormap` interpolates them linearly to 256 entries.
COLORMAPS: Mapping[str, tuple[RGB, ...]] = {
    "viridis": (
        (0x44, 0x01, 0x54), (0x48, 0x28, 0x78), (0x3E, 0x49, 0x89), (0x31, 0x68, 0x8E),
        (0x26, 0x82, 0x8E), (0x1F, 0x9E, 0x89), (0x35, 0xB7, 0x79), (0x6E, 0xCE, 0x58),
        (0xB5, 0xDE, 0x2B), (0xFD, 0xE7, 0x25),
    ),
    "magma": (
        (0x00, 0x00, 0x04), (0x18, 0x0F, 0x3D), (0x44, 0x0F, 0x76), (0x72, 0x1F, 0x81),
        (0x9E, 0x2F, 0x7F), (0xCD, 0x40, 0x71), (0xF1, 0x60, 0x5D), (0xFD, 0x96, 0x68),
        (0xFE, 0xCA, 0x8D), (0xFC, 0xFD, 0xBF),
    ),
    "gray": ((0, 0, 0), (255, 255, 255)),
}  # fmt: skip


def colormap(name: str = "viridis") -> NDArray[np.uint8]:
    """A 256-entry colour table interpolated linearly between the anchors of :data:`COLORMAPS`.

    Returns:
        ``(256, 3)`` uint8; entry 0 is the anchor for 0, entry 255 the one for 1.

    Example:
        >>> table = colormap("viridis")
        >>> table.shape, table[0].tolist(), table[255].tolist()
        ((256, 3), [68, 1, 84], [253, 231, 37])
    """
    try:
        anchors = np.array(COLORMAPS[name], dtype=np.float64)
    except KeyError:
        raise ConfigError(
            f"unknown colour map {name!r} (available: {', '.join(sorted(COLORMAPS))})"
        ) from None
    positions = np.linspace(0.0, 1.0, len(anchors))
    x = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(x, positions, anchors[:, k]) for k in range(3)], axis=-1)
    return np.rint(table).astype(np.uint8)


def confidence_map(
    segmentation: Segmentation | ConfidenceMap, colormap_name: str = "viridis"
) -> Image.Image:
    """Per-pixel confidence as a colour image (low: dark purple, high: yellow with viridis).

    Args:
        segmentation: A result, or an ``(H, W)`` float confidence array in ``[0, 1]`` (values
            outside are clipped, NaN counts as 0).
        colormap_name: A name from :data:`COLORMAPS`.

    Returns:
        An RGB PIL image of the same size; confidence ``c`` gets entry ``round(255 c)`` of
        :func:`colormap`.

    Example:
        >>> confidence_map(np.array([[0.0, 1.0]], np.float32)).getpixel((1, 0))
        (253, 231, 37)
    """
    conf = segmentation.confidence if isinstance(segmentation, Segmentation) else segmentation
    conf = np.asarray(conf)
    if conf.ndim != 2 or not np.issubdtype(conf.dtype, np.floating) or conf.size == 0:
        raise InvalidImageError(
            f"confidence must be a non-empty HxW float array (got shape {conf.shape}, "
            f"dtype {conf.dtype})"
        )
    clean = np.clip(np.nan_to_num(conf.astype(np.float64), nan=0.0), 0.0, 1.0)
    index = np.rint(clean * 255.0).astype(np.uint8)
    return Image.fromarray(colormap(colormap_name)[index])
