"""The Segmenter (images in, Segmentations out) and the Segmentation result."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg import validators
from camvidseg._types import (
    ConfidenceMap,
    ImageArray,
    ImageLike,
    LabelMap,
    Scores,
)
from camvidseg.backends.base import Backend, LabelBackend, check_scores
from camvidseg.backends.handles import DEFAULT_HANDLE, DEFAULT_TIMEOUT
from camvidseg.cleanup import CleanupConfig
from camvidseg.exceptions import BackendError, ConfigError, InvalidImageError, InvalidLabelError
from camvidseg.groundtruth import read_label_file
from camvidseg.imageio import resize_image, save_label_png, to_rgb_array
from camvidseg.labelset import model_label_set
from camvidseg.palette import CamVidPalette, get_grouping
from camvidseg.postprocess import (
    ChannelLayout,
    labels_and_confidence,
    overlay,
    to_class_scores,
)
from camvidseg.tiling import (
    DEFAULT_BAND_BYTES,
    Band,
    choose_tile,
    iter_score_bands,
    labels_from_bands,
    stack_bands,
)
from camvidseg.tta import TTAConfig, predict_with_tta, view_size
from camvidseg.uncertainty import apply_min_confidence

if TYPE_CHECKING:
    from camvidseg.video import TemporalSmoothing

__all__ = ["DEFAULT_HANDLE", "DEFAULT_MAX_PIXELS", "DEFAULT_TILE", "Segmentation", "Segmenter"]

#: Images with more pixels than this are segmented in tiles (and finalised in row bands).
DEFAULT_MAX_PIXELS = 4096 * 4096
#: Tile side used when tiling starts automatically.
DEFAULT_TILE = 512
#: Scores turned into labels at once while finalising a large image band by band.
_BAND_BYTES = DEFAULT_BAND_BYTES

#: What a Segmenter finalises: CamVid-32 labels, confidence, class scores (if asked for).
_Labelled = tuple[LabelMap, ConfidenceMap, "Scores | None"]
#: Guards the layout a Segmenter detects (rarely taken: once per Segmenter).
_DETECT_LOCK = threading.Lock()


def _check_result(instance: Segmentation, attribute: attrs.Attribute[Any], value: Any) -> None:
    del attribute, value
    labels, conf = instance.labels, instance.confidence
    if labels.dtype != np.uint8 or labels.ndim != 2:
        raise InvalidImageError(
            f"labels must be HxW uint8 (got shape {labels.shape}, dtype {labels.dtype})"
        )
    if conf.shape != labels.shape or conf.dtype != np.float32:
        raise InvalidImageError(
            f"confidence must be float32 of the labels' shape {labels.shape} "
            f"(got shape {conf.shape}, dtype {conf.dtype})"
        )
    if instance.image is not None and instance.image.shape != (*labels.shape, 3):
        raise InvalidImageError(
            f"image shape {instance.image.shape} does not match labels {labels.shape}"
        )


@attrs.frozen(eq=False)
class Segmentation:
    """The result of segmenting one image.

    Attributes:
        labels: ``(H, W)`` uint8 class ids of ``palette`` (255 = unlabelled, if a confidence
            threshold was applied).
        confidence: ``(H, W)`` float32 in ``[0, 1]``: the winning class's probability after the
            background channel is dropped and the rest renormalised.
        palette: The label set of ``labels``.
        image: The ``(H, W, 3)`` uint8 input, if kept (needed by :meth:`overlay`).
        scores: ``(H, W, 32)`` float32 class probabilities in CamVid-32 id order, when asked for.
        source: Path of the input file, if it came from one.
    """

    labels: LabelMap = attrs.field(validator=_check_result)
    confidence: ConfidenceMap
    palette: CamVidPalette = attrs.field(factory=CamVidPalette.camvid32)
    image: ImageArray | None = None
    scores: Scores | None = None
    source: Path | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return (int(self.labels.shape[0]), int(self.labels.shape[1]))

    def colorize(self) -> ImageArray:
        """``(H, W, 3)`` uint8 colour mask."""
        return self.palette.colorize(self.labels)

    def overlay(self, alpha: float = 0.6, image: ImageLike | None = None) -> ImageArray:
        """``(H, W, 3)`` uint8 blend ``round((1 - alpha) * image + alpha * colour)``.

        Args:
            alpha: 0 gives the image, 1 the mask, exactly.
            image: The image to blend over (default: the kept input image).
        """
        base = self.image if image is None else to_rgb_array(image)
        if base is None:
            raise InvalidImageError("this Segmentation kept no image; pass image= to overlay()")
        return overlay(base, self.colorize(), alpha)

    def class_counts(self) -> dict[str, int]:
        """Pixel count per class present, largest first (``"unlabelled"`` for 255)."""
        counts = np.bincount(self.labels.reshape(-1), minlength=256)
        present = [int(i) for i in np.flatnonzero(counts)]
        present.sort(key=lambda i: (-int(counts[i]), i))
        return {self.palette.name_of(i): int(counts[i]) for i in present}

    def class_areas(self) -> dict[str, float]:
        """Fraction of pixels per class present, largest first; sums to 1.

        Example:
            >>> labels = np.array([[17, 17, 17, 21]], np.uint8)
            >>> seg = Segmentation(labels, np.ones((1, 4), np.float32))
            >>> seg.class_areas()
            {'Road': 0.75, 'Sky': 0.25}
        """
        total = self.labels.size
        return {name: count / total for name, count in self.class_counts().items()}

    def to_camvid11(self, grouping: str = "merge") -> Segmentation:
        """The same result grouped to CamVid-11 with a named grouping (default ``"merge"``)."""
        group = get_grouping(grouping)
        if self.palette.name != group.source.name:
            raise ConfigError(
                f"grouping {grouping!r} maps {group.source.name}, not {self.palette.name}"
            )
        return attrs.evolve(
            self, labels=group.remap(self.labels), palette=group.target, scores=None
        )

    def with_cleanup(self, cleanup: CleanupConfig) -> Segmentation:
        """The labels cleaned up with ``cleanup`` (ids of this palette; confidence unchanged).

        Example:
            >>> labels = np.array([[17, 17, 17], [17, 5, 17], [17, 17, 17]], np.uint8)
            >>> seg = Segmentation(labels, np.ones((3, 3), np.float32))
            >>> seg.with_cleanup(CleanupConfig(majority=3)).class_counts()
            {'Road': 9}
        """
        if not cleanup.enabled:
            return self
        return attrs.evolve(self, labels=cleanup.apply(self.labels))

    def with_min_confidence(self, threshold: float) -> Segmentation:
        """Pixels with confidence below ``threshold`` become unlabelled (255); see
        :func:`camvidseg.uncertainty.apply_min_confidence`."""
        labels = apply_min_confidence(self.labels, self.confidence, threshold)
        return attrs.evolve(self, labels=labels)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the labels as an indexed PNG with the palette embedded (atomically).

        The file opens coloured in any viewer, and :meth:`load` gives back the same ids and
        recognises the palette.

        Raises:
            InvalidImageError: if the labels hold ids the palette lacks (255, unlabelled, is
                allowed); nothing is written then.
        """
        return save_label_png(path, self.labels, self.palette)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        palette: CamVidPalette | None = None,
        image: ImageLike | None = None,
    ) -> Segmentation:
        """Read labels written by :meth:`save` (confidence is unknown and set to 1).

        Args:
            path: An indexed (or grayscale) PNG of class ids.
            palette: The label set of the ids. Default: the built-in palette (CamVid-32 or
                CamVid-11) whose colours the PNG embeds, else CamVid-32 (e.g. for a grayscale
                PNG; pass ``CamVidPalette.camvid11()`` for SegNet's ``*annot`` files).
            image: The segmented image, kept for :meth:`overlay`.

        Raises:
            InvalidImageError: naming the file, if it is not an index image (or cannot be read).
            InvalidLabelError: naming the file, if it holds ids the palette lacks (other than
                255).

        Example:
            >>> import os, tempfile
            >>> labels = np.array([[3, 11, 255]], np.uint8)
            >>> seg = Segmentation(labels, np.ones((1, 3), np.float32), CamVidPalette.camvid11())
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     loaded = Segmentation.load(seg.save(os.path.join(tmp, "labels.png")))
            >>> loaded.palette.name, loaded.labels.tolist()
            ('camvid11', [[3, 11, 255]])
        """
        forced = palette is not None
        try:
            read = read_label_file(
                path,
                label_format="index",
                index_palette=palette if forced else CamVidPalette.camvid32(),
                use_embedded=not forced,
            )
        except InvalidLabelError as exc:
            raise InvalidLabelError(
                f"{exc}; pass palette= if the file uses another label set"
            ) from None
        labels = read.labels
        array = None if image is None else to_rgb_array(image)
        return cls(labels, np.ones(labels.shape, np.float32), read.palette, array, source=read.path)


