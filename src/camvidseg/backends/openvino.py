"""The OpenVINO backend: runs a model converted by ``camvidseg model convert --to openvino``.

An OpenVINO IR folder holds ``model.xml`` and ``model.bin`` (the network, converted from the
SavedModel's ``predict``), optionally ``features.xml``/``features.bin`` (``get_features``), and
``camvidseg_openvino.json``::

    {"format": "camvidseg-openvino", "version": 1, "source": "<handle converted>",
     "channels": 33, "label_set": null, "camvidseg": "<version>", "openvino": "<version>"}

``label_set`` is the label set of a fine-tuned export (the ``label_set`` object of its
``assets/camvidseg.json``), ``null`` for the CamVid model. Such a folder is recognised from its
files alone, so running it never imports TensorFlow; this module is the only one importing
OpenVINO, and only inside functions.

Precision is always set explicitly (OpenVINO would otherwise pick bfloat16 by itself on CPUs
that have it, and results would differ between machines). Each input size gets its own
statically shaped compiled model (dynamic shapes are slower), kept in a small cache. A batch of
several images runs as single-image requests, two in flight (OpenVINO's THROUGHPUT mode); one
image runs in LATENCY mode with every thread. :meth:`OpenVINOBackend.predict_labels` appends an
argmax and the confidence to the graph, so only 5 bytes per pixel come back to Python.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import ConfidenceMap, LabelMap, Scores
from camvidseg._version import __version__
from camvidseg.backends.base import check_batch
from camvidseg.backends.handles import OPENVINO_XML as MODEL_XML
from camvidseg.backends.handles import is_openvino_folder, openvino_folder
from camvidseg.backends.precision import check_settings
from camvidseg.exceptions import BackendError, ConfigError, ModelLoadError
from camvidseg.imageio import atomic_write
from camvidseg.labelset import LabelSet

if TYPE_CHECKING:
    from camvidseg.postprocess import ChannelLayout

__all__ = [
    "COMPILED_CACHE_SIZE",
    "FEATURES_XML",
    "INSTALL_HINT",
    "METADATA_FORMAT",
    "METADATA_NAME",
    "METADATA_VERSION",
    "MODEL_XML",
    "THROUGHPUT_REQUESTS",
    "OpenVINOBackend",
    "OpenVINOMetadata",
    "import_openvino",
    "is_openvino_folder",
    "openvino_folder",
    "read_metadata",
    "read_model",
    "write_metadata",
]

log = logging.getLogger("camvidseg")

FEATURES_XML = "features.xml"
METADATA_NAME = "camvidseg_openvino.json"
METADATA_FORMAT = "camvidseg-openvino"
METADATA_VERSION = 1
#: Compiled models (one per input size and mode) a backend keeps before dropping the oldest.
COMPILED_CACHE_SIZE = 4
#: Single-image requests in flight for a batch of several images (THROUGHPUT mode).
THROUGHPUT_REQUESTS = 2
#: ``precision`` -> OpenVINO's ``INFERENCE_PRECISION_HINT``.
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}
#: How to install OpenVINO for camvidseg.
INSTALL_HINT = "pip install 'camvidseg[openvino]'"


def import_openvino() -> Any:
    """The ``openvino`` module, imported on first use.

    Raises:
        ModelLoadError: if OpenVINO is not installed (saying how to install it).
    """
    try:
        import openvino
    except ImportError as exc:
        raise ModelLoadError(
            f"running or converting OpenVINO models needs the openvino package ({exc}): "
            + INSTALL_HINT
        ) from None
    return openvino


# -- the folder and its metadata -------------------------------------------------------------------


def _check_label_set(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    del instance, attribute
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"label_set must be an object or null (got {value!r})")


@attrs.frozen
class OpenVINOMetadata:
    """The content of ``camvidseg_openvino.json``.

    Attributes:
        source: The model handle that was converted.
        channels: ``C`` of the scores the model returns.
        label_set: The label set of a fine-tuned model (as in its ``assets/camvidseg.json``),
            ``None`` for the CamVid model (33 or 32 channels).
        camvidseg: camvidseg version that converted it.
        openvino: OpenVINO version that converted it.
    """

    source: str
    channels: int
    label_set: dict[str, Any] | None = attrs.field(default=None, validator=_check_label_set)
    camvidseg: str = __version__
    openvino: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, ``"format"`` and ``"version"`` first."""
        return {
            "format": METADATA_FORMAT,
            "version": METADATA_VERSION,
            "source": self.source,
            "channels": self.channels,
            "label_set": self.label_set,
            "camvidseg": self.camvidseg,
            "openvino": self.openvino,
        }

    @classmethod
    def from_dict(cls, data: object, where: str = "metadata") -> OpenVINOMetadata:
        """Parse the JSON object, with a :class:`ModelLoadError` naming ``where`` if it is not
        camvidseg-openvino metadata of a version this library reads.

        Example:
            >>> OpenVINOMetadata.from_dict({"format": "camvidseg-openvino", "version": 1,
            ...     "source": "m", "channels": 33, "label_set": None}).channels
            33
        """
        if not isinstance(data, dict) or data.get("format") != METADATA_FORMAT:
            raise ModelLoadError(f"{where}: not camvidseg-openvino metadata")
        version = data.get("version")
        if not isinstance(version, int) or not 1 <= version <= METADATA_VERSION:
            raise ModelLoadError(
                f"{where}: metadata version {version!r}; this camvidseg reads version "
                f"{METADATA_VERSION} (upgrade camvidseg, or convert the model again)"
            )
        channels = data.get("channels")
        source = data.get("source")
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise ModelLoadError(f"{where}: 'channels' must be a positive integer ({channels!r})")
        if not isinstance(source, str):
            raise ModelLoadError(f"{where}: 'source' must be a string (got {source!r})")
        try:
            return cls(
                source=source,
                channels=channels,
                label_set=data.get("label_set"),
                camvidseg=str(data.get("camvidseg", "")),
                openvino=str(data.get("openvino", "")),
            )
        except TypeError as exc:
            raise ModelLoadError(f"{where}: {exc}") from None


