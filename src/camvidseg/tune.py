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
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from camvidseg._types import UNLABELLED, ConfidenceMap, LabelMap
from camvidseg.backends.base import Backend
from camvidseg.cleanup import (
    SHAPES,
    CleanupConfig,
    Shape,
    closing,
    majority_filter,
    opening,
    remove_small_regions,
)
from camvidseg.config import SegmentConfig
from camvidseg.evaluation import list_image_files
from camvidseg.exceptions import (
    ConfigError,
    InvalidImageError,
    InvalidLabelError,
    UnknownColorError,
)
from camvidseg.groundtruth import (
    LABEL_SUFFIXES,
    FilePair,
    LabelFormat,
    UnknownColors,
    list_files,
    pair_by_stem,
    problem_kind,
    read_ground_truth,
    to_label_set,
)
from camvidseg.imageio import open_image
from camvidseg.labelset import model_label_set
from camvidseg.metrics import ConfusionMatrix, EvaluationProblem, EvaluationResult
from camvidseg.palette import CamVidPalette
from camvidseg.postprocess import ChannelLayout
from camvidseg.predcache import (
    DEFAULT_TOP_K,
    IDENTITY_VIEW,
    PredictionCache,
    View,
    ViewPrediction,
    combine_views,
    hash_file,
)
from camvidseg.segmenter import DEFAULT_MAX_PIXELS, Segmenter
from camvidseg.tta import TTAConfig

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

log = logging.getLogger("camvidseg")

#: Largest number of (TTA, cleanup) combinations searched exhaustively by ``search="auto"``.
GRID_LIMIT = 256
#: Rounds of coordinate search at most.
MAX_ROUNDS = 20
#: One line to show wherever thresholds are tuned.
ABSTAIN_NOTE = (
    "abstaining (min_confidence) counts as a miss under the evaluation protocol: it can never "
    "raise pixel accuracy, only a class's IoU by removing its false positives"
)


# -- the objective ---------------------------------------------------------------------------------


@attrs.frozen
class Objective:
    """What the search maximises: ``"miou"`` or ``"iou:CLASS"`` (one class's IoU).

    Example:
        >>> objective = Objective.parse("iou:road", CamVidPalette.camvid11())
        >>> str(objective), objective.label
        ('iou:Road', 'IoU Road')
    """

    class_name: str | None = None

    @classmethod
    def parse(cls, text: str, palette: CamVidPalette) -> Objective:
        """Parse ``"miou"`` or ``"iou:NAME"`` (a scored class of ``palette``, any case).

        Raises:
            ConfigError: for anything else, listing the class names.
        """
        spec = text.strip()
        if spec.lower() == "miou":
            return cls()
        kind, _, name = spec.partition(":")
        if kind.lower() != "iou" or not name:
            raise ConfigError(f"objective must be 'miou' or 'iou:CLASS' (got {text!r})")
        scored = [palette.names[i] for i in palette.scored_ids]
        for candidate in scored:
            if candidate.lower() == name.strip().lower():
                return cls(candidate)
        raise ConfigError(
            f"objective {text!r}: {name!r} is not a scored class of {palette.name} "
            f"(expected one of {', '.join(scored)})"
        )

    def score(self, result: EvaluationResult) -> float | None:
        """The objective's value for ``result`` (``None`` when undefined)."""
        if self.class_name is None:
            return result.miou
        return result.per_class[self.class_name]

    @property
    def label(self) -> str:
        """Column title: ``"mIoU"`` or ``"IoU <class>"``."""
        return "mIoU" if self.class_name is None else f"IoU {self.class_name}"

    def __str__(self) -> str:
        return "miou" if self.class_name is None else f"iou:{self.class_name}"


# -- candidate settings and the search space -------------------------------------------------------


def canonical_cleanup(cleanup: CleanupConfig) -> CleanupConfig:
    """``cleanup`` with the options that change nothing reset to their defaults.

    E.g. ``shape`` without opening or closing, ``majority=1``, ``min_region=1``: settings that
    give the same labels compare equal, so the search evaluates them once.

    Example:
        >>> canonical_cleanup(CleanupConfig(shape="disk", majority=1)) == CleanupConfig()
        True
    """
    morphology = cleanup.opening > 0 or cleanup.closing > 0
    regions = cleanup.min_region > 1
    return CleanupConfig(
        opening=cleanup.opening,
        closing=cleanup.closing,
        shape=cleanup.shape if morphology else "square",
        min_region=cleanup.min_region if regions else 0,
        connectivity=cleanup.connectivity if cleanup.opening > 0 or regions else 8,
        majority=cleanup.majority if cleanup.majority > 1 else 0,
        classes=cleanup.classes if morphology or regions else None,
    )


