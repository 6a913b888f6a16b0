"""camvidseg.cleanup against scipy.ndimage applied class by class: identical output, speed ratio.

The input is a 720x960 CamVid-like label map (a synthetic street scene with ~14 classes, 0.5 %
speckle noise and a few hundred small blobs, like a raw model output). For each operation the
scipy version loops over the classes present (the usual way to do per-class morphology with
binary tools), its output must equal camvidseg's exactly, and the ratio of the best-of-N times is
printed. Target: camvidseg >= 20x faster.

    python benchmarks/cleanup.py [--repeats 15]      (needs scipy, a dev dependency)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from camvidseg.cleanup import (
    closing,
    label_regions,
    majority_filter,
    opening,
    remove_small_regions,
    structuring_element,
)
from camvidseg.palette import CamVidPalette
from camvidseg.testing import street_scene

# Run as `python benchmarks/cleanup.py`, sys.path[0] is benchmarks/: make the package importable.
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import MinimumRow as Row
from benchmarks._common import print_minimum_rows

Labels = NDArray[np.uint8]
TARGET = 20.0


FILL = 255


def camvid_like_labels(height: int = 720, width: int = 960, seed: int = 3) -> Labels:
    """A street scene's labels plus speckles and small blobs of other classes."""
    _, labels = street_scene(height, width, seed=seed)
    rng = np.random.default_rng(seed)
    palette = CamVidPalette.camvid32()
    extra = [palette.id_of(name) for name in ("Bicyclist", "TrafficLight", "Misc_Text")]
    classes = np.union1d(np.unique(labels), extra)
    noisy: Labels = labels.copy()
    speckles = rng.random(labels.shape) < 0.005
    noisy[speckles] = rng.choice(classes, int(speckles.sum()))
    for _ in range(400):
        y, x = int(rng.integers(0, height - 6)), int(rng.integers(0, width - 6))
        h, w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        noisy[y : y + h, x : x + w] = rng.choice(classes)
    return noisy


# -- scipy, one class at a time --------------------------------------------------------------------


def scipy_opening(labels: Labels, element: NDArray[np.bool_]) -> Labels:
    out: Labels = labels.copy()
    for c in np.unique(labels):
        mask = labels == c
        eroded = ndi.binary_erosion(mask, element, border_value=1)
        out[mask & ~ndi.binary_dilation(eroded, element, border_value=0)] = FILL
    return out


def scipy_closing(labels: Labels, element: NDArray[np.bool_]) -> Labels:
    out: Labels = labels.copy()
    claimed = np.zeros(labels.shape, bool)
    for c in np.unique(labels):  # ascending: the smallest claiming id wins
        mask = labels == c
        dilated = ndi.binary_dilation(mask, element, border_value=0)
        claims = ndi.binary_erosion(dilated, element, border_value=1) & ~mask & ~claimed
        out[claims] = c
        claimed |= claims
    return out


def scipy_majority(labels: Labels, size: int) -> Labels:
    present = np.unique(labels)
    counts = np.stack(
        [
            np.rint(
                ndi.uniform_filter((labels == c).astype(np.float32), size, mode="constant")
                * (size * size)
            ).astype(np.int16)
            for c in present
        ]
    )
    own = np.take_along_axis(counts, np.searchsorted(present, labels)[None], axis=0)[0]
    best = counts.max(axis=0)
    out: Labels = np.where(own == best, labels, present[counts.argmax(axis=0)]).astype(np.uint8)
    return out


def scipy_regions(labels: Labels, connectivity: int) -> tuple[NDArray[np.int64], int]:
    structure = ndi.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    regions = np.zeros(labels.shape, np.int64)
    count = 0
    for c in np.unique(labels):
        mask = labels == c
        ids, n = ndi.label(mask, structure)
        regions[mask] = ids[mask] + count
        count += n
    return regions, count