def read_metadata(folder: str | os.PathLike[str]) -> OpenVINOMetadata:
    """Read ``camvidseg_openvino.json`` of an IR folder.

    Raises:
        ModelLoadError: naming the file if it is missing, unreadable or not valid metadata.
    """
    path = Path(folder) / METADATA_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(
            f"{path.parent} holds {MODEL_XML} but no {METADATA_NAME}: it was not converted by "
            "camvidseg, which needs to know the model's channels and label set. Convert the "
            "SavedModel with: camvidseg model convert SAVEDMODEL --to openvino -o DIR"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: cannot read the metadata ({exc})") from None
    return OpenVINOMetadata.from_dict(data, str(path))


def write_metadata(folder: str | os.PathLike[str], metadata: OpenVINOMetadata) -> Path:
    """Write ``camvidseg_openvino.json`` into ``folder`` (atomically); returns its path."""
    path = Path(folder) / METADATA_NAME
    with atomic_write(path) as handle:
        handle.write((json.dumps(metadata.to_dict(), indent=2) + "\n").encode("utf-8"))
    return path


# -- graphs built on the converted model -----------------------------------------------------------


def _scores_output(model: Any) -> Any:
    """The node output feeding the model's first result (its scores)."""
    return model.get_results()[0].input_value(0)


def _labels_model(ov: Any, model: Any, layout: ChannelLayout) -> Any:
    """``model`` followed by labels and confidence, as :func:`camvidseg.postprocess.
    labels_and_confidence` computes them: drop channel 0 if the layout says so, the first
    maximum (a stable TopK), its CamVid id, and the maximum over the kept channels' sum
    (0 where that sum is 0), clipped to [0, 1]."""
    from openvino import opset13 as ops

    graph = model.clone()
    scores = _scores_output(graph)
    kept = scores
    if layout.drop_first:
        big = np.iinfo(np.int64).max
        kept = ops.slice(scores, np.array([1]), np.array([big]), np.array([1]), np.array([-1]))
    top = ops.topk(kept, np.int64(1), -1, "max", "value", "i32", True)
    last = np.array([-1], np.int64)
    best = ops.squeeze(top.output(0), last)
    index = ops.squeeze(top.output(1), last)
    total = ops.reduce_sum(kept, last, keep_dims=False)
    positive = ops.greater(total, np.float32(0.0))
    ratio = ops.divide(best, ops.select(positive, total, np.float32(1.0)))
    conf = ops.clamp(ops.select(positive, ratio, np.float32(0.0)), 0.0, 1.0)
    ids = ops.constant(np.asarray(layout.channel_ids, np.uint8))
    labels = ops.gather(ids, index, np.int64(0))
    labels.output(0).get_tensor().set_names({"labels"})
    conf.output(0).get_tensor().set_names({"confidence"})
    return ov.Model([labels.output(0), conf.output(0)], graph.get_parameters(), "camvidseg_labels")


@attrs.define
class _Compiled:
    """One compiled model (one input size, one mode) with its infer request(s)."""

    compiled: Any
    request: Any
    queue: Any  # an AsyncInferQueue in THROUGHPUT mode, else None
    outputs: int


class OpenVINOBackend:
    """A model converted to OpenVINO IR, run by OpenVINO's CPU plugin.

    Use :meth:`load`. Thread-safe (one inference at a time).

    Args:
        model: The ``openvino.Model`` of the scores (``model.xml``).
        folder: The IR folder (for messages).
        metadata: Its ``camvidseg_openvino.json``.
        precision: ``"fp32"`` or ``"bf16"`` (set explicitly on every compiled model).
        threads: OpenVINO's ``INFERENCE_NUM_THREADS`` (``None``: all cores).
        features: The ``openvino.Model`` of ``get_features``, if converted.
        input_multiple: Have the Segmenter pad H and W to a multiple of this (1: any size).
    """

    def __init__(
        self,
        model: Any,
        folder: Path,
        metadata: OpenVINOMetadata,
        *,
        precision: str = "fp32",
        threads: int | None = None,
        features: Any = None,
        input_multiple: int = 1,
    ) -> None:
        self._ov = import_openvino()
        self._precision, self._threads = check_settings(precision, threads, "OpenVINO")
        self._model = model
        self._features = features
        self._folder = Path(folder)
        self._metadata = metadata
        self._core = self._ov.Core()
        self._cache: OrderedDict[tuple[Any, ...], _Compiled] = OrderedDict()
        self._lock = threading.Lock()
        self._input_multiple = input_multiple
        self._label_set = _label_set(metadata, self._folder)

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike[str],
        *,
        precision: str = "fp32",
        threads: int | None = None,
        input_multiple: int = 1,
    ) -> OpenVINOBackend:
        """Read an IR folder made by ``camvidseg model convert --to openvino``.

        Args:
            folder: The folder (or its ``model.xml``).
            precision: ``"fp32"`` (default) or ``"bf16"`` (CPUs with ``avx512_bf16``/AMX).
            threads: Inference threads (default: all cores).
            input_multiple: See the class docstring.

        Raises:
            ModelLoadError: if the folder, its metadata or the network cannot be read, or
                OpenVINO is not installed.
            ConfigError: for bf16 on a CPU without native bfloat16.
        """
        path = openvino_folder(folder)
        if path is None:
            raise ModelLoadError(f"{folder}: not an OpenVINO IR folder (no {MODEL_XML})")
        metadata = read_metadata(path)
        ov = import_openvino()
        core = ov.Core()
        model = read_model(path / MODEL_XML, core)
        features = (
            read_model(path / FEATURES_XML, core) if (path / FEATURES_XML).is_file() else None
        )
        if len(model.inputs) != 1 or not model.outputs:
            raise ModelLoadError(
                f"{path / MODEL_XML}: expected one input (images) and the scores as output, "
                f"found {len(model.inputs)} input(s) and {len(model.outputs)} output(s)"
            )
        return cls(
            model,
            path,
            metadata,
            precision=precision,
            threads=threads,
            features=features,
            input_multiple=input_multiple,
        )

    # -- Backend protocol --------------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self._folder)

    @property
    def input_multiple(self) -> int:
        return self._input_multiple

    @property
    def folder(self) -> Path:
        """The IR folder."""
        return self._folder

    @property
    def metadata(self) -> OpenVINOMetadata:
        """The folder's ``camvidseg_openvino.json``."""
        return self._metadata

    @property
    def precision(self) -> str:
        """``"fp32"`` or ``"bf16"``."""
        return self._precision

    @property
    def threads(self) -> int | None:
        """Inference threads (``None``: OpenVINO's default, all cores)."""
        return self._threads

    @property
    def channels(self) -> int:
        """``C`` of the scores."""
        return self._metadata.channels

    @property
    def label_set(self) -> LabelSet | None:
        """The model's own label set (a fine-tuned export's), ``None`` for the CamVid model."""
        return self._label_set

    @property
    def compiled_sizes(self) -> tuple[tuple[int, int], ...]:
        """``(height, width)`` of every compiled model held, oldest first (one per input size
        and kind; at most :data:`COMPILED_CACHE_SIZE`)."""
        return tuple(key[-2] for key in self._cache)

    def compile_config(self, *, throughput: bool = False) -> dict[str, Any]:
        """The OpenVINO properties every model is compiled with.

        Example (``backend`` an :class:`OpenVINOBackend` at fp32)::

            >>> backend.compile_config()["INFERENCE_PRECISION_HINT"]  # doctest: +SKIP
            'f32'
        """
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[self._precision],
            "PERFORMANCE_HINT": "THROUGHPUT" if throughput else "LATENCY",
        }
        if throughput:
            config["PERFORMANCE_HINT_NUM_REQUESTS"] = THROUGHPUT_REQUESTS
        if self._threads is not None:
            config["INFERENCE_NUM_THREADS"] = self._threads
        return config

    def predict(self, batch: NDArray[np.float32]) -> Scores:
        check_batch(batch)
        (scores,) = self._infer(("scores",), lambda: self._model, batch, "predict")
        return scores

    def predict_labels(
        self, batch: NDArray[np.float32], layout: ChannelLayout
    ) -> tuple[LabelMap, ConfidenceMap]:
        """Labels and confidence ``[B, H, W]`` computed inside the OpenVINO graph.

        Equal to :func:`camvidseg.postprocess.labels_and_confidence` on :meth:`predict`'s
        scores (labels exactly at fp32, confidence within
        :data:`~camvidseg.postprocess.CONFIDENCE_RTOL`); only 5 bytes per pixel come back.

        Raises:
            BackendError: if ``layout`` does not have the model's channel count, or the model
                fails.
        """
        check_batch(batch)
        if layout.num_channels != self.channels:
            raise BackendError(
                f"{self.name}: model returned a channel count other than layout "
                f"{layout.name!r} ({layout.num_channels} channels; the model has {self.channels})"
            )
        key = ("labels", layout.name, layout.drop_first, layout.channel_ids.tobytes())
        labels, conf = self._infer(
            key, lambda: _labels_model(self._ov, self._model, layout), batch, "predict_labels"
        )
        return labels.astype(np.uint8, copy=False), conf.astype(np.float32, copy=False)

    def get_features(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        check_batch(batch)
        features = self._features
        if features is None:
            raise BackendError(
                f"{self.name}: get_features was not converted (convert with --features)"
            )
        (result,) = self._infer(("features",), lambda: features, batch, "get_features")
        return result

    # -- internals ---------------------------------------------------------------------------

    def _compiled(
        self, key: tuple[Any, ...], build: Callable[[], Any], size: tuple[int, int], many: bool
    ) -> _Compiled:
        full_key = (*key, size, many)
        entry = self._cache.get(full_key)
        if entry is not None:
            self._cache.move_to_end(full_key)
            return entry
        model = build().clone()
        try:
            model.reshape({model.input(0): [1, size[0], size[1], 3]})
            compiled = self._core.compile_model(model, "CPU", self.compile_config(throughput=many))
        except RuntimeError as exc:
            raise BackendError(
                f"{self.name}: OpenVINO cannot compile the model for {size[0]}x{size[1]} "
                f"images: {_first_line(exc)}"
            ) from None
        self._check_precision(compiled)
        queue = self._ov.AsyncInferQueue(compiled, THROUGHPUT_REQUESTS) if many else None
        entry = _Compiled(compiled, compiled.create_infer_request(), queue, len(compiled.outputs))
        self._cache[full_key] = entry
        while len(self._cache) > COMPILED_CACHE_SIZE:
            self._cache.popitem(last=False)
        log.debug("OpenVINO compiled %s for %dx%d (%s)", key[0], *size, self.compile_config())
        return entry

    def _check_precision(self, compiled: Any) -> None:
        wanted = _OV_PRECISION[self._precision]
        got = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        if got != wanted:
            raise ConfigError(
                f"{self.name}: OpenVINO compiled the model in {got} although {wanted} was asked "
                f"for (its CPU plugin does not support {self._precision} on this CPU); use "
                "--precision fp32"
            )

    def _infer(
        self, key: tuple[Any, ...], build: Callable[[], Any], batch: NDArray[np.float32], what: str
    ) -> list[NDArray[Any]]:
        count = batch.shape[0]
        size = (int(batch.shape[1]), int(batch.shape[2]))
        batch = np.ascontiguousarray(batch)
        with self._lock:
            entry = self._compiled(key, build, size, count > 1)
            try:
                if entry.queue is None:
                    return _run_one(entry, batch)
                return _run_queued(entry, batch)
            except RuntimeError as exc:
                raise BackendError(
                    f"{self.name}: {what} failed on a batch of shape {batch.shape}: "
                    f"{_first_line(exc)}"
                ) from None


def _label_set(metadata: OpenVINOMetadata, folder: Path) -> LabelSet | None:
    if metadata.label_set is None:
        return None
    try:
        label_set = LabelSet.from_dict(metadata.label_set)
    except ConfigError as exc:
        raise ModelLoadError(f"{folder / METADATA_NAME}: bad label_set ({exc})") from None
    if label_set.channels != metadata.channels:
        raise ModelLoadError(
            f"{folder / METADATA_NAME}: the label set has {label_set.channels} classes but the "
            f"model {metadata.channels} channels"
        )
    return label_set


def read_model(path: str | os.PathLike[str], core: Any = None) -> Any:
    """Read an OpenVINO IR file (``model.xml``), with a :class:`ModelLoadError` naming it."""
    if core is None:
        core = import_openvino().Core()
    try:
        return core.read_model(str(path))
    except RuntimeError as exc:
        raise ModelLoadError(
            f"could not read the OpenVINO model {path}: {_first_line(exc)}. The folder looks "
            "corrupt or incomplete: convert the model again (camvidseg model convert)"
        ) from None


def _run_one(entry: _Compiled, batch: NDArray[np.float32]) -> list[NDArray[Any]]:
    request = entry.request
    request.infer({0: batch}, share_inputs=True)
    return [np.array(request.get_output_tensor(i).data) for i in range(entry.outputs)]


def _run_queued(entry: _Compiled, batch: NDArray[np.float32]) -> list[NDArray[Any]]:
    """Single-image requests of ``batch``, :data:`THROUGHPUT_REQUESTS` in flight."""
    results: list[NDArray[Any]] = [
        np.empty((batch.shape[0], *out.get_shape()[1:]), out.get_element_type().to_dtype())
        for out in entry.compiled.outputs
    ]

    def store(request: Any, index: int) -> None:
        for i, result in enumerate(results):
            result[index] = request.get_output_tensor(i).data[0]

    entry.queue.set_callback(store)
    for index in range(batch.shape[0]):
        entry.queue.start_async({0: batch[index : index + 1]}, index, share_inputs=True)
    entry.queue.wait_all()
    return results


def _first_line(exc: BaseException) -> str:
    """The informative part of an OpenVINO error (its C++ messages start with file:line)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Exception from", "Check '"))]
    return (useful or lines or [type(exc).__name__])[0]
