"""Pure-numpy postprocessing of model scores: channel layouts, argmax, confidence, colour, overlay.

A model returns per-class probabilities ``(..., H, W, C)``. Two channel layouts exist
(see :class:`ChannelLayout`); every function here works in the model's channel order and maps to
CamVid-32 ids only at the end, so no full-size copy of the scores is ever made.

Tie rule everywhere: the first maximum in channel order wins (as :func:`numpy.argmax`).

The hot paths (:func:`labels_and_confidence`, :func:`colorize`, :func:`overlay`) avoid the obvious
numpy expressions, which spend most of their time in per-pixel call overhead or float temporaries;
each is tested for exact equality with its obvious twin in :mod:`camvidseg._reference`. The scripts
in ``benchmarks/`` measure the difference.
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import ConfidenceMap, ImageArray, LabelMap, Scores
from camvidseg.exceptions import BackendError, InvalidImageError

__all__ = [
    "CONFIDENCE_RTOL",
    "ChannelLayout",
    "ColorLookup",
    "argmax",
    "blend_table",
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

#: Largest relative difference between two correct float32 confidences of one pixel.
#:
#: The renormalising sum of ``n <= 32`` non-negative float32 probabilities, added in any order,
#: is within ``(n - 1) * 2**-24`` of the exact sum (relative), so two summation orders (numpy's
#: pairwise sum, BLAS, XLA) differ by at most ``62 * 2**-24``; the division adds half an ulp to
#: each. ``2**-18 = 64 * 2**-24`` bounds the total. Labels and the winning probability itself are
#: always exactly equal.
CONFIDENCE_RTOL = 2.0**-18

#: Pixels per block in :func:`labels_and_confidence`: 8192 x 33 float32 is 1 MB, which stays in
#: the L2/L3 cache while the block is visited three times (argmax, gather, sum) yet amortises the
#: few numpy calls per block. (Above ~14000 pixels OpenBLAS threads the sum, which costs far
#: more than it saves on a busy machine.)
_BLOCK_PIXELS = 8192

#: Bytes per block in :func:`overlay`.
_BLEND_BLOCK = 1 << 16


def _readonly_ids(values: object) -> NDArray[np.uint8]:
    ids = np.array(values, dtype=np.uint8, copy=True).reshape(-1)
    ids.setflags(write=False)
    return ids


@attrs.frozen(eq=False)
class ChannelLayout:
    """How a model's output channels map to CamVid-32 class ids.

    Attributes:
        name: ``"background33"``, ``"void32"``, ``"void32-drop"`` or ``"exact"`` (see
            :meth:`exact`).
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
    #: Size of the label set the ids belong to (the last axis of :func:`to_class_scores`).
    num_classes: int = attrs.field(default=_NUM_CAMVID32, kw_only=True)

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

    @classmethod
    def exact(cls, channel_ids: object, *, num_classes: int) -> ChannelLayout:
        """Layout of a model that returns one channel per class, no background channel (a
        model exported by ``camvidseg finetune``): channel ``j`` is class ``channel_ids[j]``
        of a label set of ``num_classes`` classes.

        Example:
            >>> ChannelLayout.exact([0, 1, 3], num_classes=4).num_channels
            3
        """
        ids = _readonly_ids(channel_ids)
        return cls("exact", len(ids), False, ids, num_classes=num_classes)

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
    best = np.asarray(np.max(scores, axis=-1), dtype=np.float32)
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

    Equal to ``argmax`` / ``max / sum`` over the kept channels (first maximum wins), computed in
    one pass over blocks of pixels that stay in cache, about 2x faster than
    ``np.argmax`` + ``np.max`` on a 960x720 frame:

    1. ``np.argmax`` over *all* ``C`` channels of a block: a contiguous row per pixel, which
       numpy scans with SIMD, unlike the strided ``scores[..., 1:]`` (which it copies first).
       When channel 0 is dropped, the few pixels where it won (or tied) are redone over the
       kept channels only.
    2. The winning probability is gathered from the block at ``row * C + argmax``.
    3. The renormalising sum is a matrix-vector product with a vector of ones (BLAS; blocks
       are small enough for OpenBLAS to keep it single-threaded).

    Labels and the unnormalised maximum are exactly those of the obvious code; the renormalised
    confidence differs from it by float32 rounding only (relative :data:`CONFIDENCE_RTOL`).

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
    layout.check(scores)
    if scores.dtype != np.float32 or scores.shape[-1] > 256:
        # Other dtypes are not what models return; keep them on the obvious path.
        kept = layout.kept(scores)
        labels: LabelMap = layout.channel_ids[argmax(kept)]
        return labels, confidence(kept, renormalize=renormalize)
    channels = scores.shape[-1]
    first = int(layout.drop_first)
    flat = np.ascontiguousarray(scores).reshape(-1, channels)
    pixels = flat.shape[0]
    labels_flat = np.empty(pixels, dtype=np.uint8)
    best = np.empty(pixels, dtype=np.float32)
    total = np.empty(pixels, dtype=np.float32)
    # CamVid id of every channel the argmax over all C channels can return (after the redo
    # below, a dropped channel 0 never wins).
    ids_by_channel = np.zeros(channels, dtype=np.uint8)
    ids_by_channel[first:] = layout.channel_ids
    ones = np.ones(channels - first, dtype=np.float32)
    block = max(1, min(pixels, _BLOCK_PIXELS))
    row_starts = np.arange(block, dtype=np.intp) * channels
    index_buf = np.empty(block, dtype=np.intp)
    for start in range(0, pixels, block):
        rows = flat[start : start + block]
        n = rows.shape[0]
        index = index_buf[:n]
        np.argmax(rows, axis=-1, out=index)
        if first:
            # Channel 0 won (or tied) for these pixels: redo them over the kept channels only,
            # while the block is still in cache.
            redo = np.flatnonzero(index == 0)
            if redo.size:
                index[redo] = np.argmax(rows[redo, first:], axis=-1) + first
        # mode="clip": the indices are in range by construction, and the default "raise" makes
        # numpy buffer the output of every take.
        np.take(ids_by_channel, index, out=labels_flat[start : start + n], mode="clip")
        np.add(index, row_starts[:n], out=index)
        np.take(rows.reshape(-1), index, out=best[start : start + n], mode="clip")
        if renormalize:
            np.matmul(rows[:, first:], ones, out=total[start : start + n])
    if renormalize:
        conf_flat = np.zeros(pixels, dtype=np.float32)
        np.divide(best, total, out=conf_flat, where=total > 0)
        np.clip(conf_flat, 0.0, 1.0, out=conf_flat)
    else:
        conf_flat = best
    shape = scores.shape[:-1]
    return labels_flat.reshape(shape), conf_flat.reshape(shape)


