"""Model management: download the HRNet CamVid model ahead of time, describe it, verify it.

* :func:`download` fills the TF Hub cache (or kagglehub's, for Kaggle handles) so the model later
  loads with no network, and checks that it works.
* :func:`describe` says where a model is cached, its size, its functions with their input and
  output shapes, the channel layout (33 with a background channel, 32 with Void in channel 0)
  and the class of every output channel.
* :func:`verify` runs a model once on a tiny image and checks shapes, dtype and probabilities.

Importing this module is cheap: TensorFlow is imported only when a model is loaded. Loading and
cache handling are :mod:`camvidseg.backends.tfhub`'s; a damaged cache folder gives a
:class:`~camvidseg.ModelLoadError` naming the folder to delete.
"""

from __future__ import annotations

import importlib.metadata
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._version import __version__
from camvidseg.backends.handles import (
    DEFAULT_HANDLE,
    DEFAULT_TIMEOUT,
    HandleKind,
    classify_handle,
)
from camvidseg.backends.tfhub import (
    fetch,
    import_tensorflow,
    inspect_cache,
    load_savedmodel,
    resolve_cache_dir,
    short_error,
)
from camvidseg.exceptions import BackendError, ModelLoadError
from camvidseg.labelset import LabelSet, read_model_metadata
from camvidseg.palette import CamVidPalette
from camvidseg.postprocess import ChannelLayout

__all__ = [
    "DEFAULT_HANDLE",
    "PROBE_SHAPE",
    "Check",
    "ClassChannel",
    "FunctionInfo",
    "ModelInfo",
    "TensorInfo",
    "VerifyReport",
    "describe",
    "download",
    "verify",
    "version_report",
]

#: Shape ``[B, H, W, 3]`` of the image the model is run on by :func:`describe` and :func:`verify`.
PROBE_SHAPE = (1, 32, 48, 3)
#: How far per-pixel probabilities may sum away from 1 (float32 softmax over ~33 channels).
SUM_TOLERANCE = 1e-3
_LAYOUT_TEXT = {
    "background33": "channel 0 is a background channel (dropped); channels 1..32 are CamVid-32 "
    "ids 0..31",
    "void32": "channel 0 is Void/background (CamVid-32 id 30); channels 1..31 are the other 31 "
    "classes in id order",
    "exact": "one channel per class of the model's own label set (assets/camvidseg.json: a "
    "fine-tuned export), no background channel",
}


# -- values ---------------------------------------------------------------------------------------


@attrs.frozen
class TensorInfo:
    """Name, shape (``None`` for a free dimension) and dtype of a function argument or result."""

    name: str
    shape: tuple[int | None, ...] | None
    dtype: str

    def __str__(self) -> str:
        dims = (
            "?"
            if self.shape is None
            else ", ".join("?" if d is None else str(d) for d in self.shape)
        )
        # TF names results it was not told a name for "unknown": not worth showing.
        prefix = f"{self.name}: " if self.name and self.name != "unknown" else ""
        return f"{prefix}{self.dtype}[{dims}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": None if self.shape is None else list(self.shape),
            "dtype": self.dtype,
        }


@attrs.frozen
class FunctionInfo:
    """A function of the SavedModel (``predict``, ``get_features``) or a serving signature.

    Attributes:
        name: Attribute name (``"predict"``) or signature key.
        kind: ``"function"`` or ``"signature"``.
        inputs: Declared arguments.
        outputs: Declared results.
        probe: ``(input shape, output shape)`` observed on :data:`PROBE_SHAPE`, when it was run.
    """

    name: str
    kind: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    probe: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def __str__(self) -> str:
        text = (
            f"{self.name}({', '.join(map(str, self.inputs))}) -> "
            f"{', '.join(map(str, self.outputs)) or '?'}"
        )
        if self.probe is not None:
            text += f"; on {list(self.probe[0])} -> {list(self.probe[1])}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "probe": None if self.probe is None else [list(self.probe[0]), list(self.probe[1])],
        }


