"""Pure-numpy morphological cleanup of label maps: opening, closing, majority, small regions.

Every operation treats all classes in one pass over the image (no loop over classes): per-class
binary morphology runs on one-hot bit-packed masks (one bit per class present, so a whole
structuring-element reduction is a handful of bitwise ``and``/``or`` over shifted arrays), and
connected components are found on row runs with a vectorised union-find.

Conventions shared by the fast code here, the slow references in the tests and the
``scipy.ndimage`` comparisons:

* **Structuring elements** (:func:`structuring_element`) are symmetric: ``square`` (all of the
  ``(2r+1) x (2r+1)`` box), ``cross`` (the centre row and column) and ``disk``
  (``dy**2 + dx**2 <= r**2``).
* **Border**: erosion treats pixels outside the image as belonging to *every* class, dilation as
  belonging to *none*; so opening only removes and closing only adds pixels, and a region is not
  eaten just because it touches the image border. In ``scipy.ndimage`` terms, per class:
  ``binary_erosion(..., border_value=1)`` and ``binary_dilation(..., border_value=0)``.
* **Connectivity** is 4 (edge neighbours) or 8 (edge and corner neighbours). The *boundary* of a
  region is the set of pixels outside it that are neighbours of one of its pixels, under the same
  connectivity; each boundary pixel votes once with its label, and the majority wins, ties going
  to the smallest id.
* The unlabelled id (255) is an ordinary label here; pass ``classes`` to leave it alone.

Example:
    >>> labels = np.array([[1, 1, 1, 1],
    ...                    [1, 7, 1, 1],
    ...                    [1, 1, 1, 2],
    ...                    [1, 1, 2, 2]], np.uint8)
    >>> remove_small_regions(labels, 2).tolist()
    [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 2], [1, 1, 2, 2]]
    >>> CleanupConfig(min_region=2, majority=3).apply(labels).tolist()
    [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 2], [1, 1, 2, 2]]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import LabelMap
from camvidseg.exceptions import ConfigError, InvalidImageError

__all__ = [
    "SHAPES",
    "CleanupConfig",
    "Shape",
    "closing",
    "fill_regions",
    "label_regions",
    "majority_filter",
    "opening",
    "remove_small_regions",
    "structuring_element",
]

#: Structuring-element shape names.
Shape = Literal["square", "cross", "disk"]
SHAPES: tuple[Shape, ...] = ("square", "cross", "disk")

_Word = TypeVar("_Word", bound=np.generic)


# -- validation ------------------------------------------------------------------------------------


def _check_labels(labels: object) -> LabelMap:
    if not isinstance(labels, np.ndarray) or labels.dtype != np.uint8 or labels.ndim != 2:
        shape = getattr(labels, "shape", None)
        dtype = getattr(labels, "dtype", type(labels).__name__)
        raise InvalidImageError(f"labels must be an HxW uint8 array (got shape {shape}, {dtype})")
    array: LabelMap = np.ascontiguousarray(labels)
    return array


def _copy(labels: LabelMap) -> LabelMap:
    out: LabelMap = labels.copy()
    return out


def _check_shape(shape: str, radius: int) -> None:
    if shape not in SHAPES:
        raise ConfigError(f"shape must be one of {', '.join(SHAPES)} (got {shape!r})")
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ConfigError(f"radius must be an integer >= 0 (got {radius!r})")


def _check_connectivity(connectivity: int) -> None:
    if connectivity not in (4, 8):
        raise ConfigError(f"connectivity must be 4 or 8 (got {connectivity!r})")


def _class_table(classes: Iterable[int] | None) -> NDArray[np.bool_]:
    """``table[label]`` is True for labels the operation may change (all when ``None``)."""
    table = np.ones(256, dtype=bool)
    if classes is None:
        return table
    ids = [int(c) for c in classes]
    bad = [c for c in ids if not 0 <= c <= 255]
    if bad:
        raise ConfigError(f"classes must be label ids in 0..255 (got {bad})")
    table[:] = False
    table[ids] = True
    return table


# -- structuring elements and shifted reductions ---------------------------------------------------


def _half_widths(shape: Shape, radius: int) -> list[int]:
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
    _check_shape(shape, radius)
    widths = _half_widths(shape, radius)
    dx = np.abs(np.arange(-radius, radius + 1))
    return np.array([dx <= w for w in widths], dtype=bool).reshape(2 * radius + 1, -1)


def _clipped_window(a: NDArray[_Word], half: int, axis: int, op: np.ufunc) -> NDArray[_Word]:
    """``out[i] = op(a[i - half], ..., a[i + half])`` along ``axis``, ignoring indices outside.

    Ignoring is the same as filling with ``op``'s identity (all ones for AND, 0 for OR), which
    is exactly the border convention. ``2 * half`` in-place operations on shifted views.
    """
    out: NDArray[_Word] = a.copy()
    n = a.shape[axis]
    for step in range(1, min(half, n - 1) + 1):
        ahead = (slice(None),) * axis + (slice(step, None),)
        behind = (slice(None),) * axis + (slice(None, n - step),)
        op(out[behind], a[ahead], out=out[behind])
        op(out[ahead], a[behind], out=out[ahead])
    return out


def _reduce_element(a: NDArray[_Word], widths: Sequence[int], op: np.ufunc) -> NDArray[_Word]:
    """``op`` over the structuring element with row half-``widths`` around every pixel.

    Pixels of the element outside the image are ignored (see :func:`_clipped_window`).
    """
    radius = len(widths) // 2
    if len(set(widths)) == 1:  # a box: separable
        return _clipped_window(_clipped_window(a, widths[0], 1, op), radius, 0, op)
    rows: dict[int, NDArray[_Word]] = {}
    for width in widths:
        if width not in rows:
            rows[width] = _clipped_window(a, width, 1, op)
    out: NDArray[_Word] = rows[widths[radius]].copy()
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


def _uniform_interior(labels: LabelMap, widths: Sequence[int]) -> NDArray[np.bool_]:
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
        return column & _clipped_window(rows[widths[0]], radius, 0, np.logical_and)
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


def _word_dtype(bits: int) -> type[np.unsignedinteger[Any]]:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if bits <= np.iinfo(dtype).bits:
            return dtype
    return np.uint64


def _present(labels: LabelMap) -> NDArray[np.intp]:
    """Sorted ids present in ``labels``."""
    flat = labels.reshape(-1)
    if flat.size % 2 == 0:
        # Counting pairs of pixels as uint16 is faster than counting pixels (no intp copy).
        pairs = np.flatnonzero(np.bincount(flat.view(np.uint16), minlength=65536))
        return np.union1d(pairs & 0xFF, pairs >> 8).astype(np.intp)
    return np.flatnonzero(np.bincount(flat, minlength=256))


def _onehot_words(
    labels: LabelMap, present: NDArray[np.intp]
) -> list[NDArray[np.unsignedinteger[Any]]]:
    """Bit ``k`` of word ``w`` is set where ``labels == present[64 * w + k]``."""
    words = []
    for start in range(0, len(present), 64):
        chunk = present[start : start + 64]
        dtype = _word_dtype(len(chunk))
        table = np.zeros(256, dtype=dtype)
        table[chunk] = np.left_shift(np.ones(len(chunk), dtype), np.arange(len(chunk), dtype=dtype))
        words.append(table[labels])
    return words


def _lowest_bit(values: NDArray[np.unsignedinteger[Any]]) -> NDArray[np.intp]:
    """Index of the lowest set bit of each (non-zero) value."""
    isolated = values & (~values + values.dtype.type(1))
    _, exponent = np.frexp(isolated.astype(np.float64))  # exact: powers of two
    index: NDArray[np.intp] = (exponent - 1).astype(np.intp)
    return index


# -- opening and closing ---------------------------------------------------------------------------


def opening(
    labels: LabelMap,
    radius: int = 1,
    *,
    shape: Shape = "square",
    classes: Iterable[int] | None = None,
    fill: int | None = None,
    connectivity: int = 8,
) -> LabelMap:
    """Per-class binary opening of a label map, all classes at once.

    A pixel of class ``c`` survives when it lies in the opening (erosion, then dilation) of the
    mask ``labels == c`` by the structuring element; thin parts and specks smaller than the
    element are removed. Removed pixels get ``fill``, or (``fill=None``) the majority label of
    the boundary of their connected group of removed pixels (see the module notes).

    Args:
        labels: ``(H, W)`` uint8 label map.
        radius: Structuring-element radius (0: nothing changes).
        shape: ``"square"``, ``"cross"`` or ``"disk"``.
        classes: Only these class ids are opened (default: every label present).
        fill: Label for removed pixels, or ``None`` to take the surrounding majority.
        connectivity: 4 or 8, used to group removed pixels when ``fill`` is ``None``.

    Returns:
        ``(H, W)`` uint8, a new array.

    Example:
        >>> labels = np.zeros((5, 7), np.uint8); labels[1:4, 1:4] = 3; labels[2, 4] = 3
        >>> opening(labels, 1, classes=[3], fill=9)
        array([[0, 0, 0, 0, 0, 0, 0],
               [0, 3, 3, 3, 0, 0, 0],
               [0, 3, 3, 3, 9, 0, 0],
               [0, 3, 3, 3, 0, 0, 0],
               [0, 0, 0, 0, 0, 0, 0]], dtype=uint8)
        >>> opening(labels, 1)[2, 4].item()
        0
    """
    labels = _check_labels(labels)
    _check_shape(shape, radius)
    _check_connectivity(connectivity)
    allowed = _class_table(classes)
    if fill is not None and not 0 <= fill <= 255:
        raise ConfigError(f"fill must be a label id in 0..255 or None (got {fill})")
    if radius == 0:
        return _copy(labels)
    widths = _half_widths(shape, radius)
    # The element is symmetric, so a pixel lies in the opening of its own class's mask exactly
    # when some placement of the element covering it fits inside one class: the dilation of the
    # pixels whose element is uniform. No per-class masks are needed at all.
    kept = _reduce_element(_uniform_interior(labels, widths), widths, np.logical_or)
    removed = ~kept
    if classes is not None:
        removed &= allowed[labels]
    out = _copy(labels)
    if not removed.any():
        return out
    if fill is not None:
        np.copyto(out, np.uint8(fill), where=removed)
        return out
    return fill_regions(labels, removed, connectivity=connectivity)


def closing(
    labels: LabelMap,
    radius: int = 1,
    *,
    shape: Shape = "square",
    classes: Iterable[int] | None = None,
) -> LabelMap:
    """Per-class binary closing of a label map, all classes at once.

    Every class ``c`` (of ``classes``) claims the pixels that its mask's closing (dilation, then
    erosion) adds: gaps and notches narrower than the structuring element. A pixel claimed by
    several classes goes to the smallest class id; unclaimed pixels keep their label.

    Args:
        labels: ``(H, W)`` uint8 label map.
        radius: Structuring-element radius (0: nothing changes).
        shape: ``"square"``, ``"cross"`` or ``"disk"``.
        classes: Only these class ids claim pixels (default: every label present); any pixel
            may be claimed.

    Returns:
        ``(H, W)`` uint8, a new array.

    Example:
        >>> labels = np.full((4, 5), 2, np.uint8); labels[:, 2] = 5
        >>> closing(labels, 1, classes=[2])[0].tolist()
        [2, 2, 2, 2, 2]
        >>> closing(labels, 1, classes=[5])[0].tolist()
        [2, 2, 5, 2, 2]
    """
    labels = _check_labels(labels)
    _check_shape(shape, radius)
    allowed = _class_table(classes)
    out = _copy(labels)
    if radius == 0:
        return out
    widths = _half_widths(shape, radius)
    present = _present(labels)
    settled = np.zeros(labels.shape, dtype=bool)
    for index, word in enumerate(_onehot_words(labels, present)):
        chunk = present[64 * index : 64 * index + 64]
        claimers = word.dtype.type(sum(1 << k for k, c in enumerate(chunk) if allowed[c]))
        if not claimers:
            continue
        dilated = _reduce_element(word, widths, np.bitwise_or)
        closed = _reduce_element(dilated, widths, np.bitwise_and)
        claims = closed & ~word & claimers
        # Lower words hold lower ids, so the first word that claims a pixel holds its winner.
        pixels = np.flatnonzero((claims != 0) & ~settled)
        if pixels.size:
            winners = chunk[_lowest_bit(claims.reshape(-1)[pixels])]
            out.reshape(-1)[pixels] = winners
            settled.reshape(-1)[pixels] = True
    return out


# -- majority filter -------------------------------------------------------------------------------


def _own_label_counts(
    labels: LabelMap, radius: int, dtype: type[np.unsignedinteger[Any]]
) -> NDArray[np.unsignedinteger[Any]]:
    """How many pixels of each pixel's ``(2r+1)^2`` window (clipped) share its label.

    One comparison per pair of opposite offsets: ``p`` and ``p + d`` either match or not, which
    counts for both of them.
    """
    height, width = labels.shape
    own = np.ones(labels.shape, dtype=dtype)
    for dy in range(min(radius, height - 1) + 1):
        for dx in range(-min(radius, width - 1), min(radius, width - 1) + 1):
            if dy == 0 and dx <= 0:
                continue
            first = (slice(0, height - dy), slice(max(0, -dx), width - max(0, dx)))
            second = (slice(dy, height), slice(max(0, dx), width - max(0, -dx)))
            same = (labels[first] == labels[second]).view(np.uint8)
            np.add(own[first], same, out=own[first])
            np.add(own[second], same, out=own[second])
    return own


def majority_filter(labels: LabelMap, size: int = 3) -> LabelMap:
    """Mode filter: each pixel takes the most frequent label in its ``size x size`` window.

    The window is clipped to the image (outside pixels do not vote). Ties: the pixel keeps its
    own label if it is among the most frequent, else the smallest tied id.

    Args:
        labels: ``(H, W)`` uint8 label map.
        size: Odd window side ``>= 1`` (1: nothing changes).

    Returns:
        ``(H, W)`` uint8, a new array.

    Example:
        >>> labels = np.array([[1, 1, 2], [1, 2, 2], [3, 3, 2]], np.uint8)
        >>> majority_filter(labels, 3)
        array([[1, 1, 2],
               [1, 2, 2],
               [3, 2, 2]], dtype=uint8)
    """
    labels = _check_labels(labels)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ConfigError(f"majority window size must be an odd integer >= 1 (got {size!r})")
    if size % 2 == 0:
        raise ConfigError(f"majority window size must be odd (got {size})")
    out = _copy(labels)
    if size == 1:
        return out
    height, width = labels.shape
    radius = size // 2
    # Count the pixel's own label in its window; a strict majority is the mode, so only the
    # few remaining pixels (speckles, corners, junctions) need full per-class counts.
    count_dtype = np.uint8 if size * size < 256 else np.uint16
    own = _own_label_counts(labels, radius, count_dtype)
    rows_in = np.minimum(np.arange(height), radius) + np.minimum(np.arange(height)[::-1], radius)
    cols_in = np.minimum(np.arange(width), radius) + np.minimum(np.arange(width)[::-1], radius)
    half_window = np.multiply.outer(
        (rows_in + 1).astype(count_dtype), (cols_in + 1).astype(count_dtype)
    )
    half_window >>= 1
    pixels = np.flatnonzero(own <= half_window)
    if pixels.size == 0:
        return out
    # Window labels of those pixels, from a copy framed by 256 (outside: a label of its own).
    framed_width = width + 2 * radius
    frame = np.full((height + 2 * radius, framed_width), 256, dtype=np.uint16)
    frame[radius : radius + height, radius : radius + width] = labels
    py, px = np.divmod(pixels, width)
    row, col = np.divmod(np.arange(size * size), size)
    window = frame.reshape(-1)[
        ((py + radius) * framed_width + px + radius)[:, None]
        + (row - radius) * framed_width
        + (col - radius)
    ]
    present = np.flatnonzero(np.bincount(window.reshape(-1), minlength=257)[:256])
    classes = len(present)
    index_of = np.full(257, classes, dtype=np.intp)  # outside: a last bin, dropped below
    index_of[present] = np.arange(classes)
    votes = index_of[window]
    rows = np.arange(len(pixels))[:, None] * (classes + 1)
    counts = np.bincount((rows + votes).reshape(-1), minlength=len(pixels) * (classes + 1))
    counts = counts.reshape(len(pixels), classes + 1)[:, :classes]
    own_index = index_of[labels.reshape(-1)[pixels]]
    best = counts.max(axis=1)
    keep = counts[np.arange(len(pixels)), own_index] == best
    winner = np.where(keep, own_index, counts.argmax(axis=1))  # argmax: first = smallest id
    out.reshape(-1)[pixels] = present[winner]
    return out


# -- connected components on row runs -------------------------------------------------------------


@attrs.frozen(eq=False)
class _Components:
    """Connected regions of equal value, as row runs.

    Attributes:
        shape: ``(H, W)`` of the image.
        starts: Flat index of each run's first pixel, ascending.
        lengths: Pixels per run.
        values: Value of each run.
        root: Per run, the index of the first run of its region (so regions are ordered by
            their first pixel in raster order).
    """

    shape: tuple[int, int]
    starts: NDArray[np.intp]
    lengths: NDArray[np.intp]
    values: NDArray[Any]
    root: NDArray[np.intp]

    def region_map(self) -> NDArray[np.int32]:
        """``(H * W,)`` root run of every pixel (built on demand: labelling does not need it)."""
        region: NDArray[np.int32] = np.repeat(self.root.astype(np.int32), self.lengths)
        return region

    def region_sizes(self) -> NDArray[np.intp]:
        """Pixels per region, indexed by root run (0 for runs that are not roots)."""
        return np.bincount(self.root, weights=self.lengths, minlength=len(self.root)).astype(
            np.intp
        )

    def pixels_of(self, runs: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Flat indices of the pixels of ``runs``, and the run each belongs to."""
        lengths = self.lengths[runs]
        owner = np.repeat(runs, lengths)
        first = np.cumsum(lengths) - lengths
        offset = np.arange(int(lengths.sum())) - np.repeat(first, lengths)
        return self.starts[owner] + offset, owner


