"""Counting confusions of many candidates of one image at once: every confidence threshold in
one histogram (:class:`ThresholdCounter`) and cleanups that share their first steps
(:func:`cleaned_variants`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from camvidseg._types import UNLABELLED, ConfidenceMap, LabelMap
from camvidseg.cleanup import (
    CleanupConfig,
    closing,
    majority_filter,
    opening,
    remove_small_regions,
)
from camvidseg.exceptions import (
    InvalidImageError,
    InvalidLabelError,
)
from camvidseg.palette import CamVidPalette

__all__ = ["ThresholdCounter", "cleaned_variants", "threshold_confusions"]


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
