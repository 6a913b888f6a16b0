"""The TensorFlow Hub backend: the real HRNet CamVid model.

This is the only module that imports TensorFlow, and only inside functions, so importing it (or
camvidseg) stays cheap. ``tensorflow_hub.load`` resolves the handle: a local SavedModel folder, a
tfhub.dev URL (downloaded once into ``TFHUB_CACHE_DIR``, following the redirect to Kaggle Models),
or, through the optional ``kagglehub`` package, a Kaggle Models handle.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import ConfidenceMap, LabelMap, Scores
from camvidseg.backends.base import check_batch
from camvidseg.backends.handles import (
    DEFAULT_HANDLE,
    DEFAULT_TIMEOUT,
    KAGGLE_HANDLE,
    classify_handle,
)
from camvidseg.exceptions import BackendError, ModelLoadError
from camvidseg.labelset import LabelSet, read_model_metadata

if TYPE_CHECKING:
    from camvidseg.postprocess import ChannelLayout

__all__ = [
    "DEFAULT_HANDLE",
    "DEFAULT_TIMEOUT",
    "KAGGLE_HANDLE",
    "CacheEntry",
    "TFHubBackend",
    "cache_folder",
    "classify_handle",
    "fetch",
    "import_tensorflow",
    "inspect_cache",
    "labels_and_confidence_op",
    "load_savedmodel",
    "resolve_cache_dir",
    "short_error",
]

log = logging.getLogger("camvidseg")

# DEFAULT_HANDLE, KAGGLE_HANDLE, DEFAULT_TIMEOUT and classify_handle are defined once, in
# camvidseg.backends.handles, and re-exported here (their historical home).

CacheState = Literal["absent", "complete", "incomplete", "locked"]


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The TF Hub cache folder: ``cache_dir``, else ``$TFHUB_CACHE_DIR``, else
    ``$TMPDIR/tfhub_modules`` (tensorflow_hub's own default)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("TFHUB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(tempfile.gettempdir()) / "tfhub_modules"


def cache_folder(handle: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where tensorflow_hub caches ``handle``: ``<cache dir>/<sha1 of the handle>``.

    Example:
        >>> cache_folder("x", "/c") == Path("/c", hashlib.sha1(b"x").hexdigest())
        True
    """
    digest = hashlib.sha1(handle.encode("utf8")).hexdigest()
    return resolve_cache_dir(cache_dir) / digest


def _lock_owner(lock_file: Path) -> str:
    """Who holds a tensorflow_hub lock file (its content is ``<host>.<pid>.<task id>``)."""
    try:
        content = lock_file.read_text(errors="replace").strip()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    owner = content.rpartition(".")[0]  # drop the task id
    host, _, pid_text = owner.rpartition(".")
    if not pid_text.isdigit():
        return f"content {content[:80]!r}"
    pid = int(pid_text)
    if host != socket.gethostname():
        return f"process {pid} on host {host}"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"process {pid}, which is no longer running: an interrupted download"
    except PermissionError:
        pass
    return f"running process {pid}: a download may be in progress"


@attrs.frozen
class CacheEntry:
    """What a TF Hub cache holds for one handle (see :func:`inspect_cache`).

    Attributes:
        handle: The model handle.
        folder: ``<cache dir>/<sha1 of the handle>``, where tensorflow_hub keeps it.
        state: ``"complete"`` (a SavedModel is there), ``"absent"``, ``"incomplete"`` (files
            but no usable SavedModel) or ``"locked"`` (no model, but a download's lock file).
        detail: What is wrong, for ``"incomplete"`` and ``"locked"``.
        lock_file: ``<folder>.lock``, if present.
        leftovers: Temporary ``<folder>.<task>.tmp`` folders of unfinished downloads.
    """

    handle: str
    folder: Path
    state: CacheState
    detail: str = ""
    lock_file: Path | None = None
    leftovers: tuple[Path, ...] = ()

    @property
    def cached(self) -> bool:
        """Whether the model loads from here without network."""
        return self.state == "complete"

    def problem(self) -> str | None:
        """A one-line error with the fix for an incomplete or locked entry, else ``None``."""
        again = (
            f"download again (camvidseg model download {self.handle} "
            f"--cache-dir {self.folder.parent})"
        )
        extra = "".join(f" and {p}" for p in self.leftovers)
        if self.state == "incomplete":
            return (
                f"the TF Hub cache folder {self.folder} for {self.handle!r} is incomplete or "
                f"corrupt ({self.detail}): delete that folder{extra} and {again}"
            )
        if self.state == "locked":
            return (
                f"the TF Hub cache folder {self.folder} for {self.handle!r} holds no model but "
                f"is locked by {self.lock_file} ({self.detail}); tensorflow_hub would wait up to "
                f"10 minutes for it. If no download is running, delete {self.lock_file}{extra} "
                f"and {again}"
            )
        return None


