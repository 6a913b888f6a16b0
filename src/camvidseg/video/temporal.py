"""Temporal smoothing of class probabilities, scene-cut detection and the flicker figure.

Pure numpy. Smoothing works on the model's class probabilities, never on labels: an
exponential moving average ``s_t = alpha * s_(t-1) + (1 - alpha) * p_t`` keeps a pixel's label
until the evidence for another class outweighs the history, so isolated one-frame errors
vanish while real changes come through after a short lag. The average restarts at a scene cut
(a large difference between consecutive frames), so one shot never bleeds into the next.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import ImageArray, LabelMap, Scores
from camvidseg.validators import ge, in_, in_range, lt

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_CUT_THRESHOLD",
    "EmaSmoother",
    "FlickerMeter",
    "SceneCutDetector",
    "TemporalSmoothing",
    "frame_difference",
    "label_change_fraction",
]

#: Default weight of the running average against the new frame.
DEFAULT_ALPHA = 0.6
#: Default scene-cut threshold: mean absolute grey-level change (0..1) between frames.
DEFAULT_CUT_THRESHOLD = 0.15
#: Thumbnails for scene-cut detection have about this many pixels on their short side.
_THUMBNAIL_SIDE = 32
_GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32) / np.float32(255.0)


#: The smoothing strength: 0 (none) up to, not including, 1 (the first frame forever).
_ALPHA = attrs.validators.and_(ge(0), lt(1))
_MODES = ("none", "ema")


@attrs.frozen
class TemporalSmoothing:
    """How consecutive frames are combined.

    Args:
        mode: ``"none"`` (each frame on its own) or ``"ema"`` (exponential moving average of
            the class probabilities).
        alpha: Weight of the running average against the new frame, in ``[0, 1)``: 0 is no
            smoothing, 0.9 strong smoothing (a change needs several frames to win).
        cut_threshold: A scene cut restarts the average when the mean absolute grey-level
            difference of consecutive frames (0..1, on small thumbnails) exceeds this; 1 never.

    Example:
        >>> TemporalSmoothing.parse("ema").enabled, TemporalSmoothing().enabled
        (True, False)
    """

    mode: Literal["none", "ema"] = attrs.field(default="none", validator=in_(_MODES))
    alpha: float = attrs.field(default=DEFAULT_ALPHA, validator=_ALPHA)
    cut_threshold: float = attrs.field(
        default=DEFAULT_CUT_THRESHOLD, validator=in_range(0, 1, low_open=True)
    )

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    @classmethod
    def parse(cls, value: str | TemporalSmoothing | None) -> TemporalSmoothing:
        """``"none"``, ``"ema"``, ``None`` (none) or a :class:`TemporalSmoothing`."""
        if value is None:
            return cls()
        if isinstance(value, TemporalSmoothing):
            return value
        in_(_MODES).check(value, "temporal")
        return cls(mode="ema" if value == "ema" else "none")

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "alpha": self.alpha if self.enabled else None,
            "cut_threshold": self.cut_threshold,
        }


class EmaSmoother:
    """Exponential moving average of ``(H, W, C)`` float32 probabilities, updated in place.

    Example:
        >>> ema = EmaSmoother(alpha=0.5)
        >>> ema.update(np.array([[[1.0, 0.0]]], np.float32)).tolist()
        [[[1.0, 0.0]]]
        >>> ema.update(np.array([[[0.0, 1.0]]], np.float32)).tolist()
        [[[0.5, 0.5]]]
    """

    def __init__(self, alpha: float = DEFAULT_ALPHA) -> None:
        ge(0).check(alpha, "alpha")
        lt(1).check(alpha, "alpha")
        self.alpha = np.float32(alpha)
        self._state: Scores | None = None

    def reset(self) -> None:
        """Forget the history: the next frame starts a new average."""
        self._state = None

    def update(self, scores: Scores) -> Scores:
        """The average after ``scores``; valid until the next call (do not modify it)."""
        state = self._state
        if state is None or state.shape != scores.shape:
            self._state = np.array(scores, dtype=np.float32, copy=True)
            return self._state
        # s = alpha * s + (1 - alpha) * p, as p + alpha * (s - p): no temporaries.
        np.subtract(state, scores, out=state)
        state *= self.alpha
        state += scores
        return state


def _thumbnail(image: ImageArray) -> NDArray[np.float32]:
    """Grey levels in ``[0, 1]`` of ``image`` averaged over blocks, about 32 blocks on the short
    side; each block's mean is taken over (up to) 4 x 4 evenly spaced pixels of it, so a
    960x720 frame costs well under a millisecond."""
    height, width = image.shape[:2]
    block = max(1, min(height, width) // _THUMBNAIL_SIDE)
    spacing = max(1, block // 4)
    samples = image[::spacing, ::spacing]
    red, green, blue = _GREY_WEIGHTS
    grey = samples[..., 0] * red + samples[..., 1] * green + samples[..., 2] * blue
    per_block = max(1, block // spacing)
    rows, cols = grey.shape[0] // per_block, grey.shape[1] // per_block
    blocks = grey[: rows * per_block, : cols * per_block].reshape(rows, per_block, cols, per_block)
    means: NDArray[np.float32] = blocks.sum(axis=(1, 3), dtype=np.float32) / np.float32(
        per_block * per_block
    )
    return means


def frame_difference(a: ImageArray, b: ImageArray) -> float:
    """Mean absolute grey-level difference of two frames' thumbnails, in ``[0, 1]``
    (1 for frames of different sizes).

    Example:
        >>> black, white = np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8)
        >>> frame_difference(black, black), round(frame_difference(black, white), 6)
        (0.0, 1.0)
    """
    if a.shape != b.shape:
        return 1.0
    return float(np.abs(_thumbnail(a) - _thumbnail(b)).mean())


class SceneCutDetector:
    """Says whether each frame starts a new shot (the first frame does).

    Example:
        >>> detector = SceneCutDetector(0.15)
        >>> frames = [np.zeros((8, 8, 3), np.uint8)] * 2 + [np.full((8, 8, 3), 200, np.uint8)]
        >>> [detector.is_cut(f) for f in frames]
        [True, False, True]
    """

    def __init__(self, threshold: float = DEFAULT_CUT_THRESHOLD) -> None:
        self.threshold = threshold
        self.cuts = 0
        self._previous: NDArray[np.float32] | None = None

    def is_cut(self, image: ImageArray) -> bool:
        thumbnail = _thumbnail(image)
        previous, self._previous = self._previous, thumbnail
        if previous is None or previous.shape != thumbnail.shape:
            return True
        cut = float(np.abs(thumbnail - previous).mean()) > self.threshold
        self.cuts += cut
        return cut


def label_change_fraction(a: LabelMap, b: LabelMap) -> float:
    """Fraction of pixels whose label differs between two label maps of one shape.

    Example:
        >>> label_change_fraction(np.array([[1, 2, 3, 4]]), np.array([[1, 2, 0, 4]]))
        0.25
    """
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} and {b.shape}")
    return int(np.count_nonzero(a != b)) / a.size if a.size else 0.0


class FlickerMeter:
    """The flicker figure: mean fraction of pixels whose label changes between consecutive
    frames of one shot (pairs across a scene cut are left out).

    Example:
        >>> meter = FlickerMeter()
        >>> for labels in ([[1, 1]], [[1, 2]], [[1, 2]]):
        ...     meter.add(np.array(labels, np.uint8))
        >>> meter.value, meter.pairs
        (0.25, 2)
    """

    def __init__(self) -> None:
        self.total = 0.0
        self.pairs = 0
        self._previous: LabelMap | None = None

    def add(self, labels: LabelMap, *, cut: bool = False) -> None:
        """Count ``labels`` against the previous frame's, unless ``cut`` starts a new shot."""
        previous, self._previous = self._previous, labels
        if previous is not None and not cut and previous.shape == labels.shape:
            self.total += label_change_fraction(previous, labels)
            self.pairs += 1

    @property
    def value(self) -> float | None:
        """The mean over the pairs counted, or ``None`` before two frames of one shot."""
        return self.total / self.pairs if self.pairs else None