def to_class_scores(scores: Scores, layout: ChannelLayout) -> Scores:
    """Re-order model scores to CamVid-32 id order and renormalise over the kept channels.

    Args:
        scores: ``(..., C)`` model probabilities.
        layout: The model's layout.

    Returns:
        ``(..., 32)`` float32, ``out[..., k]`` the probability of CamVid-32 id ``k`` (0 for a
        dropped Void channel); ``(..., layout.num_classes)`` for an ``"exact"`` layout.

    Example:
        >>> s = np.full((1, 32), 1 / 32, np.float32)
        >>> to_class_scores(s, ChannelLayout.detect(32, drop_void=True))[0, 30].item()
        0.0
    """
    kept = layout.kept(scores)
    out = np.zeros((*scores.shape[:-1], layout.num_classes), dtype=np.float32)
    out[..., layout.channel_ids] = kept
    total = out.sum(axis=-1, keepdims=True)
    np.divide(out, total, out=out, where=total > 0)
    return out


class ColorLookup:
    """A colour table prepared for fast colouring of uint8 label maps (an explicit cache).

    ``colorize`` looks up *two pixels at once*: the label map is read as uint16 pairs, and a
    65536-entry table of 6-byte colour pairs (384 kB, built on first use and kept here) gives both
    colours in one gather. Small maps, or maps of odd size's last pixel, use the 256-entry table
    of 3-byte colours. Ids without a colour are drawn black.

    Args:
        colors: ``(N, 3)`` uint8 table, ``N <= 256``.

    Example:
        >>> lookup = ColorLookup(np.array([[1, 2, 3], [4, 5, 6]], np.uint8))
        >>> lookup.colorize(np.array([[1, 0, 9]], np.uint8)).tolist()
        [[[4, 5, 6], [1, 2, 3], [0, 0, 0]]]
    """

    #: Below this many pixels the pair table is not worth building.
    PAIR_THRESHOLD = 4096

    def __init__(self, colors: NDArray[np.uint8]) -> None:
        if colors.dtype != np.uint8 or colors.ndim != 2 or colors.shape[1] != 3:
            raise InvalidImageError(
                f"colors must be an (N<=256, 3) uint8 table (got shape {colors.shape}, "
                f"{colors.dtype})"
            )
        if len(colors) > 256:
            raise InvalidImageError(f"at most 256 colours fit uint8 labels (got {len(colors)})")
        rgb = np.zeros((256, 3), dtype=np.uint8)
        rgb[: len(colors)] = colors
        rgb.setflags(write=False)
        self.rgb = rgb
        # One 3-byte item per id, so a gather copies whole colours.
        self._singles = rgb.view(np.dtype((np.void, 3))).reshape(256)
        self._pairs: NDArray[np.void] | None = None

    def pairs(self) -> NDArray[np.void]:
        """The 65536-entry table of 6-byte colour pairs, indexed by two labels read as uint16."""
        if self._pairs is None:
            table = np.empty((256, 256, 6), dtype=np.uint8)
            # Little-endian uint16 of bytes (a, b) is b * 256 + a: row b, column a.
            probe = np.array([1, 0], dtype=np.uint8).view(np.uint16)[0]
            first, second = (slice(0, 3), slice(3, 6)) if probe == 1 else (slice(3, 6), slice(0, 3))
            table[:, :, first] = self.rgb[None, :, :]
            table[:, :, second] = self.rgb[:, None, :]
            self._pairs = table.view(np.dtype((np.void, 6))).reshape(65536)
        return self._pairs

    def colorize(self, labels: LabelMap) -> ImageArray:
        """``(H, W)`` uint8 labels to ``(H, W, 3)`` uint8 RGB (any shape ``S`` to ``(*S, 3)``)."""
        if labels.dtype != np.uint8:
            raise InvalidImageError(f"labels must be uint8 (got dtype {labels.dtype})")
        flat = np.ascontiguousarray(labels).reshape(-1)
        out = np.empty((flat.size, 3), dtype=np.uint8)
        if flat.size < self.PAIR_THRESHOLD:
            singles_out = out.view(self._singles.dtype).reshape(-1)
            np.take(self._singles, flat, out=singles_out, mode="clip")
        else:
            even = flat.size - flat.size % 2
            pair_out = out[:even].reshape(-1, 6).view(np.dtype((np.void, 6))).reshape(-1)
            # Every uint16 is a valid index: mode="clip" only spares the bounds-check buffer.
            np.take(self.pairs(), flat[:even].view(np.uint16), out=pair_out, mode="clip")
            if even < flat.size:
                out[even] = self.rgb[flat[even]]
        return out.reshape(*labels.shape, 3)


