"""Pure-numpy postprocessing of model scores: channel layouts, argmax, confidence, colour, overlay.

A model returns per-class probabilities ``(..., H, W, C)``. Two channel layouts exist
(see :class:`ChannelLayout`); every function here works in the model's channel order and maps to
CamVid-32 ids only at the end, so no full-size copy of the scores is ever made.

Tie rule everywhere: the first maximum in channel order wins (as :func:`numpy.argmax`).
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import ConfidenceMap, ImageArray, LabelMap, Scores
from camvidseg.exceptions import BackendError, InvalidImageError

__all__ = [
    "ChannelLayout",
    "argmax",
    "colorize",
    "confidence",
    "labels_and_confidence",
    "overlay",
    "remove_background",
    "resize_scores",
    "to_class_scores",
]

_VOID_ID = 30
_NUM_CAMVID32 = 32


def _readonly_ids(values: object) -> NDArray[np.uint8]:
    ids = np.array(values, dtype=np.uint8, copy=True).reshape(-1)
    ids.setflags(write=False)
    return ids


@attrs.frozen(eq=False)
class ChannelLayout:
    """How a model's output channels map to CamVid-32 class ids.

    Attributes:
        name: ``"background33"``, ``"void32"`` or ``"void32-drop"``.
        num_channels: ``C`` the model returns.
        drop_first: Whether channel 0 is discarded before the argmax.
        channel_ids: CamVid-32 id of each kept channel, in channel order.

    Example:
        >>> ChannelLayout.detect(33).channel_ids[:3].tolist()
        [0, 1, 2]
        >>> ChannelLayout.detect(32).channel_ids[:3].tolist()
        [30, 0, 1]
    """

    name: str
    num_channels: int
    drop_first: bool
    channel_ids: NDArray[np.uint8] = attrs.field(converter=_readonly_ids)

    def __attrs_post_init__(self) -> None:
        kept = self.num_channels - int(self.drop_first)
        if len(self.channel_ids) != kept:
            raise BackendError(
                f"layout {self.name!r} keeps {kept} channels but maps {len(self.channel_ids)}"
            )

    @classmethod
    def detect(cls, num_channels: int, *, drop_void: bool = False) -> ChannelLayout:
        """Layout for a model returning ``num_channels`` channels.

        Args:
            num_channels: 33 (background channel 0, then CamVid ids 0..31) or 32 (channel 0 is
                Void, then the 31 other classes in id order).
            drop_void: With 32 channels, discard channel 0 instead of mapping it to Void.

        Raises:
            BackendError: for any other channel count.
        """
        if num_channels == _NUM_CAMVID32 + 1:
            return cls("background33", num_channels, True, np.arange(_NUM_CAMVID32))
        if num_channels == _NUM_CAMVID32:
            non_void = [i for i in range(_NUM_CAMVID32) if i != _VOID_ID]
            if drop_void:
                return cls("void32-drop", num_channels, True, non_void)
            return cls("void32", num_channels, False, [_VOID_ID, *non_void])
        raise BackendError(
            f"model returned {num_channels} channels; expected 33 (background + 32 CamVid classes) "
            "or 32 (Void in channel 0 + 31 classes)"
        )

    def kept(self, scores: Scores) -> Scores:
        """View of the channels that take part in the argmax (no copy)."""
        self.check(scores)
        return remove_background(scores) if self.drop_first else scores

    def check(self, scores: Scores) -> None:
        """Raise :class:`BackendError` if ``scores`` does not have this layout's channel count."""
        if scores.ndim < 1 or scores.shape[-1] != self.num_channels:
            raise BackendError(
                f"scores of shape {scores.shape} do not match layout {self.name!r} "
                f"({self.num_channels} channels)"
            )


