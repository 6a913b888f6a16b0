"""Converting a SavedModel to an OpenVINO IR folder (``camvidseg model convert --to openvino``).

Conversion needs TensorFlow once; running the converted model does not (see
:mod:`camvidseg.backends.openvino`).

Why not simply ``openvino.convert_model(saved_model_dir)``: for a SavedModel without a serving
signature (the HRNet model's ``predict`` is a plain ``tf.function`` attribute, and so is the
test fakes') it returns an *empty* model, 0 inputs and 0 outputs, without any error. So the
SavedModel is loaded with TensorFlow and ``predict``'s concrete function (any batch, height and
width) is converted; the result's inputs and outputs are checked, and it is run next to
TensorFlow on a probe image before anything is written.

Example (needs TensorFlow and OpenVINO)::

    >>> report = convert_to_openvino("/models/camvid-hrnetv2-w48", "/models/hrnet-ov")
    ... # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._version import __version__
from camvidseg.backends.openvino import (
    FEATURES_XML,
    MODEL_XML,
    OpenVINOMetadata,
    import_openvino,
    openvino_folder,
    write_metadata,
)
from camvidseg.backends.tfhub import (
    DEFAULT_HANDLE,
    DEFAULT_TIMEOUT,
    fetch,
    import_tensorflow,
    load_savedmodel,
)
from camvidseg.exceptions import CamVidSegError, ConfigError
from camvidseg.labelset import METADATA_PATH, read_model_metadata

__all__ = [
    "MIN_PROBE_AGREEMENT",
    "PROBE_SHAPE",
    "ConversionError",
    "ConversionReport",
    "check_converted",
    "convert_to_openvino",
    "probe_image",
    "unconverted_ops",
]

log = logging.getLogger("camvidseg")

#: ``[B, H, W, 3]`` of the image TensorFlow and OpenVINO are compared on after conversion.
PROBE_SHAPE = (1, 64, 96, 3)
#: Share of probe pixels whose argmax must agree between TensorFlow and OpenVINO.
MIN_PROBE_AGREEMENT = 0.99
_OPS_RE = re.compile(r"No conversion rule found for operations:\s*(.+)")
_FAILED_RE = re.compile(r"Failed conversion for operations?:?\s*(.+)", re.IGNORECASE)


class ConversionError(CamVidSegError, RuntimeError):
    """A model could not be converted (an operation OpenVINO lacks, or a result that is
    empty or differs from TensorFlow's); nothing was written."""


@attrs.frozen
class ConversionReport:
    """What :func:`convert_to_openvino` did.

    Attributes:
        source: The handle converted.
        folder: The IR folder written.
        channels: ``C`` of the scores.
        label_set: Name of the fine-tuned label set kept, ``None`` for the CamVid model.
        features: Whether ``get_features`` was converted too.
        probe_agreement: Share of probe pixels whose argmax equals TensorFlow's.
        probe_max_difference: Largest absolute score difference on the probe image.
        seconds: Time the conversion took.
        openvino: OpenVINO version used.
    """

    source: str
    folder: Path
    channels: int
    label_set: str | None
    features: bool
    probe_agreement: float
    probe_max_difference: float
    seconds: float
    openvino: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "folder": str(self.folder),
            "channels": self.channels,
            "label_set": self.label_set,
            "features": self.features,
            "probe_agreement": self.probe_agreement,
            "probe_max_difference": self.probe_max_difference,
            "seconds": round(self.seconds, 3),
            "openvino": self.openvino,
        }

    def format(self) -> str:
        kept = "" if self.label_set is None else f", label set {self.label_set!r} kept"
        features = " and get_features" if self.features else ""
        return (
            f"converted {self.source} (predict{features}, {self.channels} channels{kept}) to "
            f"{self.folder} with OpenVINO {self.openvino} in {self.seconds:.1f} s; on a "
            f"{PROBE_SHAPE[1]}x{PROBE_SHAPE[2]} probe image {self.probe_agreement:.2%} of the "
            f"labels equal TensorFlow's (largest score difference {self.probe_max_difference:.2g})"
        )


