"""Structuring elements (:func:`structuring_element`) and the shifted reductions that apply
them to whole arrays, and one-hot bit-packed class masks (one bit per class present)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from camvidseg._types import LabelMap
from camvidseg.exceptions import ConfigError

__all__ = ["SHAPES", "Shape", "structuring_element"]

#: Structuring-element shape names.
Shape = Literal["square", "cross", "disk"]
SHAPES: tuple[Shape, ...] = ("square", "cross", "disk")

Word = TypeVar("Word", bound=np.generic)


def check_shape(shape: str, radius: int) -> None:
    if shape not in SHAPES:
        raise ConfigError(f"shape must be one of {', '.join(SHAPES)} (got {shape!r})")
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ConfigError(f"radius must be an integer >= 0 (got {radius!r})")


# -- structuring elements and shifted reductions ---------------------------------------------------


def half_widths(shape: Shape, radius: int) -> list[int]:
    """Half-width of the element's row at each ``dy`` in ``-radius..radius``."""
    if shape == "square":
        return [radius] * (2 * radius + 1)
    if shape == "cross":
        return [radius if dy == 0 else 0 for dy in range(-radius, radius + 1)]
    return [math.isqrt(radius * radius - dy * dy) for dy in range(-radius, radius + 1)]


def structuring_element(shape: Shape = "square", radius: int = 1) -> NDArray[np.bool_]:
    """The ``(2r+1, 2r+1)`` boolean structuring element of ``shape`` and ``radius`` ``r``.

    Args:
        shape: ``"square"`` (the full box), ``"cross"`` (centre row and column) or ``"disk"``
            (``dy**2 + dx**2 <= r**2``).
        radius: ``r >= 0``; 0 gives the single centre pixel.

    Returns:
        ``(2r+1, 2r+1)`` bool array, symmetric under 180-degree rotation.

    Example:
        >>> structuring_element("disk", 2).astype(int)
        array([[0, 0, 1, 0, 0],
               [0, 1, 1, 1, 0],
               [1, 1, 1, 1, 1],
               [0, 1, 1, 1, 0],
               [0, 0, 1, 0, 0]])
    """
    check_shape(shape, radius)
    widths = half_widths(shape, radius)
    dx = np.abs(np.arange(-radius, radius + 1))
    return np.array([dx <= w for w in widths], dtype=bool).reshape(2 * radius + 1, -1)


def clipped_window(a: NDArray[Word], half: int, axis: int, op: np.ufunc) -> NDArray[Word]:
    """``out[i] = op(a[i - half], ..., a[i + half])`` along ``axis``, ignoring indices outside.

    Ignoring is the same as filling with ``op``'s identity (all ones for AND, 0 for OR), which
    is exactly the border convention. ``2 * half`` in-place operations on shifted views.
    """
    out: NDArray[Word] = a.copy()
    n = a.shape[axis]
    for step in range(1, min(half, n - 1) + 1):
        ahead = (slice(None),) * axis + (slice(step, None),)
        behind = (slice(None),) * axis + (slice(None, n - step),)
        op(out[behind], a[ahead], out=out[behind])
        op(out[ahead], a[behind], out=out[ahead])
    return out


def reduce_element(a: NDArray[Word], widths: Sequence[int], op: np.ufunc) -> NDArray[Word]:
    """``op`` over the structuring element with row half-``widths`` around every pixel.

    Pixels of the element outside the image are ignored (see :func:`clipped_window`).
    """
    radius = len(widths) // 2
    if len(set(widths)) == 1:  # a box: separable
        return clipped_window(clipped_window(a, widths[0], 1, op), radius, 0, op)
    rows: dict[int, NDArray[Word]] = {}
    for width in widths:
        if width not in rows:
            rows[width] = clipped_window(a, width, 1, op)
    out: NDArray[Word] = rows[widths[radius]].copy()
    height = a.shape[0]
    for dy, width in zip(range(-radius, radius + 1), widths, strict=True):
        if dy == 0 or abs(dy) >= height:
            continue
        # out[y] op= rows[width][y + dy] where y + dy is inside the image
        if dy > 0:
            op(out[:-dy], rows[width][dy:], out=out[:-dy])
        else:
            op(out[-dy:], rows[width][:dy], out=out[-dy:])
    return out