def _non_identity(tta: TTAConfig | None) -> TTAConfig | None:
    return None if tta is None or tta.is_identity else tta


def _views_of(tta: TTAConfig | None) -> tuple[View, ...]:
    return (IDENTITY_VIEW,) if tta is None else tta.views()


@attrs.frozen
class Setting:
    """One candidate: TTA views averaged, a cleanup, a confidence threshold.

    Attributes:
        tta: Test-time augmentation, ``None`` for the image alone.
        cleanup: The cleanup (canonical: see :func:`canonical_cleanup`).
        min_confidence: Abstain below this confidence, ``None`` for never.
    """

    tta: TTAConfig | None = attrs.field(default=None, converter=_non_identity)
    cleanup: CleanupConfig = attrs.field(factory=CleanupConfig, converter=canonical_cleanup)
    min_confidence: float | None = None

    @property
    def model_runs(self) -> int:
        """Model runs per image this setting costs at inference time."""
        return len(_views_of(self.tta))

    def complexity(self) -> tuple[float, ...]:
        """Sort key of simplicity: model runs, cleanup steps, their sizes, the threshold.

        Lower is simpler; ties in the objective go to the simpler setting.
        """
        c = self.cleanup
        steps = sum((c.opening > 0, c.closing > 0, c.min_region > 1, c.majority > 1))
        return (
            float(self.model_runs),
            float(steps),
            float(c.opening + c.closing),
            float(c.majority),
            float(c.min_region),
            float(SHAPES.index(c.shape)),
            float(c.connectivity == 4),
            0.0 if self.min_confidence is None else 1.0,
            0.0 if self.min_confidence is None else self.min_confidence,
        )

    def sort_key(self) -> str:
        """A canonical JSON string, the last tie-breaker (deterministic order)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        """``{"tta": ... or None, "cleanup": {...}, "min_confidence": ... or None}``."""
        return {
            "tta": None if self.tta is None else self.tta.to_dict(),
            "cleanup": self.cleanup.to_dict(),
            "min_confidence": self.min_confidence,
        }

    def describe_tta(self) -> str:
        """``"-"``, ``"flip"``, ``"scales 0.75,1,1.25"`` or ``"flip, scales ..."``."""
        if self.tta is None:
            return "-"
        parts = ["flip"] if self.tta.flip else []
        if self.tta.scales != (1.0,):
            parts.append("scales " + ",".join(f"{s:g}" for s in self.tta.scales))
        return ", ".join(parts)

    def describe_cleanup(self) -> str:
        """The cleanup steps that are on, e.g. ``"open 1 (square) region 64 majority 3"``."""
        c = self.cleanup
        parts = []
        if c.opening:
            parts.append(f"open {c.opening}")
        if c.closing:
            parts.append(f"close {c.closing}")
        if c.opening or c.closing:
            parts.append(f"({c.shape})")
        if c.min_region > 1:
            parts.append(f"region {c.min_region}" + ("/4" if c.connectivity == 4 else ""))
        if c.majority > 1:
            parts.append(f"majority {c.majority}")
        return " ".join(parts) or "-"

    def describe_threshold(self) -> str:
        """``"-"`` or the threshold."""
        return "-" if self.min_confidence is None else f"{self.min_confidence:g}"

    def apply_to(self, base: SegmentConfig) -> SegmentConfig:
        """``base`` with this setting's TTA, cleanup and threshold."""
        return attrs.evolve(
            base, tta=self.tta, cleanup=self.cleanup, min_confidence=self.min_confidence
        )


