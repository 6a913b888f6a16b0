"""camvidseg's own Beam ``ModelHandler``: keyed ``(uri, image)`` elements in, one
:class:`~camvidseg.beam.Segmented` or :class:`~camvidseg.beam.DeadLetter` out per element.

Beam's ``TFModelHandlerTensor`` does not fit this model: it loads with
``tf.keras.models.load_model``, which Keras 3 refuses for the hub's SavedModel, sizes batches with
``sys.getsizeof`` and ``tf.stack``s a batch (equal shapes only). This handler instead

* holds plain settings only (the :class:`~camvidseg.SegmentConfig` as a dict, the cache folder,
  the download timeout, batching and sharing options), so it pickles with pickle and cloudpickle
  and TensorFlow is imported on the worker, inside :meth:`SegmenterModelHandler.load_model`;
* builds the model from that one settings value, so any handle the library opens works;
* segments a batch of mixed image sizes as the library does (one model call per size);
* turns a failure into a dead letter for that element alone: a batch the model fails on is
  retried image by image, so one bad image never takes its batch-mates with it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler

from camvidseg import validators
from camvidseg._types import ImageArray
from camvidseg.backends import DEFAULT_HANDLE
from camvidseg.beam.records import DeadLetter, KeyedImage, Segmented, image_array
from camvidseg.config import SegmentConfig
from camvidseg.exceptions import ConfigError
from camvidseg.imageio import LoadedImage, to_rgb_array
from camvidseg.pipeline.stages import error_text
from camvidseg.segmenter import Segmentation, Segmenter

__all__ = [
    "METRICS_NAMESPACE",
    "SegmenterModel",
    "SegmenterModelHandler",
    "open_segmenter",
    "stage_model",
]

log = logging.getLogger("camvidseg")

#: Namespace of every Beam metric camvidseg reports (RunInference's own ones included).
METRICS_NAMESPACE = "camvidseg"

Outcome = Segmented | DeadLetter


def open_segmenter(
    config: SegmentConfig, *, cache_dir: str | None = None, timeout: float = 30.0
) -> Segmenter:
    """The Segmenter ``config`` describes, without keeping input images on its results.

    A model or TF Hub cache folder on a Beam file system is staged to local disk first
    (:func:`stage_model`); then :meth:`SegmentConfig.build_segmenter`, the library's one way
    from settings to a model, opens the handle through :func:`camvidseg.backends.open_backend`.
    """
    handle, cache_dir = stage_model(config.model or DEFAULT_HANDLE, cache_dir)
    return attrs.evolve(config, model=handle).build_segmenter(
        cache_dir=cache_dir, timeout=timeout, keep_image=False
    )


def _on_beam_file_system(path: str) -> bool:
    """Whether ``path`` is on a file system Beam can read here other than the local one."""
    if FileSystems.get_scheme(path) in (None, "http", "https"):
        return False
    try:
        FileSystems.get_filesystem(path)
    except ValueError:  # e.g. gs:// without apache-beam[gcp]: leave it to TF Hub
        return False
    return True


def _copy_folder(source: str, target: Path) -> Path:
    """Copy the files under ``source`` (a Beam file system folder) to ``target``, once per
    machine: into a temporary folder beside it, renamed into place (the first process wins)."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    prefix = source.rstrip("/") + "/"
    try:
        for metadata in FileSystems.match([prefix + "**"])[0].metadata_list:
            local = partial / str(metadata.path)[len(prefix) :]
            local.parent.mkdir(parents=True, exist_ok=True)
            with (
                FileSystems.open(
                    metadata.path, compression_type=CompressionTypes.UNCOMPRESSED
                ) as remote,
                open(local, "wb") as out,
            ):
                shutil.copyfileobj(remote, out, 1 << 20)
        try:
            partial.rename(target)
        except OSError:  # another process staged it first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def stage_model(
    handle: str, cache_dir: str | None, *, local_root: str | os.PathLike[str] | None = None
) -> tuple[str, str | None]:
    """The ``(handle, cache_dir)`` a worker loads with.

    * A SavedModel folder on a Beam file system (``gs://bucket/models/hrnet``,
      ``s3://...``: a folder holding ``saved_model.pb``) is copied to local disk once per
      machine, and that copy is loaded.
    * A TF Hub cache folder on one (``--cache-dir gs://bucket/tfhub_modules``, filled once with
      ``camvidseg model download`` and copied there) has the handle's entry copied to a local
      cache folder, which is then used; a handle it lacks is downloaded into the local one.
    * Anything else is returned unchanged.

    Args:
        handle: The model handle.
        cache_dir: The TF Hub cache folder, or ``None``.
        local_root: Where staged copies go (default: ``$TMPDIR/camvidseg-staged``).
    """
    if local_root is None:
        local_root = Path(tempfile.gettempdir()) / "camvidseg-staged"
    root = Path(local_root)
    digest = hashlib.sha1(handle.encode("utf8")).hexdigest()
    if _on_beam_file_system(handle) and FileSystems.exists(handle.rstrip("/") + "/saved_model.pb"):
        return str(_copy_folder(handle, root / "models" / digest)), cache_dir
    if cache_dir is not None and _on_beam_file_system(cache_dir):
        local_cache = root / "tfhub_modules"
        # tensorflow_hub's cache layout: one folder per handle, named by its SHA-1.
        entry = f"{cache_dir.rstrip('/')}/{digest}"
        if FileSystems.exists(entry + "/saved_model.pb"):
            _copy_folder(entry, local_cache / digest)
        return handle, str(local_cache)
    return handle, cache_dir