def _chunks(
    images: Iterable[ImageLike], size: int
) -> Iterator[list[tuple[ImageArray, Path | None]]]:
    """``images`` as RGB arrays with the path each came from (if any), ``size`` at a time."""
    chunk: list[tuple[ImageArray, Path | None]] = []
    for image in images:
        source = Path(image) if isinstance(image, (str, os.PathLike)) else None
        chunk.append((to_rgb_array(image), source))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _model_input(image: ImageArray, multiple: int) -> tuple[NDArray[np.float32], tuple[int, int]]:
    """``image`` scaled to [0, 1] and edge-padded to a multiple of ``multiple``; its size before."""
    array = image.astype(np.float32) / np.float32(255.0)
    multiple = max(1, int(multiple))
    pad_h, pad_w = -array.shape[0] % multiple, -array.shape[1] % multiple
    if pad_h or pad_w:
        array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return array, (int(image.shape[0]), int(image.shape[1]))


def _batches_by_shape(
    backend: Backend, images: Sequence[ImageArray]
) -> Iterator[tuple[list[tuple[int, int, int]], NDArray[np.float32]]]:
    """Model inputs of ``images`` stacked by shape (one model call each), with the
    ``(index, height, width)`` of each input in the batch (the size before padding)."""
    prepared = [_model_input(image, backend.input_multiple) for image in images]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, (array, _) in enumerate(prepared):
        by_shape.setdefault(array.shape, []).append(index)
    for indices in by_shape.values():
        batch = np.stack([prepared[i][0] for i in indices])
        yield [(i, *prepared[i][1]) for i in indices], batch