@attrs.frozen
class ClassChannel:
    """One output channel: its CamVid-32 class (``None`` for a dropped background channel)."""

    channel: int
    class_id: int | None
    name: str
    color: tuple[int, int, int] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "class_id": self.class_id,
            "name": self.name,
            "color": None if self.color is None else list(self.color),
        }


@attrs.frozen
class ModelInfo:
    """What :func:`describe` found out about a model.

    Attributes:
        handle: As given.
        kind: ``"url"``, ``"kaggle"`` or ``"path"``.
        location: The folder holding (or, for an uncached URL, that would hold) the SavedModel.
        cached: Whether it is on disk, so it loads without network.
        cache_dir: The TF Hub cache used for URLs (``None`` for other handles).
        size_bytes: Size of ``location`` on disk, when cached.
        saved_with: TensorFlow version that wrote the SavedModel, if recorded.
        functions: ``predict`` / ``get_features`` and any serving signatures.
        channels: ``C`` of ``predict``'s output on a tiny image.
        layout: ``"background33"``, ``"void32"`` or ``"exact"`` (a fine-tuned export with its
            label set in ``assets/camvidseg.json``); ``None`` if not cached or none of these.
        classes: The class of every output channel, in channel order.
    """

    handle: str
    kind: HandleKind
    location: Path | None
    cached: bool
    cache_dir: Path | None = None
    size_bytes: int | None = None
    saved_with: str | None = None
    functions: tuple[FunctionInfo, ...] = ()
    channels: int | None = None
    layout: str | None = None
    classes: tuple[ClassChannel, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "handle": self.handle,
            "kind": self.kind,
            "location": None if self.location is None else str(self.location),
            "cached": self.cached,
            "cache_dir": None if self.cache_dir is None else str(self.cache_dir),
            "size_bytes": self.size_bytes,
            "saved_with": self.saved_with,
            "functions": [f.to_dict() for f in self.functions],
            "channels": self.channels,
            "layout": self.layout,
            "classes": [c.to_dict() for c in self.classes],
        }

    def format(self) -> str:
        """A human-readable, multi-line description."""
        lines = [f"model      {self.handle} ({self.kind})"]
        if not self.cached:
            lines.append(f"location   {self.location} (not cached)")
            lines.append(f"           fetch it with: camvidseg model download {self.handle}")
            return "\n".join(lines)
        size = "" if self.size_bytes is None else f", {_human_size(self.size_bytes)}"
        where = "cached" if self.kind == "url" else "local"
        lines.append(f"location   {self.location} ({where}{size})")
        if self.saved_with:
            lines.append(f"saved with TensorFlow {self.saved_with}")
        for index, function in enumerate(self.functions):
            lines.append(f"{'functions' if index == 0 else '':<10} {function}")
        if self.layout is not None:
            lines.append(f"layout     {self.layout}: {_LAYOUT_TEXT.get(self.layout, '')}")
        else:
            lines.append(f"layout     unknown ({self.channels} channels; expected 33 or 32)")
        if self.classes:
            lines.append("classes    channel  id  name               colour")
            for row in self.classes:
                class_id = "-" if row.class_id is None else str(row.class_id)
                color = "" if row.color is None else str(row.color)
                line = f"           {row.channel:>7}  {class_id:>2}  {row.name:<18} {color}"
                lines.append(line.rstrip())
        return "\n".join(lines)


@attrs.frozen
class Check:
    """One check of :func:`verify`: its name, whether it passed, what was seen."""

    name: str
    ok: bool
    detail: str
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "required": self.required}