class SegmenterModel:
    """What :meth:`SegmenterModelHandler.load_model` returns: a Segmenter behind one method whose
    arguments and results pickle, so that Beam can also serve it from another process
    (``share_model_across_processes``) through a proxy."""

    def __init__(self, segmenter: Segmenter) -> None:
        self.segmenter = segmenter

    def segment(self, images: Sequence[ImageArray]) -> list[Segmentation]:
        """Segmentations of ``images`` (any mix of sizes: one model call per size), in order,
        without the input image attached."""
        return list(self.segmenter.segment_batch(images, batch_size=max(1, len(images))))


def element_bytes(element: KeyedImage) -> int:
    """Bytes of one ``(uri, image)`` element: the image array and the key (for batch weights).

    Example:
        >>> import numpy as np
        >>> element_bytes(("a.png", np.zeros((2, 3, 3), np.uint8)))
        23
    """
    uri, image = element
    return int(image_array(image).nbytes) + len(uri.encode())


@attrs.frozen
class _Settings:
    """The handler's own settings, checked once on the driver."""

    min_batch_size: int = attrs.field(validator=validators.int_range(1))
    max_batch_size: int = attrs.field(validator=validators.int_range(1))
    max_batch_bytes: int | None = attrs.field(
        validator=validators.optional(validators.int_range(1))
    )
    model_copies: int | None = attrs.field(validator=validators.optional(validators.int_range(1)))

    def __attrs_post_init__(self) -> None:
        if self.min_batch_size > self.max_batch_size:
            raise ConfigError(
                f"min_batch_size ({self.min_batch_size}) must not exceed max_batch_size "
                f"({self.max_batch_size})"
            )