def _predict_images(
    backend: Backend, images: Sequence[ImageArray], *, check: Callable[[int], object]
) -> list[Scores]:
    """Scores ``(h, w, C)`` of each image at its own size (padding cropped off); every batch's
    channel count goes through ``check`` before any postprocessing."""
    results: dict[int, Scores] = {}
    for items, batch in _batches_by_shape(backend, images):
        scores = check_scores(backend.predict(batch), batch.shape, backend.name)
        # Channels contiguous, as models return them: reductions over the channels then round
        # identically on a whole image and on its tiles (no-op for contiguous scores).
        scores = np.ascontiguousarray(scores)
        check(scores.shape[-1])  # e.g. reject odd channel counts
        for k, (i, height, width) in enumerate(items):
            results[i] = scores[k, :height, :width]
    return [results[i] for i in range(len(images))]


def _predict_labels(
    backend: LabelBackend, layout: ChannelLayout, images: Sequence[ImageArray]
) -> list[tuple[LabelMap, ConfidenceMap]]:
    """Like :func:`_predict_images`, but the backend returns labels and confidence."""
    results: dict[int, tuple[LabelMap, ConfidenceMap]] = {}
    for items, batch in _batches_by_shape(backend, images):
        labels, conf = backend.predict_labels(batch, layout)
        for k, (i, height, width) in enumerate(items):
            results[i] = (
                np.ascontiguousarray(labels[k, :height, :width]),
                np.ascontiguousarray(conf[k, :height, :width]),
            )
    return [results[i] for i in range(len(images))]


def _labelled(
    scores: Scores, layout_for: Callable[[int], ChannelLayout], return_scores: bool
) -> _Labelled:
    """Labels, confidence and (if asked for) class scores of ``(H, W, C)`` model scores."""
    layout = layout_for(scores.shape[-1])
    labels, conf = labels_and_confidence(scores, layout)
    return labels, conf, to_class_scores(scores, layout) if return_scores else None


def _check_fits(scores: Scores, image: ImageArray) -> None:
    if scores.ndim != 3 or scores.shape[:2] != image.shape[:2]:
        raise InvalidImageError(
            f"scores must be (H, W, C) for an image of shape {image.shape} "
            f"(got shape {scores.shape})"
        )