def _union_find(count: int, a: NDArray[np.intp], b: NDArray[np.intp]) -> NDArray[np.intp]:
    """Root (smallest member) of each of ``count`` nodes joined by edges ``a[i] < b[i]``."""
    parent = np.arange(count, dtype=np.intp)
    # First round: every node is its own root and a < b, so hook b under a directly.
    ra, rb = a, b
    while a.size:
        # Hook the larger root under the smaller; pointers only go down, so no cycles form.
        np.minimum.at(parent, rb, ra)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
        ra, rb = parent[a], parent[b]
        differ = ra != rb
        a, b = a[differ], b[differ]
        ra, rb = np.minimum(ra[differ], rb[differ]), np.maximum(ra[differ], rb[differ])
    return parent


def _components(values: NDArray[Any], connectivity: int) -> _Components:
    height, width = values.shape
    flat = values.reshape(-1)
    change = np.empty(flat.size, dtype=bool)
    change[0] = True
    np.not_equal(flat[1:], flat[:-1], out=change[1:])
    change[::width] = True
    starts = np.flatnonzero(change)
    lengths = np.empty_like(starts)  # np.diff(starts, append=size) without the concatenation
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1] = flat.size - starts[-1]
    run_values = flat[starts]
    # Runs in rows y and y+1 touch iff two of their pixels are neighbours, and every such
    # contact shows at a column where a run of either row starts: check those columns only.
    # Those columns, as flat indices in row y+1: merge the (sorted) starts after row 0 with the
    # starts before the last row moved down a row; a stable sort merges the two sorted halves
    # in linear time, much cheaper than a scan of the whole image.
    first_row_runs = int(np.searchsorted(starts, width))
    below = np.concatenate(
        [starts[first_row_runs:], starts[: np.searchsorted(starts, flat.size - width)] + width]
    )
    below.sort(kind="stable")
    distinct = np.empty(len(below), dtype=bool)
    distinct[:1] = True
    np.not_equal(below[1:], below[:-1], out=distinct[1:])
    below = below[distinct]
    above = below - width
    # The run of pixel p is (run starts <= p) - 1. Every start after row 0 is in `below` and
    # every start before the last row is in `above`, so running counts over these few columns
    # give the runs there, without a per-pixel run map.
    starts_here = change[below]
    starts_above = change[above]
    run_here = np.cumsum(starts_here, dtype=np.intp)
    run_here += first_row_runs - 1
    run_above = np.cumsum(starts_above, dtype=np.intp)
    run_above -= 1
    vertical = flat[below] == flat[above]
    pairs_a, pairs_b = [run_above[vertical]], [run_here[vertical]]
    if connectivity == 8:
        # The run of p - 1 is p's run, less one where p starts a run (same for p - width - 1).
        # Skip column 0, which has no left neighbour: every row's first pixel starts a run, so
        # they are all in `below`, found by a few searches instead of a modulo of every column.
        inner_mask = np.ones(len(below), dtype=bool)
        inner_mask[np.searchsorted(below, np.arange(width, flat.size, width))] = False
        inner = np.flatnonzero(inner_mask)
        here, up = below[inner], above[inner]
        falling = inner[flat[up - 1] == flat[here]]  # (y, x-1) -- (y+1, x)
        rising = inner[flat[up] == flat[here - 1]]  # (y, x) -- (y+1, x-1)
        pairs_a += [run_above[falling] - starts_above[falling], run_above[rising]]
        pairs_b += [run_here[falling], run_here[rising] - starts_here[rising]]
    root = _union_find(len(starts), np.concatenate(pairs_a), np.concatenate(pairs_b))
    return _Components((height, width), starts, lengths, run_values, root)


