"""Class areas over time: a bounded-memory timeline and its chart (Pillow only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from camvidseg._types import UNLABELLED, LabelMap
from camvidseg.palette import CamVidPalette

__all__ = ["AreaTimeline", "area_fractions", "draw_area_chart"]

_UNLABELLED_COLOR = (255, 255, 255)
_WHITE = (255, 255, 255)
_INK = (40, 40, 40)


def area_fractions(labels: LabelMap, classes: int) -> NDArray[np.float64]:
    """Fraction of pixels per class id ``0..classes-1``, then unlabelled (255): ``classes + 1``
    values summing to 1.

    Example:
        >>> area_fractions(np.array([[0, 0, 2, 255]], np.uint8), 3).tolist()
        [0.5, 0.0, 0.25, 0.25]
    """
    counts = np.bincount(labels.reshape(-1), minlength=256)
    fractions = np.empty(classes + 1, np.float64)
    fractions[:classes] = counts[:classes]
    fractions[classes] = counts[UNLABELLED]
    return fractions / max(1, labels.size)


class AreaTimeline:
    """Per-frame class areas averaged into at most ``max_points`` bins of equal length.

    When the bins are full, neighbours merge pairwise and each bin then covers twice as many
    frames, so memory stays fixed however long the video is.

    Example:
        >>> timeline = AreaTimeline(2, max_points=2)
        >>> for value in (0.0, 1.0, 1.0, 1.0):
        ...     timeline.add(np.array([value, 1 - value]), time=0.0)
        >>> timeline.means()[:, 0].tolist(), timeline.frames_per_point
        ([0.5, 1.0], 2)
    """

    def __init__(self, width: int, max_points: int = 1000) -> None:
        capacity = max(2, max_points + max_points % 2)
        self._sums = np.zeros((capacity, width), np.float64)
        self._counts = np.zeros(capacity, np.int64)
        self._times = np.zeros(capacity, np.float64)
        self._used = 0
        self.frames_per_point = 1
        self.frames = 0

    def add(self, fractions: NDArray[np.float64], time: float) -> None:
        """Add one frame's areas (``width`` values), shown at ``time`` seconds."""
        if self._used == 0 or self._counts[self._used - 1] == self.frames_per_point:
            if self._used == len(self._counts):
                self._merge()
            self._times[self._used] = time
            self._used += 1
        self._sums[self._used - 1] += fractions
        self._counts[self._used - 1] += 1
        self.frames += 1

    def _merge(self) -> None:
        half = len(self._counts) // 2
        self._sums[:half] = self._sums[0::2] + self._sums[1::2]
        self._counts[:half] = self._counts[0::2] + self._counts[1::2]
        self._times[:half] = self._times[0::2]
        self._sums[half:] = 0.0
        self._counts[half:] = 0
        self._used = half
        self.frames_per_point *= 2

    def means(self) -> NDArray[np.float64]:
        """``(points, width)`` mean areas of each bin."""
        counts = np.maximum(self._counts[: self._used], 1)
        means: NDArray[np.float64] = self._sums[: self._used] / counts[:, None]
        return means

    def times(self) -> NDArray[np.float64]:
        """Start time in seconds of each bin."""
        times: NDArray[np.float64] = self._times[: self._used].copy()
        return times


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def draw_area_chart(
    timeline: AreaTimeline,
    palette: CamVidPalette,
    duration: float,
    *,
    size: tuple[int, int] = (960, 420),
) -> Image.Image:
    """A stacked-area chart of the class areas (%) over time, in the palette's colours, with a
    legend of the classes ordered by mean area (unlabelled pixels in white).

    Example:
        >>> timeline = AreaTimeline(len(CamVidPalette.camvid11()) + 1)
        >>> road = np.zeros(13); road[3] = 1.0
        >>> for t in range(10):
        ...     timeline.add(road, time=t / 10)
        >>> draw_area_chart(timeline, CamVidPalette.camvid11(), 1.0).size
        (960, 420)
    """
    width, height = size
    font = _font(12)
    left, right, top, bottom = 48, 210, 16, 36
    plot_w, plot_h = max(1, width - left - right), max(1, height - top - bottom)
    canvas = Image.new("RGB", size, _WHITE)
    draw = ImageDraw.Draw(canvas)
    means = timeline.means()
    colors = np.vstack([palette.colors, np.array([_UNLABELLED_COLOR], np.uint8)])
    names = [*palette.names, "unlabelled"]
    if len(means):
        # Column x shows the bin under it; rows are stacked shares from the bottom up.
        columns = means[np.minimum(np.arange(plot_w) * len(means) // plot_w, len(means) - 1)]
        bounds = np.cumsum(columns, axis=1)
        levels = (np.arange(plot_h)[::-1] + 0.5) / plot_h
        index = (bounds[None, :, :] <= levels[:, None, None]).sum(axis=-1)
        index = np.minimum(index, len(colors) - 1)
        canvas.paste(Image.fromarray(colors[index]), (left, top))
    for percent in (0, 25, 50, 75, 100):
        y = top + plot_h - round(percent / 100 * plot_h)
        draw.line([(left - 4, y), (left, y)], fill=_INK)
        draw.text((left - 6, y), f"{percent}%", fill=_INK, font=font, anchor="rm")
    for k in range(6):
        x = left + round(k / 5 * plot_w)
        draw.line([(x, top + plot_h), (x, top + plot_h + 4)], fill=_INK)
        draw.text(
            (x, top + plot_h + 6), f"{duration * k / 5:.1f} s", fill=_INK, font=font, anchor="ma"
        )
    draw.rectangle([left - 1, top - 1, left + plot_w, top + plot_h], outline=_INK)
    _draw_legend(draw, means, names, colors, (left + plot_w + 12, top), font, plot_h)
    return canvas


def _draw_legend(
    draw: ImageDraw.ImageDraw,
    means: NDArray[np.float64],
    names: Sequence[str],
    colors: NDArray[np.uint8],
    origin: tuple[int, int],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    height: int,
) -> None:
    if not len(means):
        return
    overall = means.mean(axis=0)
    order = [int(i) for i in np.argsort(-overall, kind="stable") if overall[i] > 0]
    x, y = origin
    line = 16
    for i in order[: max(1, height // line)]:
        color = tuple(int(c) for c in colors[i])
        draw.rectangle([x, y + 2, x + 11, y + 13], fill=color, outline=_INK)
        draw.text((x + 16, y), f"{names[i]} {100 * overall[i]:.1f}%", fill=_INK, font=font)
        y += line