def inspect_cache(handle: str, cache_dir: str | os.PathLike[str] | None = None) -> CacheEntry:
    """Look at what the TF Hub cache holds for ``handle``, without TensorFlow or network.

    Example:
        >>> inspect_cache("https://example.com/m/1", tempfile.gettempdir() + "/none").state
        'absent'
    """
    folder = cache_folder(handle, cache_dir)
    lock = folder.with_name(folder.name + ".lock")
    lock_file = lock if lock.exists() else None
    leftovers: tuple[Path, ...] = ()
    if folder.parent.is_dir():
        leftovers = tuple(sorted(folder.parent.glob(folder.name + ".*.tmp")))
    entry = CacheEntry(handle, folder, "absent", lock_file=lock_file, leftovers=leftovers)
    if folder.is_dir() and any(folder.iterdir()):
        # tensorflow_hub takes any non-empty folder as a finished download
        problem = _savedmodel_problem(folder)
        if problem:
            return attrs.evolve(entry, state="incomplete", detail=problem)
        return attrs.evolve(entry, state="complete")
    if lock_file is not None:
        return attrs.evolve(entry, state="locked", detail=f"held by {_lock_owner(lock_file)}")
    return entry


def _savedmodel_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete SavedModel (cheap checks on the files), or ``None``."""
    proto = folder / "saved_model.pb"
    if not proto.is_file() and not (folder / "saved_model.pbtxt").is_file():
        if (folder / "tfhub_module.pb").is_file():
            return "it holds a TF1 Hub module, not a TF2 SavedModel"
        return "no saved_model.pb"
    if proto.is_file() and proto.stat().st_size == 0:
        return "saved_model.pb is empty"
    variables = folder / "variables"
    if variables.is_dir() and any(variables.iterdir()):
        if not (variables / "variables.index").is_file():
            return "variables/variables.index is missing"
        if not any(variables.glob("variables.data-*")):
            return "variables/variables.data-* is missing"
    return None


@contextlib.contextmanager
def _download_settings(cache_dir: Path, timeout: float) -> Iterator[None]:
    """Point tensorflow_hub at ``cache_dir`` and bound every socket read by ``timeout``.

    tensorflow_hub calls ``urlopen`` without a timeout, so an unreachable network would hang;
    the process-wide default is restored afterwards.
    """
    old_timeout = socket.getdefaulttimeout()
    old_env = os.environ.get("TFHUB_CACHE_DIR")
    os.environ["TFHUB_CACHE_DIR"] = str(cache_dir)
    socket.setdefaulttimeout(timeout)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old_timeout)
        if old_env is None:
            os.environ.pop("TFHUB_CACHE_DIR", None)
        else:
            os.environ["TFHUB_CACHE_DIR"] = old_env


def _advice(handle: str, cache_dir: Path) -> str:
    return (
        "To use a copy you already have: pass a local SavedModel folder "
        "(--model /path/to/camvid-hrnetv2-w48, or Segmenter.from_hub('/path/...')), "
        f"or put the cached model in {cache_folder(handle, cache_dir)} "
        "(set TFHUB_CACHE_DIR or --cache-dir to the cache that holds it). "
        "On a machine with internet, `camvidseg model download --cache-dir DIR` fills a cache "
        "you can copy."
    )


@contextlib.contextmanager
def _captured_stderr_fd() -> Iterator[None]:
    """Send what C++ code writes to file descriptor 2 to the debug log instead.

    TensorFlow's start-up chatter (CUDA probing, CPU features) is written by absl before any
    log level applies; users see it only with ``-vv``.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            chatter = sink.read().decode(errors="replace").strip()
            if chatter:
                log.debug("TensorFlow start-up output:\n%s", chatter)