def colorize(labels: LabelMap, colors: NDArray[np.uint8]) -> ImageArray:
    """Colour a label map with a colour table.

    Gathers whole 3-byte colours (or pairs of them, see :class:`ColorLookup`) instead of
    indexing a ``(256, 3)`` array, which numpy does element by element. Keep a
    :class:`ColorLookup` (as :class:`~camvidseg.palette.CamVidPalette` does) to reuse its tables.

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
    return ColorLookup(colors).colorize(labels)


def blend_table(alpha: float) -> NDArray[np.uint8]:
    """``table[i * 256 + m] = rint((1 - alpha) * i + alpha * m)`` for all uint8 ``i`` and ``m``.

    Computed with exactly the float64 operations of the obvious per-pixel blend, so looking a
    pixel up in it gives bit-for-bit the same value for any ``alpha``.

    Returns:
        ``(65536,)`` uint8 (64 kB, fits the L2 cache).

    Example:
        >>> table = blend_table(0.5)
        >>> int(table[100 * 256 + 201]), int(table[10 * 256 + 11])
        (150, 10)
    """
    values = np.arange(256, dtype=np.float64)
    blended = (1.0 - alpha) * values[:, None] + alpha * values[None, :]
    table: NDArray[np.uint8] = np.rint(blended).astype(np.uint8).reshape(-1)
    return table


def overlay(image: ImageArray, mask: ImageArray, alpha: float = 0.6) -> ImageArray:
    """Blend a colour mask over an image: ``round((1 - alpha) * image + alpha * mask)``.

    Rounding is half to even, computed in float64, exactly as the obvious float expression; but
    each output byte is looked up in a 64 kB :func:`blend_table` indexed by
    ``image * 256 + mask`` (uint16), which avoids three float64 temporaries per pixel.

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
    if alpha in (0.0, 1.0):
        end: ImageArray = (mask if alpha else image).copy()
        return end
    table = blend_table(alpha)
    image_flat = np.ascontiguousarray(image).reshape(-1)
    mask_flat = np.ascontiguousarray(mask).reshape(-1)
    blended = np.empty(image_flat.size, dtype=np.uint8)
    # Blocks keep the uint16 index (128 kB) and the table (64 kB) in the L2 cache.
    index_buf = np.empty(min(image_flat.size, _BLEND_BLOCK), dtype=np.uint16)
    for start in range(0, image_flat.size, _BLEND_BLOCK):
        stop = min(start + _BLEND_BLOCK, image_flat.size)
        index = index_buf[: stop - start]
        np.left_shift(image_flat[start:stop], 8, out=index, dtype=np.uint16)
        np.bitwise_or(index, mask_flat[start:stop], out=index)
        np.take(table, index, out=blended[start:stop], mode="clip")
    result: ImageArray = blended.reshape(image.shape)
    return result


def bilinear_axis(
    n_in: int, n_out: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32]]:
    """Source indices and weights of a bilinear resize along one axis (half-pixel centres).

    Returns ``(low, high, weight)``: output ``i`` is ``(1 - weight[i]) * in[low[i]] +
    weight[i] * in[high[i]]``, edges clamped. Shared by :func:`resize_scores` and the banded
    resize in :mod:`camvidseg.tiling`, which must agree bit for bit.

    Example:
        >>> [a.tolist() for a in bilinear_axis(2, 4)]
        [[0, 0, 0, 1], [1, 1, 1, 1], [0.0, 0.25, 0.75, 0.0]]
    """
    centres = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    centres = np.clip(centres, 0, n_in - 1)
    low = np.floor(centres).astype(np.intp)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, (centres - low).astype(np.float32)


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

    y0, y1, wy = bilinear_axis(scores.shape[0], height)
    x0, x1, wx = bilinear_axis(scores.shape[1], width)
    rows = scores[y0] * (1 - wy)[:, None, None] + scores[y1] * wy[:, None, None]
    out = rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]
    return out.astype(np.float32, copy=False)
