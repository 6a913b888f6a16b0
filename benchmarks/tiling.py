"""Tiled segmentation: peak memory on an 8000x8000 image, and the cost of tiling.

1. An 8000x8000 street scene is segmented with the fake model (camvidseg's NearestColorBackend,
   same output shapes as HRNet: 33 channels) under the default settings, which tile it
   automatically (it is over ``max_pixels``). Peak memory is measured with tracemalloc (numpy
   reports its buffers to it) from after the image is built; the target is ~2 GB, against 8.4 GB
   for the whole ``(H, W, 33)`` float32 score array alone. The labels must equal the scene's.
2. Time of a 1440x1920 image tiled (512, overlap 64) against untiled, same run: the tiling
   overhead (overlapping tiles are computed twice, plus blending).

    python benchmarks/tiling.py [--side 8000]      (takes a minute or two)
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from camvidseg import Segmenter
from camvidseg.testing import NearestColorBackend, street_scene
from camvidseg.tiling import TileGrid

# Run as `python benchmarks/tiling.py`, sys.path[0] is benchmarks/: make the package importable.
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import MinimumRow as Row
from benchmarks._common import print_minimum_rows

GB = 1e9
MEMORY_TARGET_GB = 2.0


def big_scene(side: int = 8000, block: int = 2000) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """A ``side x side`` scene: a ``block``-sized street scene repeated (cheap to build)."""
    image, labels = street_scene(block, block, seed=1)
    reps = (side // block, side // block)
    return np.tile(image, (*reps, 1)), np.tile(labels, reps)


def peak_memory(side: int = 8000) -> dict[str, Any]:
    image, truth = big_scene(side)
    segmenter = Segmenter(NearestColorBackend())  # default: tiles above DEFAULT_MAX_PIXELS
    tracemalloc.start()
    start = time.perf_counter()
    try:
        seg = segmenter.segment(image)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if not np.array_equal(seg.labels, truth):
        raise AssertionError("tiled labels of the big scene differ from its ground truth")
    full_scores = side * side * 33 * 4
    outputs = seg.labels.nbytes + seg.confidence.nbytes
    print(
        f"{side}x{side}: peak {peak / GB:.2f} GB (outputs: labels + confidence"
        f" {outputs / GB:.2f} GB; the full score array alone would be {full_scores / GB:.1f} GB),"
        f" {elapsed:.1f} s, labels exact"
    )
    return {"peak": peak, "full_scores": full_scores, "seconds": elapsed}


def tiling_overhead() -> tuple[float, float]:
    image, truth = street_scene(1440, 1920, seed=2)
    untiled = Segmenter(NearestColorBackend(), max_pixels=None)
    tiled = Segmenter(NearestColorBackend(), tile=512, overlap=64)

    def best(segmenter: Segmenter) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            seg = segmenter.segment(image)
            times.append(time.perf_counter() - start)
            assert np.array_equal(seg.labels, truth)
        return min(times)

    plain_s, tiled_s = best(untiled), best(tiled)
    grid = TileGrid.for_shape((1440, 1920), 512, 64)
    covered = len(grid) * 512 * 512 / (1440 * 1920)
    ratio = tiled_s / plain_s
    print(
        f"1440x1920: untiled {plain_s:.2f} s, tiled 512/64 {tiled_s:.2f} s ({ratio:.2f}x; the"
        f" {len(grid)} tiles cover {covered:.2f}x the image, so the model alone costs that much)"
    )
    return ratio, covered


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Print the figures and return ``[{"name", "value", "target"}, ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--side", type=int, default=8000, help="side of the big image (8000)")
    args = parser.parse_args(argv)
    memory = peak_memory(args.side)
    overhead, covered = tiling_overhead()
    rows: list[Row] = [
        {
            "name": "tiling_big_image_peak_gb",
            "value": round(memory["peak"] / GB, 2),
            "target": None,
        },
        {
            "name": "tiling_big_image_memory_saving_vs_full_scores",
            "value": round(memory["full_scores"] / memory["peak"], 1),
            # The full scores alone over the ~2 GB budget.
            "target": round(memory["full_scores"] / (MEMORY_TARGET_GB * GB), 1),
        },
        {"name": "tiling_big_image_seconds", "value": round(memory["seconds"], 1), "target": None},
        {"name": "tiling_512_64_time_over_untiled", "value": round(overhead, 2), "target": None},
        {"name": "tiling_512_64_tile_area_over_image", "value": round(covered, 2), "target": None},
    ]
    print_minimum_rows(rows)
    return rows


if __name__ == "__main__":
    main()