def _offsets(connectivity: int) -> list[tuple[int, int]]:
    if connectivity == 4:
        return [(-1, 0), (0, -1), (0, 1), (1, 0)]
    return [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def scipy_remove_small(labels: Labels, min_size: int, connectivity: int) -> Labels:
    """scipy.ndimage.label per class, then the same boundary vote in plain numpy."""
    regions, count = scipy_regions(labels, connectivity)
    small_region = np.bincount(regions.reshape(-1), minlength=count + 1) < min_size
    height, width = labels.shape
    pixels = np.flatnonzero(small_region[regions])
    py, px = np.divmod(pixels, width)
    flat_regions = regions.reshape(-1)
    owners, voters = [], []
    for dy, dx in _offsets(connectivity):
        ok = (py + dy >= 0) & (py + dy < height) & (px + dx >= 0) & (px + dx < width)
        q = pixels[ok] + dy * width + dx
        own = flat_regions[pixels[ok]]
        other = flat_regions[q] != own
        owners.append(own[other])
        voters.append(q[other])
    pair = np.unique(np.concatenate(owners) * labels.size + np.concatenate(voters))
    owner, voter = np.divmod(pair, labels.size)
    primary = ~small_region[flat_regions[voter]]
    has_primary = np.zeros(count + 1, bool)
    has_primary[owner[primary]] = True
    use = primary | ~has_primary[owner]
    keys, votes = np.unique(owner[use] * 256 + labels.reshape(-1)[voter[use]], return_counts=True)
    key_owner, key_label = np.divmod(keys, 256)
    order = np.lexsort((key_label, -votes, key_owner))
    first = np.ones(len(order), bool)
    first[1:] = key_owner[order][1:] != key_owner[order][:-1]
    winner = np.full(count + 1, -1, np.int64)
    winner[key_owner[order][first]] = key_label[order][first]
    out: Labels = labels.copy()
    new = winner[flat_regions[pixels]]
    out.reshape(-1)[pixels[new >= 0]] = new[new >= 0]
    return out


def same_partition(a: NDArray[Any], b: NDArray[Any]) -> bool:
    """Whether two region maps group the pixels identically (ids may differ)."""
    pairs = np.unique(np.stack([a.reshape(-1), b.reshape(-1)]), axis=1)
    return bool(pairs.shape[1] == len(np.unique(a)) == len(np.unique(b)))


# -- timing ----------------------------------------------------------------------------------------


def best_time(function: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Check identical outputs, print a table, return ``[{"name", "value", "target"}, ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=15, help="best of N for camvidseg")
    args = parser.parse_args(argv)
    labels = camvid_like_labels()
    square, disk = structuring_element("square", 1), structuring_element("disk", 2)
    regions, _ = label_regions(labels, 8)
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any], Callable[[], bool]]] = [
        (
            "opening_square_r1",
            lambda: opening(labels, 1, fill=FILL),
            lambda: scipy_opening(labels, square),
            lambda: bool(
                np.array_equal(opening(labels, 1, fill=FILL), scipy_opening(labels, square))
            ),
        ),
        (
            "opening_disk_r2",
            lambda: opening(labels, 2, shape="disk", fill=FILL),
            lambda: scipy_opening(labels, disk),
            lambda: bool(
                np.array_equal(
                    opening(labels, 2, shape="disk", fill=FILL), scipy_opening(labels, disk)
                )
            ),
        ),
        (
            "closing_square_r1",
            lambda: closing(labels, 1),
            lambda: scipy_closing(labels, square),
            lambda: bool(np.array_equal(closing(labels, 1), scipy_closing(labels, square))),
        ),
        (
            "majority_3x3",
            lambda: majority_filter(labels, 3),
            lambda: scipy_majority(labels, 3),
            lambda: bool(np.array_equal(majority_filter(labels, 3), scipy_majority(labels, 3))),
        ),
        (
            "majority_5x5",
            lambda: majority_filter(labels, 5),
            lambda: scipy_majority(labels, 5),
            lambda: bool(np.array_equal(majority_filter(labels, 5), scipy_majority(labels, 5))),
        ),
        (
            "label_regions_8conn",
            lambda: label_regions(labels, 8),
            lambda: scipy_regions(labels, 8),
            lambda: same_partition(regions, scipy_regions(labels, 8)[0]),
        ),
        (
            "remove_regions_under_20px",
            lambda: remove_small_regions(labels, 20),
            lambda: scipy_remove_small(labels, 20, 8),
            lambda: bool(
                np.array_equal(remove_small_regions(labels, 20), scipy_remove_small(labels, 20, 8))
            ),
        ),
    ]
    print(
        f"cleanup on a {labels.shape[1]}x{labels.shape[0]} label map, "
        f"{len(np.unique(labels))} classes, {int(regions.max())} regions (8-connected); "
        f"scipy.ndimage one class at a time; outputs identical"
    )
    rows: list[Row] = []
    for name, ours, theirs, identical in cases:
        if not identical():
            raise SystemExit(f"{name}: camvidseg and scipy outputs differ: benchmark aborted")
        ours_s = best_time(ours, args.repeats)
        theirs_s = best_time(theirs, max(3, args.repeats // 3))
        rows.append({"name": f"cleanup_{name}_ms", "value": round(ours_s * 1e3, 2), "target": None})
        rows.append(
            {
                "name": f"cleanup_{name}_speedup_vs_scipy_per_class",
                "value": round(theirs_s / ours_s, 1),
                "target": TARGET,
            }
        )
    print_minimum_rows(rows)
    return rows


if __name__ == "__main__":
    main()
