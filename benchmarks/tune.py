"""Cost of tuning post-processing on one 960x720 frame, against the obvious evaluation loop.

    python -m benchmarks.tune

- search pass: every (cleanup, threshold) setting of a 9 x 5 grid scored on one frame, the way
  :func:`camvidseg.tune.tune` does it (cleanup steps shared between settings computed once,
  all thresholds from one histogram, the per-image part of the counting done once) vs the
  obvious loop (``CleanupConfig.apply``, then ``apply_min_confidence`` and
  ``ConfusionMatrix.update`` per setting); the counts are checked to be identical first;
- the default grid's pass over one frame (2 TTA settings x 48 cleanups x 5 thresholds), absolute;
- the cache: bytes of one cached view (compressed ``.npz``, top 3 classes) against the model's
  full float32 scores, and the time to read one view back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks._common import FRAME_HEIGHT, FRAME_WIDTH, Row, ms, print_rows, row, timings
from camvidseg import CamVidPalette, ConfusionMatrix
from camvidseg.postprocess import ChannelLayout
from camvidseg.predcache import PredictionCache, ViewPrediction, combine_views
from camvidseg.testing import SpeckleNoiseBackend, street_scene
from camvidseg.tune import SearchSpace, ThresholdCounter, cleaned_variants
from camvidseg.uncertainty import apply_min_confidence

THRESHOLDS: tuple[float | None, ...] = (None, 0.2, 0.3, 0.4, 0.5)


def main() -> list[Row]:
    image, truth = street_scene(FRAME_HEIGHT, FRAME_WIDTH, seed=0)
    batch = image[None].astype(np.float32) / np.float32(255)
    scores = SpeckleNoiseBackend().predict(batch)[0]
    view = ViewPrediction.from_scores(scores, ChannelLayout.detect(33))
    labels, conf = combine_views([view])
    palette = CamVidPalette.camvid32()
    space = SearchSpace(opening=[0], closing=[0], min_region=[0, 64, 256], majority=[0, 3, 5])
    cleanups = space.cleanups()

    def fast() -> list[np.ndarray]:
        counter = ThresholdCounter(truth, conf, THRESHOLDS, palette)
        return [counter.counts(cleaned) for _, cleaned in cleaned_variants(labels, cleanups)]

    def obvious() -> list[np.ndarray]:
        out = []
        for cleanup in cleanups:
            per_threshold = []
            for threshold in THRESHOLDS:
                cleaned = cleanup.apply(labels)
                if threshold is not None:
                    cleaned = apply_min_confidence(cleaned, conf, threshold)
                matrix = ConfusionMatrix(palette)
                matrix.update(cleaned, truth)
                per_threshold.append(matrix.counts)
            out.append(np.stack(per_threshold))
        return out

    if not all(np.array_equal(a, b) for a, b in zip(fast(), obvious(), strict=True)):
        raise SystemExit("tune: fast and obvious counts differ: benchmark aborted")
    times = timings({"fast": fast, "obvious": obvious}, repeat=3)
    settings = len(cleanups) * len(THRESHOLDS)

    default = SearchSpace()
    flipped = ViewPrediction.from_scores(
        SpeckleNoiseBackend().predict(batch[:, :, ::-1].copy())[0][:, ::-1],
        ChannelLayout.detect(33),
    )

    def default_pass() -> None:
        for tta in default.tta:
            views = [view] if tta is None else [view, flipped]
            tta_labels, tta_conf = combine_views(views)
            counter = ThresholdCounter(truth, tta_conf, default.min_confidence, palette)
            for _, cleaned in cleaned_variants(tta_labels, default.cleanups()):
                counter.counts(cleaned)

    with tempfile.TemporaryDirectory() as folder:
        cache = PredictionCache(folder, model="benchmark")
        path = cache.store("frame", (1.0, False), view)
        cached_bytes = Path(path).stat().st_size
        read = timings(
            {
                "default_pass": default_pass,
                "read_view": lambda: cache.load("frame", (1.0, False)),
            },
            repeat=3,
        )
    print(
        f"tuning on a {FRAME_WIDTH}x{FRAME_HEIGHT} street scene, SpeckleNoiseBackend scores; "
        f"{settings} settings ({len(cleanups)} cleanups x {len(THRESHOLDS)} thresholds)"
    )
    rows = [
        row(
            "tune_search_pass_speedup_vs_obvious_loop",
            times["obvious"] / times["fast"],
            ">= 3",
            detail=f"{ms(times['fast'])} vs {ms(times['obvious'])} for {settings} settings",
        ),
        row(
            "tune_default_grid_pass_per_frame",
            read["default_pass"],
            unit="s",
            detail=f"{default.size * len(default.min_confidence)} settings",
        ),
        row(
            "tune_cached_view_vs_float32_scores_size",
            scores.nbytes / cached_bytes,
            ">= 20",
            detail=f"{cached_bytes / 1e6:.2f} MB vs {scores.nbytes / 1e6:.1f} MB",
        ),
        row("tune_read_cached_view", read["read_view"] * 1e3, unit="ms"),
    ]
    print_rows(rows)
    return rows


if __name__ == "__main__":
    main()
