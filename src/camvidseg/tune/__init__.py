"""Tuning post-processing against ground truth, on model predictions cached once.

``camvidseg tune`` (and :func:`tune`) answers "which post-processing settings give the best
mIoU on my data?" cheaply:

1. **Predict once.** The model runs once per image and per test-time-augmentation *view* (a
   scale, flipped or not). Each view's prediction is stored compactly on disk
   (:class:`~camvidseg.predcache.PredictionCache`, one ``.npz`` per image and view: the
   top-``k`` CamVid-32 ids per pixel with their float16 probabilities and the share of the kept
   channels), keyed by the model, the image's content hash, the view and the inference
   settings. A re-run, a new grid or an interrupted run that is started again reuses every
   stored view; only missing ones run.
2. **Search.** Every candidate :class:`Setting` (TTA views averaged, a
   :class:`~camvidseg.cleanup.CleanupConfig`, a confidence threshold) is scored from the cache
   with the evaluation protocol of :mod:`camvidseg.metrics`. One pass over the images serves
   many candidates: cleanup steps shared by several candidates run once per image, and all
   thresholds of a candidate come from one histogram of (ground truth, prediction, confidence
   bin). Small search spaces are searched exhaustively (``"grid"``); large ones by
   ``"coordinate"`` search (each round evaluates every single-axis change of the current best in
   one pass and moves to the best of them, until no change helps).
3. **Rank.** Candidates are ranked by the objective (mIoU, or one class's IoU), ties going to
   the simpler setting (fewer model runs, fewer and smaller cleanup steps, no threshold), and
   the best is returned as a :class:`~camvidseg.config.SegmentConfig` that
   ``camvidseg segment --config`` accepts.

Exactness: without TTA, labels come from the cache exactly as the Segmenter computes them and
confidences are rounded to float16 (a threshold may flip the few pixels within about 1e-3 of
it). With TTA, views are averaged over their cached top-``k`` classes only, which can differ
from the full average where the winner is outside a view's top ``k`` (rare with ``k = 3``).

Under the evaluation protocol an abstained pixel (below ``min_confidence``) is a miss for its
ground-truth class: a threshold can never raise pixel accuracy; it can raise a class's IoU only
by removing false positives of that class.

The package's modules: :mod:`~camvidseg.tune.space` (objective, settings, search space),
:mod:`~camvidseg.tune.counting` (confusions of many candidates at once),
:mod:`~camvidseg.tune.predictions` (the cached predictions), :mod:`~camvidseg.tune.search`
(:func:`tune`) and :mod:`~camvidseg.tune.result`. Import public names from ``camvidseg.tune``.
"""

from __future__ import annotations

from camvidseg.tune.counting import ThresholdCounter, cleaned_variants, threshold_confusions
from camvidseg.tune.result import ABSTAIN_NOTE, Trial, TuneResult
from camvidseg.tune.search import GRID_LIMIT, tune
from camvidseg.tune.search import MAX_ROUNDS as MAX_ROUNDS
from camvidseg.tune.space import Objective, SearchSpace, Setting, canonical_cleanup, load_grid

__all__ = [
    "ABSTAIN_NOTE",
    "GRID_LIMIT",
    "Objective",
    "SearchSpace",
    "Setting",
    "ThresholdCounter",
    "Trial",
    "TuneResult",
    "canonical_cleanup",
    "cleaned_variants",
    "load_grid",
    "threshold_confusions",
    "tune",
]