def import_tensorflow() -> tuple[Any, Any]:
    """Import and return ``(tensorflow, tensorflow_hub)``, the one way camvidseg imports them.

    TensorFlow's start-up chatter goes to the debug log; the first call pays the import, later
    calls return the loaded modules.

    Raises:
        ModelLoadError: when they are not installed, naming the extra to install.
    """
    if "tensorflow_hub" in sys.modules:  # imported already: skip the stderr capture
        return sys.modules["tensorflow"], sys.modules["tensorflow_hub"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with warnings.catch_warnings(), _captured_stderr_fd():
            # tensorflow_hub imports the deprecated pkg_resources; not the user's concern.
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            import tensorflow as tf
            import tensorflow_hub as hub
    except ImportError as exc:
        raise ModelLoadError(
            f"TensorFlow and tensorflow_hub are needed to load the model ({exc}). "
            "Install them with: pip install 'camvidseg[tf]'"
        ) from None
    return tf, hub


def short_error(exc: BaseException) -> str:
    """``"<type>: <first line of the message>"`` of ``exc``, at most 300 characters.

    Example:
        >>> short_error(ValueError("bad shape\\nlong traceback"))
        'ValueError: bad shape'
    """
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]


def _resolve_kaggle(handle: str) -> str:
    try:
        import kagglehub
    except ImportError:
        raise ModelLoadError(
            f"{handle!r} looks like a Kaggle Models handle, which needs the kagglehub package: "
            "pip install 'camvidseg[kaggle]' (or pass the tfhub.dev URL or a local folder)"
        ) from None
    try:
        return str(kagglehub.model_download(handle))
    except Exception as exc:  # kagglehub raises many unrelated types on network errors
        raise ModelLoadError(
            f"could not download Kaggle model {handle!r} with kagglehub ({short_error(exc)}). "
            "Pass a local SavedModel folder instead, or fill kagglehub's cache "
            "(KAGGLEHUB_CACHE) on a machine with internet."
        ) from None


def labels_and_confidence_op(layout: ChannelLayout, *, jit_compile: bool = True) -> Any:
    """A ``tf.function`` from scores ``[..., C]`` to ``(labels, confidence)``, computed in TF.

    The same computation as :func:`camvidseg.postprocess.labels_and_confidence`: drop channel 0
    if the layout says so, argmax (first maximum on ties), map channels to CamVid-32 ids, and
    the winning probability divided by the sum of the kept channels (0 where that sum is 0),
    clipped to ``[0, 1]``. Only 5 bytes per pixel (uint8 label, float32 confidence) come out.

    With ``jit_compile``, XLA computes the maximum, its first index and the sum in *one* pass
    over the scores (a variadic reduction over ``(key, score)`` pairs, see :func:`_one_pass`),
    where ``argmax``, ``max`` and ``sum`` would take three. Without XLA (or without the tf2xla
    ops) it uses those three plain TF ops.

    Args:
        layout: The model's channel layout.
        jit_compile: Compile with XLA.

    Returns:
        A callable taking a float32 tensor ``[..., C]`` and returning uint8 and float32 tensors
        ``[...]``.
    """
    tf, _ = import_tensorflow()
    first = int(layout.drop_first)
    ids = tf.constant(layout.channel_ids, dtype=tf.uint8)
    variadic_reduce = _variadic_reduce() if jit_compile else None

    def labels_and_confidence(scores: Any) -> tuple[Any, Any]:
        kept = scores[..., first:]
        if variadic_reduce is not None:
            index, best, total = _one_pass(tf, variadic_reduce, kept)
        else:
            index = tf.argmax(kept, axis=-1, output_type=tf.int32)
            best = tf.reduce_max(kept, axis=-1)
            total = tf.reduce_sum(kept, axis=-1)
        positive = total > 0
        conf = tf.where(positive, best / tf.where(positive, total, tf.ones_like(total)), 0.0)
        return tf.gather(ids, index), tf.clip_by_value(conf, 0.0, 1.0)

    return tf.function(labels_and_confidence, jit_compile=jit_compile, reduce_retracing=True)