def _fitting(channels: int, *layouts: ChannelLayout | None) -> ChannelLayout | None:
    """The first of ``layouts`` for scores of ``channels`` channels, if any."""
    return next((x for x in layouts if x is not None and x.num_channels == channels), None)


_POSITIVE_OR_NONE = validators.optional(validators.int_range(1))
_FRACTION_OR_NONE = validators.optional(validators.in_range(0, 1))
_TTA_OR_NONE = validators.optional(validators.instance_of(TTAConfig, "a TTAConfig"))
_CLEANUP_OR_NONE = validators.optional(validators.instance_of(CleanupConfig, "a CleanupConfig"))


def _model_palette(segmenter: Segmenter) -> CamVidPalette:
    """The label set a backend's outputs are in: its own (a head, or an exported fine-tuned
    model), else CamVid-32."""
    label_set = model_label_set(segmenter.backend)
    return CamVidPalette.camvid32() if label_set is None else label_set.to_palette()


#: A Segmenter's default label set: its backend's own (see :func:`_model_palette`).
_MODEL_PALETTE = attrs.Factory(_model_palette, takes_self=True)


def _check_palette(instance: Segmenter, attribute: attrs.Attribute[Any], value: Any) -> None:
    source = _model_palette(instance)
    if source.name == "camvid32" and value.name not in ("camvid32", "camvid11"):
        raise ConfigError(f"palette must be camvid32 or camvid11 (got {value.name})")
    if source.name != "camvid32" and value.names != source.names:
        raise ConfigError(
            f"palette {value.name} does not fit the model's own label set "
            f"{source.name}: leave it out to use the model's classes"
        )


def _check_grouping(instance: Segmenter, attribute: attrs.Attribute[Any], value: str) -> None:
    if instance.palette.name == "camvid11" and _model_palette(instance).name == "camvid32":
        get_grouping(value)  # fail early on an unknown name


def _check_overlap(instance: Segmenter, attribute: attrs.Attribute[Any], value: int) -> None:
    validators.check_tile_overlap(instance.tile or DEFAULT_TILE, value)


def _detect_layout(segmenter: Segmenter, channels: int) -> ChannelLayout:
    """The layout of ``channels``-channel scores of the segmenter's backend: its label set's
    (a head or an exported model), else detected from the channel count."""
    label_set = model_label_set(segmenter.backend)
    if label_set is None:
        return ChannelLayout.detect(channels, drop_void=segmenter.drop_void)
    if channels != label_set.channels:
        raise BackendError(
            f"{segmenter.backend.name} returned {channels} channels; its label set "
            f"{label_set.describe()} has {label_set.channels}"
        )
    return label_set.channel_layout()