@attrs.frozen
class VerifyReport:
    """The outcome of :func:`verify`.

    Attributes:
        handle: As given.
        location: The SavedModel folder that was loaded.
        checks: Every check, in order.
        channels: ``C`` of ``predict``'s output (``None`` if it did not run).
        layout: The detected channel layout, if valid.
        load_seconds: How long loading took.
    """

    handle: str
    location: Path
    checks: tuple[Check, ...]
    channels: int | None = None
    layout: str | None = None
    load_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every required check passed."""
        return all(c.ok for c in self.checks if c.required)

    @property
    def failures(self) -> tuple[Check, ...]:
        """The required checks that failed."""
        return tuple(c for c in self.checks if c.required and not c.ok)

    def format(self) -> str:
        """One line per check, then a verdict."""
        lines = [f"verifying {self.handle} ({self.location})"]
        for check in self.checks:
            mark = "ok  " if check.ok else ("FAIL" if check.required else "warn")
            lines.append(f"  {mark} {check.name}: {check.detail}")
        if self.ok:
            lines.append(f"model OK: {self.channels} channels ({self.layout})")
        else:
            lines.append(f"model FAILED {len(self.failures)} of {len(self.checks)} checks")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "handle": self.handle,
            "location": str(self.location),
            "ok": self.ok,
            "channels": self.channels,
            "layout": self.layout,
            "load_seconds": round(self.load_seconds, 3),
            "checks": [c.to_dict() for c in self.checks],
        }


# -- helpers --------------------------------------------------------------------------------------


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _probe_batch() -> NDArray[np.float32]:
    """A smooth colour gradient of :data:`PROBE_SHAPE` in ``[0, 1]``."""
    _, height, width, _ = PROBE_SHAPE
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    image = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1)
    return image[None].astype(np.float32)


def _tensor_infos(structure: Any, tf: Any) -> tuple[TensorInfo, ...]:
    infos = []
    for spec in tf.nest.flatten(structure):
        shape = getattr(spec, "shape", None)
        try:
            dims = None if shape is None else tuple(shape.as_list())
        except ValueError:  # unknown rank
            dims = None
        dtype = getattr(getattr(spec, "dtype", None), "name", "?")
        infos.append(TensorInfo(str(getattr(spec, "name", "") or ""), dims, str(dtype)))
    return tuple(infos)


def _function_infos(model: Any, tf: Any) -> list[FunctionInfo]:
    found = []
    for name in ("predict", "get_features"):
        function = getattr(model, name, None)
        if not callable(function):
            continue
        concrete = list(getattr(function, "concrete_functions", ()) or ())
        if concrete:
            inputs = _tensor_infos(concrete[0].structured_input_signature, tf)
            outputs = _tensor_infos(concrete[0].structured_outputs, tf)
        else:
            inputs = _tensor_infos(getattr(function, "input_signature", None) or (), tf)
            outputs = ()
        found.append(FunctionInfo(name, "function", inputs, outputs))
    signatures = getattr(model, "signatures", None) or {}
    for key in sorted(signatures.keys()):
        concrete = signatures[key]
        found.append(
            FunctionInfo(
                str(key),
                "signature",
                _tensor_infos(concrete.structured_input_signature, tf),
                _tensor_infos(concrete.structured_outputs, tf),
            )
        )
    return found


def _run(model: Any, name: str, batch: NDArray[np.float32], tf: Any) -> NDArray[Any]:
    result = getattr(model, name)(tf.constant(batch))
    return np.asarray(result.numpy() if hasattr(result, "numpy") else result)


def _class_table(
    layout: ChannelLayout, palette: CamVidPalette | None = None
) -> tuple[ClassChannel, ...]:
    palette = palette or CamVidPalette.camvid32()
    rows = []
    if layout.drop_first:
        rows.append(ClassChannel(0, None, "background (dropped)", None))
    first = int(layout.drop_first)
    for offset, class_id in enumerate(layout.channel_ids.tolist()):
        rows.append(
            ClassChannel(
                first + offset, class_id, palette.names[class_id], palette.color_of(class_id)
            )
        )
    return tuple(rows)


def _layout_of(channels: int | None, label_set: LabelSet | None = None) -> ChannelLayout | None:
    if channels is None:
        return None
    if label_set is not None:  # a fine-tuned export: exactly one channel per class
        return label_set.channel_layout() if channels == label_set.channels else None
    try:
        return ChannelLayout.detect(channels)
    except BackendError:
        return None


# -- public API -----------------------------------------------------------------------------------


def describe(
    handle_or_path: str | os.PathLike[str] = DEFAULT_HANDLE,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> ModelInfo:
    """Describe a model: where it is, its size, functions and shapes, channel layout, classes.

    A tfhub.dev URL that is not cached is described as such, without downloading it; a cached
    one (or a local folder) is loaded and run once on a tiny image to read the channel count.
    A Kaggle Models handle is resolved through kagglehub (which downloads it if its cache lacks
    it).

    Args:
        handle_or_path: tfhub.dev URL, Kaggle Models handle or local SavedModel folder.
        cache_dir: TF Hub cache (default ``$TFHUB_CACHE_DIR``, else ``$TMPDIR/tfhub_modules``).
        timeout: Seconds a network read may stall (Kaggle handles only).

    Raises:
        ModelLoadError: for a missing folder, a damaged cache entry (naming the folder to delete)
            or a model that does not load.

    Example:
        >>> import tempfile
        >>> info = describe("https://example.com/hrnet/1", tempfile.gettempdir() + "/empty")
        >>> info.cached, info.layout
        (False, None)
    """
    handle = os.fspath(handle_or_path)
    kind = classify_handle(handle)
    cache = resolve_cache_dir(cache_dir) if kind == "url" else None
    if kind == "url":
        entry = inspect_cache(handle, cache)
        problem = entry.problem()
        if problem:
            raise ModelLoadError(problem)
        if not entry.cached:
            return ModelInfo(handle, kind, entry.folder, cached=False, cache_dir=cache)
    folder = fetch(handle, cache_dir=cache_dir, timeout=timeout)
    metadata = read_model_metadata(folder)
    label_set = None if metadata is None else metadata.label_set
    model = load_savedmodel(folder, handle)
    tf, _ = import_tensorflow()
    functions = _function_infos(model, tf)
    batch = _probe_batch()
    channels: int | None = None
    probed = []
    for function in functions:
        if function.kind != "function":
            probed.append(function)
            continue
        try:
            output = _run(model, function.name, batch, tf)
        except Exception as exc:  # TF raises many types for inputs a model cannot take
            raise BackendError(
                f"{handle}: {function.name} failed on a tiny {list(PROBE_SHAPE)} image: "
                f"{short_error(exc)}"
            ) from None
        if function.name == "predict" and output.ndim == 4:
            channels = int(output.shape[-1])
        probed.append(attrs.evolve(function, probe=(PROBE_SHAPE, tuple(output.shape))))
    layout = _layout_of(channels, label_set)
    saved_with = getattr(model, "tensorflow_version", None)
    return ModelInfo(
        handle,
        kind,
        folder,
        cached=True,
        cache_dir=cache,
        size_bytes=_folder_size(folder),
        saved_with=None if saved_with is None else str(saved_with),
        functions=tuple(probed),
        channels=channels,
        layout=None if layout is None else layout.name,
        classes=()
        if layout is None
        else _class_table(layout, None if label_set is None else label_set.to_palette()),
    )


def _checks(
    model: Any, tf: Any, label_set: LabelSet | None = None
) -> tuple[list[Check], int | None, ChannelLayout | None]:
    batch = _probe_batch()
    _, height, width, _ = PROBE_SHAPE
    checks: list[Check] = []
    if not callable(getattr(model, "predict", None)):
        checks.append(
            Check(
                "predict",
                False,
                "the SavedModel has no predict(images) function: it is not "
                "the HRNet segmentation model",
            )
        )
        return checks, None, None
    try:
        scores = _run(model, "predict", batch, tf)
    except Exception as exc:  # TF raises many types for inputs a model cannot take
        checks.append(Check("predict runs", False, f"on {list(PROBE_SHAPE)}: {short_error(exc)}"))
        return checks, None, None
    checks.append(
        Check(
            "predict runs",
            True,
            f"float32 {list(PROBE_SHAPE)} -> {scores.dtype} {list(scores.shape)}",
        )
    )
    shape_ok = scores.ndim == 4 and scores.shape[:3] == (1, height, width)
    checks.append(
        Check(
            "output shape",
            shape_ok,
            f"[1, {height}, {width}, C] as expected"
            if shape_ok
            else f"expected [1, {height}, {width}, C] (the input's size), got {list(scores.shape)}",
        )
    )
    channels = int(scores.shape[-1]) if scores.ndim == 4 else None
    layout = _layout_of(channels, label_set)
    expected = (
        "expected 33 (background + 32 CamVid classes) or 32 (Void in channel 0 + 31 classes)"
        if label_set is None
        else f"expected {label_set.channels}, one per class of {label_set.describe()}"
    )
    checks.append(
        Check(
            "channels",
            layout is not None,
            f"{channels}: {layout.name}, {_LAYOUT_TEXT[layout.name]}"
            if layout is not None
            else f"{channels}; {expected}",
        )
    )
    checks.append(Check("dtype", scores.dtype == np.float32, f"{scores.dtype} (expected float32)"))
    values = scores.astype(np.float64)
    finite = bool(np.isfinite(values).all())
    low = float(np.nanmin(values)) if values.size else 0.0
    high = float(np.nanmax(values)) if values.size else 0.0
    in_range = finite and low >= -1e-6 and high <= 1 + 1e-6
    checks.append(
        Check(
            "probabilities in [0, 1]",
            in_range,
            f"min {low:.4g}, max {high:.4g}" + ("" if finite else ", with NaN or infinity"),
        )
    )
    if values.size and finite:
        deviation = float(np.abs(values.sum(axis=-1) - 1.0).max())
        checks.append(
            Check(
                "probabilities sum to 1",
                deviation <= SUM_TOLERANCE,
                f"largest deviation {deviation:.2g} (tolerance {SUM_TOLERANCE:g})",
            )
        )
    if callable(getattr(model, "get_features", None)):
        try:
            features = _run(model, "get_features", batch, tf)
            detail = f"{list(PROBE_SHAPE)} -> {list(features.shape)}"
            ok = features.ndim == 4 and features.shape[0] == 1
        except Exception as exc:  # as above
            detail, ok = short_error(exc), False
        checks.append(Check("get_features", ok, detail, required=False))
    else:
        checks.append(
            Check("get_features", True, "absent (only fine-tuning needs it)", required=False)
        )
    return checks, channels, layout


def _verify_folder(folder: Path, handle: str) -> VerifyReport:
    started = time.monotonic()
    model = load_savedmodel(folder, handle)
    seconds = time.monotonic() - started
    tf, _ = import_tensorflow()
    metadata = read_model_metadata(folder)
    checks, channels, layout = _checks(model, tf, None if metadata is None else metadata.label_set)
    checks.insert(0, Check("loads", True, f"from {folder}"))
    return VerifyReport(
        handle,
        folder,
        tuple(checks),
        channels=channels,
        layout=None if layout is None else layout.name,
        load_seconds=seconds,
    )


def verify(
    handle_or_path: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> VerifyReport:
    """Load a model, run it once on a tiny image and check what it returns.

    Checks: ``predict`` exists and runs on a float32 ``[1, 32, 48, 3]`` image; the output is
    ``[1, 32, 48, C]`` float32 with ``C`` 33 or 32; the values are finite probabilities in
    ``[0, 1]`` that sum to 1 per pixel; ``get_features`` (optional) runs.

    Args:
        handle_or_path: A local SavedModel folder, or a handle (downloaded if not cached).
        cache_dir: TF Hub cache for URL handles.
        timeout: Seconds a network read may stall.

    Returns:
        The report; ``report.ok`` tells whether the model is usable, ``report.format()`` says why.

    Raises:
        ModelLoadError: when the model cannot be found or loaded at all.
    """
    handle = os.fspath(handle_or_path)
    folder = fetch(handle, cache_dir=cache_dir, timeout=timeout)
    return _verify_folder(folder, handle)


def download(
    handle: str = DEFAULT_HANDLE,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    check: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Fetch a model ahead of time (for offline use) and check that it works.

    A tfhub.dev URL is downloaded into the TF Hub cache (``<cache dir>/<sha1 of the handle>``,
    where ``Segmenter.from_hub`` and tensorflow_hub look for it); a Kaggle Models handle into
    kagglehub's cache. An existing complete copy is not downloaded again. Copy the cache folder
    to an offline machine and point ``TFHUB_CACHE_DIR`` (or ``--cache-dir``) at it.

    Args:
        handle: tfhub.dev URL (default), Kaggle Models handle or local folder.
        cache_dir: TF Hub cache (default ``$TFHUB_CACHE_DIR``, else ``$TMPDIR/tfhub_modules``).
        timeout: Seconds a network read may stall before the download fails.
        check: Load the model and :func:`verify` it; raise if it does not work.
        progress: Called with the byte count of every chunk written (e.g. ``tqdm.update``).

    Returns:
        The local SavedModel folder.

    Raises:
        ModelLoadError: on a network failure (within about ``timeout`` seconds), a damaged cache
            entry, or (with ``check``) a model that fails verification; the message names the
            folder to delete.
    """
    folder = fetch(handle, cache_dir=cache_dir, timeout=timeout, progress=progress)
    if check:
        report = _verify_folder(folder, handle)
        if not report.ok:
            failed = "; ".join(f"{c.name}: {c.detail}" for c in report.failures)
            raise ModelLoadError(
                f"{handle!r} in {folder} does not work as the HRNet CamVid model ({failed}). "
                "If it was downloaded, delete that folder and download again."
            )
    return folder