def remove_background(scores: Scores) -> Scores:
    """Drop channel 0 (the background channel the model adds).

    Args:
        scores: ``(..., C)`` float array.

    Returns:
        ``(..., C - 1)`` view of ``scores`` (no copy).

    Example:
        >>> remove_background(np.zeros((2, 2, 33), np.float32)).shape
        (2, 2, 32)
    """
    if scores.ndim < 1 or scores.shape[-1] < 2:
        raise BackendError(f"cannot remove a background channel from shape {scores.shape}")
    return scores[..., 1:]


def argmax(scores: Scores) -> LabelMap:
    """Index of the largest channel per pixel; ties go to the first maximum.

    Args:
        scores: ``(..., C)`` float array with ``C <= 256``.

    Returns:
        ``(...)`` uint8 channel indices.

    Example:
        >>> argmax(np.array([[0.2, 0.5, 0.5]], np.float32)).tolist()
        [1]
    """
    if scores.shape[-1] > 256:
        raise BackendError(f"at most 256 channels fit a uint8 label map (got {scores.shape[-1]})")
    return np.asarray(np.argmax(scores, axis=-1), dtype=np.uint8)


def confidence(scores: Scores, *, renormalize: bool = True) -> ConfidenceMap:
    """Probability of the winning channel per pixel.

    Args:
        scores: ``(..., C)`` non-negative probabilities (after :func:`remove_background`).
        renormalize: Divide by the per-pixel sum, so the kept channels sum to one. Pixels whose
            channels sum to zero get confidence 0.

    Returns:
        ``(...)`` float32 in ``[0, 1]``.

    Example:
        >>> confidence(np.array([[0.1, 0.3, 0.1]], np.float32)).round(3)
        array([0.6], dtype=float32)
    """
    return _renormalized(np.asarray(np.max(scores, axis=-1), dtype=np.float32), scores, renormalize)


def _renormalized(best: ConfidenceMap, scores: Scores, renormalize: bool) -> ConfidenceMap:
    if not renormalize:
        return best
    total = np.sum(scores, axis=-1, dtype=np.float32)
    out = np.zeros_like(best)
    np.divide(best, total, out=out, where=total > 0)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def labels_and_confidence(
    scores: Scores, layout: ChannelLayout, *, renormalize: bool = True
) -> tuple[LabelMap, ConfidenceMap]:
    """CamVid-32 labels and confidence from raw model scores.

    Args:
        scores: ``(..., H, W, C)`` float32 probabilities in the model's channel order.
        layout: The model's :class:`ChannelLayout`.
        renormalize: See :func:`confidence`.

    Returns:
        ``(labels, confidence)``: ``(..., H, W)`` uint8 CamVid-32 ids and float32 in ``[0, 1]``.

    Example:
        >>> s = np.zeros((1, 2, 33), np.float32); s[0, 0, 18] = 1; s[0, 1, 0] = s[0, 1, 22] = 0.5
        >>> labels, conf = labels_and_confidence(s, ChannelLayout.detect(33))
        >>> labels.tolist(), conf.tolist()
        ([[17, 21]], [[1.0, 1.0]])
    """
    kept = layout.kept(scores)
    winner = argmax(kept)
    labels: LabelMap = layout.channel_ids[winner]
    # The winner's score is the maximum: reading it back is cheaper than another max pass.
    best = np.take_along_axis(kept, winner[..., None].astype(np.intp), axis=-1)[..., 0]
    return labels, _renormalized(best.astype(np.float32, copy=False), kept, renormalize)


def to_class_scores(scores: Scores, layout: ChannelLayout) -> Scores:
    """Re-order model scores to CamVid-32 id order and renormalise over the kept channels.

    Args:
        scores: ``(..., C)`` model probabilities.
        layout: The model's layout.

    Returns:
        ``(..., 32)`` float32, ``out[..., k]`` the probability of CamVid-32 id ``k`` (0 for a
        dropped Void channel).

    Example:
        >>> s = np.full((1, 32), 1 / 32, np.float32)
        >>> to_class_scores(s, ChannelLayout.detect(32, drop_void=True))[0, 30].item()
        0.0
    """
    kept = layout.kept(scores)
    out = np.zeros((*scores.shape[:-1], _NUM_CAMVID32), dtype=np.float32)
    out[..., layout.channel_ids] = kept
    total = out.sum(axis=-1, keepdims=True)
    np.divide(out, total, out=out, where=total > 0)
    return out