#: Index slots packed below a score's bits in :func:`_one_pass` keys (channels <= 64).
_INDEX_SLOTS = 64


def _variadic_reduce() -> Any:
    try:
        from tensorflow.compiler.tf2xla.python import xla
    except ImportError:  # the tf2xla Python ops are not in every TF build
        return None
    return getattr(xla, "variadic_reduce", None)


def _one_pass(tf: Any, variadic_reduce: Any, kept: Any) -> tuple[Any, Any, Any]:
    """``(argmax, max, sum)`` over the last axis in one XLA reduction.

    Each score becomes an int64 key ``order(score) * 64 + (63 - channel)``, where ``order`` maps
    float32 to int32 monotonically (its bits, magnitude-flipped for negatives; -0.0 is made
    +0.0 first, as numpy compares them equal). The largest key holds the maximum score and,
    among equal scores, the *smallest* channel: numpy's tie rule. The same reduction sums the
    scores alongside.
    """
    channels = int(kept.shape[-1])
    if channels > _INDEX_SLOTS:
        raise BackendError(f"at most {_INDEX_SLOTS} channels fit the fused op (got {channels})")
    spec_key, spec_sum = tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.float32)

    @tf.function(input_signature=[spec_key, spec_sum, spec_key, spec_sum])  # type: ignore[untyped-decorator]
    def keep_max_add_sum(key_a: Any, sum_a: Any, key_b: Any, sum_b: Any) -> tuple[Any, Any]:
        return tf.maximum(key_a, key_b), sum_a + sum_b

    def order(bits: Any) -> Any:  # an involution: also maps order back to bits
        return tf.where(bits < 0, tf.bitwise.bitwise_xor(bits, 0x7FFFFFFF), bits)

    no_negative_zero = tf.where(kept == 0.0, tf.zeros_like(kept), kept)
    ranks = tf.cast(order(tf.bitcast(no_negative_zero, tf.int32)), tf.int64)
    slots = (_INDEX_SLOTS - 1) - tf.range(channels, dtype=tf.int64)
    keys = ranks * _INDEX_SLOTS + slots
    best_key, total = variadic_reduce(
        (keys, kept),
        (tf.constant(np.iinfo(np.int64).min), tf.constant(0.0, tf.float32)),
        [kept.shape.rank - 1],
        keep_max_add_sum.get_concrete_function(),
    )
    index = (_INDEX_SLOTS - 1) - tf.cast(tf.math.floormod(best_key, _INDEX_SLOTS), tf.int32)
    best_bits = order(tf.cast(tf.math.floordiv(best_key, _INDEX_SLOTS), tf.int32))
    return index, tf.bitcast(best_bits, tf.float32), total


class _FusedLabels:
    """``predict`` followed by :func:`labels_and_confidence_op` in one TF graph.

    Tries the XLA-compiled op first; if that call fails but the uncompiled one then succeeds
    (no XLA for this device or op), keeps the uncompiled one from then on.
    """

    def __init__(self, predict: Callable[[Any], Any], layout: ChannelLayout, jit: bool) -> None:
        tf, _ = import_tensorflow()
        self.layout = layout
        self.jit = jit
        channels = layout.num_channels
        spec = tf.TensorSpec([None, None, None, 3], tf.float32)

        def build(op: Any) -> Any:
            def fused(images: Any) -> tuple[Any, Any]:
                scores = predict(images)
                check = tf.debugging.assert_equal(
                    tf.shape(scores)[-1],
                    channels,
                    message=f"model returned a channel count other than layout "
                    f"{layout.name!r} ({channels} channels)",
                )
                with tf.control_dependencies([check]):
                    scores = tf.identity(scores)
                result: tuple[Any, Any] = op(scores)
                return result

            return tf.function(fused, input_signature=[spec])

        self._plain = build(labels_and_confidence_op(layout, jit_compile=False))
        self._compiled = build(labels_and_confidence_op(layout)) if jit else None

    def __call__(self, images: Any) -> tuple[Any, Any]:
        if self._compiled is not None:
            try:
                result: tuple[Any, Any] = self._compiled(images)
                return result
            except Exception as exc:  # XLA reports missing support as several error types
                plain: tuple[Any, Any] = self._plain(images)
                log.debug(
                    "XLA-compiled labels failed (%s); using the uncompiled op", short_error(exc)
                )
                self._compiled = None
                self.jit = False
                return plain
        plain_result: tuple[Any, Any] = self._plain(images)
        return plain_result


