"""Per-pixel uncertainty from class probabilities, and abstaining below a confidence threshold.

Pure numpy. Inputs are class probabilities ``(..., H, W, C)`` (for example
:attr:`camvidseg.Segmentation.scores`, or :func:`camvidseg.postprocess.to_class_scores`); every
map has the input's shape without the channel axis.

- :func:`max_probability`: the winning class's probability (high = confident).
- :func:`margin`: top-1 minus top-2 probability (high = confident; 0 on a tie).
- :func:`entropy`: ``-sum(p log p)`` in nats, optionally normalised to ``[0, 1]`` by
  ``log(C)`` (high = uncertain).
- :func:`confidence_from_scores`: any of the three as a confidence in ``[0, 1]`` (high = confident).
- :func:`apply_min_confidence`: pixels below a threshold become *unlabelled* (255), which metrics
  count as a miss and colour tables draw black.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from camvidseg._types import UNLABELLED, ConfidenceMap, LabelMap
from camvidseg.exceptions import ConfigError, InvalidImageError

__all__ = [
    "ConfidenceMethod",
    "apply_min_confidence",
    "confidence_from_scores",
    "entropy",
    "margin",
    "max_probability",
]

#: Names accepted by :func:`confidence_from_scores`.
ConfidenceMethod = Literal["max", "margin", "entropy"]


def _check_scores(scores: NDArray[Any], minimum_channels: int = 1) -> None:
    if not isinstance(scores, np.ndarray) or not np.issubdtype(scores.dtype, np.floating):
        dtype = getattr(scores, "dtype", type(scores).__name__)
        raise InvalidImageError(f"scores must be a float array (..., C) (got {dtype})")
    if scores.ndim < 1 or scores.shape[-1] < minimum_channels:
        raise InvalidImageError(
            f"scores must have at least {minimum_channels} channel(s) on the last axis "
            f"(got shape {scores.shape})"
        )


def max_probability(scores: NDArray[np.floating[Any]]) -> ConfidenceMap:
    """Largest class probability per pixel.

    Args:
        scores: ``(..., C)`` float probabilities.

    Returns:
        ``(...)`` float32.

    Example:
        >>> max_probability(np.array([[0.2, 0.7, 0.1]], np.float32))
        array([0.7], dtype=float32)
    """
    _check_scores(scores)
    return np.asarray(np.max(scores, axis=-1), dtype=np.float32)


def margin(scores: NDArray[np.floating[Any]]) -> ConfidenceMap:
    """Top-1 minus top-2 class probability per pixel (0 where two classes tie for first).

    Computed in float32 from the two largest values, exactly as subtracting the second-largest
    sorted value from the largest.

    Args:
        scores: ``(..., C)`` float probabilities, ``C >= 2``.

    Returns:
        ``(...)`` float32, ``>= 0``.

    Example:
        >>> margin(np.array([[0.2, 0.7, 0.1], [0.4, 0.2, 0.4]], np.float32)).round(3)
        array([0.5, 0. ], dtype=float32)
    """
    _check_scores(scores, minimum_channels=2)
    channels = scores.shape[-1]
    top_two = np.partition(scores.astype(np.float32, copy=False), channels - 2, axis=-1)[..., -2:]
    return np.asarray(top_two[..., 1] - top_two[..., 0], dtype=np.float32)


def entropy(scores: NDArray[np.floating[Any]], *, normalize: bool = False) -> ConfidenceMap:
    """Shannon entropy ``-sum_c p_c log p_c`` per pixel, in nats (``0 log 0 = 0``).

    The sum runs over channels in order, in float64, and is rounded to float32 at the end.

    Args:
        scores: ``(..., C)`` non-negative probabilities summing to one per pixel.
        normalize: Divide by ``log(C)`` so a uniform distribution gives 1 (with ``C = 1`` the
            entropy is 0 and stays 0).

    Returns:
        ``(...)`` float32, in ``[0, log C]`` (``[0, 1]`` when normalised).

    Raises:
        InvalidImageError: if ``scores`` holds negative values.

    Example:
        >>> p = np.array([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], np.float32)
        >>> entropy(p, normalize=True)
        array([0., 1.], dtype=float32)
    """
    _check_scores(scores)
    if scores.size and float(np.min(scores)) < 0:
        raise InvalidImageError("entropy needs non-negative probabilities (got negative scores)")
    total = np.zeros(scores.shape[:-1], dtype=np.float64)
    log_p = np.zeros(scores.shape[:-1], dtype=np.float64)
    # Channel by channel keeps memory at a few maps and the summation order fixed (channel
    # order); each channel is copied to a contiguous float64 map so np.log takes one code path.
    for channel in range(scores.shape[-1]):
        p = scores[..., channel].astype(np.float64)
        log_p.fill(0.0)
        np.log(p, out=log_p, where=p > 0)
        total -= p * log_p
    if normalize and scores.shape[-1] > 1:
        total /= np.log(np.float64(scores.shape[-1]))
    return np.asarray(total, dtype=np.float32)


def confidence_from_scores(
    scores: NDArray[np.floating[Any]], method: ConfidenceMethod = "max"
) -> ConfidenceMap:
    """A confidence in ``[0, 1]`` per pixel (high = confident) by one of three methods.

    ``"max"``: :func:`max_probability`; ``"margin"``: :func:`margin`; ``"entropy"``:
    ``1 - entropy(scores, normalize=True)``.

    Example:
        >>> p = np.array([[0.25, 0.25, 0.25, 0.25]], np.float32)
        >>> [float(confidence_from_scores(p, m)[0]) for m in ("max", "margin", "entropy")]
        [0.25, 0.0, 0.0]
    """
    if method == "max":
        return max_probability(scores)
    if method == "margin":
        return margin(scores)
    if method == "entropy":
        uncertainty = entropy(scores, normalize=True)
        certainty: ConfidenceMap = np.clip(np.float32(1.0) - uncertainty, 0.0, 1.0)
        return certainty.astype(np.float32, copy=False)
    raise ConfigError(f"confidence method must be 'max', 'margin' or 'entropy' (got {method!r})")


def apply_min_confidence(
    labels: LabelMap,
    confidence: NDArray[np.floating[Any]],
    threshold: float,
    unlabelled: int = UNLABELLED,
) -> LabelMap:
    """Replace labels whose confidence is below ``threshold`` with ``unlabelled``.

    Args:
        labels: ``(H, W)`` (any shape) uint8 class ids.
        confidence: Float map of the same shape, higher = more confident.
        threshold: Pixels with ``confidence < threshold`` abstain; 0 keeps every pixel.
        unlabelled: The id given to abstaining pixels (255 by default, ignored by the
            palettes' colour tables and counted as a miss by metrics).

    Returns:
        A new uint8 label map; ``labels`` is not modified.

    Example:
        >>> labels = np.array([[17, 21, 4]], np.uint8)
        >>> conf = np.array([[0.9, 0.3, 0.5]], np.float32)
        >>> apply_min_confidence(labels, conf, 0.5).tolist()
        [[17, 255, 4]]
    """
    if labels.dtype != np.uint8:
        raise InvalidImageError(f"labels must be uint8 (got dtype {labels.dtype})")
    if confidence.shape != labels.shape:
        raise InvalidImageError(
            f"confidence must have the labels' shape {labels.shape} (got {confidence.shape})"
        )
    if not np.isfinite(threshold):
        raise ConfigError(f"threshold must be a finite number (got {threshold})")
    if not 0 <= unlabelled <= UNLABELLED:
        raise ConfigError(f"unlabelled must be an id in 0..{UNLABELLED} (got {unlabelled})")
    result: LabelMap = labels.copy()
    result[confidence < threshold] = np.uint8(unlabelled)
    return result
