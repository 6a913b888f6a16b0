"""The Segmenter (images in, Segmentations out) and the Segmentation result."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from camvidseg import validators
from camvidseg._types import (
    UNLABELLED,
    ConfidenceMap,
    ImageArray,
    ImageLike,
    LabelMap,
    Scores,
)
from camvidseg.backends.base import Backend, LabelBackend, check_scores
from camvidseg.backends.handles import DEFAULT_HANDLE, DEFAULT_TIMEOUT
from camvidseg.cleanup import CleanupConfig
from camvidseg.exceptions import BackendError, ConfigError, InvalidImageError
from camvidseg.imageio import read_label_png, save_label_png, to_rgb_array
from camvidseg.labelset import model_label_set
from camvidseg.palette import CamVidPalette, get_grouping
from camvidseg.postprocess import (
    ChannelLayout,
    labels_and_confidence,
    overlay,
    resize_scores,
    to_class_scores,
)
from camvidseg.tiling import TileGrid, resize_score_rows
from camvidseg.tta import TTAConfig

if TYPE_CHECKING:
    from camvidseg.backends.base import FeatureBackend
    from camvidseg.video import TemporalSmoothing

__all__ = ["DEFAULT_HANDLE", "DEFAULT_MAX_PIXELS", "DEFAULT_TILE", "Segmentation", "Segmenter"]

#: Images with more pixels than this are segmented in tiles (and finalised in row bands).
DEFAULT_MAX_PIXELS = 4096 * 4096
#: Tile side used when tiling starts automatically.
DEFAULT_TILE = 512
#: Scores turned into labels at once while finalising a large image band by band.
_BAND_BYTES = 64 * 2**20

log = logging.getLogger("camvidseg")


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
        """Pixels with confidence below ``threshold`` become unlabelled (255)."""
        labels = self.labels.copy()
        labels[self.confidence < threshold] = UNLABELLED
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
            InvalidImageError: naming the file, if it is not an index PNG or holds ids the
                palette lacks (other than 255).

        Example:
            >>> import os, tempfile
            >>> labels = np.array([[3, 11, 255]], np.uint8)
            >>> seg = Segmentation(labels, np.ones((1, 3), np.float32), CamVidPalette.camvid11())
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     loaded = Segmentation.load(seg.save(os.path.join(tmp, "labels.png")))
            >>> loaded.palette.name, loaded.labels.tolist()
            ('camvid11', [[3, 11, 255]])
        """
        labels, embedded = read_label_png(path)
        if palette is None:
            palette = _builtin_palette_of(embedded)
            if palette is None:
                log.debug("%s embeds no CamVid palette; reading its ids as camvid32", path)
                palette = CamVidPalette.camvid32()
        present = np.unique(labels)
        unknown = [int(v) for v in present if int(v) >= len(palette) and int(v) != UNLABELLED]
        if unknown:
            raise InvalidImageError(
                f"{path}: label ids {unknown[:5]} are not classes of {palette.name} "
                f"(expected 0..{len(palette) - 1} or {UNLABELLED}); pass palette= if the file "
                "uses another label set"
            )
        array = None if image is None else to_rgb_array(image)
        return cls(
            labels,
            np.ones(labels.shape, np.float32),
            palette,
            image=array,
            source=Path(path),
        )


def _builtin_palette_of(colors: NDArray[np.uint8] | None) -> CamVidPalette | None:
    """The built-in palette whose colour table starts ``colors`` (an embedded PNG palette)."""
    if colors is None:
        return None
    for candidate in (CamVidPalette.camvid32(), CamVidPalette.camvid11()):
        size = len(candidate)
        if len(colors) >= size and np.array_equal(colors[:size], candidate.colors):
            return candidate
    return None


def _resized(image: ImageArray, size: tuple[int, int]) -> ImageArray:
    """``image`` resized bilinearly (Pillow) to ``size = (height, width)``, if it differs."""
    if size == image.shape[:2]:
        return image
    pil = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(pil.resize((size[1], size[0]), Image.Resampling.BILINEAR))


_POSITIVE_OR_NONE = validators.optional(validators.int_range(1))