def unconverted_ops(message: str) -> list[str]:
    """Operation names OpenVINO's error ``message`` says it could not convert.

    Example:
        >>> unconverted_ops("Summary:\\n-- No conversion rule found for operations: Igamma, Zeta")
        ['Igamma', 'Zeta']
    """
    names: list[str] = []
    for pattern in (_OPS_RE, _FAILED_RE):
        for match in pattern.finditer(message):
            names += [n.strip() for n in match.group(1).split(",") if n.strip()]
    return list(dict.fromkeys(names))


def check_converted(model: Any, what: str) -> None:
    """Raise :class:`ConversionError` unless ``model`` (an ``openvino.Model``) takes one
    ``[B, H, W, 3]`` input and returns at least one rank-4 output.

    This catches the empty model ``openvino.convert_model`` returns, without an error, for a
    SavedModel folder with no serving signature.
    """
    inputs, outputs = list(model.inputs), list(model.outputs)
    if not inputs or not outputs:
        raise ConversionError(
            f"{what}: OpenVINO returned an empty model ({len(inputs)} inputs, {len(outputs)} "
            "outputs); nothing was written"
        )
    if len(inputs) != 1:
        raise ConversionError(f"{what}: expected one input (images), found {len(inputs)}")
    shape = inputs[0].get_partial_shape()
    channels = shape[3] if shape.rank.is_static and len(shape) == 4 else None
    if channels is None or (channels.is_static and channels.get_length() != 3):
        raise ConversionError(f"{what}: the input must be [B, H, W, 3] images (got {shape})")
    out_shape = outputs[0].get_partial_shape()
    if not out_shape.rank.is_static or len(out_shape) != 4:
        raise ConversionError(f"{what}: the output must be [B, H, W, C] (got {out_shape})")


