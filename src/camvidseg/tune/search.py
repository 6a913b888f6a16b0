"""The search itself: :func:`tune` evaluates candidates pass by pass over the cached
predictions, by grid or coordinate search, and ranks them."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from camvidseg.backends.base import Backend
from camvidseg.cleanup import (
    CleanupConfig,
)
from camvidseg.config import SegmentConfig
from camvidseg.evaluation import list_image_files
from camvidseg.exceptions import (
    ConfigError,
)
from camvidseg.groundtruth import (
    LABEL_SUFFIXES,
    LabelFormat,
    UnknownColors,
    list_files,
    pair_by_stem,
    read_ground_truth,
    to_label_set,
)
from camvidseg.metrics import ConfusionMatrix
from camvidseg.palette import CamVidPalette
from camvidseg.predcache import (
    DEFAULT_TOP_K,
    PredictionCache,
    View,
    ViewPrediction,
    combine_views,
)
from camvidseg.tta import TTAConfig
from camvidseg.tune.counting import ThresholdCounter, cleaned_variants
from camvidseg.tune.predictions import (
    Predictor,
    TuneImage,
    cache_settings,
    split_files,
    usable_images,
)
from camvidseg.tune.result import Trial, TuneResult
from camvidseg.tune.space import (
    Objective,
    SearchSpace,
    Setting,
    canonical_cleanup,
    dedupe,
    views_of,
)

__all__ = ["GRID_LIMIT", "MAX_ROUNDS", "tune"]

log = logging.getLogger("camvidseg")

#: Largest number of (TTA, cleanup) combinations searched exhaustively by ``search="auto"``.
GRID_LIMIT = 256
#: Rounds of coordinate search at most.
MAX_ROUNDS = 20


def _evaluate(
    entries: Sequence[TuneImage],
    candidates: Mapping[TTAConfig | None, Sequence[CleanupConfig]],
    thresholds: Sequence[float | None],
    *,
    predictor: Predictor,
    palette: CamVidPalette,
    grouping: str,
    gt_format: LabelFormat,
    unknown: UnknownColors,
    progress: bool,
) -> dict[tuple[TTAConfig | None, CleanupConfig], NDArray[np.int64]]:
    """One pass over the cache: confusion counts of every candidate at every threshold."""
    source = predictor.model_palette()
    counts: dict[tuple[TTAConfig | None, CleanupConfig], NDArray[np.int64]] = {}
    for entry in tqdm(entries, desc="searching", unit="image", disable=not progress, leave=False):
        truth = read_ground_truth(
            entry.pair.ground_truth,
            palette,
            label_format=gt_format,
            unknown=unknown,
            grouping=grouping,
            command="tune",
        ).labels
        views: dict[View, ViewPrediction] = {}
        for tta, cleanups in candidates.items():
            for view in views_of(tta):
                if view not in views:
                    views[view] = predictor.get(entry, view)
            labels32, conf = combine_views([views[v] for v in views_of(tta)])
            labels = to_label_set(labels32, source, palette, grouping)
            counter = ThresholdCounter(truth, conf, thresholds, palette)
            for cleanup, cleaned in cleaned_variants(labels, cleanups):
                image_counts = counter.counts(cleaned)
                key = (tta, cleanup)
                if key in counts:
                    counts[key] += image_counts
                else:
                    counts[key] = image_counts
    return counts


def tune(
    images: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    ground_truth: str | os.PathLike[str],
    *,
    model: Backend | Callable[[], Backend],
    cache_dir: str | os.PathLike[str],
    model_key: str | None = None,
    base: SegmentConfig | None = None,
    space: SearchSpace | None = None,
    objective: str | Objective = "miou",
    search: Literal["auto", "grid", "coordinate"] = "auto",
    batch_size: int = 1,
    top_k: int = DEFAULT_TOP_K,
    gt_format: LabelFormat = "auto",
    unknown: UnknownColors = "error",
    progress: bool = False,
) -> TuneResult:
    """Search post-processing settings that maximise ``objective`` on images with ground truth.

    Args:
        images: A folder (searched recursively), one image, or an iterable of image paths.
        ground_truth: Folder of ``*_L.png`` colour labels or SegNet index PNGs; images pair
            with them by name.
        model: The backend, or a function returning it (called only if some prediction is
            not cached yet, so a fully cached run never loads the model).
        cache_dir: Folder of the prediction cache (see :class:`PredictionCache`).
        model_key: Identifies the model in cache keys (default: the backend's ``name``;
            required when ``model`` is a function).
        base: Settings kept as they are (model, label set, ``max_side``, tiling); its TTA,
            cleanup and threshold are replaced by the best found.
        space: Values to try (default :class:`SearchSpace`).
        objective: ``"miou"`` or ``"iou:CLASS"``.
        search: ``"grid"`` (every combination), ``"coordinate"``, or ``"auto"``: grid up to
            :data:`GRID_LIMIT` (TTA, cleanup) combinations.
        batch_size: Images per model call while filling the cache.
        top_k: Classes kept per pixel and view in the cache.
        gt_format: ``"auto"``, ``"rgb"`` or ``"index"``.
        unknown: Unknown colours in RGB ground truth: ``"error"`` or ``"void"``.
        progress: Progress bars on stderr.

    Returns:
        The ranked trials, the baseline and the best config.

    Raises:
        ConfigError: a folder is missing, nothing pairs, a bad objective, or the objective is
            undefined for every setting (the class is absent everywhere).

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> from camvidseg.testing import SpeckleNoiseBackend, street_scene
        >>> folder = Path(tempfile.mkdtemp())
        >>> image, truth = street_scene(72, 96, seed=1)
        >>> Image.fromarray(image).save(folder / "a.png")
        >>> Image.fromarray(CamVidPalette.camvid32().colorize(truth)).save(folder / "a_L.png")
        >>> result = tune([folder / "a.png"], folder, model=SpeckleNoiseBackend(fraction=0.1),
        ...               cache_dir=folder / "cache",
        ...               space=SearchSpace(tta=[None], majority=[0, 3], min_region=[0],
        ...                                 opening=[0], closing=[0], min_confidence=[None]))
        >>> result.best.setting.cleanup.majority, result.best.score > result.baseline.score
        (3, True)
    """
    base = base or SegmentConfig()
    space = space or SearchSpace()
    palette = base.palette
    goal = objective if isinstance(objective, Objective) else Objective.parse(objective, palette)
    if search not in ("auto", "grid", "coordinate"):
        raise ConfigError(f"search must be 'auto', 'grid' or 'coordinate' (got {search!r})")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1 (got {batch_size})")
    if model_key is None:
        if not hasattr(model, "predict"):
            raise ConfigError("model_key is required when model is a function")
        model_key = str(getattr(model, "name", type(model).__name__))
    gt_dir = Path(ground_truth)
    if not gt_dir.is_dir():
        raise ConfigError(f"ground-truth folder {gt_dir}: no such folder")
    image_files, gt_files = split_files(
        list_image_files(images), list_files(gt_dir, LABEL_SUFFIXES)
    )
    pairs, problems = pair_by_stem(image_files, gt_files, report_unused_ground_truth=False)
    if not pairs:
        raise ConfigError(
            f"no image pairs with ground truth in {gt_dir} ({len(image_files)} images, "
            f"{len(gt_files)} ground-truth files); files pair by name: 'x.png' with 'x_L.png' "
            "or 'x.png'"
        )
    cache = PredictionCache(cache_dir, model=model_key, settings=cache_settings(base), top_k=top_k)
    entries = usable_images(pairs, base, gt_format, unknown, problems)
    if not entries:
        raise ConfigError(
            "no image could be used: "
            + "; ".join(p.message for p in problems if p.kind != "missing_prediction")
        )
    predictor = Predictor(model, base, cache, batch_size)
    predictor.fill(entries, space.views(), progress)
    baseline = Setting()
    evaluate = _Search(entries, predictor, base, goal, space, gt_format, unknown, progress)
    strategy = search
    if strategy == "auto":
        strategy = "grid" if space.size <= GRID_LIMIT else "coordinate"
    if strategy == "grid":
        grid = [(tta, cleanup) for tta in space.tta for cleanup in space.cleanups()]
        evaluate.run([*grid, (None, baseline.cleanup)])
    else:
        evaluate.coordinate(baseline)
    trials = sorted(evaluate.trials.values(), key=Trial.rank_key)
    # The baseline is reported, but only competes when it belongs to the search space.
    in_space = [t for t in trials if evaluate.in_space(t.setting)]
    if not in_space or in_space[0].score is None:
        raise ConfigError(
            f"objective {goal} is undefined for every setting: the class is absent from the "
            "ground truth and from every prediction"
        )
    best = in_space[0]
    description = (
        f"tuned by camvidseg tune on {best.result.num_images} images: {goal} "
        f"{best.score:.4f} (baseline {_format_score(evaluate.trials[baseline].score)})"
    )
    config = attrs.evolve(best.setting.apply_to(base), description=description)
    for problem in problems:
        log.info("%s", problem.message)
    return TuneResult(
        trials=tuple(in_space),
        baseline=evaluate.trials[baseline],
        objective=goal,
        config=config,
        search=strategy,
        passes=evaluate.passes,
        computed_views=predictor.computed,
        reused_views=predictor.reused,
        problems=tuple(problems),
    )


def _format_score(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.4f}"


class _Search:
    """Evaluates candidates pass by pass and remembers every trial."""

    def __init__(
        self,
        entries: Sequence[TuneImage],
        predictor: Predictor,
        base: SegmentConfig,
        objective: Objective,
        space: SearchSpace,
        gt_format: LabelFormat,
        unknown: UnknownColors,
        progress: bool,
    ) -> None:
        self.entries = entries
        self.predictor = predictor
        self.cleanups = frozenset(space.cleanups())
        self.base = base
        self.objective = objective
        self.space = space
        self.gt_format: LabelFormat = gt_format
        self.unknown: UnknownColors = unknown
        self.progress = progress
        self.trials: dict[Setting, Trial] = {}
        self.done: set[tuple[TTAConfig | None, CleanupConfig]] = set()
        self.passes = 0

    def run(self, combos: Iterable[tuple[TTAConfig | None, CleanupConfig]]) -> None:
        """Evaluate the (TTA, cleanup) combinations not evaluated yet, with every threshold."""
        thresholds = dedupe([None, *self.space.min_confidence])
        grouped: dict[TTAConfig | None, list[CleanupConfig]] = {}
        for tta, cleanup in sorted(set(combos) - self.done, key=_combo_order):
            grouped.setdefault(tta, []).append(cleanup)
        if not grouped:
            return
        counts = _evaluate(
            self.entries,
            grouped,
            thresholds,
            predictor=self.predictor,
            palette=self.base.palette,
            grouping=self.base.grouping,
            gt_format=self.gt_format,
            unknown=self.unknown,
            progress=self.progress,
        )
        self.passes += 1
        for (tta, cleanup), per_threshold in counts.items():
            self.done.add((tta, cleanup))
            for threshold, matrix_counts in zip(thresholds, per_threshold, strict=True):
                matrix = ConfusionMatrix(self.base.palette, matrix_counts, len(self.entries))
                result = matrix.compute()
                setting = Setting(tta, cleanup, threshold)
                self.trials[setting] = Trial(setting, result, self.objective.score(result))

    def in_space(self, setting: Setting) -> bool:
        """Whether ``setting`` is a point of the search space."""
        return (
            setting.tta in self.space.tta
            and setting.cleanup in self.cleanups
            and setting.min_confidence in self.space.min_confidence
        )

    def best(self) -> Trial:
        return min(
            (t for t in self.trials.values() if self.in_space(t.setting)), key=Trial.rank_key
        )

    def coordinate(self, baseline: Setting) -> None:
        """Coordinate search from the baseline (projected into the space)."""
        space = self.space

        def pick(values: tuple[Any, ...], wanted: Any) -> Any:
            return wanted if wanted in values else values[0]

        c = baseline.cleanup
        current = (
            pick(space.tta, None),
            pick(space.opening, c.opening),
            pick(space.closing, c.closing),
            pick(space.shape, c.shape),
            pick(space.min_region, c.min_region),
            pick(space.connectivity, c.connectivity),
            pick(space.majority, c.majority),
        )
        axes = (
            space.tta,
            space.opening,
            space.closing,
            space.shape,
            space.min_region,
            space.connectivity,
            space.majority,
        )
        self.run([_combo(current), (None, baseline.cleanup)])
        best = self.best()
        for _ in range(MAX_ROUNDS):
            neighbours = {
                _combo((*current[:i], value, *current[i + 1 :]))
                for i, values in enumerate(axes)
                for value in values
            }
            self.run(neighbours)
            challenger = self.best()
            if challenger.setting == best.setting:
                return
            best = challenger
            s = best.setting
            current = (
                pick(space.tta, s.tta),
                pick(space.opening, s.cleanup.opening),
                pick(space.closing, s.cleanup.closing),
                pick(space.shape, s.cleanup.shape),
                pick(space.min_region, s.cleanup.min_region),
                pick(space.connectivity, s.cleanup.connectivity),
                pick(space.majority, s.cleanup.majority),
            )


def _combo(values: tuple[Any, ...]) -> tuple[TTAConfig | None, CleanupConfig]:
    tta, o, c, s, r, n, m = values
    cleanup = CleanupConfig(opening=o, closing=c, shape=s, min_region=r, connectivity=n, majority=m)
    return tta, canonical_cleanup(cleanup)


def _combo_order(combo: tuple[TTAConfig | None, CleanupConfig]) -> str:
    tta, cleanup = combo
    return json.dumps([None if tta is None else tta.to_dict(), cleanup.to_dict()], sort_keys=True)
