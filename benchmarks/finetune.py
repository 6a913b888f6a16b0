"""Fine-tuning: training throughput and peak memory for 50 vs 200 images (memory must stay flat).

    python -m benchmarks.finetune                 # 50 vs 200 street scenes, 3 epochs each
    python -m benchmarks.finetune --learning      # also: do the defaults learn something real?

Each size runs in its own process (so its peak resident memory is its own): the images are
written, their features computed once with the numpy fake backbone (HRNet's 720 channels at 1/4
size) and cached as float16 on disk, then one epoch of the default 3x3 head is trained, the
held-out 20% validated, three times. TensorFlow runs on one thread and epochs are timed in
process CPU time (the fastest of epochs 2 and 3, validation and saving included), because wall
time on a shared machine measures the neighbours. Rows:

- training throughput of each size in pixels per CPU second, and their ratio (the per-image
  cost should not grow with the set);
- peak resident memory of each size and their ratio (target <= 1.25: features are read crop by
  crop through memory maps, never all at once), against the size of the feature cache, which
  grows with the set (what holding the features in memory would cost).

``--learning`` trains the defaults (8 epochs, 3x3 head) on 40 labelled 480x360 street scenes
(CamVid-11) and reports the validation mIoU against a majority-class predictor's on the same
held-out frames (target: at least 0.3 higher).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import Row, print_rows, row

ROOT = Path(__file__).resolve().parent.parent
SIZES = (50, 200)
HEIGHT, WIDTH = 120, 160


def _write_scenes(folder: Path, count: int, height: int, width: int) -> None:
    from PIL import Image

    from camvidseg.palette import CamVidPalette
    from camvidseg.testing import street_scene

    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    palette = CamVidPalette.camvid32()
    for i in range(count):
        image, labels = street_scene(height, width, seed=i)
        Image.fromarray(image).save(folder / "images" / f"f{i:04d}.png")
        Image.fromarray(palette.colorize(labels)).save(folder / "labels" / f"f{i:04d}_L.png")


def child(count: int, height: int, width: int) -> dict[str, Any]:
    """One size, in this process: train three epochs and report throughput and peak memory."""
    import tensorflow as tf

    from camvidseg.backends.fake import NearestColorBackend
    from camvidseg.finetune import DataOptions, FinetuneConfig, finetune
    from camvidseg.labelset import LabelSet

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_scenes(root, count, height, width)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        config = FinetuneConfig(epochs=3, patience=0)
        ends: list[float] = []
        finetune(
            root / "images",
            root / "labels",
            root / "head",
            backbone=NearestColorBackend(),
            base_model="fake:33",
            data=DataOptions(label_set=LabelSet.camvid11()),
            config=config,
            feature_cache=root / "features",
            on_epoch=lambda record: ends.append(time.process_time()),
        )
        cache_bytes = sum(p.stat().st_size for p in (root / "features").rglob("*.npy"))
        info = json.loads((root / "head" / "metrics.json").read_text())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    crop = min(config.crop, height) * min(config.crop, width)
    pixels = info["train_images"] * max(1, round(height * width / crop)) * crop
    fastest = min(b - a for a, b in itertools.pairwise(ends))
    return {
        "count": count,
        "pixels_per_second": pixels / fastest,
        "seconds": fastest,
        "peak_mb": peak / 1024,
        "before_mb": before / 1024,
        "cache_mb": cache_bytes / 2**20,
    }


def _run_child(count: int, height: int, width: int) -> dict[str, Any]:
    code = (
        "import json, sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/src']; "
        "from benchmarks.finetune import child; "
        "print(json.dumps(child(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), str(count), str(height), str(width)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def learning() -> list[Row]:
    """The defaults on 40 labelled 480x360 frames: fine-tuned vs majority-class mIoU."""
    import numpy as np

    from camvidseg.backends.fake import NearestColorBackend
    from camvidseg.finetune import DataOptions, finetune
    from camvidseg.finetune.data import read_labels
    from camvidseg.labelset import LabelSet
    from camvidseg.metrics import ConfusionMatrix

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_scenes(root, 40, 360, 480)
        data = DataOptions(label_set=LabelSet.camvid11())
        result = finetune(
            root / "images",
            root / "labels",
            root / "head",
            backbone=NearestColorBackend(),
            base_model="fake:33",
            data=data,
        )
        info = json.loads((root / "head" / "head.json").read_text())
        train_counts = np.zeros(12, np.int64)
        for key in info["split"]["train"]:
            labels = read_labels(root / "labels" / f"{key}_L.png", data)
            train_counts += np.bincount(labels.ravel(), minlength=256)[:12]
        train_counts[11] = 0
        majority = int(train_counts.argmax())
        matrix = ConfusionMatrix(LabelSet.camvid11().to_palette())
        for key in info["split"]["val"]:
            truth = read_labels(root / "labels" / f"{key}_L.png", data)
            matrix.update(np.full_like(truth, majority), truth)
        baseline = matrix.compute().miou or 0.0
    tuned = result.validation.miou or 0.0
    print(
        f"defaults, 40 frames 480x360, CamVid-11: val mIoU {tuned:.3f} (best epoch "
        f"{result.best_epoch} of {result.epochs_done}) vs majority class {baseline:.3f}"
    )
    return [
        row("finetune_defaults_val_miou", tuned, unit="", detail="40 frames 480x360, 8 epochs"),
        row(
            "finetune_defaults_miou_over_majority_class",
            tuned - baseline,
            ">= 0.3",
            unit="",
            detail=f"majority-class predictor: {baseline:.3f}",
        ),
    ]


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learning", action="store_true", help="also check that defaults learn")
    parser.add_argument("--height", type=int, default=HEIGHT)
    parser.add_argument("--width", type=int, default=WIDTH)
    args = parser.parse_args(argv)
    small, large = (_run_child(n, args.height, args.width) for n in SIZES)
    print(
        f"three epochs of the default head on {args.width}x{args.height} street scenes "
        f"(numpy fake backbone, 720 features); each size in its own process"
    )
    rows = [
        row(
            f"finetune_train_throughput_{n['count']}_images",
            n["pixels_per_second"] / 1e6,
            unit="Mpx/CPU s",
            detail=f"{n['seconds']:.2f} CPU s per epoch",
        )
        for n in (small, large)
    ]
    rows.append(
        row(
            "finetune_throughput_200_vs_50_images",
            large["pixels_per_second"] / small["pixels_per_second"],
            ">= 0.75",
        )
    )
    rows += [
        row(
            f"finetune_peak_memory_{n['count']}_images",
            n["peak_mb"],
            unit="MB",
            detail=f"feature cache on disk {n['cache_mb']:.0f} MB",
        )
        for n in (small, large)
    ]
    rows.append(
        row(
            "finetune_peak_memory_200_vs_50_images",
            large["peak_mb"] / small["peak_mb"],
            "<= 1.25",
            detail=f"cache {large['cache_mb'] / small['cache_mb']:.1f}x larger",
        )
    )
    if args.learning:
        rows += learning()
    print_rows(rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
