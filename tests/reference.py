"""The obvious implementations that the fast paths are tested and benchmarked against.

Each function here is the straightforward numpy expression of what its fast twin computes; it is
kept deliberately simple so that it is evidently right. Tests assert that every fast path in
:mod:`camvidseg.postprocess` and :class:`camvidseg.palette.CamVidPalette` returns exactly what these
return (confidence within :data:`camvidseg.postprocess.CONFIDENCE_RTOL`); the scripts in
``benchmarks/`` report how much faster the fast paths are. The module lives with the tests, not
in the package (the wheel does not ship it); benchmarks import it from the repository root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from camvidseg._types import ConfidenceMap, ImageArray, LabelMap, Scores

if TYPE_CHECKING:
    from camvidseg.postprocess import ChannelLayout

__all__ = [
    "colorize_reference",
    "decode_reference",
    "labels_and_confidence_reference",
    "overlay_reference",
]


def labels_and_confidence_reference(
    scores: Scores, layout: ChannelLayout, *, renormalize: bool = True
) -> tuple[LabelMap, ConfidenceMap]:
    """``np.argmax`` + ``np.max`` (+ ``np.sum``) over the kept channels.

    Example:
        >>> from camvidseg.postprocess import ChannelLayout
        >>> s = np.array([[[0.5, 0.2, 0.2, *[0.0] * 30]]], np.float32)
        >>> labels, conf = labels_and_confidence_reference(s, ChannelLayout.detect(33))
        >>> labels.tolist(), conf.tolist()
        ([[0]], [[0.5]])
    """
    kept = scores[..., 1:] if layout.drop_first else scores
    labels: LabelMap = layout.channel_ids[np.argmax(kept, axis=-1)]
    best = np.asarray(np.max(kept, axis=-1), dtype=np.float32)
    if not renormalize:
        return labels, best
    total = np.sum(kept, axis=-1, dtype=np.float32)
    conf = np.zeros_like(best)
    np.divide(best, total, out=conf, where=total > 0)
    np.clip(conf, 0.0, 1.0, out=conf)
    return labels, conf


def colorize_reference(labels: LabelMap, colors: NDArray[np.uint8]) -> ImageArray:
    """Fancy indexing into a 256-entry table (ids without a colour are black).

    Example:
        >>> colors = np.array([[0, 0, 0], [9, 8, 7]], np.uint8)
        >>> colorize_reference(np.array([[1, 7]], np.uint8), colors)
        array([[[9, 8, 7],
                [0, 0, 0]]], dtype=uint8)
    """
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(colors)] = colors
    colored: ImageArray = lut[labels]
    return colored


def overlay_reference(image: ImageArray, mask: ImageArray, alpha: float) -> ImageArray:
    """``rint((1 - alpha) * image + alpha * mask)`` in float64, rounding half to even.

    Example:
        >>> image, mask = np.full((1, 1, 3), 10, np.uint8), np.full((1, 1, 3), 11, np.uint8)
        >>> overlay_reference(image, mask, 0.5)
        array([[[10, 10, 10]]], dtype=uint8)
    """
    blended = (1.0 - alpha) * image.astype(np.float64) + alpha * mask.astype(np.float64)
    out: ImageArray = np.rint(blended).astype(np.uint8)
    return out


def decode_reference(
    rgb: ImageArray, colors: NDArray[np.uint8], missing: int
) -> tuple[LabelMap, NDArray[np.bool_]]:
    """Labels of an RGB label image by sorted search over packed colours.

    Returns:
        ``(labels, known)``: ``(H, W)`` uint8 ids (``missing`` for colours not in ``colors``) and
        the ``(H, W)`` mask of pixels whose colour is in the table. The first id of a colour that
        appears twice wins.

    Example:
        >>> colors = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
        >>> rgb = np.array([[[4, 5, 6], [0, 0, 0]]], np.uint8)
        >>> labels, known = decode_reference(rgb, colors, 255)
        >>> labels.tolist(), known.tolist()
        ([[1, 255]], [[True, False]])
    """
    as32 = rgb.astype(np.uint32)
    packed = (as32[..., 0] << 16) | (as32[..., 1] << 8) | as32[..., 2]
    table = colors.astype(np.uint32)
    keys = (table[:, 0] << 16) | (table[:, 1] << 8) | table[:, 2]
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    pos = np.searchsorted(sorted_keys, packed)
    np.minimum(pos, len(sorted_keys) - 1, out=pos)
    known = sorted_keys[pos] == packed
    labels = np.where(known, order[pos], missing).astype(np.uint8)
    return labels, known
