"""Pictures of segmentations with Pillow only: side-by-side panels, legends and confidence maps.

* :func:`panel`: original | colour mask | overlay side by side, with a legend of the classes
  present (colour, name, area %), readable at any image size: the font scales with the panel and
  the legend wraps into as many columns as fit.
* :func:`legend`: the legend alone, for any palette and classes.
* :func:`confidence_map`: per-pixel confidence through a perceptual colour map (viridis by
  default), computed in numpy.

The mask and overlay tiles of a panel are exactly :meth:`Segmentation.colorize` and
:meth:`Segmentation.overlay` (enlarged by a whole factor, nearest neighbour, for images smaller
than ``min_tile_side``); :func:`panel_layout` says where each tile is.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence

import attrs
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from camvidseg._types import UNLABELLED, ConfidenceMap, ImageArray, ImageLike, LabelMap
from camvidseg.exceptions import ConfigError, InvalidImageError
from camvidseg.imageio import to_rgb_array
from camvidseg.palette import CamVidPalette
from camvidseg.segmenter import Segmentation

__all__ = [
    "COLORMAPS",
    "MAX_FONT_SIZE",
    "MIN_FONT_SIZE",
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
]

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]

#: Smallest font (pixels) anything is drawn with, however small the image.
MIN_FONT_SIZE = 12
#: Largest automatic font size, however large the image.
MAX_FONT_SIZE = 144
#: Panel width (or height, if larger) per pixel of font: text stays readable when the whole panel
#: is scaled to fit a screen.
_PANEL_PIXELS_PER_FONT_PIXEL = 90
#: Label maps are analysed for region labels on a grid with at most this many cells per side.
_REGION_GRID = 256

_TEXT = (32, 32, 32)
_WHITE = (255, 255, 255)
_SWATCH_BORDER = (110, 110, 110)

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


# -- values ---------------------------------------------------------------------------------------


@attrs.frozen
class LegendEntry:
    """One line of a legend.

    Attributes:
        class_id: Id in the palette (255 for unlabelled pixels).
        name: Class name (``"unlabelled"`` for 255).
        color: RGB colour the mask uses for it.
        area: Fraction of pixels in ``[0, 1]``, or ``None`` when not known.
    """

    class_id: int
    name: str
    color: RGB
    area: float | None = None

    @property
    def area_text(self) -> str:
        """The area as shown: ``"31.2 %"``, ``"<0.1 %"`` for a sliver, ``""`` if unknown."""
        if self.area is None:
            return ""
        percent = 100.0 * self.area
        if 0.0 < percent < 0.05:
            return "<0.1 %"
        return f"{percent:.1f} %"


@attrs.frozen
class RegionLabel:
    """Where a class name is written on a large region.

    Attributes:
        class_id: Id of the region's class.
        name: Its name.
        xy: ``(x, y)`` anchor in image pixel coordinates (a pixel of the region, well inside it
            and near its centroid).
        area: The region's (connected component's) fraction of the image.
    """

    class_id: int
    name: str
    xy: tuple[float, float]
    area: float


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


# -- text -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _load_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` pixels (the bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no size argument
        return ImageFont.load_default()


class _Text:
    """Measures and draws one-line text at a pixel size, with or without FreeType.

    Without FreeType Pillow only has an ~11 px bitmap font, so text is drawn with it and enlarged
    by a whole factor: blocky, but as large as asked and readable.
    """

    def __init__(self, size: int) -> None:
        font = _load_font(size)
        self.size = size
        self.font = font
        if isinstance(font, ImageFont.FreeTypeFont):
            ascent, descent = font.getmetrics()
            self.zoom = 1
            self.line_height = ascent + descent
        else:
            self.zoom = max(1, round(size / 11))
            self.line_height = int(font.getbbox("Ag|")[3]) * self.zoom

    def width(self, text: str, stroke: int = 0) -> int:
        if not text:
            return 0
        if isinstance(self.font, ImageFont.FreeTypeFont):
            left, _, right, _ = self.font.getbbox(text, anchor="la", stroke_width=stroke)
            return math.ceil(right - min(0, left))
        return int(self.font.getbbox(text)[2]) * self.zoom + 2 * stroke

    def draw(
        self,
        canvas: Image.Image,
        xy: tuple[int, int],
        text: str,
        fill: RGB,
        stroke: int = 0,
        stroke_fill: RGB = (0, 0, 0),
    ) -> None:
        """Draw ``text`` with its top-left corner (ascender line) at ``xy``."""
        if not text:
            return
        if isinstance(self.font, ImageFont.FreeTypeFont):
            ImageDraw.Draw(canvas).text(
                xy,
                text,
                fill=fill,
                font=self.font,
                anchor="la",
                stroke_width=stroke,
                stroke_fill=stroke_fill,
            )
            return
        box = self.font.getbbox(text)
        mask = Image.new("L", (int(box[2]) + 2, int(box[3]) + 2), 0)
        ImageDraw.Draw(mask).text((1, 1), text, fill=255, font=self.font)
        mask = mask.resize(
            (mask.width * self.zoom, mask.height * self.zoom), Image.Resampling.NEAREST
        )
        x, y = xy[0] - self.zoom + stroke, xy[1] - self.zoom
        if stroke:
            halo = mask.filter(ImageFilter.MaxFilter(2 * stroke + 1))
            canvas.paste(stroke_fill, (x, y, x + mask.width, y + mask.height), halo)
        canvas.paste(fill, (x, y, x + mask.width, y + mask.height), mask)


def _auto_font_size(width: int, height: int) -> int:
    size = round(max(width, height) / _PANEL_PIXELS_PER_FONT_PIXEL)
    return int(min(MAX_FONT_SIZE, max(MIN_FONT_SIZE, size)))


# -- legend ---------------------------------------------------------------------------------------


def legend_entries(segmentation: Segmentation) -> tuple[LegendEntry, ...]:
    """The classes present in ``segmentation``, largest area first (ties: lower id first).

    Unlabelled pixels (255, after a confidence threshold) are an entry named ``"unlabelled"``.

    Example:
        >>> from camvidseg import Segmentation
        >>> labels = np.array([[17, 17, 21, 255]], np.uint8)
        >>> seg = Segmentation(labels, np.ones((1, 4), np.float32))
        >>> [(e.name, e.area_text) for e in legend_entries(seg)]
        [('Road', '50.0 %'), ('Sky', '25.0 %'), ('unlabelled', '25.0 %')]
    """
    labels = segmentation.labels
    counts = np.bincount(labels.reshape(-1), minlength=256)
    present = sorted((int(i) for i in np.flatnonzero(counts)), key=lambda i: (-int(counts[i]), i))
    lut = segmentation.palette.color_lut
    total = labels.size
    return tuple(
        LegendEntry(
            class_id=i,
            name=segmentation.palette.name_of(i),
            color=(int(lut[i, 0]), int(lut[i, 1]), int(lut[i, 2])),
            area=int(counts[i]) / total,
        )
        for i in present
    )


@attrs.frozen
class _LegendGrid:
    text: _Text
    entries: tuple[LegendEntry, ...]
    columns: int
    rows: int
    cell_width: int
    name_offset: int
    column_gap: int
    row_height: int
    padding: int

    @property
    def size(self) -> tuple[int, int]:
        width = 2 * self.padding + self.columns * self.cell_width
        width += (self.columns - 1) * self.column_gap
        height = 2 * self.padding + (self.rows - 1) * self.row_height + self.text.line_height
        return (width, height)


def _legend_grid(
    entries: Sequence[LegendEntry],
    font_size: int,
    max_width: int | None,
    columns: int | None,
    padding: int | None,
) -> _LegendGrid:
    if not entries:
        raise ConfigError("a legend needs at least one class (got none)")
    text = _Text(font_size)
    line = text.line_height
    gap = max(3, round(0.45 * line))
    pad = max(2, line // 2) if padding is None else padding
    name_width = max(text.width(e.name) for e in entries)
    area_width = max(text.width(e.area_text) for e in entries)
    name_offset = line + gap
    cell = name_offset + name_width + (2 * gap + area_width if area_width else 0)
    column_gap = max(2 * gap, round(1.2 * line))
    n = len(entries)
    if columns is not None:
        if columns < 1:
            raise ConfigError(f"columns must be >= 1 (got {columns})")
        cols = min(columns, n)
    elif max_width is None:
        cols = 1
    else:
        room = max_width - 2 * pad
        cols = max(1, min(n, (room + column_gap) // (cell + column_gap)))
    rows = math.ceil(n / cols)
    cols = math.ceil(n / rows)  # as many rows, fewer ragged columns
    row_height = line + max(2, round(0.35 * line))
    return _LegendGrid(
        text, tuple(entries), cols, rows, cell, name_offset, column_gap, row_height, pad
    )


def _draw_legend(
    canvas: Image.Image, grid: _LegendGrid, origin: tuple[int, int], text_color: RGB
) -> None:
    line = grid.text.line_height
    draw = ImageDraw.Draw(canvas)
    swatch = max(4, round(0.8 * line))
    border = max(1, swatch // 14)
    for index, entry in enumerate(grid.entries):
        row, col = divmod(index, grid.columns)
        x = origin[0] + grid.padding + col * (grid.cell_width + grid.column_gap)
        y = origin[1] + grid.padding + row * grid.row_height
        top = y + (line - swatch) // 2
        draw.rectangle(
            [x, top, x + swatch - 1, top + swatch - 1],
            fill=entry.color,
            outline=_SWATCH_BORDER,
            width=border,
        )
        grid.text.draw(canvas, (x + grid.name_offset, y), entry.name, text_color)
        if entry.area_text:
            right = x + grid.cell_width
            area_x = right - grid.text.width(entry.area_text)
            grid.text.draw(canvas, (area_x, y), entry.area_text, text_color)


def legend(
    palette: CamVidPalette,
    classes: Iterable[int | str],
    areas: Sequence[float] | None = None,
    *,
    font_size: int = 16,
    max_width: int | None = None,
    columns: int | None = None,
    padding: int | None = None,
    background: RGB = _WHITE,
    text_color: RGB = _TEXT,
) -> Image.Image:
    """A legend image: a colour swatch, the class name and (optionally) its area per class.

    Args:
        palette: Where names and colours come from.
        classes: Class ids or names, in the order to list them (255 = unlabelled).
        areas: Fraction of pixels per class in ``[0, 1]``, aligned with ``classes``.
        font_size: Text height in pixels (at least :data:`MIN_FONT_SIZE`).
        max_width: Wrap into as many columns as fit this width (default: one column).
        columns: Force this many columns (overrides ``max_width``).
        padding: Margin around the entries (default: half a line).
        background: RGB background colour.
        text_color: RGB text colour.

    Returns:
        An RGB PIL image. Entries are laid out row by row: the first row holds the first
        ``columns`` classes.

    Raises:
        PaletteError: for a class the palette lacks.
        ConfigError: for no classes, misaligned or out-of-range areas.

    Example:
        >>> image = legend(CamVidPalette.camvid32(), ["Road", 21], [0.75, 0.25], columns=2)
        >>> image.mode, image.width > image.height
        ('RGB', True)
    """
    ids = [palette.id_of(c) if isinstance(c, str) else int(c) for c in classes]
    if areas is not None:
        fractions = [float(a) for a in areas]
        if len(fractions) != len(ids):
            raise ConfigError(f"got {len(fractions)} areas for {len(ids)} classes")
        if any(not 0.0 <= a <= 1.0 for a in fractions):
            raise ConfigError(f"areas must be fractions in [0, 1] (got {fractions})")
    lut = palette.color_lut
    entries = [
        LegendEntry(
            class_id=i,
            name=palette.name_of(i),
            color=(int(lut[i, 0]), int(lut[i, 1]), int(lut[i, 2])),
            area=None if areas is None else fractions[k],
        )
        for k, i in enumerate(ids)
    ]
    grid = _legend_grid(entries, max(MIN_FONT_SIZE, font_size), max_width, columns, padding)
    image = Image.new("RGB", grid.size, background)
    _draw_legend(image, grid, (0, 0), text_color)
    return image


# -- region labels --------------------------------------------------------------------------------


def _components(labels: LabelMap) -> NDArray[np.intp]:
    """4-connected components of equal labels: ``(H, W)`` ids ``0..K-1``.

    Minimum-id propagation between equal neighbours with pointer jumping; numpy only.
    """
    height, width = labels.shape
    parent = np.arange(height * width, dtype=np.intp).reshape(height, width)
    down = labels[1:, :] == labels[:-1, :]
    right = labels[:, 1:] == labels[:, :-1]
    while True:
        merged = parent.copy()
        vertical = np.minimum(parent[1:, :], parent[:-1, :])
        merged[1:, :] = np.where(down, np.minimum(merged[1:, :], vertical), merged[1:, :])
        merged[:-1, :] = np.where(down, np.minimum(merged[:-1, :], vertical), merged[:-1, :])
        horizontal = np.minimum(parent[:, 1:], parent[:, :-1])
        merged[:, 1:] = np.where(right, np.minimum(merged[:, 1:], horizontal), merged[:, 1:])
        merged[:, :-1] = np.where(right, np.minimum(merged[:, :-1], horizontal), merged[:, :-1])
        flat = merged.reshape(-1)
        while True:  # every pointer is to a pixel of the same component: follow to the root
            jumped = flat[flat]
            if np.array_equal(jumped, flat):
                break
            flat = jumped
        merged = flat.reshape(height, width)
        if np.array_equal(merged, parent):
            break
        parent = merged
    _, compact = np.unique(parent, return_inverse=True)
    components: NDArray[np.intp] = compact.reshape(height, width).astype(np.intp)
    return components


def _depth(components: NDArray[np.intp]) -> NDArray[np.int32]:
    """How many 4-neighbour erosions each pixel survives inside its component (edges: 1)."""
    inner = np.zeros(components.shape, dtype=bool)
    inner[1:-1, 1:-1] = True
    inner[1:, :] &= components[1:, :] == components[:-1, :]
    inner[:-1, :] &= components[:-1, :] == components[1:, :]
    inner[:, 1:] &= components[:, 1:] == components[:, :-1]
    inner[:, :-1] &= components[:, :-1] == components[:, 1:]
    depth = np.zeros(components.shape, dtype=np.int32)
    alive = np.ones(components.shape, dtype=bool)
    while alive.any():
        depth += alive
        survivors = alive & inner
        survivors[1:-1, 1:-1] &= (
            alive[:-2, 1:-1] & alive[2:, 1:-1] & alive[1:-1, :-2] & alive[1:-1, 2:]
        )
        alive = survivors
    return depth


def region_labels(segmentation: Segmentation, min_area: float = 0.02) -> tuple[RegionLabel, ...]:
    """Large connected regions and where to write their class names, largest first.

    Regions are 4-connected areas of one class (unlabelled pixels excluded), found on a grid of
    at most 256 cells per side. Each anchor is a pixel of its region near the region's centroid
    but at least half as deep inside it as the region's deepest point, so names sit inside
    L-shaped or ring-shaped regions too.

    Args:
        segmentation: The result to label.
        min_area: Smallest region, as a fraction of the image, that gets a label.

    Returns:
        One :class:`RegionLabel` per region of at least ``min_area``.

    Example:
        >>> from camvidseg import Segmentation
        >>> labels = np.full((4, 8), 21, np.uint8); labels[2:, :] = 17  # sky above road
        >>> seg = Segmentation(labels, np.ones((4, 8), np.float32))
        >>> [(r.name, r.xy, r.area) for r in region_labels(seg)]
        [('Road', (3.5, 2.5), 0.5), ('Sky', (3.5, 0.5), 0.5)]
    """
    labels = segmentation.labels
    height, width = labels.shape
    step = max(1, math.ceil(max(height, width) / _REGION_GRID))
    offset = step // 2
    grid = labels[offset::step, offset::step]
    components = _components(grid)
    depth = _depth(components)
    count = int(components.max()) + 1
    sizes = np.bincount(components.reshape(-1), minlength=count)
    rows: NDArray[np.intp] = np.indices(grid.shape)[0]
    cols: NDArray[np.intp] = np.indices(grid.shape)[1]
    found: list[RegionLabel] = []
    for component in np.flatnonzero(sizes / grid.size >= min_area):
        inside = components == component
        class_id = int(grid[inside][0])
        if class_id == UNLABELLED:
            continue
        deep = inside & (depth >= max(1, int(depth[inside].max()) / 2))
        centre_r, centre_c = rows[inside].mean(), cols[inside].mean()
        candidates_r, candidates_c = rows[deep], cols[deep]
        best = int(np.argmin((candidates_r - centre_r) ** 2 + (candidates_c - centre_c) ** 2))
        r, c = int(candidates_r[best]), int(candidates_c[best])
        found.append(
            RegionLabel(
                class_id=class_id,
                name=segmentation.palette.name_of(class_id),
                xy=(c * step + offset + 0.5, r * step + offset + 0.5),
                area=float(sizes[component] / grid.size),
            )
        )
    found.sort(key=lambda region: (-region.area, region.class_id, region.xy))
    return tuple(found)


def _draw_region_labels(
    tile: Image.Image, regions: Sequence[RegionLabel], scale: int, font_size: int
) -> None:
    text = _Text(font_size)
    stroke = max(1, font_size // 10)
    taken: list[Box] = []
    margin = stroke + 1
    for region in regions:
        width = text.width(region.name, stroke)
        height = text.line_height + 2 * stroke
        if width > tile.width or height > tile.height:
            continue
        x = round(region.xy[0] * scale - width / 2)
        y = round(region.xy[1] * scale - height / 2)
        x = min(max(0, x), tile.width - width)
        y = min(max(0, y), tile.height - height)
        box = (x - margin, y - margin, x + width + margin, y + height + margin)
        if any(_overlaps(box, other) for other in taken):
            continue
        taken.append(box)
        text.draw(tile, (x + stroke, y + stroke), region.name, _WHITE, stroke, (0, 0, 0))


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# -- panel ----------------------------------------------------------------------------------------


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
    size = _auto_font_size(3 * tile_w, tile_h) if font_size is None else font_size
    size = max(MIN_FONT_SIZE, size)
    pad = max(2, size // 2)
    row_width = 3 * tile_w + 2 * pad
    grid = _legend_grid(legend_entries(segmentation), size, row_width, None, 0) if legend else None
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
    background: RGB = _WHITE,
    text_color: RGB = _TEXT,
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
        _draw_region_labels(overlay_tile, regions, layout.scale, layout.font_size)
    canvas.paste(_enlarge(rgb, layout.scale), layout.image_box[:2])
    canvas.paste(_enlarge(segmentation.colorize(), layout.scale), layout.mask_box[:2])
    canvas.paste(overlay_tile, layout.overlay_box[:2])
    if layout.legend_box is not None:
        grid = _legend_grid(
            legend_entries(segmentation),
            layout.font_size,
            layout.overlay_box[2] - layout.image_box[0],
            None,
            0,
        )
        _draw_legend(canvas, grid, layout.legend_box[:2], text_color)
    return canvas


# -- confidence -----------------------------------------------------------------------------------


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
