"""Opening, closing and the majority filter of label maps, all classes in one pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from camvidseg._types import LabelMap
from camvidseg.cleanup.checks import check_connectivity, check_labels, class_table, copy_labels
from camvidseg.cleanup.footprints import (
    Shape,
    check_shape,
    half_widths,
    lowest_bit,
    onehot_words,
    present_classes,
    reduce_element,
    uniform_interior,
)
from camvidseg.cleanup.regions import fill_regions
from camvidseg.exceptions import ConfigError

__all__ = ["closing", "majority_filter", "opening"]

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
    labels = check_labels(labels)
    check_shape(shape, radius)
    check_connectivity(connectivity)
    allowed = class_table(classes)
    if fill is not None and not 0 <= fill <= 255:
        raise ConfigError(f"fill must be a label id in 0..255 or None (got {fill})")
    if radius == 0:
        return copy_labels(labels)
    widths = half_widths(shape, radius)
    # The element is symmetric, so a pixel lies in the opening of its own class's mask exactly
    # when some placement of the element covering it fits inside one class: the dilation of the
    # pixels whose element is uniform. No per-class masks are needed at all.
    kept = reduce_element(uniform_interior(labels, widths), widths, np.logical_or)
    removed = ~kept
    if classes is not None:
        removed &= allowed[labels]
    out = copy_labels(labels)
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
    labels = check_labels(labels)
    check_shape(shape, radius)
    allowed = class_table(classes)
    out = copy_labels(labels)
    if radius == 0:
        return out
    widths = half_widths(shape, radius)
    present = present_classes(labels)
    settled = np.zeros(labels.shape, dtype=bool)
    for index, word in enumerate(onehot_words(labels, present)):
        chunk = present[64 * index : 64 * index + 64]
        claimers = word.dtype.type(sum(1 << k for k, c in enumerate(chunk) if allowed[c]))
        if not claimers:
            continue
        dilated = reduce_element(word, widths, np.bitwise_or)
        closed = reduce_element(dilated, widths, np.bitwise_and)
        claims = closed & ~word & claimers
        # Lower words hold lower ids, so the first word that claims a pixel holds its winner.
        pixels = np.flatnonzero((claims != 0) & ~settled)
        if pixels.size:
            winners = chunk[lowest_bit(claims.reshape(-1)[pixels])]
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
    labels = check_labels(labels)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ConfigError(f"majority window size must be an odd integer >= 1 (got {size!r})")
    if size % 2 == 0:
        raise ConfigError(f"majority window size must be odd (got {size})")
    out = copy_labels(labels)
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