class SegmenterModelHandler(ModelHandler[KeyedImage, Outcome, SegmenterModel]):
    """A Beam ``ModelHandler`` that segments keyed ``(uri, image)`` elements.

    Args:
        config: The settings (:class:`~camvidseg.SegmentConfig` or its ``to_dict()``); its
            ``model`` is the handle to open (``None``: the published HRNet). Resolve defaults
            such as ``$CAMVIDSEG_MODEL`` before: workers do not see the driver's environment.
        cache_dir: TF Hub cache folder on the workers (e.g. a bucket path staged there, or a
            folder baked into a custom container).
        timeout: Seconds a model download may stall.
        min_batch_size: Fewest elements Beam puts into one batch.
        max_batch_size: Most elements in one batch; one batch is one model call per image size.
        max_batch_bytes: Most image bytes in one batch (``None``: no limit); batches are weighed
            by the arrays' real sizes, not by ``sys.getsizeof``.
        model_copies: Load this many copies per machine, shared by its worker processes
            (implies sharing across processes); ``None`` gives each process its own model
            unless ``large_model``.
        large_model: Share one model across a machine's processes (a 260 MB model per process
            adds up).

    Raises:
        ConfigError: on a bad config or batch setting (found on the driver, before any work).

    Example:
        >>> import pickle
        >>> handler = SegmenterModelHandler(SegmentConfig(model="fake:33"), max_batch_size=4)
        >>> dict(handler.batch_elements_kwargs())
        {'min_batch_size': 1, 'max_batch_size': 4}
        >>> pickle.loads(pickle.dumps(handler)).config == handler.config
        True
    """

    def __init__(
        self,
        config: SegmentConfig | Mapping[str, Any] | None = None,
        *,
        cache_dir: str | None = None,
        timeout: float = 30.0,
        min_batch_size: int = 1,
        max_batch_size: int = 8,
        max_batch_bytes: int | None = None,
        model_copies: int | None = None,
        large_model: bool = False,
    ) -> None:
        if config is None:
            config = SegmentConfig()
        if not isinstance(config, SegmentConfig):
            config = SegmentConfig.from_dict(config)
        settings = _Settings(min_batch_size, max_batch_size, max_batch_bytes, model_copies)
        super().__init__(
            min_batch_size=settings.min_batch_size,
            max_batch_size=settings.max_batch_size,
            max_batch_weight=settings.max_batch_bytes,
            element_size_fn=element_bytes if settings.max_batch_bytes is not None else None,
            large_model=large_model,
            model_copies=settings.model_copies,
        )
        # Plain values only: the handler is pickled into every worker.
        self._config: dict[str, Any] = config.to_dict()
        self._cache_dir = None if cache_dir is None else str(cache_dir)
        self._timeout = float(timeout)

    @property
    def config(self) -> SegmentConfig:
        """The settings the model is built from."""
        return SegmentConfig.from_dict(self._config)

    def __repr__(self) -> str:
        return (
            f"SegmenterModelHandler(model={self._config.get('model')!r}, "
            f"batch={dict(self.batch_elements_kwargs())}, "
            f"model_copies={self.model_copies() if self.share_model_across_processes() else None})"
        )

    # -- ModelHandler -------------------------------------------------------------------------

    def load_model(self) -> SegmenterModel:
        """Open the model on the worker (TensorFlow is imported here, not on the driver)."""
        return SegmenterModel(
            open_segmenter(self.config, cache_dir=self._cache_dir, timeout=self._timeout)
        )

    def run_inference(
        self,
        batch: Sequence[KeyedImage],
        model: SegmenterModel,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[Outcome]:
        """One outcome per element, in order: a :class:`Segmented`, or a :class:`DeadLetter`
        for an element that is not an image (stage ``validate``) or that the model failed on
        (stage ``inference``)."""
        del inference_args
        return list(self._outcomes(batch, model))

    def _outcomes(self, batch: Sequence[KeyedImage], model: SegmenterModel) -> Iterator[Outcome]:
        valid: list[tuple[str, LoadedImage]] = []
        outcomes: list[Outcome | None] = []
        for element in batch:
            try:
                uri, loaded = _checked(element)
            except Exception as exc:
                outcomes.append(
                    DeadLetter(_uri_of(element), "validate", error_text(_uri_of(element), exc))
                )
                continue
            valid.append((uri, loaded))
            outcomes.append(None)
        segmented = iter(self._segment(valid, model))
        for outcome in outcomes:
            yield next(segmented) if outcome is None else outcome

    def _segment(
        self, elements: list[tuple[str, LoadedImage]], model: SegmenterModel
    ) -> list[Outcome]:
        if not elements:
            return []
        started = time.perf_counter()
        try:
            results = model.segment([loaded.array for _, loaded in elements])
            if len(results) != len(elements):
                raise RuntimeError(f"the model gave {len(results)} results for {len(elements)}")
        except Exception as exc:
            if len(elements) == 1:
                uri = elements[0][0]
                log.debug("segmenting %s failed", uri, exc_info=True)
                return [DeadLetter(uri, "inference", error_text(uri, exc))]
            log.info("a batch of %d failed (%s); retrying image by image", len(elements), exc)
            return [outcome for element in elements for outcome in self._segment([element], model)]
        share = (time.perf_counter() - started) / len(elements)
        return [
            Segmented(uri, loaded, attrs.evolve(seg, image=loaded.array), share)
            for (uri, loaded), seg in zip(elements, results, strict=True)
        ]

    def get_num_bytes(self, batch: Sequence[KeyedImage]) -> int:
        """Bytes of a batch from its arrays' sizes."""
        return sum(element_bytes(element) for element in batch)

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE

    def batch_elements_kwargs(self) -> Mapping[str, Any]:
        """Keyword arguments of ``beam.BatchElements``: min/max batch size (and weight)."""
        return dict(super().batch_elements_kwargs())

    def validate_inference_args(self, inference_args: dict[str, Any] | None) -> None:
        if inference_args:
            raise ConfigError(
                f"SegmenterModelHandler takes no inference_args (got {sorted(inference_args)}); "
                "put settings in its SegmentConfig"
            )


def _uri_of(element: object) -> str:
    if isinstance(element, tuple) and element and isinstance(element[0], str):
        return element[0]
    return repr(element)[:200]


def _checked(element: object) -> tuple[str, LoadedImage]:
    """``(uri, LoadedImage)`` of a ``(uri, image)`` element, or an error saying what is wrong."""
    if not (isinstance(element, tuple) and len(element) == 2 and isinstance(element[0], str)):
        raise ConfigError(
            f"elements must be (uri, image) pairs (got {type(element).__name__} "
            f"{repr(element)[:80]})"
        )
    uri, image = element
    if isinstance(image, LoadedImage):
        to_rgb_array(image.array)
        return uri, image
    return uri, LoadedImage(to_rgb_array(image))