def _model_palette(segmenter: Segmenter) -> CamVidPalette:
    """The label set a backend's outputs are in: its own (a head, or an exported fine-tuned
    model), else CamVid-32."""
    label_set = model_label_set(segmenter.backend)
    return CamVidPalette.camvid32() if label_set is None else label_set.to_palette()


@attrs.define
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
        cleanup: Label-map cleanup (:class:`~camvidseg.cleanup.CleanupConfig`) run on the
            labels of ``palette`` (after grouping to CamVid-11, so its ``classes`` are ids of
            ``palette``) and before ``min_confidence``, which then abstains where the model's
            own top-class confidence is low. ``confidence`` is not changed by the cleanup.
        fused_labels: Let a :class:`~camvidseg.backends.LabelBackend` compute labels and
            confidence itself (e.g. inside the TF graph) when no scores are needed (no
            ``return_scores``, no ``max_side`` resize, no TTA, no tiling); the results are
            the same.

    Example:
        >>> from camvidseg.testing import NearestColorBackend
        >>> road = np.full((2, 2, 3), [128, 64, 128], np.uint8)
        >>> seg = Segmenter(NearestColorBackend()).segment(road)
        >>> seg.labels.tolist(), seg.class_areas()
        ([[17, 17], [17, 17]], {'Road': 1.0})
    """

    backend: Backend
    palette: CamVidPalette = attrs.field(
        default=attrs.Factory(_model_palette, takes_self=True), kw_only=True
    )
    grouping: str = attrs.field(default="merge", kw_only=True)
    max_side: int | None = attrs.field(default=None, kw_only=True, validator=_POSITIVE_OR_NONE)
    batch_size: int = attrs.field(default=1, kw_only=True, validator=validators.int_range(1))
    drop_void: bool = attrs.field(default=False, kw_only=True)
    min_confidence: float | None = attrs.field(
        default=None, kw_only=True, validator=validators.optional(validators.in_range(0, 1))
    )
    keep_image: bool = attrs.field(default=True, kw_only=True)
    layout: ChannelLayout | None = attrs.field(default=None, kw_only=True)
    tile: int | None = attrs.field(default=None, kw_only=True, validator=_POSITIVE_OR_NONE)
    overlap: int = attrs.field(default=64, kw_only=True)
    max_pixels: int | None = attrs.field(
        default=DEFAULT_MAX_PIXELS, kw_only=True, validator=_POSITIVE_OR_NONE
    )
    tta: TTAConfig | None = attrs.field(
        default=None,
        kw_only=True,
        validator=validators.optional(validators.instance_of(TTAConfig, "a TTAConfig")),
    )
    cleanup: CleanupConfig | None = attrs.field(
        default=None,
        kw_only=True,
        validator=validators.optional(validators.instance_of(CleanupConfig, "a CleanupConfig")),
    )
    fused_labels: bool = attrs.field(default=True, kw_only=True)

    def __attrs_post_init__(self) -> None:
        source = _model_palette(self)
        if source.name == "camvid32" and self.palette.name not in ("camvid32", "camvid11"):
            raise ConfigError(f"palette must be camvid32 or camvid11 (got {self.palette.name})")
        if source.name != "camvid32" and self.palette.names != source.names:
            raise ConfigError(
                f"palette {self.palette.name} does not fit the model's own label set "
                f"{source.name}: leave it out to use the model's classes"
            )
        if self.palette.name == "camvid11" and source.name == "camvid32":
            get_grouping(self.grouping)  # fail early on an unknown name
        TileGrid.for_shape((1, 1), self.tile or DEFAULT_TILE, self.overlap)  # validates overlap

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
            handle: tfhub.dev URL (default), Kaggle Models handle, a local SavedModel folder, an
                OpenVINO IR folder (``camvidseg model convert``; runs without TensorFlow), or a
                fake model (``fake:33``, ``fake:32``, ``fake:noisy``).
            cache_dir: TF Hub cache (default ``$TFHUB_CACHE_DIR``, else ``$TMPDIR/tfhub_modules``).
            timeout: Seconds a network read may stall before the load fails.
            input_multiple: Pad inputs so H and W are multiples of this (1: any size).
            precision: ``"fp32"`` (default) or ``"bf16"`` (CPUs with avx512_bf16 or AMX).
            threads: Inference threads (default: the backend's, all cores).
            head: A head folder written by ``camvidseg finetune``: the outputs are its classes
                (its label set becomes the default ``palette``). Refused if it was trained on
                another backbone.
            **options: Passed to :class:`Segmenter` (``max_side``, ``batch_size``, ...).

        Raises:
            ModelLoadError: when the model cannot be found or loaded; the message lists what was
                tried and how to point at a local copy or a cache folder.
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
        )
        if head is not None:
            from camvidseg.backends.head import attach_head

            return cls(attach_head(cast("FeatureBackend", backend), head), **options)
        return cls(backend, **options)

    # -- public API ---------------------------------------------------------------------------

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
        """Segment many images lazily, in input order.

        Images of different sizes are fine: each model call holds images of one size.

        Args:
            images: Any iterable of images; consumed ``batch_size`` at a time.
            batch_size: Overrides the Segmenter's ``batch_size``.
            return_scores: Keep ``(H, W, 32)`` class probabilities on each result.
        """
        size = self.batch_size if batch_size is None else batch_size
        validators.int_range(1).check(size, "batch_size")
        chunk: list[tuple[ImageArray, Path | None]] = []
        for image in images:
            source = Path(image) if isinstance(image, (str, os.PathLike)) else None
            chunk.append((to_rgb_array(image), source))
            if len(chunk) == size:
                yield from self._segment_chunk(chunk, return_scores)
                chunk = []
        if chunk:
            yield from self._segment_chunk(chunk, return_scores)

    def predict_scores(self, images: Sequence[ImageArray]) -> list[Scores]:
        """Raw model probabilities ``(H, W, C)`` per image, at each image's own size.

        Images are grouped by (resized) size into model calls; ``max_side`` resizing and
        padding to the backend's ``input_multiple`` are undone before returning. With ``tta``
        the scores are the average over the augmented views; images that need tiling are
        segmented tile by tile and blended (the full ``(H, W, C)`` array is still returned).
        """
        results: list[Scores | None] = [None] * len(images)
        whole = [i for i, image in enumerate(images) if self._tile_size(image) is None]
        averaged = self._predict_views([images[i] for i in whole], self.max_side)
        for i, scores in zip(whole, averaged, strict=True):
            results[i] = scores
        for i, image in enumerate(images):
            if results[i] is None:
                results[i] = resize_scores(self._model_scores(image), image.shape[:2])
        return [r for r in results if r is not None]

    def needs_bands(self, image: ImageArray) -> bool:
        """Whether :meth:`segment` finalises ``image`` in row bands (it is tiled, or has more
        than ``max_pixels`` pixels) rather than from one ``(H, W, C)`` scores array.

        :meth:`predict_scores` followed by :meth:`from_scores` would hold that whole array; a
        pipeline sends such images through :meth:`segment` instead.

        Example:
            >>> from camvidseg.testing import NearestColorBackend
            >>> segmenter = Segmenter(NearestColorBackend(), max_pixels=100)
            >>> segmenter.needs_bands(np.zeros((8, 8, 3), np.uint8))
            False
            >>> segmenter.needs_bands(np.zeros((8, 16, 3), np.uint8))
            True
        """
        too_large = (
            self.max_pixels is not None and image.shape[0] * image.shape[1] > self.max_pixels
        )
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
            >>> segmenter = Segmenter(NearestColorBackend())
            >>> sky = np.full((1, 2, 3), 128, np.uint8)
            >>> scores = segmenter.predict_scores([sky])[0]
            >>> segmenter.from_scores(sky, scores).labels.tolist()
            [[21, 21]]
        """
        if scores.ndim != 3 or scores.shape[:2] != image.shape[:2]:
            raise InvalidImageError(
                f"scores must be (H, W, C) for an image of shape {image.shape} "
                f"(got shape {scores.shape})"
            )
        return self._finish(image, scores, source, return_scores)

    # -- internals ----------------------------------------------------------------------------

    def _segment_chunk(
        self, chunk: list[tuple[ImageArray, Path | None]], return_scores: bool
    ) -> Iterator[Segmentation]:
        arrays = [array for array, _ in chunk]
        banded = [self.needs_bands(array) for array in arrays]
        fused = (
            self.backend if self.fused_labels and isinstance(self.backend, LabelBackend) else None
        )
        # The layout is learnt from the first scores, so the first chunk takes the score path.
        # Anything that needs scores (TTA averaging, tile blending, resizing back) takes it too.
        if (
            fused is not None
            and self.layout is not None
            and not return_scores
            and not self.max_side
            and self.tta is None
            and not any(banded)
        ):
            # The backend computes labels and confidence where the scores are (5 bytes/pixel).
            pairs = self._predict_labels(fused, self.layout, arrays)
            for (array, source), (labels, conf) in zip(chunk, pairs, strict=True):
                yield self._result(array, labels, conf, None, source)
            return
        scores = iter(
            self.predict_scores([a for a, b in zip(arrays, banded, strict=True) if not b])
        )
        for (array, source), band in zip(chunk, banded, strict=True):
            if band:
                yield self._segment_banded(array, source, return_scores)
            else:
                yield self._finish(array, next(scores), source, return_scores)

    def _predict_labels(
        self, backend: LabelBackend, layout: ChannelLayout, images: Sequence[ImageArray]
    ) -> list[tuple[LabelMap, ConfidenceMap]]:
        """Like :meth:`predict_scores`, but the backend returns labels and confidence."""
        prepared = [self._model_input(image) for image in images]
        results: list[tuple[LabelMap, ConfidenceMap] | None] = [None] * len(images)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, (array, _) in enumerate(prepared):
            by_shape.setdefault(array.shape, []).append(index)
        for indices in by_shape.values():
            batch = np.stack([prepared[i][0] for i in indices])
            labels, conf = backend.predict_labels(batch, layout)
            for k, i in enumerate(indices):
                height, width = prepared[i][1]
                results[i] = (
                    np.ascontiguousarray(labels[k, :height, :width]),
                    np.ascontiguousarray(conf[k, :height, :width]),
                )
        return [r for r in results if r is not None]

    def _finish(
        self, image: ImageArray, scores: Scores, source: Path | None, return_scores: bool
    ) -> Segmentation:
        layout = self._layout_for(scores.shape[-1])
        labels, conf = labels_and_confidence(scores, layout)
        class_scores = to_class_scores(scores, layout) if return_scores else None
        return self._result(image, labels, conf, class_scores, source)

    def _result(
        self,
        image: ImageArray,
        labels: LabelMap,
        conf: ConfidenceMap,
        class_scores: Scores | None,
        source: Path | None,
    ) -> Segmentation:
        model_palette = _model_palette(self)
        result = Segmentation(
            labels,
            conf,
            model_palette,
            image=image if self.keep_image else None,
            scores=class_scores,
            source=source,
        )
        if self.palette.name != model_palette.name:
            result = result.to_camvid11(self.grouping)
        # Cleanup first: it only ever sees class ids, so abstaining (255) is never smoothed over.
        if self.cleanup is not None:
            result = result.with_cleanup(self.cleanup)
        if self.min_confidence is not None:
            result = result.with_min_confidence(self.min_confidence)
        return result

    def _layout_for(self, channels: int) -> ChannelLayout:
        if self.layout is None or self.layout.num_channels != channels:
            label_set = model_label_set(self.backend)
            if label_set is None:
                self.layout = ChannelLayout.detect(channels, drop_void=self.drop_void)
            elif channels != label_set.channels:
                raise BackendError(
                    f"{self.backend.name} returned {channels} channels; its label set "
                    f"{label_set.describe()} has {label_set.channels}"
                )
            else:
                self.layout = label_set.channel_layout()
        return self.layout

    def _model_size(
        self, shape: tuple[int, ...], limit_side: int | None, scale: float = 1.0
    ) -> tuple[int, int]:
        """``(height, width)`` the model sees: limited to ``limit_side``, then times ``scale``."""
        height, width = int(shape[0]), int(shape[1])
        factor = scale
        if limit_side is not None and max(height, width) > limit_side:
            factor = limit_side / max(height, width) * scale
        if factor == 1.0:
            return height, width
        return max(1, round(height * factor)), max(1, round(width * factor))

    def _model_input(
        self,
        image: ImageArray,
        limit_side: int | None = None,
        scale: float = 1.0,
        flip: bool = False,
    ) -> tuple[NDArray[np.float32], tuple[int, int]]:
        """Resize (``limit_side``, ``scale``), flip, scale to [0, 1], pad to the backend's multiple.

        Returns the model input and its size before padding.
        """
        size = self._model_size(image.shape, limit_side, scale)
        image = _resized(image[:, ::-1] if flip else image, size)
        array = image.astype(np.float32) / np.float32(255.0)
        size_before_padding = (int(array.shape[0]), int(array.shape[1]))
        multiple = max(1, int(self.backend.input_multiple))
        pad_h, pad_w = -array.shape[0] % multiple, -array.shape[1] % multiple
        if pad_h or pad_w:
            array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        return array, size_before_padding

    def _run_model(
        self, prepared: Sequence[tuple[NDArray[np.float32], tuple[int, int]]]
    ) -> list[Scores]:
        """Model scores of prepared inputs (one call per input shape), padding cropped off."""
        results: list[Scores | None] = [None] * len(prepared)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, (array, _) in enumerate(prepared):
            by_shape.setdefault(array.shape, []).append(index)
        for indices in by_shape.values():
            batch = np.stack([prepared[i][0] for i in indices])
            for i, scores in zip(indices, self._predict(batch), strict=True):
                height, width = prepared[i][1]
                results[i] = scores[:height, :width]
        return [r for r in results if r is not None]

    def _predict_views(self, images: Sequence[ImageArray], limit_side: int | None) -> list[Scores]:
        """Scores ``(H, W, C)`` at each image's own size, averaged over the TTA views.

        Each view is resized (``limit_side``, then its scale) and maybe flipped; its scores are
        flipped back and resized to the image's size before the running average, which is
        exact when all views agree.
        """
        views = ((1.0, False),) if self.tta is None else self.tta.views()
        means: list[Scores] = []
        for count, (scale, flip) in enumerate(views, start=1):
            prepared = [self._model_input(image, limit_side, scale, flip) for image in images]
            for i, scores in enumerate(self._run_model(prepared)):
                if flip:
                    scores = scores[:, ::-1]
                scores = resize_scores(scores, (images[i].shape[0], images[i].shape[1]))
                if count == 1:
                    means.append(scores)
                else:
                    means[i] = means[i] + (scores - means[i]) * np.float32(1.0 / count)
        return means

    def _tile_size(self, image: ImageArray) -> int | None:
        """Tile side for ``image`` (at model resolution), or ``None`` to run it whole."""
        if self.tile is not None:
            return self.tile
        height, width = self._model_size(image.shape, self.max_side)
        if self.max_pixels is not None and height * width > self.max_pixels:
            return DEFAULT_TILE
        return None

    def _score_bands(self, image: ImageArray) -> Iterator[tuple[int, int, Scores]]:
        """Model-resolution scores of ``image`` (after ``max_side``) as ``(y0, y1, band)``.

        Tiled images are processed one tile row at a time: tile scores are blended into an
        accumulator one tile row tall with a running weighted mean (exact where tiles agree),
        and the rows no later tile touches are yielded. A yielded band is only valid until the
        next one is requested.
        """
        size = self._model_size(image.shape, self.max_side)
        model_image = _resized(image, size)
        tile = self._tile_size(image)
        if tile is None:
            yield 0, size[0], self._predict_views([model_image], None)[0]
            return
        grid = TileGrid.for_shape(size, tile, self.overlap)
        band_height = grid.rows[0][1] - grid.rows[0][0]
        total = np.zeros((band_height, size[1]), dtype=np.float32)
        acc: Scores | None = None
        for i, (y0, y1) in enumerate(grid.rows):
            tiles = [model_image[y0:y1, x0:x1] for x0, x1 in grid.cols]
            for first in range(0, len(tiles), self.batch_size):
                chunk = tiles[first : first + self.batch_size]
                for j, scores in enumerate(self._predict_views(chunk, None), start=first):
                    x0, x1 = grid.cols[j]
                    if acc is None:
                        acc = np.zeros((band_height, size[1], scores.shape[-1]), np.float32)
                    weight = grid.weights(i, j)
                    seen = total[:, x0:x1] + weight
                    share = weight / seen
                    region = acc[:, x0:x1]
                    region += share[..., None] * (scores - region)
                    total[:, x0:x1] = seen
            assert acc is not None
            stop = grid.rows[i + 1][0] if i + 1 < len(grid.rows) else y1
            yield y0, stop, acc[: stop - y0]
            # Rows from `stop` on are shared with the next tile row: move them to the top.
            keep = y1 - stop
            acc[:keep] = acc[stop - y0 :]
            acc[keep:] = 0.0
            total[:keep] = total[stop - y0 :]
            total[keep:] = 0.0

    def _model_scores(self, image: ImageArray) -> Scores:
        """All of :meth:`_score_bands` in one ``(h, w, C)`` array (at model resolution)."""
        out: Scores | None = None
        for y0, y1, band in self._score_bands(image):
            if out is None:
                height, width = self._model_size(image.shape, self.max_side)
                out = np.empty((height, width, band.shape[-1]), np.float32)
            out[y0:y1] = band
        assert out is not None
        return out

    def _segment_banded(
        self, image: ImageArray, source: Path | None, return_scores: bool
    ) -> Segmentation:
        """Segment a tiled or very large image, finalising labels one row band at a time."""
        height, width = image.shape[:2]
        labels = np.empty((height, width), np.uint8)
        conf = np.empty((height, width), np.float32)
        classes = len(_model_palette(self))
        class_scores = np.empty((height, width, classes), np.float32) if return_scores else None

        def finish(y0: int, y1: int, band: Scores) -> None:
            layout = self._layout_for(band.shape[-1])
            # In chunks of rows, so the argmax's temporaries stay small next to the band.
            step = max(1, _BAND_BYTES // (width * band.shape[-1] * 4))
            for top in range(0, y1 - y0, step):
                rows = band[top : top + step]
                y = y0 + top
                labels[y : y + len(rows)], conf[y : y + len(rows)] = labels_and_confidence(
                    rows, layout
                )
                if class_scores is not None:
                    class_scores[y : y + len(rows)] = to_class_scores(rows, layout)

        if self._model_size(image.shape, self.max_side) == (height, width):
            for y0, y1, band in self._score_bands(image):
                finish(y0, y1, band)
        else:
            # max_side: scores at model resolution are small; resize them back band by band.
            model = self._model_scores(image)
            rows = max(1, _BAND_BYTES // (width * model.shape[-1] * 4))
            for y0 in range(0, height, rows):
                y1 = min(height, y0 + rows)
                finish(y0, y1, resize_score_rows(model, (height, width), y0, y1))
        return self._result(image, labels, conf, class_scores, source)

    def _predict(self, batch: NDArray[np.float32]) -> Scores:
        scores = check_scores(self.backend.predict(batch), batch.shape, self.backend.name)
        # Channels contiguous, as models return them: reductions over the channels then round
        # identically on a whole image and on its tiles (no-op for contiguous scores).
        scores = np.ascontiguousarray(scores)
        self._layout_for(scores.shape[-1])  # reject odd channel counts before any postprocessing
        return scores

    def segment_video(
        self,
        source: str | os.PathLike[str] | Iterable[ImageLike],
        *,
        temporal: str | TemporalSmoothing | None = None,
        **options: Any,
    ) -> Iterator[Segmentation]:
        """Segment a video file, a folder of frames or an iterable of images, frame by frame.

        Delegates to :func:`camvidseg.video.segment_video` (``temporal="ema"`` averages class
        probabilities over time; ``rate=``, ``frames=`` as there). Video files need the
        ``video`` extra (PyAV).
        """
        from camvidseg.video import segment_video

        return segment_video(self, source, temporal=temporal, **options)