@attrs.define(kw_only=True)
class Segmenter:
    """Segments street-scene images with a backend (the real HRNet model, or a fake).

    Args:
        backend: Any :class:`~camvidseg.backends.Backend`.
        palette: Label set of results: CamVid-32 (default) or CamVid-11 (grouped with
            ``grouping``). For a backend with its own label set (a fine-tuned head) the
            default is that label set; CamVid-11 may group a CamVid-32 one.
        grouping: Name of the 32 -> 11 grouping used when ``palette`` is CamVid-11.
        max_side: Resize so the longer side is at most this before inference; the scores are
            resized back before the argmax, so labels always have the input's size.
        batch_size: Images (or tiles of one image) per model call.
        drop_void: With a 32-channel model, discard channel 0 instead of mapping it to Void.
        min_confidence: Pixels whose confidence is lower become unlabelled (255).
        keep_image: Keep the input array on each Segmentation (for overlays).
        tile: Segment in overlapping ``tile x tile`` tiles (after ``max_side``), blending their
            scores with smooth weights before the argmax. ``None``: only images over
            ``max_pixels`` are tiled, with :data:`DEFAULT_TILE`.
        overlap: Minimum overlap of neighbouring tiles in pixels (at most half the tile).
        max_pixels: Images with more pixels are tiled and finalised in row bands, so memory
            stays bounded (about ``tile * width * channels * 4`` bytes of scores at once).
            ``None`` never tiles automatically.
        tta: Test-time augmentation: class probabilities are averaged over horizontal flips
            and scales (see :class:`~camvidseg.tta.TTAConfig`) before the argmax.
        cleanup: Label-map cleanup (:class:`~camvidseg.cleanup.CleanupConfig`) of the labels of
            ``palette`` (after grouping: its ``classes`` are ids of ``palette``), before
            ``min_confidence`` abstains where the model is unsure; it leaves ``confidence`` as is.
        fused_labels: Let a :class:`~camvidseg.backends.LabelBackend` compute labels and
            confidence itself (e.g. inside the TF graph) when no scores are needed (no
            ``return_scores``, ``max_side``, TTA or tiling); the results are the same.
        layout: Force the channel layout of the model's scores (default: detected from their
            channel count, see :meth:`layout_for`).

    Example:
        >>> from camvidseg.testing import NearestColorBackend
        >>> road = np.full((2, 2, 3), [128, 64, 128], np.uint8)
        >>> seg = Segmenter(NearestColorBackend()).segment(road)
        >>> seg.labels.tolist(), seg.class_areas()
        ([[17, 17], [17, 17]], {'Road': 1.0})
    """

    backend: Backend = attrs.field(kw_only=False)
    palette: CamVidPalette = attrs.field(default=_MODEL_PALETTE, validator=_check_palette)
    grouping: str = attrs.field(default="merge", validator=_check_grouping)
    max_side: int | None = attrs.field(default=None, validator=_POSITIVE_OR_NONE)
    batch_size: int = attrs.field(default=1, validator=validators.int_range(1))
    drop_void: bool = False
    min_confidence: float | None = attrs.field(default=None, validator=_FRACTION_OR_NONE)
    keep_image: bool = True
    layout: ChannelLayout | None = None
    tile: int | None = attrs.field(default=None, validator=_POSITIVE_OR_NONE)
    overlap: int = attrs.field(default=64, validator=_check_overlap)
    max_pixels: int | None = attrs.field(default=DEFAULT_MAX_PIXELS, validator=_POSITIVE_OR_NONE)
    tta: TTAConfig | None = attrs.field(default=None, validator=_TTA_OR_NONE)
    cleanup: CleanupConfig | None = attrs.field(default=None, validator=_CLEANUP_OR_NONE)
    fused_labels: bool = True
    # Learnt from the first scores unless `layout` fits them; read through layout_for().
    _detected: ChannelLayout | None = attrs.field(default=None, init=False, repr=False, eq=False)

    @classmethod
    def from_hub(
        cls,
        handle: str | os.PathLike[str] = DEFAULT_HANDLE,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        input_multiple: int = 1,
        precision: str = "fp32",
        threads: int | None = None,
        head: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> Segmenter:
        """Open a model handle with :func:`camvidseg.backends.open_backend` and wrap it.

        Args:
            handle: tfhub.dev URL (default), Kaggle Models handle, SavedModel folder, OpenVINO IR
                folder (``camvidseg model convert``; no TensorFlow needed) or ``fake:33``/``32``.
            cache_dir: TF Hub cache (default ``$TFHUB_CACHE_DIR``, else ``$TMPDIR/tfhub_modules``).
            timeout: Seconds a network read may stall before the load fails.
            input_multiple: Pad inputs so H and W are multiples of this (1: any size).
            precision: ``"fp32"`` (default) or ``"bf16"`` (CPUs with avx512_bf16 or AMX).
            threads: Inference threads (default: the backend's, all cores).
            head: A ``camvidseg finetune`` head folder: the outputs are its classes (its label
                set is the default ``palette``); refused if trained on another backbone.
            **options: Passed to :class:`Segmenter` (``max_side``, ``batch_size``, ...).

        Raises:
            ModelLoadError: the model cannot be found or loaded (the message lists what was tried).
            ConfigError: for bf16 on a CPU without native bfloat16.

        Example:
            >>> Segmenter.from_hub("fake:32", batch_size=2).backend.name
            'fake:nearest-color-32'
        """
        from camvidseg.backends.resolver import open_backend

        backend = open_backend(
            handle,
            cache_dir=cache_dir,
            timeout=timeout,
            precision=precision,
            threads=threads,
            input_multiple=input_multiple,
            head=head,
        )
        return cls(backend, **options)

    def segment(self, image: ImageLike, *, return_scores: bool = False) -> Segmentation:
        """Segment one image (PIL image, ``HxWx3`` uint8 array, or path)."""
        return next(iter(self.segment_batch([image], return_scores=return_scores)))

    def segment_batch(
        self,
        images: Iterable[ImageLike],
        batch_size: int | None = None,
        *,
        return_scores: bool = False,
    ) -> Iterator[Segmentation]:
        """Segment many images lazily, in input order (of any sizes: one model call per size).

        Args:
            images: Any iterable of images; consumed ``batch_size`` at a time.
            batch_size: Overrides the Segmenter's ``batch_size``.
            return_scores: Keep ``(H, W, 32)`` class probabilities on each result.
        """
        size = self.batch_size if batch_size is None else batch_size
        validators.int_range(1).check(size, "batch_size")
        for chunk in _chunks(images, size):
            yield from self._segment_chunk(chunk, return_scores)

    def segment_video(
        self,
        source: str | os.PathLike[str] | Iterable[ImageLike],
        *,
        temporal: str | TemporalSmoothing | None = None,
        **options: Any,
    ) -> Iterator[Segmentation]:
        """Segment a video file, a folder of frames or images, frame by frame: delegates to
        :func:`camvidseg.video.segment_video` (``temporal="ema"``, ``rate=``, ``frames=`` as
        there; video files need the ``video`` extra)."""
        from camvidseg.video import segment_video

        return segment_video(self, source, temporal=temporal, **options)

    def predict_scores(self, images: Sequence[ImageArray]) -> list[Scores]:
        """Raw model probabilities ``(H, W, C)`` per image, at each image's own size.

        Images are grouped by (resized) size into model calls; ``max_side`` resizing and
        padding to the backend's ``input_multiple`` are undone before returning. With ``tta``
        the scores are the average over the augmented views; images that need tiling are
        segmented tile by tile and blended (the full ``(H, W, C)`` array is still returned).
        """
        tiled = [self._tile_size(image) is not None for image in images]
        whole = [image for image, t in zip(images, tiled, strict=True) if not t]
        scores = iter(self._predict_views(whole, self.max_side))
        return [
            stack_bands(self._score_bands(image), image.shape[:2]) if t else next(scores)
            for image, t in zip(images, tiled, strict=True)
        ]

    def layout_for(self, channels: int) -> ChannelLayout:
        """The channel layout in which this Segmenter reads scores of ``channels`` channels.

        ``layout`` if it was given for that many channels, else the layout learnt from the
        backend's scores, else the one detected from the channel count (with ``drop_void``).

        Example:
            >>> from camvidseg.testing import NearestColorBackend
            >>> Segmenter(NearestColorBackend(), drop_void=True).layout_for(32).name
            'void32-drop'
        """
        known = _fitting(channels, self.layout, self._detected)
        return known or _detect_layout(self, channels)

    def needs_bands(self, image: ImageArray) -> bool:
        """Whether :meth:`segment` finalises ``image`` in row bands (it is tiled, or has more
        than ``max_pixels`` pixels) rather than from one ``(H, W, C)`` scores array, which
        :meth:`predict_scores` + :meth:`from_scores` would hold (a pipeline sends such images
        through :meth:`segment` instead).

        Example:
            >>> from camvidseg.testing import NearestColorBackend
            >>> segmenter = Segmenter(NearestColorBackend(), max_pixels=100)
            >>> [segmenter.needs_bands(np.zeros((8, w, 3), np.uint8)) for w in (8, 16)]
            [False, True]
        """
        pixels = image.shape[0] * image.shape[1]
        too_large = self.max_pixels is not None and pixels > self.max_pixels
        return too_large or self._tile_size(image) is not None

    def from_scores(
        self,
        image: ImageArray,
        scores: Scores,
        *,
        source: Path | None = None,
        return_scores: bool = False,
    ) -> Segmentation:
        """Turn one image's model probabilities into a :class:`Segmentation`.

        :meth:`segment` is :meth:`predict_scores` followed by this; a pipeline can run the model
        in one thread and this post-processing (argmax, confidence, grouping) in others.

        Args:
            image: ``(H, W, 3)`` uint8 input the scores belong to.
            scores: ``(H, W, C)`` float32 from :meth:`predict_scores` for ``image``.
            source: Path the image came from, kept on the result.
            return_scores: Keep ``(H, W, 32)`` class probabilities on the result.

        Example:
            >>> from camvidseg.testing import NearestColorBackend
            >>> segmenter, sky = Segmenter(NearestColorBackend()), np.full((1, 2, 3), 128, np.uint8)
            >>> segmenter.from_scores(sky, segmenter.predict_scores([sky])[0]).labels.tolist()
            [[21, 21]]
        """
        _check_fits(scores, image)
        return self._result(image, source, _labelled(scores, self.layout_for, return_scores))

    def _segment_chunk(
        self, chunk: list[tuple[ImageArray, Path | None]], return_scores: bool
    ) -> Iterator[Segmentation]:
        arrays = [array for array, _ in chunk]
        banded = [self.needs_bands(array) for array in arrays]
        fused = self.backend if isinstance(self.backend, LabelBackend) else None
        # The layout is learnt from the first scores, so the first chunk takes the score path.
        # Anything that needs scores (TTA averaging, tile blending, resizing back) takes it too.
        layout = self._detected if self._detected is not None else self.layout
        if (
            fused is not None
            and self.fused_labels
            and layout is not None
            and not return_scores
            and not self.max_side
            and self.tta is None
            and not any(banded)
        ):
            # The backend computes labels and confidence where the scores are (5 bytes/pixel).
            pairs = _predict_labels(fused, layout, arrays)
            for (array, source), (labels, conf) in zip(chunk, pairs, strict=True):
                yield self._result(array, source, (labels, conf, None))
            return
        whole = [array for array, band in zip(arrays, banded, strict=True) if not band]
        scores = iter(self.predict_scores(whole))
        for (array, source), band in zip(chunk, banded, strict=True):
            if band:  # finalised one row band at a time: no (H, W, C) array of the whole image
                labelled = labels_from_bands(
                    self._score_bands(array),
                    array.shape[:2],
                    self.layout_for,
                    return_scores=return_scores,
                    band_bytes=_BAND_BYTES,
                )
            else:
                labelled = _labelled(next(scores), self.layout_for, return_scores)
            yield self._result(array, source, labelled)

    def _learn_layout(self, channels: int) -> None:
        """Note the layout of the backend's scores, once, under a lock (threads share it)."""
        with _DETECT_LOCK:
            if _fitting(channels, self.layout, self._detected) is None:
                self._detected = _detect_layout(self, channels)

    def _predict_views(
        self, images: Sequence[ImageArray], max_side: int | None = None
    ) -> list[Scores]:
        """Scores at each image's own size, averaged over the TTA views (the tiling callback)."""
        predict = functools.partial(_predict_images, self.backend, check=self._learn_layout)
        return predict_with_tta(images, predict, self.tta, max_side=max_side, resize=resize_image)

    def _result(self, image: ImageArray, source: Path | None, labelled: _Labelled) -> Segmentation:
        (labels, conf, scores), kept = labelled, image if self.keep_image else None
        model = _model_palette(self)
        result = Segmentation(labels, conf, model, image=kept, scores=scores, source=source)
        if self.palette.name != model.name:
            result = result.to_camvid11(self.grouping)
        # Cleanup first: it only ever sees class ids, so abstaining (255) is never smoothed over.
        if self.cleanup is not None:
            result = result.with_cleanup(self.cleanup)
        if self.min_confidence is not None:
            result = result.with_min_confidence(self.min_confidence)
        return result

    def _tile_size(self, image: ImageArray) -> int | None:
        """Tile side for ``image`` (at model resolution), or ``None`` to run it whole."""
        size = view_size(image.shape, max_side=self.max_side)
        return choose_tile(size, self.tile, max_pixels=self.max_pixels, default=DEFAULT_TILE)

    def _score_bands(self, image: ImageArray) -> Iterator[Band]:
        """Scores of ``image`` at its size as row bands (see :func:`~.tiling.iter_score_bands`)."""
        return iter_score_bands(
            image,
            self._predict_views,
            tile=self._tile_size(image),
            overlap=self.overlap,
            batch_size=self.batch_size,
            model_size=view_size(image.shape, max_side=self.max_side),
            resize=resize_image,
            band_bytes=_BAND_BYTES,
        )