def _version_of(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _installed(names: Iterable[str]) -> str | None:
    """Version of the first of ``names`` that is installed (metadata only, no import)."""
    return next((v for v in map(_version_of, names) if v is not None), None)


def version_report(
    handle: str = DEFAULT_HANDLE, cache_dir: str | os.PathLike[str] | None = None
) -> str:
    """camvidseg's version, those of TensorFlow and tensorflow_hub, and the model's cache state.

    Reads package metadata only: TensorFlow is not imported.

    Example:
        >>> version_report().splitlines()[0].startswith("camvidseg ")
        True
    """
    tensorflow = _installed(("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly"))
    hub = _installed(("tensorflow-hub",))
    kaggle = _installed(("kagglehub",))
    lines = [f"camvidseg {__version__}"]
    missing = "not installed (pip install 'camvidseg[tf]')"
    lines.append(f"tensorflow {tensorflow or missing}")
    lines.append(f"tensorflow_hub {hub or missing}")
    if kaggle:
        lines.append(f"kagglehub {kaggle}")
    kind = classify_handle(handle)
    if kind == "url":
        entry = inspect_cache(handle, cache_dir)
        state = {
            "complete": f"cached in {entry.folder}",
            "absent": f"not cached (camvidseg model download; cache {entry.folder.parent})",
        }.get(entry.state, f"{entry.state} cache entry {entry.folder} (camvidseg model info)")
    elif kind == "path":
        state = "local folder" if Path(handle).expanduser().is_dir() else "missing local folder"
    else:
        state = "Kaggle Models handle (kagglehub cache)"
    lines.append(f"model {handle}: {state}")
    return "\n".join(lines)
