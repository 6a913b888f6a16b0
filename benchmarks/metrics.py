"""Throughput of the metrics' hot paths against obvious per-class loops, measured in one run.

    python benchmarks/metrics.py [--size 720x960] [--repeats 5]

- confusion-matrix update (:meth:`camvidseg.metrics.ConfusionMatrix.update`, one bincount over
  uint8 pairs) vs two per-class loops: the naive one (count every (truth, prediction) class pair
  with boolean masks) and a stronger one (one masked bincount per ground-truth class), on a
  street scene (about a dozen classes present) and on uniformly random labels (all 32);
- RGB ground-truth decoding (:meth:`camvidseg.CamVidPalette.decode`, a sorted-key lookup) vs a
  per-class loop (one colour comparison over the image per class).

Both sides are checked to give identical results before they are timed. Printed ratios are
reference time / camvidseg time on this machine; :func:`main` returns them as rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from camvidseg.metrics import ConfusionMatrix
from camvidseg.palette import CamVidPalette
from camvidseg.testing import street_scene

# Run as `python benchmarks/metrics.py`, sys.path[0] is benchmarks/: make the package importable.
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import MinimumRow as Row
from benchmarks._common import print_minimum_rows


def per_class_confusion(
    prediction: NDArray[np.uint8], truth: NDArray[np.uint8], num_classes: int
) -> NDArray[np.int64]:
    """The obvious implementation: one masked bincount per ground-truth class (255 -> last)."""
    size = num_classes + 1
    counts = np.zeros((size, size), np.int64)
    pred = np.where(prediction == 255, num_classes, prediction).astype(np.intp)
    for class_id in range(size):
        gt_id = 255 if class_id == num_classes else class_id
        counts[class_id] = np.bincount(pred[truth == gt_id], minlength=size)[:size]
    return counts


def pairwise_confusion(
    prediction: NDArray[np.uint8], truth: NDArray[np.uint8], num_classes: int
) -> NDArray[np.int64]:
    """The naive implementation: one boolean count per (ground truth, prediction) pair."""
    size = num_classes + 1
    counts = np.zeros((size, size), np.int64)
    for gt_index in range(size):
        gt_mask = truth == (255 if gt_index == num_classes else gt_index)
        if not gt_mask.any():
            continue
        for pred_index in range(size):
            pred_id = 255 if pred_index == num_classes else pred_index
            counts[gt_index, pred_index] = np.count_nonzero(gt_mask & (prediction == pred_id))
    return counts


def per_class_decode(rgb: NDArray[np.uint8], palette: CamVidPalette) -> NDArray[np.uint8]:
    """The obvious implementation: compare the image with each class colour in turn."""
    labels = np.full(rgb.shape[:2], 255, np.uint8)
    for class_id, color in enumerate(palette.colors):
        labels[np.all(rgb == color, axis=-1)] = class_id
    return labels


def best_time(function: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` runs after one warm-up, in seconds."""
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def _realistic_pair(height: int, width: int) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """A street-scene ground truth and a prediction that is 85 % right, with abstentions."""
    rng = np.random.default_rng(0)
    _, truth = street_scene(height, width, seed=1)
    prediction = truth.copy()
    wrong = rng.random(truth.shape) < 0.15
    prediction[wrong] = rng.integers(0, 32, int(wrong.sum()), dtype=np.uint8)
    prediction[rng.random(truth.shape) < 0.02] = 255
    return prediction, truth


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Run the benchmarks, print a table, return ``[{"name", "value", "target"}, ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", default="720x960", help="HEIGHTxWIDTH (default: 720x960)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))
    palette = CamVidPalette.camvid32()
    prediction, truth = _realistic_pair(height, width)
    megapixels = height * width / 1e6

    n = len(palette)
    rng = np.random.default_rng(1)
    random_pred = rng.integers(0, n, (height, width), dtype=np.uint8)
    random_truth = rng.integers(0, n, (height, width), dtype=np.uint8)
    for pred, gt in ((prediction, truth), (random_pred, random_truth)):
        matrix = ConfusionMatrix(palette)
        matrix.update(pred, gt)
        if not np.array_equal(matrix.counts, per_class_confusion(pred, gt, n)) or not (
            np.array_equal(matrix.counts, pairwise_confusion(pred, gt, n))
        ):
            raise SystemExit("confusion matrices differ: benchmark aborted")
    update = best_time(lambda: ConfusionMatrix(palette).update(prediction, truth), args.repeats)
    update_ref = best_time(lambda: per_class_confusion(prediction, truth, n), args.repeats)
    update_naive = best_time(lambda: pairwise_confusion(prediction, truth, n), args.repeats)
    update_random = best_time(
        lambda: ConfusionMatrix(palette).update(random_pred, random_truth), args.repeats
    )
    update_random_ref = best_time(
        lambda: per_class_confusion(random_pred, random_truth, n), args.repeats
    )

    rgb = palette.colorize(truth)
    if not np.array_equal(palette.decode(rgb), per_class_decode(rgb, palette)):
        raise SystemExit("decoded labels differ: benchmark aborted")
    decode = best_time(lambda: palette.decode(rgb), args.repeats)
    decode_ref = best_time(lambda: per_class_decode(rgb, palette), args.repeats)

    rows: list[Row] = [
        {"name": "confusion_update_ms", "value": round(update * 1e3, 2), "target": None},
        {
            "name": "confusion_update_mpix_per_s",
            "value": round(megapixels / update, 1),
            "target": None,
        },
        {
            "name": "confusion_update_speedup_vs_class_pair_loop",
            "value": round(update_naive / update, 1),
            "target": 10.0,
        },
        {
            "name": "confusion_update_speedup_vs_per_class_bincount",
            "value": round(update_ref / update, 1),
            "target": 2.5,
        },
        {
            "name": "confusion_update_speedup_vs_per_class_bincount_random32",
            "value": round(update_random_ref / update_random, 1),
            "target": 5.0,
        },
        {"name": "rgb_decode_ms", "value": round(decode * 1e3, 2), "target": None},
        {"name": "rgb_decode_mpix_per_s", "value": round(megapixels / decode, 1), "target": None},
        {
            "name": "rgb_decode_speedup_vs_per_class_loop",
            "value": round(decode_ref / decode, 1),
            "target": 10.0,
        },
    ]
    print(f"metrics benchmarks on a {width}x{height} image, best of {args.repeats}")
    print_minimum_rows(rows)
    return rows


if __name__ == "__main__":
    main()