def probe_image() -> NDArray[np.float32]:
    """The ``PROBE_SHAPE`` image compared after conversion: cells of CamVid colours with a
    gradient across them, values in ``[0, 1]``."""
    from camvidseg.palette import CamVidPalette

    _, height, width, _ = PROBE_SHAPE
    colors = CamVidPalette.camvid32().colors.astype(np.float32)
    cells = np.arange(height // 8)[:, None] * (width // 8) + np.arange(width // 8)[None, :]
    image = colors[cells % len(colors)].repeat(8, axis=0).repeat(8, axis=1)
    ramp = np.linspace(-24.0, 24.0, width, dtype=np.float32)[None, :, None]
    probe: NDArray[np.float32] = (np.clip(image + ramp, 0.0, 255.0) / 255.0)[None]
    return probe.astype(np.float32)


def _concrete(tf: Any, model: Any, name: str, handle: str) -> Any:
    """``model.<name>``'s concrete function for float32 images of any batch, height, width."""
    function = getattr(model, name, None)
    if not callable(function):
        raise ConversionError(
            f"{handle}: the SavedModel has no `{name}` function; this is not the HRNet "
            "segmentation model (expected predict(images) -> [B, H, W, C] probabilities)"
        )
    try:
        return function.get_concrete_function(tf.TensorSpec([None, None, None, 3], tf.float32))
    except (TypeError, ValueError) as exc:  # a function saved for other shapes only
        saved = list(getattr(function, "concrete_functions", ()) or ())
        if not saved:
            raise ConversionError(
                f"{handle}: `{name}` does not take float32 [B, H, W, 3] images ({exc})"
            ) from None
        log.info("%s: converting %s's saved signature %s", handle, name, saved[0])
        return saved[0]


def _static_channels(concrete: Any) -> int | None:
    """The last dimension of a concrete function's (first) output, if it is known."""
    outputs = concrete.structured_outputs
    output = outputs[0] if isinstance(outputs, (list, tuple)) and outputs else outputs
    shape = getattr(output, "shape", None)
    if shape is None or shape.rank is None or shape.rank == 0:
        return None
    last = shape[-1]
    return None if last is None else int(last)


def _check_label_channels(expected: int | None, channels: int | None, source: str) -> None:
    if expected is not None and channels is not None and expected != channels:
        raise ConversionError(
            f"{source}: its {METADATA_PATH} says {expected} channels but predict returns "
            f"{channels}; nothing was written"
        )


@contextlib.contextmanager
def _root_logger_kept() -> Iterator[None]:
    """Restore the root logger's level, filters and handlers afterwards.

    ``openvino.convert_model`` sets the root logger to ERROR (and adds a filter) while it runs
    and restores it only when it succeeds: a failed conversion would otherwise silence every
    warning of the host program from then on.
    """
    root = logging.getLogger()
    level, filters, handlers = root.level, list(root.filters), list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.filters[:] = filters
        root.handlers[:] = handlers


def _convert(ov: Any, concrete: Any, what: str) -> Any:
    try:
        with _root_logger_kept():
            model = ov.convert_model(concrete)
    except Exception as exc:  # OpConversionFailure and others derive from Exception only
        message = str(exc)
        ops = unconverted_ops(message)
        if ops:
            raise ConversionError(
                f"{what}: OpenVINO {ov.__version__} cannot convert the TensorFlow "
                f"operation(s) {', '.join(ops)}. Keep running this model with TensorFlow "
                "(--model SAVEDMODEL), or try a newer OpenVINO (pip install -U openvino); "
                "nothing was written"
            ) from None
        detail = " ".join(message.split())[:400]
        raise ConversionError(
            f"{what}: OpenVINO could not convert it ({type(exc).__name__}: {detail}); "
            "nothing was written"
        ) from None
    check_converted(model, what)
    return model


def _probe(ov: Any, tf: Any, model: Any, tf_model: Any, handle: str) -> tuple[float, float, int]:
    """Run TensorFlow and OpenVINO (fp32) on :func:`probe_image`: ``(label agreement, largest
    score difference, channels)``."""
    image = probe_image()
    expected = np.asarray(tf_model.predict(tf.constant(image)).numpy(), np.float32)
    if expected.ndim != 4 or expected.shape[:3] != image.shape[:3]:
        raise ConversionError(
            f"{handle}: predict returned shape {expected.shape} for a {list(image.shape)} image; "
            "expected [B, H, W, C] at the input's size"
        )
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = np.asarray(compiled(image)[0], np.float32)
    if got.shape != expected.shape:
        raise ConversionError(
            f"{handle}: the converted model returned shape {got.shape}, TensorFlow "
            f"{expected.shape}, for the same image; nothing was written"
        )
    agreement = float(np.mean(np.argmax(got, -1) == np.argmax(expected, -1)))
    difference = float(np.max(np.abs(got - expected)))
    if not agreement >= MIN_PROBE_AGREEMENT:
        raise ConversionError(
            f"{handle}: the converted model disagrees with TensorFlow on a probe image "
            f"({agreement:.2%} of the labels equal, largest score difference {difference:.3g}); "
            "nothing was written"
        )
    return agreement, difference, int(expected.shape[-1])


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise ConfigError(f"-o {output}: exists and is not a folder")
    if output.is_dir() and any(output.iterdir()):
        if openvino_folder(output) is None:
            raise ConfigError(
                f"-o {output}: the folder is not empty and holds no OpenVINO model; choose an "
                "empty or new folder"
            )
        if not overwrite:
            raise ConfigError(
                f"-o {output}: already holds an OpenVINO model; pass --overwrite to replace it"
            )


def _set_default_permissions(path: Path, mode: int) -> None:
    """Give ``path`` the permissions a plain mkdir/open would (temp files are private)."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(mode & ~umask)


def _move_into_place(staged: Path, output: Path) -> None:
    """Replace ``output`` (absent, empty, or an old IR folder) by ``staged`` (same parent)."""
    old: Path | None = None
    if output.is_dir():
        old = Path(tempfile.mkdtemp(prefix=".old-", dir=output.parent))
        os.replace(output, old / "model")
    os.replace(staged, output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def convert_to_openvino(
    handle: str | os.PathLike[str] = DEFAULT_HANDLE,
    output: str | os.PathLike[str] = "camvid-openvino",
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    features: bool = False,
    overwrite: bool = False,
) -> ConversionReport:
    """Convert a SavedModel (any model handle) to an OpenVINO IR folder.

    Writes ``model.xml``/``model.bin`` (fp32 weights), ``camvidseg_openvino.json`` and, with
    ``features``, ``features.xml``/``features.bin``. The folder appears whole or not at all.

    Args:
        handle: tfhub.dev URL (default: the published model), Kaggle Models handle, or a local
            SavedModel folder (a fine-tuned export keeps its label set).
        output: The IR folder to write (new, or empty).
        cache_dir: TF Hub cache for URL handles.
        timeout: Seconds a network read may stall.
        features: Also convert ``get_features`` (only fine-tuning uses it).
        overwrite: Replace an existing IR folder at ``output``.

    Raises:
        ConversionError: for an operation OpenVINO cannot convert (named), an empty result or
            one that disagrees with TensorFlow on a probe image.
        ModelLoadError: if the model cannot be loaded, or TensorFlow/OpenVINO is missing.
        ConfigError: for a bad ``output`` or a handle that is no SavedModel.
    """
    started = time.monotonic()
    source = os.fspath(handle)
    output = Path(output).expanduser()
    if source.startswith("fake:"):
        raise ConfigError(
            f"{source}: the fake models are numpy code, not a SavedModel; write one with "
            "camvidseg.testing.write_fake_savedmodel and convert that folder"
        )
    if openvino_folder(source) is not None:
        raise ConfigError(f"{source} is already an OpenVINO IR folder")
    _check_output(output, overwrite)
    ov = import_openvino()
    folder = fetch(source, cache_dir=cache_dir, timeout=timeout)
    # A fine-tuned export (camvidseg finetune --export) keeps its label set.
    exported = read_model_metadata(folder)
    label_set = None if exported is None else exported.label_set.to_dict()
    label_channels = None if exported is None else exported.channels
    tf_model = load_savedmodel(folder, source)
    tf, _ = import_tensorflow()  # loaded already by load_savedmodel

    predict = _concrete(tf, tf_model, "predict", source)
    _check_label_channels(label_channels, _static_channels(predict), source)
    model = _convert(ov, predict, f"{source}: predict")
    agreement, difference, channels = _probe(ov, tf, model, tf_model, source)
    _check_label_channels(label_channels, channels, source)
    feature_model = None
    if features:
        what = f"{source}: get_features"
        feature_model = _convert(ov, _concrete(tf, tf_model, "get_features", source), what)
        feature_model.output(0).get_tensor().add_names({"features"})
    model.output(0).get_tensor().add_names({"scores"})
    output.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".convert-", dir=output.parent))
    try:
        _set_default_permissions(staged, 0o777)
        ov.save_model(model, str(staged / MODEL_XML), compress_to_fp16=False)
        if feature_model is not None:
            ov.save_model(feature_model, str(staged / FEATURES_XML), compress_to_fp16=False)
        metadata = OpenVINOMetadata(
            source=source,
            channels=channels,
            label_set=label_set,
            camvidseg=__version__,
            openvino=str(ov.__version__),
        )
        _set_default_permissions(write_metadata(staged, metadata), 0o666)
        _move_into_place(staged, output)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    name = None if label_set is None else str(label_set.get("name", "?"))
    return ConversionReport(
        source=source,
        folder=output,
        channels=channels,
        label_set=name,
        features=feature_model is not None,
        probe_agreement=agreement,
        probe_max_difference=difference,
        seconds=time.monotonic() - started,
        openvino=str(ov.__version__),
    )