def colorize(labels: LabelMap, colors: NDArray[np.uint8]) -> ImageArray:
    """Colour a label map with a colour table.

    Args:
        labels: ``(H, W)`` uint8 ids.
        colors: ``(N, 3)`` uint8 table, ``N <= 256``; ids ``>= N`` are drawn black.

    Returns:
        ``(H, W, 3)`` uint8 RGB.

    Example:
        >>> colorize(np.array([[0, 1, 9]], np.uint8), np.array([[1, 2, 3], [4, 5, 6]], np.uint8))
        array([[[1, 2, 3],
                [4, 5, 6],
                [0, 0, 0]]], dtype=uint8)
    """
    if labels.dtype != np.uint8:
        raise InvalidImageError(f"labels must be uint8 (got dtype {labels.dtype})")
    if colors.dtype != np.uint8 or colors.ndim != 2 or colors.shape[1] != 3 or len(colors) > 256:
        raise InvalidImageError(
            f"colors must be an (N<=256, 3) uint8 table (got shape {colors.shape}, {colors.dtype})"
        )
    lut = colors
    if len(colors) < 256:
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[: len(colors)] = colors
    colored: ImageArray = lut[labels]
    return colored


def overlay(image: ImageArray, mask: ImageArray, alpha: float = 0.6) -> ImageArray:
    """Blend a colour mask over an image: ``round((1 - alpha) * image + alpha * mask)``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W, 3)`` uint8 RGB, e.g. from :func:`colorize`.
        alpha: Weight of the mask in ``[0, 1]``; 0 returns the image, 1 the mask, exactly.

    Returns:
        ``(H, W, 3)`` uint8.

    Example:
        >>> img = np.full((1, 1, 3), 100, np.uint8); m = np.full((1, 1, 3), 201, np.uint8)
        >>> overlay(img, m, 0.5).tolist()
        [[[150, 150, 150]]]
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (got {alpha})")
    if image.shape != mask.shape or image.dtype != np.uint8 or mask.dtype != np.uint8:
        raise InvalidImageError(
            f"image and mask must be HxWx3 uint8 of one shape "
            f"(got {image.shape} {image.dtype} and {mask.shape} {mask.dtype})"
        )
    blended = (1.0 - alpha) * image.astype(np.float64) + alpha * mask.astype(np.float64)
    return np.rint(blended).astype(np.uint8)


def resize_scores(scores: Scores, size: tuple[int, int]) -> Scores:
    """Bilinear resize of ``(H, W, C)`` scores to ``size = (height, width)``.

    Half-pixel centres (like ``tf.image.resize`` and Pillow), edges clamped. Used to bring scores
    computed on a resized image back to the original resolution *before* the argmax.

    Example:
        >>> s = np.array([[[0.0], [1.0]]], np.float32)
        >>> resize_scores(s, (1, 4))[..., 0].tolist()
        [[0.0, 0.25, 0.75, 1.0]]
    """
    if scores.ndim != 3:
        raise BackendError(f"resize_scores needs (H, W, C) scores (got shape {scores.shape})")
    height, width = size
    if (height, width) == scores.shape[:2]:
        return scores

    def axis(
        n_in: int, n_out: int
    ) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32]]:
        centres = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        centres = np.clip(centres, 0, n_in - 1)
        low = np.floor(centres).astype(np.intp)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (centres - low).astype(np.float32)

    y0, y1, wy = axis(scores.shape[0], height)
    x0, x1, wx = axis(scores.shape[1], width)
    rows = scores[y0] * (1 - wy)[:, None, None] + scores[y1] * wy[:, None, None]
    out = rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]
    return out.astype(np.float32, copy=False)
