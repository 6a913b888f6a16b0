"""Legends: a colour swatch, the class name and its area per class."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import attrs
import numpy as np
from PIL import Image, ImageDraw

from camvidseg.exceptions import ConfigError
from camvidseg.palette import CamVidPalette
from camvidseg.segmenter import Segmentation
from camvidseg.visualize._text import MIN_FONT_SIZE, RGB, Text

__all__ = ["LegendEntry", "LegendGrid", "draw_legend", "legend", "legend_entries", "legend_grid"]

TEXT = (32, 32, 32)
WHITE = (255, 255, 255)
_SWATCH_BORDER = (110, 110, 110)


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
class LegendGrid:
    text: Text
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


def legend_grid(
    entries: Sequence[LegendEntry],
    font_size: int,
    max_width: int | None,
    columns: int | None,
    padding: int | None,
) -> LegendGrid:
    if not entries:
        raise ConfigError("a legend needs at least one class (got none)")
    text = Text(font_size)
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
    return LegendGrid(
        text, tuple(entries), cols, rows, cell, name_offset, column_gap, row_height, pad
    )


def draw_legend(
    canvas: Image.Image, grid: LegendGrid, origin: tuple[int, int], text_color: RGB
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
    background: RGB = WHITE,
    text_color: RGB = TEXT,
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
    grid = legend_grid(entries, max(MIN_FONT_SIZE, font_size), max_width, columns, padding)
    image = Image.new("RGB", grid.size, background)
    draw_legend(image, grid, (0, 0), text_color)
    return image
