"""Panels: original | colour mask | overlay side by side, with a legend."""

from __future__ import annotations

import math

import attrs
import numpy as np
from PIL import Image

from camvidseg._types import ImageArray, ImageLike
from camvidseg.exceptions import ConfigError, InvalidImageError
from camvidseg.imageio import to_rgb_array
from camvidseg.segmenter import Segmentation
from camvidseg.visualize._legend import TEXT, WHITE, draw_legend, legend_entries, legend_grid
from camvidseg.visualize._regions import draw_region_labels, region_labels
from camvidseg.visualize._text import MIN_FONT_SIZE, RGB, Box, auto_font_size

__all__ = ["PanelLayout", "panel", "panel_layout"]


@attrs.frozen
class PanelLayout:
    """Geometry of a :func:`panel`.

    Attributes:
        size: ``(width, height)`` of the panel.
        scale: Whole-number enlargement of the tiles (1 unless the image is tiny).
        image_box: ``(left, top, right, bottom)`` of the original image tile.
        mask_box: The colour mask tile.
        overlay_box: The overlay tile.
        legend_box: The legend, or ``None`` without one.
        font_size: Pixel size of legend and label text.
    """

    size: tuple[int, int]
    scale: int
    image_box: Box
    mask_box: Box
    overlay_box: Box
    legend_box: Box | None
    font_size: int


