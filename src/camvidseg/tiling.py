"""Tiled prediction over a ``predict`` callback, and its maths: tile grids, blending weights, bands.

:func:`predict_tiled` (like supervision's ``InferenceSlicer(callback, slice_wh, overlap_wh)``)
runs a ``predict`` callback on overlapping tiles and blends their scores; :func:`iter_tiled_bands`
does the same one tile row at a time, :func:`iter_score_bands` gives any large image's scores as
row bands (tiled, or resized back from a smaller model input), and :func:`labels_from_bands`
turns row bands into labels without ever holding the whole image's scores, so memory stays
bounded on huge images.

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

from collections.abc import Callable, Iterable, Iterator

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import (
    BatchPredict,
    ConfidenceMap,
    ImageArray,
    ImageResize,
    LabelMap,
    Scores,
)
from camvidseg.exceptions import BackendError, ConfigError
from camvidseg.postprocess import (
    ChannelLayout,
    bilinear_axis,
    labels_and_confidence,
    to_class_scores,
)
from camvidseg.validators import check_tile_overlap, int_range

__all__ = [
    "DEFAULT_BAND_BYTES",
    "Band",
    "Tile",
    "TileGrid",
    "axis_weights",
    "choose_tile",
    "iter_score_bands",
    "iter_tiled_bands",
    "labels_from_bands",
    "predict_tiled",
    "resize_score_rows",
    "resized_bands",
    "stack_bands",
    "tile_spans",
]

Span = tuple[int, int]
#: Rows ``y0:y1`` of an image's ``(H, W, C)`` scores: ``(y0, y1, scores[y0:y1])``.
Band = tuple[int, int, Scores]
#: Bytes of scores turned into labels at once while finalising a large image band by band.
DEFAULT_BAND_BYTES = 64 * 2**20


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


def choose_tile(
    size: tuple[int, int], tile: int | None, *, max_pixels: int | None, default: int
) -> int | None:
    """Tile side for an image the model sees at ``size``: ``tile`` if given, else ``default``
    when the image has more than ``max_pixels`` pixels, else ``None`` (run it whole).

    Example:
        >>> choose_tile((600, 800), None, max_pixels=100_000, default=512)
        512
        >>> choose_tile((60, 80), None, max_pixels=100_000, default=512) is None
        True
    """
    if tile is not None:
        return tile
    if max_pixels is not None and size[0] * size[1] > max_pixels:
        return default
    return None


def iter_tiled_bands(
    image: ImageArray,
    predict: BatchPredict,
    tile: int,
    overlap: int,
    *,
    batch_size: int = 1,
) -> Iterator[Band]:
    """Blended tile scores of ``image``, one tile row at a time, as :data:`Band` s.

    The tiles of :meth:`TileGrid.for_shape` go to ``predict`` row by row, up to ``batch_size``
    per call; their scores are blended into an accumulator one tile row tall with a running
    weighted mean (:meth:`TileGrid.weights`; exact where tiles agree), and the rows no later
    tile touches are yielded. The bands cover ``0:H`` in order. A yielded band is only valid
    until the next one is requested.

    Args:
        image: ``(H, W, ...)`` array to tile (e.g. ``(H, W, 3)`` uint8).
        predict: The model: tiles in, one ``(tile_h, tile_w, C)`` float32 array per tile out.
        tile: Tile side (tiles are ``min(tile, H) x min(tile, W)``).
        overlap: Minimum overlap of neighbouring tiles, at most ``tile // 2``.
        batch_size: Tiles per ``predict`` call.
    """
    int_range(1).check(batch_size, "batch_size")
    size = (int(image.shape[0]), int(image.shape[1]))
    grid = TileGrid.for_shape(size, tile, overlap)
    band_height = grid.rows[0][1] - grid.rows[0][0]
    total = np.zeros((band_height, size[1]), dtype=np.float32)
    acc: Scores | None = None
    for i, (y0, y1) in enumerate(grid.rows):
        tiles = [image[y0:y1, x0:x1] for x0, x1 in grid.cols]
        for first in range(0, len(tiles), batch_size):
            chunk = tiles[first : first + batch_size]
            outputs = predict(chunk)
            if len(outputs) != len(chunk):
                raise BackendError(
                    f"predict returned {len(outputs)} score arrays for {len(chunk)} tiles"
                )
            for j, scores in enumerate(outputs, start=first):
                x0, x1 = grid.cols[j]
                if scores.ndim != 3 or scores.shape[:2] != (y1 - y0, x1 - x0):
                    raise BackendError(
                        f"predict must return (h, w, C) scores of the tile's size "
                        f"{(y1 - y0, x1 - x0)} (got shape {scores.shape})"
                    )
                if acc is None:
                    acc = np.zeros((band_height, size[1], scores.shape[-1]), np.float32)
                weight = grid.weights(i, j)
                seen = total[:, x0:x1] + weight
                share = weight / seen
                region = acc[:, x0:x1]
                region += share[..., None] * (scores - region)
                total[:, x0:x1] = seen
        assert acc is not None
        stop = grid.rows[i + 1][0] if i + 1 < len(grid.rows) else y1
        yield y0, stop, acc[: stop - y0]
        # Rows from `stop` on are shared with the next tile row: move them to the top.
        keep = y1 - stop
        acc[:keep] = acc[stop - y0 :]
        acc[keep:] = 0.0
        total[:keep] = total[stop - y0 :]
        total[keep:] = 0.0


def predict_tiled(
    image: ImageArray,
    predict: BatchPredict,
    tile: int,
    overlap: int,
    *,
    batch_size: int = 1,
) -> Scores:
    """``(H, W, C)`` scores of ``image`` from overlapping tiles, blended (see
    :func:`iter_tiled_bands`).

    With a pixel-local ``predict`` (each pixel's scores depend on that pixel alone) the result
    equals ``predict([image])[0]`` exactly.

    Example:
        >>> def predict(tiles):  # a pixel-local "model": the red channel as one score
        ...     return [t[..., :1].astype(np.float32) for t in tiles]
        >>> image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
        >>> scores = predict_tiled(image, predict, tile=32, overlap=8, batch_size=4)
        >>> scores.shape, bool((scores == predict([image])[0]).all())
        ((50, 70, 1), True)
    """
    bands = iter_tiled_bands(image, predict, tile, overlap, batch_size=batch_size)
    return stack_bands(bands, (int(image.shape[0]), int(image.shape[1])))


def iter_score_bands(
    image: ImageArray,
    predict: BatchPredict,
    *,
    tile: int | None,
    overlap: int = 0,
    batch_size: int = 1,
    model_size: tuple[int, int] | None = None,
    resize: ImageResize | None = None,
    band_bytes: int = DEFAULT_BAND_BYTES,
) -> Iterator[Band]:
    """Scores of ``image`` at its own size as row bands, for images too large for one array.

    The model sees ``image`` resized to ``model_size`` (by ``resize``), in tiles when ``tile``
    is given. At the image's own size the blended tile rows are yielded as they are finished
    (:func:`iter_tiled_bands`: memory of one tile row); otherwise the model-resolution scores
    are resized back one band of about ``band_bytes`` at a time (:func:`resized_bands`).
    :func:`labels_from_bands` finalises them.

    Args:
        image: ``(H, W, 3)`` uint8.
        predict: The model (see :func:`iter_tiled_bands`).
        tile: Tile side, or ``None`` to run the (resized) image whole.
        overlap: Minimum overlap of neighbouring tiles.
        batch_size: Tiles per ``predict`` call.
        model_size: ``(height, width)`` the model sees (default: the image's).
        resize: Resizes an image to ``(height, width)``; needed when ``model_size`` differs.
        band_bytes: Bytes of resized scores per band.
    """
    shape = (int(image.shape[0]), int(image.shape[1]))
    size = shape if model_size is None else model_size
    if size == shape and tile is not None:
        yield from iter_tiled_bands(image, predict, tile, overlap, batch_size=batch_size)
        return
    if size != shape:
        if resize is None:
            raise ConfigError(f"a model size {size} other than the image's {shape} needs resize=")
        image = resize(image, size)
    if tile is None:
        scores = predict([image])[0]
    else:
        scores = predict_tiled(image, predict, tile, overlap, batch_size=batch_size)
    yield from resized_bands(scores, shape, band_bytes=band_bytes)


def stack_bands(bands: Iterable[Band], shape: tuple[int, int]) -> Scores:
    """The ``(H, W, C)`` scores that row bands covering ``0:H`` of an ``(H, W)`` image make up.

    Example:
        >>> top, rest = np.zeros((1, 2, 1), np.float32), np.ones((2, 2, 1), np.float32)
        >>> stack_bands([(0, 1, top), (1, 3, rest)], (3, 2))[..., 0].tolist()
        [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]
    """
    out: Scores | None = None
    for y0, y1, band in bands:
        if out is None:
            out = np.empty((shape[0], shape[1], band.shape[-1]), np.float32)
        out[y0:y1] = band
    if out is None:
        raise ValueError("no bands to stack")
    return out


def resized_bands(
    scores: Scores, size: tuple[int, int], *, band_bytes: int = DEFAULT_BAND_BYTES
) -> Iterator[Band]:
    """:func:`~camvidseg.postprocess.resize_scores` ``(scores, size)`` as row bands of about
    ``band_bytes`` each (bit-for-bit the same values; see :func:`resize_score_rows`).

    Example:
        >>> s = np.zeros((2, 2, 1), np.float32)
        >>> [(y0, y1, band.shape) for y0, y1, band in resized_bands(s, (5, 3), band_bytes=24)]
        [(0, 2, (2, 3, 1)), (2, 4, (2, 3, 1)), (4, 5, (1, 3, 1))]
    """
    height, width = size
    rows = max(1, band_bytes // (width * scores.shape[-1] * 4))
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        yield y0, y1, resize_score_rows(scores, size, y0, y1)


def labels_from_bands(
    bands: Iterable[Band],
    shape: tuple[int, int],
    layout: Callable[[int], ChannelLayout],
    *,
    return_scores: bool = False,
    band_bytes: int = DEFAULT_BAND_BYTES,
) -> tuple[LabelMap, ConfidenceMap, Scores | None]:
    """Labels and confidence of an image from its scores given as row bands.

    Each band goes through :func:`~camvidseg.postprocess.labels_and_confidence` in chunks of
    about ``band_bytes`` of scores, so the argmax's temporaries stay small next to the band.

    Args:
        bands: :data:`Band` s covering rows ``0:H`` (e.g. from :func:`iter_tiled_bands` or
            :func:`resized_bands`).
        shape: ``(H, W)`` of the image.
        layout: The channel layout for a channel count (e.g. ``ChannelLayout.detect``).
        return_scores: Also return the class probabilities (see
            :func:`~camvidseg.postprocess.to_class_scores`).
        band_bytes: Bytes of scores finalised at once.

    Returns:
        ``(labels, confidence, class_scores)``: ``(H, W)`` uint8 class ids (CamVid-32 for the
        stock layouts), ``(H, W)`` float32, and ``(H, W, num_classes)`` float32 or ``None``.

    Example:
        >>> scores = np.zeros((3, 2, 33), np.float32)
        >>> scores[..., 18] = 1.0  # channel 18 = CamVid-32 id 17, Road
        >>> labels, conf, _ = labels_from_bands(
        ...     resized_bands(scores, (3, 2), band_bytes=1), (3, 2), ChannelLayout.detect)
        >>> labels.tolist(), float(conf.min())
        ([[17, 17], [17, 17], [17, 17]], 1.0)
    """
    height, width = shape
    labels = np.empty((height, width), np.uint8)
    conf = np.empty((height, width), np.float32)
    class_scores: Scores | None = None
    for y0, y1, band in bands:
        band_layout = layout(band.shape[-1])
        if return_scores and class_scores is None:
            class_scores = np.empty((height, width, band_layout.num_classes), np.float32)
        step = max(1, band_bytes // (width * band.shape[-1] * 4))
        for top in range(0, y1 - y0, step):
            rows = band[top : top + step]
            y = y0 + top
            labels[y : y + len(rows)], conf[y : y + len(rows)] = labels_and_confidence(
                rows, band_layout
            )
            if class_scores is not None:
                class_scores[y : y + len(rows)] = to_class_scores(rows, band_layout)
    return labels, conf, class_scores
