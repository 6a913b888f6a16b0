"""Pure-numpy tiling maths: overlapping tile grids, smooth blending weights, banded resizing.

Large images are segmented tile by tile. Tiles have one fixed size (so they batch, and the model
sees one input shape), are spread evenly and overlap by at least ``overlap`` pixels. Their scores
are blended with weights that ramp smoothly (raised cosine) across each overlap, so no seam shows
in the scores and hence none in the labels. Along each axis the weights of the tiles covering a
pixel sum to one (a partition of unity), so the 2-D weights ``w_row(y) * w_col(x)`` do too.

Example:
    >>> grid = TileGrid.for_shape((300, 700), tile=256, overlap=32)
    >>> grid.rows, grid.cols
    (((0, 256), (44, 300)), ((0, 256), (222, 478), (444, 700)))
    >>> float(sum(w[100] for w, (a, b) in zip(grid.col_weights, grid.cols) if a <= 100 < b))
    1.0
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import Scores
from camvidseg.exceptions import BackendError, ConfigError
from camvidseg.postprocess import bilinear_axis
from camvidseg.validators import check_tile_overlap

__all__ = ["Tile", "TileGrid", "axis_weights", "resize_score_rows", "tile_spans"]

Span = tuple[int, int]


def tile_spans(length: int, tile: int, overlap: int) -> tuple[Span, ...]:
    """``(start, stop)`` of tiles covering ``[0, length)``.

    Every tile has size ``min(tile, length)``; the fewest tiles whose neighbours overlap by at
    least ``overlap`` pixels are spread evenly (starts rounded to whole pixels), so the first
    starts at 0 and the last stops at ``length``.

    Args:
        length: Pixels along the axis, ``>= 1``.
        tile: Tile size, ``>= 1``.
        overlap: Minimum overlap of neighbouring tiles, ``0 <= overlap <= tile // 2``.

    Returns:
        Tuple of ``(start, stop)`` pairs with increasing starts.

    Example:
        >>> tile_spans(1000, 512, 64)
        ((0, 512), (244, 756), (488, 1000))
        >>> tile_spans(1000, 512, 12)
        ((0, 512), (488, 1000))
        >>> tile_spans(300, 512, 64)
        ((0, 300),)
    """
    check_tile_overlap(tile, overlap)
    if length < 1:
        raise ConfigError(f"cannot tile an axis of length {length}")
    if length <= tile:
        return ((0, length),)
    stride = tile - overlap
    count = -(-(length - overlap) // stride)  # ceil: neighbours then overlap by >= overlap
    span = length - tile
    # Round half up, in integers: start_i = round(i * span / (count - 1)).
    starts = [(2 * i * span + count - 1) // (2 * (count - 1)) for i in range(count)]
    return tuple((start, start + tile) for start in starts)


def _ramp(width: int) -> NDArray[np.float64]:
    """Raised cosine rising over ``width`` pixels, sampled at pixel centres: ``(0, 1)``.

    ``ramp[k] + ramp[width - 1 - k] == 1``, so a rising and a falling ramp over the same pixels
    sum to one.
    """
    centres = (np.arange(width, dtype=np.float64) + 0.5) / width
    return np.sin(0.5 * np.pi * centres) ** 2


def axis_weights(spans: tuple[Span, ...]) -> tuple[NDArray[np.float32], ...]:
    """Blending weight of each tile over its own span: a partition of unity along the axis.

    Each tile's raw weight rises over its overlap with the previous tile and falls over its
    overlap with the next (raised cosine; 1 elsewhere, also at the image edges); the raw weights
    are then divided by their sum at every pixel.

    Args:
        spans: Tiles as from :func:`tile_spans` (increasing starts, together covering
            ``[0, spans[-1][1])``).

    Returns:
        One float32 array of length ``stop - start`` per tile, all values in ``(0, 1]``.

    Example:
        >>> [[round(float(v), 2) for v in w] for w in axis_weights(((0, 6), (2, 8)))]
        [[1.0, 1.0, 0.96, 0.69, 0.31, 0.04], [0.04, 0.31, 0.69, 0.96, 1.0, 1.0]]
    """
    length = spans[-1][1]
    raw = []
    for index, (start, stop) in enumerate(spans):
        weight = np.ones(stop - start, dtype=np.float64)
        if index > 0:
            rise = spans[index - 1][1] - start
            if rise > 0:
                weight[:rise] *= _ramp(rise)
        if index + 1 < len(spans):
            fall = stop - spans[index + 1][0]
            if fall > 0:
                weight[stop - start - fall :] *= _ramp(fall)[::-1]
        raw.append(weight)
    total = np.zeros(length, dtype=np.float64)
    for (start, stop), weight in zip(spans, raw, strict=True):
        total[start:stop] += weight
    return tuple(
        (weight / total[start:stop]).astype(np.float32)
        for (start, stop), weight in zip(spans, raw, strict=True)
    )


@attrs.frozen
class Tile:
    """One tile of a :class:`TileGrid`: grid position and pixel bounds (stop exclusive)."""

    row: int
    col: int
    y0: int
    y1: int
    x0: int
    x1: int


@attrs.frozen(eq=False)
class TileGrid:
    """Overlapping tiles covering an image, with their blending weights.

    Attributes:
        shape: ``(H, W)`` of the image.
        tile: Tile side (tiles are ``min(tile, H) x min(tile, W)``).
        overlap: Minimum overlap of neighbouring tiles.
        rows: ``(y0, y1)`` of each tile row.
        cols: ``(x0, x1)`` of each tile column.
        row_weights: Per tile row, float32 weights along y (see :func:`axis_weights`).
        col_weights: Per tile column, float32 weights along x.
    """

    shape: tuple[int, int]
    tile: int
    overlap: int
    rows: tuple[Span, ...]
    cols: tuple[Span, ...]
    row_weights: tuple[NDArray[np.float32], ...]
    col_weights: tuple[NDArray[np.float32], ...]

    @classmethod
    def for_shape(cls, shape: tuple[int, int], tile: int, overlap: int) -> TileGrid:
        """The grid for an image of ``shape = (H, W)``."""
        height, width = int(shape[0]), int(shape[1])
        rows = tile_spans(height, tile, overlap)
        cols = tile_spans(width, tile, overlap)
        return cls(
            (height, width), tile, overlap, rows, cols, axis_weights(rows), axis_weights(cols)
        )

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def __iter__(self) -> Iterator[Tile]:
        for i, (y0, y1) in enumerate(self.rows):
            for j, (x0, x1) in enumerate(self.cols):
                yield Tile(i, j, y0, y1, x0, x1)

    def weights(self, row: int, col: int) -> NDArray[np.float32]:
        """``(tile_h, tile_w)`` float32 blending weights of tile ``(row, col)``.

        Example:
            >>> grid = TileGrid.for_shape((5, 9), tile=5, overlap=2)
            >>> sum(np.pad(grid.weights(0, j), ((0, 0), (x0, 9 - x1)))
            ...     for j, (x0, x1) in enumerate(grid.cols)).min().item()
            1.0
        """
        weights: NDArray[np.float32] = np.multiply.outer(
            self.row_weights[row], self.col_weights[col]
        )
        return weights


def resize_score_rows(scores: Scores, size: tuple[int, int], start: int, stop: int) -> Scores:
    """Rows ``start:stop`` of :func:`camvidseg.postprocess.resize_scores` ``(scores, size)``.

    Bit-for-bit the same values, computing only the requested rows, so scores can be resized to a
    very large size one band at a time.

    Args:
        scores: ``(h, w, C)`` float32.
        size: Target ``(height, width)``.
        start: First output row.
        stop: Output row after the last, ``start < stop <= height``.

    Returns:
        ``(stop - start, width, C)`` float32.

    Example:
        >>> s = np.array([[[0.0]], [[1.0]]], np.float32)
        >>> resize_score_rows(s, (4, 1), 1, 3)[..., 0].tolist()
        [[0.25], [0.75]]
    """
    if scores.ndim != 3:
        raise BackendError(f"resize_score_rows needs (H, W, C) scores (got shape {scores.shape})")
    height, width = size
    if not 0 <= start < stop <= height:
        raise ValueError(f"rows {start}:{stop} are not inside 0:{height}")
    if (height, width) == scores.shape[:2]:
        return scores[start:stop]
    y0, y1, wy = bilinear_axis(scores.shape[0], height)
    x0, x1, wx = bilinear_axis(scores.shape[1], width)
    y0, y1, wy = y0[start:stop], y1[start:stop], wy[start:stop]
    rows = scores[y0] * (1 - wy)[:, None, None] + scores[y1] * wy[:, None, None]
    out = rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]
    return out.astype(np.float32, copy=False)