@contextlib.contextmanager
def _progress_hook(progress: Callable[[int], None] | None) -> Iterator[None]:
    """Report the bytes tensorflow_hub writes while unpacking a download to ``progress``.

    tensorflow_hub has no progress callback; its ``DownloadManager._log_progress`` sees every
    chunk, so it is wrapped for the duration (left alone if a future version lacks it).
    """
    manager = None
    if progress is not None:
        with contextlib.suppress(ImportError):
            from tensorflow_hub import resolver

            manager = getattr(resolver, "DownloadManager", None)
    original = getattr(manager, "_log_progress", None)
    if manager is None or original is None or progress is None:
        yield
        return
    report = progress

    def log_progress(self: Any, bytes_downloaded: int) -> None:
        report(int(bytes_downloaded))
        original(self, bytes_downloaded)

    manager._log_progress = log_progress
    try:
        yield
    finally:
        manager._log_progress = original


def fetch(
    handle: str = DEFAULT_HANDLE,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Resolve ``handle`` to a local SavedModel folder, downloading it if needed (no loading).

    A URL is downloaded once into the TF Hub cache (``<cache dir>/<sha1 of the handle>``); a
    Kaggle Models handle goes through ``kagglehub``; a local folder is checked and returned.

    Args:
        handle: tfhub.dev URL, Kaggle Models handle or local folder.
        cache_dir: TF Hub cache folder (default ``$TFHUB_CACHE_DIR`` or
            ``$TMPDIR/tfhub_modules``).
        timeout: Seconds a network read may stall before the download is abandoned.
        progress: Called with the number of bytes of each chunk written while downloading.

    Raises:
        ModelLoadError: for a missing folder, an incomplete or locked cache entry (with the
            folder to delete) or a failed download (listing what was tried).
    """
    handle = str(handle)
    kind = classify_handle(handle)
    cache = resolve_cache_dir(cache_dir)
    if kind == "path":
        path = Path(handle).expanduser()
        if not path.is_dir():
            raise ModelLoadError(
                f"model folder {path} does not exist (or is not a folder). A model handle is a "
                f"tfhub.dev URL such as {DEFAULT_HANDLE}, a Kaggle Models handle such as "
                f"{KAGGLE_HANDLE}, or a folder holding a SavedModel (saved_model.pb)."
            )
        if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
            raise ModelLoadError(
                f"{path} holds no saved_model.pb: it is not a SavedModel folder "
                "(an interrupted download? delete it and download again)"
            )
        return path
    if kind == "kaggle":
        with _download_settings(cache, timeout):
            return Path(_resolve_kaggle(handle))
    entry = inspect_cache(handle, cache)
    problem = entry.problem()
    if problem:
        raise ModelLoadError(problem)
    if entry.cached:
        return entry.folder
    tried = [
        f"TF Hub cache {entry.folder} ({entry.state})",
        f"download of {handle} (timeout {timeout:g} s)",
    ]
    _, hub = import_tensorflow()
    started = time.monotonic()
    try:
        with _download_settings(cache, timeout), _progress_hook(progress):
            resolved = Path(hub.resolve(handle))
    except Exception as exc:  # urllib, tarfile and TF raise many unrelated types
        raise ModelLoadError(
            f"could not load model {handle!r}: {short_error(exc)}. Tried: {'; '.join(tried)}. "
            + _advice(handle, cache)
        ) from None
    log.info("downloaded %s to %s in %.1f s", handle, resolved, time.monotonic() - started)
    return resolved


def load_savedmodel(folder: str | os.PathLike[str], handle: str | None = None) -> Any:
    """``tensorflow_hub.load`` a local SavedModel folder, with a clear error if it is damaged.

    Args:
        folder: A folder from :func:`fetch`.
        handle: What the folder was resolved from, for messages (default: the folder).

    Raises:
        ModelLoadError: naming the folder and suggesting to delete it and download again.
    """
    folder = Path(folder)
    name = str(folder) if handle is None else handle
    tf, hub = import_tensorflow()
    del tf
    try:
        # The first TensorFlow op probes devices (CUDA) and writes to fd 2: keep it in the log.
        with _captured_stderr_fd():
            return hub.load(str(folder))
    except Exception as exc:  # TF raises many unrelated types; all mean "not loaded"
        fix = (
            f"delete that folder and download again (camvidseg model download {name} "
            f"--cache-dir {folder.parent})"
            if classify_handle(name) == "url"
            else "copy or download a complete SavedModel there again"
        )
        raise ModelLoadError(
            f"could not load model {name!r}: {short_error(exc)}. The SavedModel in {folder} looks "
            f"corrupt or incomplete: {fix}."
        ) from None


class TFHubBackend:
    """The HRNet model loaded with ``tensorflow_hub.load``.

    Use :meth:`load`; the constructor wraps an already-loaded SavedModel object.

    Args:
        model: Object with ``predict`` (and optionally ``get_features``) TF functions.
        handle: What it was loaded from (for messages).
        input_multiple: Batch H and W are padded to a multiple of this by the Segmenter.
        jit_compile: Compile the in-graph labels and confidence of :meth:`predict_labels` with
            XLA (falls back to the uncompiled op where XLA is not available).
        label_set: The model's own label set, for a model exported by ``camvidseg finetune``
            (read from its ``assets/camvidseg.json`` by :meth:`load`): it returns exactly one
            channel per trained class. ``None`` for the stock model.
    """

    def __init__(
        self,
        model: Any,
        handle: str,
        *,
        input_multiple: int = 1,
        jit_compile: bool = True,
        precision: str = "fp32",
        threads: int | None = None,
        label_set: LabelSet | None = None,
    ) -> None:
        if not callable(getattr(model, "predict", None)):
            raise ModelLoadError(
                f"{handle}: the SavedModel has no `predict` function; this is not the HRNet "
                "segmentation model (expected predict(images) -> [B, H, W, C] probabilities)"
            )
        self._model = model
        self._handle = handle
        self._input_multiple = input_multiple
        self._jit_compile = jit_compile
        self._fused: dict[tuple[str, int], _FusedLabels] = {}
        # As configured by load() (TensorFlow's settings are process-wide).
        self.precision = precision
        self.threads = threads
        self._label_set = label_set

    @classmethod
    def load(
        cls,
        handle: str = DEFAULT_HANDLE,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        input_multiple: int = 1,
        jit_compile: bool = True,
        precision: str = "fp32",
        threads: int | None = None,
    ) -> TFHubBackend:
        """Load the model from a URL, a Kaggle Models handle or a local SavedModel folder.

        Args:
            handle: tfhub.dev URL (default), Kaggle handle, or local folder.
            cache_dir: TF Hub cache folder (default ``$TFHUB_CACHE_DIR`` or
                ``$TMPDIR/tfhub_modules``). A cached handle loads without network.
            timeout: Seconds a network read may stall before giving up.
            input_multiple: See the class docstring.
            jit_compile: See the class docstring.
            precision: ``"fp32"`` or ``"bf16"``; TensorFlow's setting is process-wide (see
                :func:`camvidseg.backends.precision.configure_tensorflow`).
            threads: TensorFlow's intra-op threads (default: all cores).

        Raises:
            ModelLoadError: listing what was tried and how to point at a local copy.
            ConfigError: for bf16 on a CPU without native bfloat16.
        """
        from camvidseg.backends.precision import check_settings, configure_tensorflow

        handle = str(handle)
        started = time.monotonic()
        check_settings(precision, threads, "TensorFlow")
        folder = fetch(handle, cache_dir=cache_dir, timeout=timeout)
        import_tensorflow()  # before configuring it: TF start-up output goes to the debug log
        configure_tensorflow(precision, threads)
        metadata = read_model_metadata(folder)
        model = load_savedmodel(folder, handle)
        log.info("loaded %s in %.1f s", handle, time.monotonic() - started)
        return cls(
            model,
            handle,
            input_multiple=input_multiple,
            jit_compile=jit_compile,
            precision=precision,
            threads=threads,
            label_set=None if metadata is None else metadata.label_set,
        )

    @property
    def name(self) -> str:
        return self._handle

    @property
    def input_multiple(self) -> int:
        return self._input_multiple

    @property
    def model(self) -> Any:
        """The loaded SavedModel object."""
        return self._model

    @property
    def label_set(self) -> LabelSet | None:
        """The model's own label set (a fine-tuned export), or ``None`` (the stock model)."""
        return self._label_set

    def predict(self, batch: NDArray[np.float32]) -> Scores:
        check_batch(batch)
        return self._call("predict", batch)

    def predict_labels(
        self, batch: NDArray[np.float32], layout: ChannelLayout
    ) -> tuple[LabelMap, ConfidenceMap]:
        """Labels and confidence ``[B, H, W]`` computed inside the TF graph.

        Equal to :func:`camvidseg.postprocess.labels_and_confidence` on :meth:`predict`'s
        scores: labels exactly, confidence within
        :data:`~camvidseg.postprocess.CONFIDENCE_RTOL`. The ``[B, H, W, C]`` float32 scores
        never leave TensorFlow: 5 bytes per pixel are copied out instead of ``4 * C``.

        Args:
            batch: float32 ``[B, H, W, 3]`` in ``[0, 1]``.
            layout: The model's channel layout (from a first :meth:`predict`).

        Returns:
            uint8 CamVid-32 ids and float32 confidence, both ``[B, H, W]``.

        Raises:
            BackendError: if the model fails or returns another channel count than ``layout``.
        """
        check_batch(batch)
        tf, _ = import_tensorflow()
        key = (layout.name, layout.num_channels)
        fused = self._fused.get(key)
        if fused is None:
            fused = self._fused[key] = _FusedLabels(self._model.predict, layout, self._jit_compile)
        try:
            labels, conf = fused(tf.constant(batch))
        except Exception as exc:  # TF raises InvalidArgumentError & co for bad inputs
            raise BackendError(
                f"{self._handle}: predict_labels failed on a batch of shape {batch.shape}: "
                f"{short_error(exc)}"
            ) from None
        labels_array: LabelMap = np.asarray(labels.numpy(), dtype=np.uint8)
        conf_array: ConfidenceMap = np.asarray(conf.numpy(), dtype=np.float32)
        return labels_array, conf_array

    @property
    def jit_compiled(self) -> bool:
        """Whether :meth:`predict_labels` runs XLA-compiled (False until first used, and after
        a fallback)."""
        return any(f.jit for f in self._fused.values())

    def get_features(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        check_batch(batch)
        if not callable(getattr(self._model, "get_features", None)):
            raise BackendError(f"{self._handle}: the model has no `get_features` function")
        return self._call("get_features", batch)

    def _call(self, function: str, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        tf, _ = import_tensorflow()
        try:
            result = getattr(self._model, function)(tf.constant(batch))
        except Exception as exc:  # TF raises InvalidArgumentError & co for bad inputs
            raise BackendError(
                f"{self._handle}: {function} failed on a batch of shape {batch.shape}: "
                f"{short_error(exc)}"
            ) from None
        array: NDArray[np.float32] = np.asarray(result.numpy(), dtype=np.float32)
        return array