def uniform_interior(labels: LabelMap, widths: Sequence[int]) -> NDArray[np.bool_]:
    """Where every in-image pixel of the element placed on ``p`` has ``p``'s label.

    Works on equalities of neighbouring pixels (cheap uint8 compares, no per-class masks): a row
    segment is uniform when all its adjacent pairs are equal, and the element is uniform when its
    centre column and each of its row segments are (every segment crosses the centre column).
    """
    height = labels.shape[0]
    radius = len(widths) // 2
    same_right = labels[:, 1:] == labels[:, :-1]  # (H, W-1): pixel x equals x+1
    same_below = labels[1:] == labels[:-1]  # (H-1, W): pixel y equals y+1

    def pairs_uniform(pairs: NDArray[np.bool_], half: int, axis: int) -> NDArray[np.bool_]:
        # True where the pairs (i-half, i-half+1) ... (i+half-1, i+half) along axis are equal.
        n = labels.shape[axis]
        out = np.ones(labels.shape, dtype=bool)
        for step in range(1, min(half, n - 1) + 1):
            head = (slice(None),) * axis + (slice(None, n - step),)
            tail = (slice(None),) * axis + (slice(step, None),)
            np.logical_and(
                out[head], pairs[(slice(None),) * axis + (slice(step - 1, None),)], out=out[head]
            )
            np.logical_and(
                out[tail], pairs[(slice(None),) * axis + (slice(None, n - step),)], out=out[tail]
            )
        return out

    column = pairs_uniform(same_below, radius, 0)
    rows = {w: pairs_uniform(same_right, w, 1) for w in set(widths)}
    if len(rows) == 1:  # a box: every row segment is uniform
        return column & clipped_window(rows[widths[0]], radius, 0, np.logical_and)
    out = column & rows[widths[radius]]
    for dy, w in zip(range(-radius, radius + 1), widths, strict=True):
        if dy == 0 or abs(dy) >= height:
            continue
        if dy > 0:
            np.logical_and(out[:-dy], rows[w][dy:], out=out[:-dy])
        else:
            np.logical_and(out[-dy:], rows[w][:dy], out=out[-dy:])
    return out


# -- one-hot bit-packed class masks ----------------------------------------------------------------


def word_dtype(bits: int) -> type[np.unsignedinteger[Any]]:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if bits <= np.iinfo(dtype).bits:
            return dtype
    return np.uint64


def present_classes(labels: LabelMap) -> NDArray[np.intp]:
    """Sorted ids present in ``labels``."""
    flat = labels.reshape(-1)
    if flat.size % 2 == 0:
        # Counting pairs of pixels as uint16 is faster than counting pixels (no intp copy).
        pairs = np.flatnonzero(np.bincount(flat.view(np.uint16), minlength=65536))
        return np.union1d(pairs & 0xFF, pairs >> 8).astype(np.intp)
    return np.flatnonzero(np.bincount(flat, minlength=256))


def onehot_words(
    labels: LabelMap, present: NDArray[np.intp]
) -> list[NDArray[np.unsignedinteger[Any]]]:
    """Bit ``k`` of word ``w`` is set where ``labels == present[64 * w + k]``."""
    words = []
    for start in range(0, len(present), 64):
        chunk = present[start : start + 64]
        dtype = word_dtype(len(chunk))
        table = np.zeros(256, dtype=dtype)
        table[chunk] = np.left_shift(np.ones(len(chunk), dtype), np.arange(len(chunk), dtype=dtype))
        words.append(table[labels])
    return words


def lowest_bit(values: NDArray[np.unsignedinteger[Any]]) -> NDArray[np.intp]:
    """Index of the lowest set bit of each (non-zero) value."""
    isolated = values & (~values + values.dtype.type(1))
    _, exponent = np.frexp(isolated.astype(np.float64))  # exact: powers of two
    index: NDArray[np.intp] = (exponent - 1).astype(np.intp)
    return index