def _dedupe(values: Iterable[Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return tuple(out)


def _axis(name: str, value: object, check: Callable[[Any], Any]) -> tuple[Any, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ConfigError(f"search axis {name!r} must list at least one value")
    return _dedupe(check(item) for item in items)


def _int_at_least(name: str, minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(
                f"search axis {name!r}: values must be integers >= {minimum} (got {value!r})"
            )
        return value

    return check


def _check_majority_value(value: Any) -> int:
    value = _int_at_least("majority", 0)(value)
    if value > 1 and value % 2 == 0:
        raise ConfigError(f"search axis 'majority': values must be 0 or odd (got {value})")
    return int(value)


def _check_shape_value(value: Any) -> Shape:
    if value not in SHAPES:
        raise ConfigError(
            f"search axis 'shape': values must be one of {', '.join(SHAPES)} (got {value!r})"
        )
    shape: Shape = value
    return shape


def _check_connectivity_value(value: Any) -> int:
    if isinstance(value, bool) or value not in (4, 8):
        raise ConfigError(f"search axis 'connectivity': values must be 4 or 8 (got {value!r})")
    return int(value)


def _check_threshold(value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        raise ConfigError(
            f"search axis 'min_confidence': values must be numbers in [0, 1] or null "
            f"(got {value!r})"
        )
    return float(value)


def _check_tta(value: object) -> TTAConfig | None:
    if value is None:
        return None
    tta: TTAConfig
    if isinstance(value, TTAConfig):
        tta = value
    elif isinstance(value, Mapping):
        try:
            tta = TTAConfig.from_dict(value)
        except ConfigError as exc:
            raise ConfigError(f"search axis 'tta': {exc}") from None
    else:
        raise ConfigError(
            f'search axis \'tta\': values must be null or {{"flip": ..., "scales": [...]}} '
            f"(got {value!r})"
        )
    return None if tta.is_identity else tta


def _tta_axis(value: object) -> tuple[TTAConfig | None, ...]:
    return _axis("tta", value, _check_tta)


def _opening_axis(value: object) -> tuple[int, ...]:
    return _axis("opening", value, _int_at_least("opening", 0))


def _closing_axis(value: object) -> tuple[int, ...]:
    return _axis("closing", value, _int_at_least("closing", 0))


def _shape_axis(value: object) -> tuple[Shape, ...]:
    return _axis("shape", value, _check_shape_value)


def _min_region_axis(value: object) -> tuple[int, ...]:
    return _axis("min_region", value, _int_at_least("min_region", 0))


def _connectivity_axis(value: object) -> tuple[int, ...]:
    return _axis("connectivity", value, _check_connectivity_value)


def _majority_axis(value: object) -> tuple[int, ...]:
    return _axis("majority", value, _check_majority_value)


def _threshold_axis(value: object) -> tuple[float | None, ...]:
    return _axis("min_confidence", value, _check_threshold)


@attrs.frozen
class SearchSpace:
    """The values tried for every tuned setting (each axis a tuple, searched as a product).

    The defaults make a small, sensible grid for CamVid-sized images (96 TTA x cleanup
    combinations, each with 5 thresholds, which cost nothing extra).

    Attributes:
        tta: TTA settings (``None``: the image alone).
        opening: Opening radii (0: off).
        closing: Closing radii (0: off).
        shape: Structuring elements of opening and closing.
        min_region: Smallest region kept, in pixels (0: off).
        connectivity: 4 or 8, for regions.
        majority: Majority-filter windows (0: off).
        min_confidence: Confidence thresholds (``None``: never abstain).

    Example:
        >>> space = SearchSpace.from_dict({"tta": [None], "opening": [0], "closing": [0],
        ...                                 "majority": [0, 3], "min_region": [0, 32]})
        >>> space.size, len(space.settings()), space.views()
        (4, 20, ((1.0, False),))
        >>> SearchSpace.from_dict(space.to_dict()) == space
        True
    """

    tta: tuple[TTAConfig | None, ...] = attrs.field(
        default=(None, TTAConfig(flip=True)), converter=_tta_axis
    )
    opening: tuple[int, ...] = attrs.field(default=(0, 1), converter=_opening_axis)
    closing: tuple[int, ...] = attrs.field(default=(0, 1), converter=_closing_axis)
    shape: tuple[Shape, ...] = attrs.field(default=("square",), converter=_shape_axis)
    min_region: tuple[int, ...] = attrs.field(default=(0, 16, 64, 256), converter=_min_region_axis)
    connectivity: tuple[int, ...] = attrs.field(default=(8,), converter=_connectivity_axis)
    majority: tuple[int, ...] = attrs.field(default=(0, 3, 5), converter=_majority_axis)
    min_confidence: tuple[float | None, ...] = attrs.field(
        default=(None, 0.2, 0.3, 0.4, 0.5), converter=_threshold_axis
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Build from a JSON object of axes (lists, or single values); missing axes keep their
        defaults.

        Raises:
            ConfigError: for an unknown axis or a bad value, naming it.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"a search grid must be a JSON object (got {type(data).__name__})")
        known = [field.name for field in attrs.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown search axis(es) {', '.join(map(repr, unknown))}; expected some of "
                f"{', '.join(known)}"
            )
        return cls(**dict(data))

    def to_dict(self) -> dict[str, list[Any]]:
        """JSON-ready axes."""
        return {
            "tta": [None if t is None else t.to_dict() for t in self.tta],
            "opening": list(self.opening),
            "closing": list(self.closing),
            "shape": list(self.shape),
            "min_region": list(self.min_region),
            "connectivity": list(self.connectivity),
            "majority": list(self.majority),
            "min_confidence": list(self.min_confidence),
        }

    def cleanups(self) -> tuple[CleanupConfig, ...]:
        """Every distinct (canonical) cleanup of the product of the cleanup axes, in order."""
        product = itertools.product(
            self.opening,
            self.closing,
            self.shape,
            self.min_region,
            self.connectivity,
            self.majority,
        )
        return _dedupe(
            canonical_cleanup(
                CleanupConfig(
                    opening=o, closing=c, shape=s, min_region=r, connectivity=n, majority=m
                )
            )
            for o, c, s, r, n, m in product
        )

    @property
    def size(self) -> int:
        """Distinct (TTA, cleanup) combinations (each is tried with every threshold)."""
        return len(self.tta) * len(self.cleanups())

    def settings(self) -> list[Setting]:
        """Every candidate of the grid (thresholds included), in grid order."""
        return [
            Setting(tta, cleanup, threshold)
            for tta in self.tta
            for cleanup in self.cleanups()
            for threshold in self.min_confidence
        ]

    def views(self) -> tuple[View, ...]:
        """Every view some TTA setting needs, the plain image first."""
        return _dedupe([IDENTITY_VIEW, *(v for t in self.tta for v in _views_of(t))])


def load_grid(path: str | os.PathLike[str]) -> SearchSpace:
    """Read a :class:`SearchSpace` from a JSON file (axes not given keep their defaults).

    Raises:
        ConfigError: naming the file, for a missing file, bad JSON or a bad axis.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such grid file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read grid file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    try:
        return SearchSpace.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# -- counting confusions for many thresholds at once -----------------------------------------------


def _index_lut(palette: CamVidPalette) -> NDArray[np.int32]:
    """Label id -> row/column of a :class:`ConfusionMatrix` (``n + 1`` marks an invalid id)."""
    n = len(palette)
    lut = np.full(256, n + 1, dtype=np.int32)
    lut[:n] = np.arange(n)
    lut[UNLABELLED] = n
    return lut


class ThresholdCounter:
    """Confusion counts of many predictions of one image, each at many confidence thresholds.

    The ground truth and the confidence map are fixed (one image, one TTA setting); each
    :meth:`counts` call (one per cleanup) is then a table lookup, an addition and a bincount.
    ``counts(p)[j]`` equals the counts of ``ConfusionMatrix(palette)`` updated with ``p`` where
    pixels with ``confidence < thresholds[j]`` are unlabelled (``None``: none are).

    Args:
        ground_truth: ``(H, W)`` uint8 ids of ``palette`` or 255.
        confidence: ``(H, W)`` float confidence of the predictions.
        thresholds: Thresholds, ``None`` for no abstention.
        palette: The label set.

    Raises:
        InvalidLabelError: when the ground truth (or, in :meth:`counts`, a prediction) holds an
            id that is neither a class of ``palette`` nor 255.
        InvalidImageError: when the shapes differ.
    """

    def __init__(
        self,
        ground_truth: LabelMap,
        confidence: ConfidenceMap,
        thresholds: Sequence[float | None],
        palette: CamVidPalette,
    ) -> None:
        if ground_truth.shape != confidence.shape:
            raise InvalidImageError(
                f"ground truth and confidence must have one shape (got {ground_truth.shape} "
                f"and {confidence.shape})"
            )
        self.palette = palette
        self.shape = ground_truth.shape
        self.thresholds = tuple(thresholds)
        self._n = len(palette)
        self._lut = _index_lut(palette)
        gt_index = self._index(ground_truth, "ground truth")
        self._levels = sorted({t for t in self.thresholds if t is not None})
        # Comparing in float32, as `confidence < threshold` does for a float32 map.
        bins = np.searchsorted(
            np.asarray(self._levels, dtype=np.float32), confidence.reshape(-1), side="right"
        ).astype(np.int32)
        size = self._n + 1
        self._base = (bins * size + gt_index) * size
        self._bins = (len(self._levels) + 1) * size * size

    def _index(self, labels: LabelMap, what: str) -> NDArray[np.int32]:
        index = self._lut[labels.reshape(-1)]
        if index.size and int(index.max()) > self._n:
            bad = np.unique(labels.reshape(-1)[index > self._n])
            raise InvalidLabelError(
                f"{what} holds ids that are not classes of {self.palette.name} "
                f"(0..{self._n - 1} or {UNLABELLED}): {', '.join(str(int(b)) for b in bad[:5])}"
            )
        return index

    def counts(self, prediction: LabelMap) -> NDArray[np.int64]:
        """``(len(thresholds), N + 1, N + 1)`` int64 counts (``N`` classes, then unlabelled)."""
        if prediction.shape != self.shape:
            raise InvalidImageError(
                f"prediction must have the ground truth's shape {self.shape} "
                f"(got {prediction.shape})"
            )
        size = self._n + 1
        key = self._base + self._index(prediction, "prediction")
        hist = np.bincount(key, minlength=self._bins).reshape(-1, size, size)
        # A pixel abstains at levels[j] when confidence < levels[j], i.e. when its bin is <= j.
        below = np.cumsum(hist, axis=0)
        everything = below[-1]
        out = np.empty((len(self.thresholds), size, size), dtype=np.int64)
        for j, threshold in enumerate(self.thresholds):
            if threshold is None:
                out[j] = everything
                continue
            abstained = below[self._levels.index(threshold)]
            out[j] = everything - abstained
            out[j][:, self._n] += abstained.sum(axis=1)
        return out


def threshold_confusions(
    prediction: LabelMap,
    ground_truth: LabelMap,
    confidence: ConfidenceMap,
    thresholds: Sequence[float | None],
    palette: CamVidPalette,
) -> NDArray[np.int64]:
    """Confusion counts of one image for every confidence threshold, in one pass.

    ``out[j]`` equals the counts of ``ConfusionMatrix(palette)`` updated with ``prediction``
    where pixels with ``confidence < thresholds[j]`` are unlabelled (``None``: none are). For
    many predictions of one image, use :class:`ThresholdCounter`.

    Args:
        prediction: ``(H, W)`` uint8 ids of ``palette`` or 255.
        ground_truth: ``(H, W)`` uint8 ids of ``palette`` or 255.
        confidence: ``(H, W)`` float confidence of ``prediction``.
        thresholds: Thresholds, ``None`` for no abstention.
        palette: The label set.

    Returns:
        ``(len(thresholds), N + 1, N + 1)`` int64 counts (``N`` classes, then unlabelled).

    Example:
        >>> c11 = CamVidPalette.camvid11()
        >>> pred, gt = np.array([[3, 3, 0]], np.uint8), np.array([[3, 0, 0]], np.uint8)
        >>> counts = threshold_confusions(pred, gt, np.array([[0.9, 0.4, 0.8]], np.float32),
        ...                               [None, 0.5], c11)
        >>> int(counts[0, 0, 3]), int(counts[1, 0, 3]), int(counts[1, 0, 12])
        (1, 0, 1)
    """
    return ThresholdCounter(ground_truth, confidence, thresholds, palette).counts(prediction)


# -- cleanup with shared steps ---------------------------------------------------------------------


def _cleanup_steps(
    cleanup: CleanupConfig,
) -> list[tuple[tuple[Any, ...], Callable[[LabelMap], LabelMap]]]:
    """The steps :meth:`CleanupConfig.apply` runs, each with a key naming it and its options."""
    c = cleanup
    steps: list[tuple[tuple[Any, ...], Callable[[LabelMap], LabelMap]]] = []
    if c.opening:
        steps.append(
            (
                ("opening", c.opening, c.shape, c.classes, c.connectivity),
                lambda x: opening(
                    x, c.opening, shape=c.shape, classes=c.classes, connectivity=c.connectivity
                ),
            )
        )
    if c.closing:
        steps.append(
            (
                ("closing", c.closing, c.shape, c.classes),
                lambda x: closing(x, c.closing, shape=c.shape, classes=c.classes),
            )
        )
    if c.min_region > 1:
        steps.append(
            (
                ("min_region", c.min_region, c.connectivity, c.classes),
                lambda x: remove_small_regions(
                    x, c.min_region, connectivity=c.connectivity, classes=c.classes
                ),
            )
        )
    if c.majority > 1:
        steps.append((("majority", c.majority), lambda x: majority_filter(x, c.majority)))
    return steps


def cleaned_variants(
    labels: LabelMap, cleanups: Sequence[CleanupConfig]
) -> Iterator[tuple[CleanupConfig, LabelMap]]:
    """``(cleanup, cleanup.apply(labels))`` for every cleanup, sharing common first steps.

    Candidates that start with the same steps (e.g. the same opening, then different region
    sizes) compute those steps once.

    Example:
        >>> labels = np.array([[1, 1, 1], [1, 7, 1], [1, 1, 1]], np.uint8)
        >>> configs = [CleanupConfig(), CleanupConfig(majority=3)]
        >>> [int(out[1, 1]) for _, out in cleaned_variants(labels, configs)]
        [7, 1]
    """
    memo: dict[tuple[Any, ...], LabelMap] = {(): labels}
    for cleanup in cleanups:
        key: tuple[Any, ...] = ()
        current = labels
        for step_key, step in _cleanup_steps(cleanup):
            key = (*key, step_key)
            cached = memo.get(key)
            if cached is None:
                cached = step(current)
                memo[key] = cached
            current = cached
        yield cleanup, current


# -- results ---------------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class Trial:
    """One evaluated setting.

    Attributes:
        setting: The candidate.
        result: Its metrics over the images.
        score: The objective (``None`` when undefined).
    """

    setting: Setting
    result: EvaluationResult
    score: float | None

    def rank_key(self) -> tuple[Any, ...]:
        """Best first: higher score, then simpler, then canonical order."""
        return (
            self.score is None,
            -(self.score or 0.0),
            self.setting.complexity(),
            self.setting.sort_key(),
        )

    def to_dict(self) -> dict[str, Any]:
        """Setting, score and headline metrics."""
        return {
            **self.setting.to_dict(),
            "score": self.score,
            "miou": self.result.miou,
            "pixel_accuracy": self.result.pixel_accuracy,
            "mean_class_accuracy": self.result.mean_class_accuracy,
            "model_runs_per_image": self.setting.model_runs,
        }


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


@attrs.frozen(eq=False)
class TuneResult:
    """What :func:`tune` found.

    Attributes:
        trials: Every evaluated setting, best first.
        baseline: The setting without TTA, cleanup or threshold.
        objective: What was maximised.
        config: The best setting as a config (the base config's other settings kept).
        search: ``"grid"`` or ``"coordinate"``.
        passes: Passes over the cached predictions.
        computed_views: Image views the model had to run for (0 when all were cached).
        reused_views: Image views read from the cache.
        problems: Images that could not be used.
    """

    trials: tuple[Trial, ...]
    baseline: Trial
    objective: Objective
    config: SegmentConfig
    search: str
    passes: int
    computed_views: int
    reused_views: int
    problems: tuple[EvaluationProblem, ...] = ()

    @property
    def best(self) -> Trial:
        """The best trial."""
        return self.trials[0]

    @property
    def num_images(self) -> int:
        """Images the metrics cover."""
        return self.best.result.num_images

    @property
    def improvement(self) -> float | None:
        """Best minus baseline objective (``None`` when either is undefined)."""
        if self.best.score is None or self.baseline.score is None:
            return None
        return self.best.score - self.baseline.score

    def distinct_trials(self) -> tuple[Trial, ...]:
        """The trials, best first, without those whose confusion matrix equals a better-ranked
        (hence simpler, on ties) trial's: e.g. thresholds below every pixel's confidence."""
        seen: set[bytes] = set()
        out = []
        for trial in self.trials:
            key = trial.result.confusion.counts.tobytes()
            if key not in seen:
                seen.add(key)
                out.append(trial)
        return tuple(out)

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready summary: objective, best, baseline, the ``top`` distinct trials (see
        :meth:`distinct_trials`) and the config."""
        distinct = self.distinct_trials()
        trials = distinct if top is None else distinct[:top]
        return {
            "objective": str(self.objective),
            "num_images": self.num_images,
            "search": self.search,
            "passes": self.passes,
            "evaluated": len(self.trials),
            "distinct": len(distinct),
            "computed_views": self.computed_views,
            "reused_views": self.reused_views,
            "best": self.best.to_dict(),
            "baseline": self.baseline.to_dict(),
            "improvement": self.improvement,
            "trials": [t.to_dict() for t in trials],
            "config": self.config.to_dict(),
            "note": ABSTAIN_NOTE,
            "problems": [p.to_dict() for p in self.problems],
        }

    def table(self, top: int = 10) -> str:
        """A ranked text table of the ``top`` distinct trials, the baseline and the protocol note.

        Settings whose results equal those of a better-ranked, simpler one are not shown.
        """
        label = self.objective.label
        show_miou = self.objective.class_name is not None
        header = ["rank", label, *(["mIoU"] if show_miou else []), "pixel acc", "TTA"]
        header += ["cleanup", "min conf"]
        rows = []
        distinct = self.distinct_trials()
        for rank, trial in enumerate(distinct[:top], start=1):
            rows.append(self._row(str(rank), trial, show_miou))
        rows.append(self._row("base", self.baseline, show_miou))
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            return "  ".join(
                cell.rjust(width) if i < len(cells) - 3 else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        lines = [line(header), *(line(r) for r in rows[:-1]), "-" * len(line(header))]
        lines.append(line(rows[-1]))
        gain = self.improvement
        passes = f"{self.passes} pass{'es' if self.passes != 1 else ''}"
        summary = (
            f"{len(self.trials)} settings evaluated ({len(distinct)} distinct results; "
            f"{self.search} search, {passes} over the cache) on {self.num_images} images; "
            f"best {label} {_percent(self.best.score)}"
        )
        if gain is not None:
            summary += f", {100 * gain:+.2f} points over the baseline"
        lines += [summary, f"note: {ABSTAIN_NOTE}"]
        return "\n".join(lines)

    @staticmethod
    def _row(rank: str, trial: Trial, show_miou: bool) -> list[str]:
        s = trial.setting
        cells = [rank, _percent(trial.score)]
        if show_miou:
            cells.append(_percent(trial.result.miou))
        cells += [_percent(trial.result.pixel_accuracy), s.describe_tta(), s.describe_cleanup()]
        cells.append(s.describe_threshold())
        return cells


# -- tuning ----------------------------------------------------------------------------------------


@attrs.frozen
class _Entry:
    """An image that can be tuned on: its files, content hash and size."""

    pair: FilePair
    image_hash: str
    shape: tuple[int, int]


def _split_files(images: list[Path], truth: list[Path]) -> tuple[list[Path], list[Path]]:
    """Images and ground truth may share a folder: a file in both lists is ground truth when
    named ``*_L`` (CamVid's colour labels), else an image."""
    shared = {p.resolve() for p in images} & {p.resolve() for p in truth}

    def is_truth(path: Path) -> bool:
        return path.stem.endswith("_L")

    return (
        [p for p in images if p.resolve() not in shared or not is_truth(p)],
        [p for p in truth if p.resolve() not in shared or is_truth(p)],
    )


def _cache_settings(base: SegmentConfig) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "max_side": base.max_side,
        "tile": base.tile,
        "overlap": base.overlap,
        "drop_void": base.drop_void,
        "max_pixels": DEFAULT_MAX_PIXELS,
    }
    if base.head is not None:  # a head's predictions are another model's
        from camvidseg.backends.head import head_identity

        settings["head"] = head_identity(base.head)
    return settings


@attrs.frozen
class _OneView(TTAConfig):
    """Exactly one view, ``(scales[0], flip)``: a TTAConfig with ``flip`` also runs unflipped."""

    def views(self) -> tuple[tuple[float, bool], ...]:
        return ((self.scales[0], self.flip),)


class _Predictor:
    """Reads views from the cache and computes missing ones, loading the model only if needed."""

    def __init__(
        self,
        model: Backend | Callable[[], Backend],
        base: SegmentConfig,
        cache: PredictionCache,
        batch_size: int,
    ) -> None:
        self._model = model
        self._base = base
        self._cache = cache
        self._batch_size = batch_size
        self._backend: Backend | None = None
        self._segmenters: dict[View, Segmenter] = {}
        self.computed = 0
        self.reused = 0

    def segmenter(self, view: View) -> Segmenter:
        """A Segmenter running exactly this view (built on first use)."""
        if view not in self._segmenters:
            if self._backend is None:
                model = self._model
                self._backend = model if isinstance(model, Backend) else model()
            scale, flip = view
            tta = None if view == IDENTITY_VIEW else _OneView(flip=flip, scales=(scale,))
            self._segmenters[view] = Segmenter(
                self._backend,
                grouping=self._base.grouping,
                max_side=self._base.max_side,
                tile=self._base.tile,
                overlap=self._base.overlap,
                drop_void=self._base.drop_void,
                tta=tta,
                batch_size=self._batch_size,
                keep_image=False,
            )
        return self._segmenters[view]

    def model_palette(self) -> CamVidPalette:
        """The label set of the cached labels: the model's own (a head's), else CamVid-32."""
        label_set = None if self._backend is None else model_label_set(self._backend)
        if label_set is None and self._base.head is not None:
            from camvidseg.backends.head import read_head_info

            label_set = read_head_info(self._base.head).label_set
        return CamVidPalette.camvid32() if label_set is None else label_set.to_palette()

    def fill(self, entries: Sequence[_Entry], views: Sequence[View], progress: bool) -> None:
        """Compute and store every view of ``entries`` the cache does not hold yet."""
        todo: dict[View, list[_Entry]] = {}
        for entry in entries:
            for view in views:
                if self._cache.contains(entry.image_hash, view):
                    self.reused += 1
                else:
                    todo.setdefault(view, []).append(entry)
        total = sum(len(pending) for pending in todo.values())
        if total:
            log.info("running the model on %d image views (%d cached)", total, self.reused)
        with tqdm(
            total=total, desc="predicting", unit="view", disable=not progress or not total
        ) as bar:
            for view, pending in todo.items():
                for start in range(0, len(pending), self._batch_size):
                    chunk = pending[start : start + self._batch_size]
                    self._compute(view, chunk)
                    bar.update(len(chunk))

    def get(self, entry: _Entry, view: View) -> ViewPrediction:
        """The cached view, recomputed if its file turned out unreadable."""
        loaded = self._cache.load(entry.image_hash, view, entry.shape)
        if loaded is None:
            return self._compute(view, [entry])[0]
        return loaded

    def _compute(self, view: View, entries: Sequence[_Entry]) -> list[ViewPrediction]:
        segmenter = self.segmenter(view)
        arrays = [open_image(entry.pair.source).array for entry in entries]
        out = []
        for entry, scores in zip(entries, segmenter.predict_scores(arrays), strict=True):
            layout = segmenter.layout
            if layout is None or layout.num_channels != scores.shape[-1]:
                layout = ChannelLayout.detect(scores.shape[-1], drop_void=segmenter.drop_void)
            prediction = ViewPrediction.from_scores(scores, layout, self._cache.top_k)
            self._cache.store(entry.image_hash, view, prediction)
            self.computed += 1
            log.debug("cached view %s of %s", view, entry.pair.source)
            out.append(prediction)
        return out


def _evaluate(
    entries: Sequence[_Entry],
    candidates: Mapping[TTAConfig | None, Sequence[CleanupConfig]],
    thresholds: Sequence[float | None],
    *,
    predictor: _Predictor,
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
            for view in _views_of(tta):
                if view not in views:
                    views[view] = predictor.get(entry, view)
            labels32, conf = combine_views([views[v] for v in _views_of(tta)])
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
    image_files, gt_files = _split_files(
        list_image_files(images), list_files(gt_dir, LABEL_SUFFIXES)
    )
    pairs, problems = pair_by_stem(image_files, gt_files, report_unused_ground_truth=False)
    if not pairs:
        raise ConfigError(
            f"no image pairs with ground truth in {gt_dir} ({len(image_files)} images, "
            f"{len(gt_files)} ground-truth files); files pair by name: 'x.png' with 'x_L.png' "
            "or 'x.png'"
        )
    cache = PredictionCache(cache_dir, model=model_key, settings=_cache_settings(base), top_k=top_k)
    entries = _entries(pairs, base, gt_format, unknown, problems)
    if not entries:
        raise ConfigError(
            "no image could be used: "
            + "; ".join(p.message for p in problems if p.kind != "missing_prediction")
        )
    predictor = _Predictor(model, base, cache, batch_size)
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


def _entries(
    pairs: Sequence[FilePair],
    base: SegmentConfig,
    gt_format: LabelFormat,
    unknown: UnknownColors,
    problems: list[EvaluationProblem],
) -> list[_Entry]:
    """Pairs whose ground truth reads and whose image has the ground truth's size."""
    entries = []
    for pair in pairs:
        try:
            truth = read_ground_truth(
                pair.ground_truth,
                base.palette,
                label_format=gt_format,
                unknown=unknown,
                grouping=base.grouping,
                command="tune",
            ).labels
            height, width = open_image(pair.source).array.shape[:2]
            image_hash = hash_file(pair.source)
        except (InvalidImageError, UnknownColorError) as exc:
            problems.append(EvaluationProblem(problem_kind(exc), str(pair.source), str(exc)))
            continue
        except OSError as exc:
            problems.append(
                EvaluationProblem("unreadable", str(pair.source), f"{pair.source}: {exc}")
            )
            continue
        if (height, width) != truth.shape:
            problems.append(
                EvaluationProblem(
                    "size_mismatch",
                    str(pair.source),
                    f"{pair.source}: size {width}x{height} does not match ground truth "
                    f"{pair.ground_truth} ({truth.shape[1]}x{truth.shape[0]})",
                )
            )
            continue
        entries.append(_Entry(pair, image_hash, (height, width)))
    return entries


class _Search:
    """Evaluates candidates pass by pass and remembers every trial."""

    def __init__(
        self,
        entries: Sequence[_Entry],
        predictor: _Predictor,
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
        thresholds = _dedupe([None, *self.space.min_confidence])
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