def _neighbour_offsets(connectivity: int) -> list[tuple[int, int]]:
    if connectivity == 4:
        return [(-1, 0), (0, -1), (0, 1), (1, 0)]
    return [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def _distinct_pairs(
    owner: NDArray[np.intp], voter: NDArray[np.intp], size: int
) -> NDArray[np.intp]:
    """Indices of one of each distinct ``(owner, voter)`` pair; voters are pixels ``< size``.

    No sort: each round scatters the pending pairs' indices into a per-pixel stamp, so one
    pending pair per voter pixel is kept as representative, and the pairs equal to their voter's
    representative are dropped as duplicates. Pairs of the same voter with another owner (a
    pixel between two regions) go to the next round; there are few.
    """
    stamp = np.empty(size, dtype=np.intp)  # only read where this round wrote
    kept = [np.empty(0, dtype=np.intp)]
    pending = np.arange(len(voter))
    while pending.size:
        pixel = voter[pending]
        stamp[pixel] = pending
        representative = stamp[pixel]
        kept.append(representative[representative == pending])
        pending = pending[owner[representative] != owner[pending]]
    return np.concatenate(kept)


def _relabel_from_boundary(
    out: LabelMap,
    labels: LabelMap,
    components: _Components,
    runs: NDArray[np.intp],
    primary: NDArray[np.bool_] | None,
    connectivity: int,
) -> None:
    """Give each region of ``runs`` the majority label of its boundary, in ``out``.

    Args:
        out: Written at the pixels of the relabelled regions.
        labels: The label map whose labels vote.
        components: The regions; ``runs`` must hold every run of each region to relabel.
        runs: Runs of the regions to relabel.
        primary: Per root run, whether its pixels are preferred voters: a region votes with its
            primary boundary pixels if it has any, else with all of them. ``None``: all are.
        connectivity: 4 or 8.

    A region with no boundary keeps its labels.
    """
    height, width = components.shape
    # Regions of one pixel (most specks) first: their boundary pixels are all distinct, so only
    # the votes after theirs need the duplicate check.
    alone = components.region_sizes()[components.root[runs]] == 1
    runs = np.concatenate([runs[alone], runs[~alone]])
    lone_pixels = int(np.count_nonzero(alone))
    pixels, owner_run = components.pixels_of(runs)
    region = components.root[owner_run]
    # The regions to relabel, numbered 0..count-1, so votes fit a small (region, label) table.
    targets = np.zeros(len(components.root), dtype=bool)
    targets[region] = True
    number = np.cumsum(targets) - 1
    count = int(number[-1]) + 1
    # Neighbours of every pixel, (P, K); an offset leaving the image points back at the pixel
    # itself, which is then dropped with the neighbours of the same region.
    dy, dx = np.array(_neighbour_offsets(connectivity)).T
    column = pixels % width
    fits_x = np.stack([column > 0, np.ones(len(pixels), dtype=bool), column < width - 1], axis=1)
    fits_y = np.stack(
        [pixels >= width, np.ones(len(pixels), dtype=bool), pixels < (height - 1) * width], axis=1
    )
    inside = fits_x[:, dx + 1] & fits_y[:, dy + 1]
    voter = np.where(inside, pixels[:, None] + (dy * width + dx), pixels[:, None])
    voter_region = components.region_map()[voter]
    outside = voter_region != region[:, None]
    voter, voter_region = voter[outside], voter_region[outside]
    owner = np.broadcast_to(number[region][:, None], outside.shape)[outside]
    if voter.size == 0:
        return
    # Each boundary pixel votes once per region.
    lone = int(np.count_nonzero(outside[:lone_pixels]))
    distinct = lone + _distinct_pairs(owner[lone:], voter[lone:], labels.size)
    distinct = np.concatenate([np.arange(lone), distinct])
    owner, voter, voter_region = owner[distinct], voter[distinct], voter_region[distinct]
    # Votes per (region, label) over the labels present among voters, ascending, so that the
    # first maximum (argmax) is the most voted label with ties to the smallest id.
    vote = labels.reshape(-1)[voter]
    present = np.flatnonzero(np.bincount(vote, minlength=256))
    index_of = np.zeros(256, dtype=np.intp)
    index_of[present] = np.arange(len(present))
    key = owner * len(present) + index_of[vote]
    if primary is not None:
        # Regions with a primary voter use only those.
        is_primary = primary[voter_region]
        has_primary = np.zeros(count, dtype=bool)
        has_primary[owner[is_primary]] = True
        key = key[is_primary | ~has_primary[owner]]
    table = np.bincount(key, minlength=count * len(present)).reshape(count, len(present))
    winner = present[table.argmax(axis=1)].astype(np.uint8)
    target = number[region]
    voted: NDArray[np.bool_] = np.any(table, axis=1)
    if not voted.all():  # regions without a boundary keep their labels
        keep = voted[target]
        pixels, target = pixels[keep], target[keep]
    out.reshape(-1)[pixels] = winner[target]


def label_regions(labels: LabelMap, connectivity: int = 8) -> tuple[NDArray[np.int32], int]:
    """Connected regions of equal label, every class at once.

    Args:
        labels: ``(H, W)`` uint8 label map.
        connectivity: 4 or 8.

    Returns:
        ``(regions, count)``: ``(H, W)`` int32 region ids ``1..count``, numbered in raster order
        of each region's first pixel (as ``scipy.ndimage.label`` numbers one mask).

    Example:
        >>> labels = np.array([[1, 2, 1], [1, 2, 2], [2, 1, 1]], np.uint8)
        >>> regions, count = label_regions(labels, 4)
        >>> regions.tolist(), count
        ([[1, 2, 3], [1, 2, 2], [4, 5, 5]], 5)
        >>> label_regions(labels, 8)[0].tolist()
        [[1, 2, 3], [1, 2, 2], [2, 1, 1]]
    """
    labels = _check_labels(labels)
    _check_connectivity(connectivity)
    components = _components(labels, connectivity)
    is_root = components.root == np.arange(len(components.root))
    number = np.cumsum(is_root, dtype=np.int32)  # roots are numbered 1.. in run order
    regions = np.repeat(number[components.root], components.lengths).reshape(labels.shape)
    return regions, int(number[-1])


def remove_small_regions(
    labels: LabelMap,
    min_size: int,
    *,
    connectivity: int = 8,
    classes: Iterable[int] | None = None,
) -> LabelMap:
    """Reassign connected regions smaller than ``min_size`` pixels to their surroundings.

    Each small region (of ``classes``) takes the majority label of its boundary (ties: smallest
    id). Only pixels of regions that stay (not small, or not of ``classes``) vote, unless a
    region's boundary holds none of them: then all its boundary pixels vote with their current
    labels. All regions are decided on the input, simultaneously; a region with no boundary
    (it is the whole image) is kept.

    Args:
        labels: ``(H, W)`` uint8 label map.
        min_size: Regions with fewer pixels are reassigned (``<= 1``: nothing changes).
        connectivity: 4 or 8, for regions and their boundaries.
        classes: Only regions of these ids are reassigned (default: all).

    Returns:
        ``(H, W)`` uint8, a new array.

    Example:
        >>> labels = np.array([[1, 1, 1, 4], [1, 5, 1, 4], [1, 1, 4, 4]], np.uint8)
        >>> remove_small_regions(labels, 2).tolist()
        [[1, 1, 1, 4], [1, 1, 1, 4], [1, 1, 4, 4]]
        >>> remove_small_regions(labels, 2, classes=[4]).tolist() == labels.tolist()
        True
    """
    labels = _check_labels(labels)
    _check_connectivity(connectivity)
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 0:
        raise ConfigError(f"min_size must be an integer >= 0 (got {min_size!r})")
    allowed = _class_table(classes)
    out = _copy(labels)
    if min_size <= 1:
        return out
    components = _components(labels, connectivity)
    sizes = components.region_sizes()
    small_run = (sizes[components.root] < min_size) & allowed[components.values]
    runs = np.flatnonzero(small_run)
    if runs.size == 0:
        return out
    stays = ~small_run  # indexed by root run, where small_run of a root is its region's verdict
    _relabel_from_boundary(out, labels, components, runs, stays, connectivity)
    return out


def fill_regions(labels: LabelMap, mask: NDArray[np.bool_], *, connectivity: int = 8) -> LabelMap:
    """Relabel each connected group of ``mask`` pixels with the majority of its boundary.

    The boundary holds the pixels outside ``mask`` next to the group; ties go to the smallest
    id; a group with no boundary (``mask`` covers the image) keeps its labels.

    Args:
        labels: ``(H, W)`` uint8 label map.
        mask: ``(H, W)`` bool, the pixels to relabel.
        connectivity: 4 or 8, for groups and boundaries.

    Returns:
        ``(H, W)`` uint8, a new array.

    Example:
        >>> labels = np.array([[1, 1, 2], [1, 9, 2], [1, 9, 2]], np.uint8)
        >>> fill_regions(labels, labels == 9).tolist()
        [[1, 1, 2], [1, 1, 2], [1, 1, 2]]
    """
    labels = _check_labels(labels)
    _check_connectivity(connectivity)
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != labels.shape:
        raise InvalidImageError(
            f"mask must be bool of the labels' shape {labels.shape} "
            f"(got {mask.shape}, {mask.dtype})"
        )
    out = _copy(labels)
    if not mask.any():
        return out
    components = _components(mask, connectivity)
    runs = np.flatnonzero(components.values)
    _relabel_from_boundary(out, labels, components, runs, None, connectivity)
    return out


# -- a cleanup pipeline ----------------------------------------------------------------------------


def _non_negative_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    del instance
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{attribute.name} must be an integer >= 0 (got {value!r})")


def _check_majority(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _non_negative_int(instance, attribute, value)
    assert isinstance(value, int)
    if value > 1 and value % 2 == 0:
        raise ConfigError(f"majority must be 0 (off) or an odd window size (got {value})")


def _to_classes(value: object) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(f"classes must be a list of label ids or null (got {value!r})")
    items = list(value)
    if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in items):
        raise ConfigError(f"classes must be integers (got {items!r})")
    ids = tuple(sorted({int(c) for c in items}))
    _class_table(ids)
    return ids


def _check_shape_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    del instance, attribute
    if value not in SHAPES:
        raise ConfigError(f"shape must be one of {', '.join(SHAPES)} (got {value!r})")


def _check_connectivity_field(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    del instance, attribute
    if isinstance(value, bool) or value not in (4, 8):
        raise ConfigError(f"connectivity must be 4 or 8 (got {value!r})")


@attrs.frozen
class CleanupConfig:
    """A label-map cleanup pipeline; every step is off by default.

    Steps run in this order: :func:`opening`, :func:`closing` (radius, ``shape``; removed
    pixels take the surrounding majority), :func:`remove_small_regions` (``min_region``,
    ``connectivity``), :func:`majority_filter` (window ``majority``). ``classes`` limits the
    first three steps to those ids; the majority filter applies to all.

    Attributes:
        opening: Opening radius, 0 = off.
        closing: Closing radius, 0 = off.
        shape: Structuring element for opening and closing.
        min_region: Regions smaller than this many pixels are reassigned, 0 = off.
        connectivity: 4 or 8, for regions.
        majority: Odd majority-filter window, 0 = off.
        classes: Class ids the morphology and region removal may change (``None``: all).

    Example:
        >>> config = CleanupConfig.from_dict({"min_region": 50, "majority": 3})
        >>> config.to_dict()["min_region"], config.enabled
        (50, True)
        >>> CleanupConfig.from_dict(config.to_dict()) == config
        True
    """

    opening: int = attrs.field(default=0, validator=_non_negative_int)
    closing: int = attrs.field(default=0, validator=_non_negative_int)
    shape: Shape = attrs.field(default="square", validator=_check_shape_name)
    min_region: int = attrs.field(default=0, validator=_non_negative_int)
    connectivity: int = attrs.field(default=8, validator=_check_connectivity_field)
    majority: int = attrs.field(default=0, validator=_check_majority)
    classes: tuple[int, ...] | None = attrs.field(default=None, converter=_to_classes)

    @property
    def enabled(self) -> bool:
        """Whether any step would run."""
        return bool(self.opening or self.closing or self.min_region > 1 or self.majority > 1)

    def apply(self, labels: LabelMap) -> LabelMap:
        """Run the pipeline on an ``(H, W)`` uint8 label map; returns a new array."""
        out = _copy(_check_labels(labels))
        if self.opening:
            out = opening(
                out,
                self.opening,
                shape=self.shape,
                classes=self.classes,
                connectivity=self.connectivity,
            )
        if self.closing:
            out = closing(out, self.closing, shape=self.shape, classes=self.classes)
        if self.min_region > 1:
            out = remove_small_regions(
                out, self.min_region, connectivity=self.connectivity, classes=self.classes
            )
        if self.majority > 1:
            out = majority_filter(out, self.majority)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``classes`` as a list or ``None``)."""
        data = attrs.asdict(self)
        data["classes"] = None if self.classes is None else list(self.classes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CleanupConfig:
        """Build from :meth:`to_dict` output; unknown keys are a :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a cleanup config must be a mapping (got {type(data).__name__})")
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown cleanup option(s) {', '.join(map(repr, unknown))}; "
                f"expected some of {', '.join(sorted(known))}"
            )
        return cls(**{key: cast(Any, value) for key, value in data.items()})
