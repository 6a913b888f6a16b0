"""Confusion-matrix plots drawn with Pillow alone (no matplotlib).

Rows are the scored ground-truth classes, columns every predicted id (Void and *unlabelled*
included, so abstaining shows), each row normalised to the share of that class's pixels; the
cells carry whole percentages, and a last column gives each class's IoU.

Example:
    >>> from camvidseg.metrics import ConfusionMatrix
    >>> from camvidseg.palette import CamVidPalette
    >>> cm = ConfusionMatrix(CamVidPalette.camvid11())
    >>> cm.update(np.array([[0, 3, 3]], np.uint8), np.array([[0, 3, 0]], np.uint8))
    >>> plot = render_confusion(cm)
    >>> plot.image.mode, len(plot.rows), len(plot.columns)
    ('RGB', 11, 13)
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from camvidseg.imageio import save_image
from camvidseg.metrics import ConfusionMatrix
from camvidseg.visualize._text import load_font, text_size, vertical_text

__all__ = ["ConfusionPlot", "render_confusion", "save_confusion_plot", "shade"]

#: Sequential white-to-blue ramp (anchors at 0, 0.25, 0.5, 0.75, 1).
_RAMP = np.array(
    [(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)],
    dtype=np.float64,
)
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)
_GRID = (210, 210, 210)
_MISSING = (225, 225, 225)
_MARGIN = 12


def shade(value: float) -> tuple[int, int, int]:
    """Colour of a fraction in ``[0, 1]`` on the plot's white-to-dark-blue ramp.

    Example:
        >>> shade(0.0), shade(1.0)
        ((247, 251, 255), (8, 48, 107))
    """
    position = min(max(float(value), 0.0), 1.0) * (len(_RAMP) - 1)
    low = min(int(position), len(_RAMP) - 2)
    weight = position - low
    rgb = _RAMP[low] * (1 - weight) + _RAMP[low + 1] * weight
    r, g, b = (round(float(v)) for v in rgb)
    return (r, g, b)


@attrs.frozen(eq=False)
class ConfusionPlot:
    """A rendered confusion matrix and where its cells are.

    Attributes:
        image: The RGB plot.
        rows: Row labels (scored ground-truth classes).
        columns: Column labels (every palette class, then ``"unlabelled"``).
        fractions: ``(rows, columns)`` float64 row-normalised values (NaN for a row without
            ground-truth pixels).
        origin: ``(x, y)`` of the top-left cell's top-left corner.
        cell: Side of a cell in pixels.
    """

    image: Image.Image
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    fractions: NDArray[np.float64]
    origin: tuple[int, int]
    cell: int

    def cell_box(self, row: int, column: int) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` of a cell, right and bottom exclusive."""
        x = self.origin[0] + column * self.cell
        y = self.origin[1] + row * self.cell
        return (x, y, x + self.cell, y + self.cell)


def render_confusion(
    confusion: ConfusionMatrix, *, cell: int = 26, font_size: int = 11, title: str | None = None
) -> ConfusionPlot:
    """Draw a row-normalised confusion matrix with class names on both axes.

    Args:
        confusion: The counts to draw.
        cell: Side of a cell in pixels (at least 12).
        font_size: Text size in pixels.
        title: First line of the heading (default: the label set and image count).

    Returns:
        The plot and its layout.
    """
    cell = max(12, int(cell))
    font = load_font(font_size)
    small = load_font(max(8, font_size - 2))
    result = confusion.compute()
    scored = list(confusion.scored_ids)
    rows = tuple(confusion.palette.names[i] for i in scored)
    columns = confusion.labels
    counts = confusion.counts[scored].astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.full(counts.shape, np.nan)
    np.divide(counts, totals, out=fractions, where=totals > 0)

    heading = title or (
        f"{confusion.palette.name}: {confusion.num_images} images, "
        f"mIoU {'n/a' if result.miou is None else f'{100 * result.miou:.1f}%'}"
    )
    subtitle = "rows: ground truth (% of its pixels) - columns: prediction"
    line_height = text_size(font, "Ag")[1] + 4
    row_label_width = max(text_size(font, name)[0] for name in rows) + 8
    column_label_height = max(text_size(font, name)[0] for name in columns) + 8
    iou_width = max(text_size(font, "100.0")[0], text_size(font, "IoU %")[0]) + 12
    left = _MARGIN + row_label_width
    top = _MARGIN + 2 * line_height + column_label_height
    width = left + len(columns) * cell + iou_width + _MARGIN
    width = max(
        width,
        _MARGIN * 2 + text_size(font, heading)[0],
        _MARGIN * 2 + text_size(font, subtitle)[0],
    )
    height = top + len(rows) * cell + _MARGIN

    image = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((_MARGIN, _MARGIN), heading, fill=_TEXT, font=font)
    draw.text((_MARGIN, _MARGIN + line_height), subtitle, fill=_TEXT, font=small)
    for column, name in enumerate(columns):
        _, label_height = text_size(font, name)
        x = left + column * cell + (cell - label_height) // 2
        vertical_text(image, (x, top - 4), name, font, _TEXT)
    iou_x = left + len(columns) * cell + 6
    draw.text((iou_x, top - line_height), "IoU %", fill=_TEXT, font=font)

    for row, name in enumerate(rows):
        y = top + row * cell
        text_w, text_h = text_size(font, name)
        draw.text((left - 6 - text_w, y + (cell - text_h) // 2), name, fill=_TEXT, font=font)
        iou = result.iou[row]
        iou_text = "n/a" if iou is None else f"{100 * iou:.1f}"
        draw.text((iou_x, y + (cell - text_h) // 2), iou_text, fill=_TEXT, font=font)
        for column in range(len(columns)):
            x = left + column * cell
            value = fractions[row, column]
            fill = _MISSING if np.isnan(value) else shade(value)
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=fill, outline=_GRID)
            if np.isnan(value) or value < 0.005:
                continue
            label = f"{round(100 * value)}" if value >= 0.01 else "<1"
            label_w, label_h = text_size(small, label)
            color = (255, 255, 255) if value > 0.5 else _TEXT
            draw.text(
                (x + (cell - label_w) // 2, y + (cell - label_h) // 2),
                label,
                fill=color,
                font=small,
            )
        if np.isnan(fractions[row]).all():
            draw.text((left + 4, y + (cell - text_h) // 2), "no pixels", fill=_TEXT, font=small)
    # Outline the diagonal (correct predictions) so it can be followed across the grid.
    for row, class_id in enumerate(scored):
        x, y = left + class_id * cell, top + row * cell
        draw.rectangle([x, y, x + cell - 1, y + cell - 1], outline=(200, 60, 40), width=2)
    return ConfusionPlot(image, rows, columns, fractions, (left, top), cell)


def save_confusion_plot(
    path: str | os.PathLike[str],
    confusion: ConfusionMatrix,
    *,
    cell: int = 26,
    font_size: int = 11,
    title: str | None = None,
) -> Path:
    """Render with :func:`render_confusion` and write a PNG atomically; returns the path."""
    plot = render_confusion(confusion, cell=cell, font_size=font_size, title=title)
    return save_image(path, plot.image)
