"""Connected regions of label maps, found on row runs with a vectorised union-find:
:func:`label_regions`, :func:`remove_small_regions`, :func:`fill_regions`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import LabelMap
from camvidseg.cleanup.checks import check_connectivity, check_labels, class_table, copy_labels
from camvidseg.exceptions import ConfigError, InvalidImageError

__all__ = ["fill_regions", "label_regions", "remove_small_regions"]

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
    labels = check_labels(labels)
    check_connectivity(connectivity)
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
    labels = check_labels(labels)
    check_connectivity(connectivity)
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 0:
        raise ConfigError(f"min_size must be an integer >= 0 (got {min_size!r})")
    allowed = class_table(classes)
    out = copy_labels(labels)
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
    labels = check_labels(labels)
    check_connectivity(connectivity)
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != labels.shape:
        raise InvalidImageError(
            f"mask must be bool of the labels' shape {labels.shape} "
            f"(got {mask.shape}, {mask.dtype})"
        )
    out = copy_labels(labels)
    if not mask.any():
        return out
    components = _components(mask, connectivity)
    runs = np.flatnonzero(components.values)
    _relabel_from_boundary(out, labels, components, runs, None, connectivity)
    return out