def panel_layout(
    segmentation: Segmentation,
    legend: bool = True,
    *,
    font_size: int | None = None,
    min_tile_side: int = 64,
) -> PanelLayout:
    """Where :func:`panel` puts everything, without drawing anything.

    Args:
        segmentation: The result to show.
        legend: Whether a legend goes below the tiles.
        font_size: Text size in pixels (default: scaled with the panel, between
            :data:`MIN_FONT_SIZE` and :data:`MAX_FONT_SIZE`).
        min_tile_side: Images whose longer side is shorter are enlarged by a whole factor
            (nearest neighbour) until it is at least this.

    Example:
        >>> from camvidseg import Segmentation
        >>> layout = panel_layout(Segmentation(np.zeros((300, 400), np.uint8),
        ...                                    np.ones((300, 400), np.float32)))
        >>> layout.scale, layout.font_size, layout.mask_box
        (1, 13, (412, 6, 812, 306))
    """
    height, width = segmentation.shape
    if min_tile_side < 1:
        raise ConfigError(f"min_tile_side must be >= 1 (got {min_tile_side})")
    scale = max(1, math.ceil(min_tile_side / max(height, width)))
    tile_w, tile_h = width * scale, height * scale
    size = auto_font_size(3 * tile_w, tile_h) if font_size is None else font_size
    size = max(MIN_FONT_SIZE, size)
    pad = max(2, size // 2)
    row_width = 3 * tile_w + 2 * pad
    grid = legend_grid(legend_entries(segmentation), size, row_width, None, 0) if legend else None
    content_width = max(row_width, grid.size[0] if grid else 0)
    left = pad + (content_width - row_width) // 2
    boxes = [
        (left + k * (tile_w + pad), pad, left + k * (tile_w + pad) + tile_w, pad + tile_h)
        for k in range(3)
    ]
    legend_box = None
    total_height = pad + tile_h + pad
    if grid is not None:
        top = pad + tile_h + pad
        legend_box = (pad, top, pad + grid.size[0], top + grid.size[1])
        total_height = legend_box[3] + pad
    return PanelLayout(
        size=(content_width + 2 * pad, total_height),
        scale=scale,
        image_box=boxes[0],
        mask_box=boxes[1],
        overlay_box=boxes[2],
        legend_box=legend_box,
        font_size=size,
    )


def _enlarge(array: ImageArray, scale: int) -> Image.Image:
    if scale > 1:
        array = np.repeat(np.repeat(array, scale, axis=0), scale, axis=1)
    return Image.fromarray(array)


def panel(
    image: ImageLike | None,
    segmentation: Segmentation,
    legend: bool = True,
    labels_on_regions: bool = False,
    alpha: float = 0.6,
    *,
    font_size: int | None = None,
    min_region_area: float = 0.02,
    min_tile_side: int = 64,
    background: RGB = WHITE,
    text_color: RGB = TEXT,
) -> Image.Image:
    """Original | colour mask | overlay side by side, with a legend of the classes present.

    The tiles are at the image's own resolution (enlarged by a whole factor, nearest neighbour,
    when the image's longer side is under ``min_tile_side``): the mask tile is exactly
    :meth:`Segmentation.colorize` and the overlay tile exactly :meth:`Segmentation.overlay`
    with ``alpha`` (unless ``labels_on_regions`` writes names on it). The legend lists every
    class present with its colour and area %, largest first (:func:`legend_entries`), wrapped
    into as many columns as fit under the tiles. Text scales with the panel, between
    :data:`MIN_FONT_SIZE` and :data:`MAX_FONT_SIZE` pixels. :func:`panel_layout` gives the tile
    positions.

    Args:
        image: The segmented image (PIL image, ``(H, W, 3)`` uint8 array or path), or ``None``
            for the image the segmentation kept.
        segmentation: The result to show.
        legend: Draw the legend below the tiles.
        labels_on_regions: Write class names on the overlay tile, on regions of at least
            ``min_region_area`` of the image (see :func:`region_labels`); labels that would
            collide with a larger region's label are left out.
        alpha: Mask weight of the overlay, in ``[0, 1]``.
        font_size: Text size in pixels (default: scaled with the panel).
        min_region_area: Smallest region that gets a name, as a fraction of the image.
        min_tile_side: See :func:`panel_layout`.
        background: RGB colour around the tiles and behind the legend.
        text_color: RGB colour of the legend text.

    Returns:
        An RGB PIL image of size :attr:`PanelLayout.size`.

    Raises:
        InvalidImageError: when there is no image or its size differs from the segmentation's.

    Example:
        >>> from camvidseg import Segmentation
        >>> seg = Segmentation(np.array([[17, 21]], np.uint8), np.ones((1, 2), np.float32),
        ...                    image=np.zeros((1, 2, 3), np.uint8))
        >>> picture = panel(None, seg)
        >>> picture.size == panel_layout(seg).size, picture.getpixel(panel_layout(seg).mask_box[:2])
        (True, (128, 64, 128))
    """
    if image is None:
        if segmentation.image is None:
            raise InvalidImageError("this Segmentation kept no image; pass the image to panel()")
        rgb = segmentation.image
    else:
        rgb = to_rgb_array(image)
    if rgb.shape[:2] != segmentation.shape:
        raise InvalidImageError(
            f"image of size {rgb.shape[1]}x{rgb.shape[0]} does not match the segmentation's "
            f"{segmentation.shape[1]}x{segmentation.shape[0]}"
        )
    layout = panel_layout(segmentation, legend, font_size=font_size, min_tile_side=min_tile_side)
    canvas = Image.new("RGB", layout.size, background)
    overlay_tile = _enlarge(segmentation.overlay(alpha, image=rgb), layout.scale)
    if labels_on_regions:
        regions = region_labels(segmentation, min_region_area)
        draw_region_labels(overlay_tile, regions, layout.scale, layout.font_size)
    canvas.paste(_enlarge(rgb, layout.scale), layout.image_box[:2])
    canvas.paste(_enlarge(segmentation.colorize(), layout.scale), layout.mask_box[:2])
    canvas.paste(overlay_tile, layout.overlay_box[:2])
    if layout.legend_box is not None:
        grid = legend_grid(
            legend_entries(segmentation),
            layout.font_size,
            layout.overlay_box[2] - layout.image_box[0],
            None,
            0,
        )
        draw_legend(canvas, grid, layout.legend_box[:2], text_color)
    return canvas
