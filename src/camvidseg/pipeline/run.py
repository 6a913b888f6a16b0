"""Running a batch: the decode, model and encode stages and the driver behind
:func:`run_pipeline` (see :mod:`camvidseg.pipeline` for what a run guarantees)."""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import signal
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import ConfidenceMap, ImageArray, LabelMap, Scores
from camvidseg._version import __version__
from camvidseg.backends.base import Backend, LabelBackend
from camvidseg.exceptions import BackendError, CamVidSegError, ConfigError
from camvidseg.imageio import LoadedImage, atomic_write, open_image, save_image, save_label_png
from camvidseg.pipeline.inputs import InputFile, InputPlan, discover_inputs, is_inside
from camvidseg.pipeline.manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    STATUS_CODES,
    EntryStore,
    ManifestEntry,
    PipelineInterrupted,
    PreviousManifest,
    RunReport,
    RunSummary,
    StoredEntries,
    dump_manifest,
    serialise_entry,
)
from camvidseg.pipeline.options import OUTPUT_KINDS, RunOptions
from camvidseg.pipeline.outputs import (
    confidence_image,
    expected_format,
    oriented_size,
    output_relpath,
    valid_output,
)
from camvidseg.postprocess import ChannelLayout
from camvidseg.segmenter import Segmentation, Segmenter
from camvidseg.visualize import panel

log = logging.getLogger("camvidseg")

LOCK_NAME = ".camvidseg.lock"
#: Stop, as a model error, when the model fails on this many images before any success.
MAX_INITIAL_MODEL_FAILURES = 3

# Temporary files of camvidseg.imageio.atomic_write: ".<name>.<8 random chars>.tmp".
_TEMP_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_ALREADY_PRESENT = "outputs already present"


def _notes(loaded: LoadedImage) -> tuple[str, ...]:
    notes: list[str] = []
    if loaded.frames > 1:
        notes.append(f"animated: first frame used (of {loaded.frames})")
    if loaded.exif_transposed:
        notes.append("EXIF orientation applied")
    if loaded.mode in _SIXTEEN_BIT_MODES:
        notes.append(f"mode {loaded.mode}: scaled to 8 bits")
    elif loaded.mode != "RGB":
        notes.append(f"converted from mode {loaded.mode}")
    if loaded.transparency:
        notes.append("transparency ignored (colours of transparent pixels used)")
    return tuple(notes)


def _error_text(path: Path, exc: BaseException) -> str:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, CamVidSegError):
        return message if message.startswith(str(path)) else f"{path}: {message}"
    return f"{path}: {type(exc).__name__}: {message}"


# -- the run -----------------------------------------------------------------------------------


@attrs.define
class _Prepared:
    """A decoded image on its way through the pipeline (or its final entry)."""

    index: int
    file: InputFile
    loaded: LoadedImage | None = None
    kinds: tuple[str, ...] = ()
    timing: dict[str, float] = attrs.Factory(dict)
    entry: ManifestEntry | None = None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _output_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` so two runs never write into one folder at once."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; runs are not guarded there
        yield
        return
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another camvidseg run is writing into {out} (it holds {out / LOCK_NAME}); "
                "wait for it to finish or choose another output folder"
            ) from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Ignore Ctrl-C while the last outputs and the manifest are saved (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, frame: object) -> None:
        log.warning("still saving the manifest; it takes a moment")

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _remove_stale_temporaries(out: Path) -> int:
    """Delete temporary files a killed run left behind (only under ``out``, links not
    followed)."""
    removed = 0
    folders = [out / kind for kind in OUTPUT_KINDS if (out / kind).is_dir()]
    for path in out.iterdir():
        if _TEMP_FILE.match(path.name) and path.is_file() and not path.is_symlink():
            path.unlink()
            removed += 1
    for folder in folders:
        if folder.is_symlink():
            continue
        for dirpath, _, filenames in os.walk(folder):
            for name in filenames:
                if _TEMP_FILE.match(name):
                    with contextlib.suppress(FileNotFoundError):
                        Path(dirpath, name).unlink()
                        removed += 1
    return removed


class _OneCallAtATime:
    """A backend that lets one model call run at a time.

    Two model-stage threads then take turns: while one waits for the model (a GPU call releases
    the GIL), the other prepares its batch (resizing, float conversion, stacking) or hands the
    previous results to the writers, instead of doing that work between model calls.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._backend.name

    @property
    def input_multiple(self) -> int:
        return self._backend.input_multiple

    def predict(self, batch: NDArray[np.float32]) -> Scores:
        with self._lock:
            return self._backend.predict(batch)


class _OneLabelCallAtATime(_OneCallAtATime):
    """:class:`_OneCallAtATime` for a backend that also returns labels itself."""

    def __init__(self, backend: LabelBackend) -> None:
        super().__init__(backend)
        self._labels = backend

    def predict_labels(
        self, batch: NDArray[np.float32], layout: ChannelLayout
    ) -> tuple[LabelMap, ConfidenceMap]:
        with self._lock:
            return self._labels.predict_labels(batch, layout)


def _one_call_at_a_time(backend: Backend) -> _OneCallAtATime:
    if isinstance(backend, LabelBackend):
        return _OneLabelCallAtATime(backend)
    return _OneCallAtATime(backend)


#: Batches in the model stage at once: one in the model, one being prepared or handed on.
MODEL_THREADS = 2


def _postprocessing(segmenter: Segmenter) -> dict[str, Any]:
    """The segmenter's tiling, TTA and cleanup settings, JSON-ready (they change the outputs)."""
    return {
        "tile": segmenter.tile,
        "overlap": segmenter.overlap if segmenter.tile is not None else None,
        "tta": None if segmenter.tta is None else segmenter.tta.to_dict(),
        "cleanup": (
            segmenter.cleanup.to_dict()
            if segmenter.cleanup is not None and segmenter.cleanup.enabled
            else None
        ),
    }


class _Run:
    def __init__(
        self,
        segmenter: Segmenter,
        plan: InputPlan,
        options: RunOptions,
        model: str,
        on_entry: Callable[[ManifestEntry], None] | None,
        on_segmentation: Callable[[InputFile, Segmentation], None] | None = None,
        manifest_extra: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        # A copy whose backend takes one call at a time (see _OneCallAtATime).
        self.segmenter = attrs.evolve(segmenter, backend=_one_call_at_a_time(segmenter.backend))
        self.plan = plan
        self.options = options
        self.model = model
        self.on_entry = on_entry
        self.on_segmentation = on_segmentation
        self.manifest_extra = manifest_extra
        self.out = plan.output
        self.out_real = plan.output.resolve()
        self.manifest_path = plan.output / MANIFEST_NAME
        # Entries by slot: the rejected inputs first, then the files in input order. The store
        # is opened in the output folder once it exists.
        self.first_file_slot = len(plan.rejected)
        self.store: EntryStore
        self.statuses = bytearray(len(plan.files))  # STATUS_CODES; 0 = not finished
        self.lock = threading.Lock()
        self.batch_size = segmenter.batch_size
        self.prefetch = options.prefetch or self.batch_size + 2 * options.workers
        self.encode_slots = threading.BoundedSemaphore(self.batch_size + options.workers)
        self.model_slots = threading.BoundedSemaphore(MODEL_THREADS)
        self.previous: PreviousManifest | None = None
        self.output_options: dict[str, Any] = {}
        self.started_at = _now()
        self.started = time.perf_counter()
        self.next_checkpoint = self.started + options.checkpoint_seconds
        self.model_calls_ok = 0
        self.model_failures = 0
        self._made_dirs: set[Path] = set()

    # -- set-up --------------------------------------------------------------------------------

    def kind_options(self, kind: str) -> dict[str, Any]:
        """The options that decide what the files of one output kind hold."""
        options = self.options
        segmenter = self.segmenter
        common: dict[str, Any] = {
            "model": self.model,
            "classes": segmenter.palette.name,
            "grouping": segmenter.grouping if segmenter.palette.name == "camvid11" else None,
            "max_side": segmenter.max_side,
            "drop_void": segmenter.drop_void,
            "min_confidence": segmenter.min_confidence,
            **_postprocessing(segmenter),
        }
        if kind == "overlay":
            common.update(
                alpha=options.alpha,
                overlay_format=options.overlay_format,
                jpeg_quality=options.jpeg_quality,
            )
        elif kind == "panel":
            common.update(alpha=options.alpha, legend=options.legend)
        elif kind == "confidence":
            common.update(confidence_bits=options.confidence_bits)
        return common

    def options_json(self) -> dict[str, Any]:
        options = self.options
        return {
            "model": self.model,
            "classes": self.segmenter.palette.name,
            "batch_size": self.batch_size,
            "max_side": self.segmenter.max_side,
            "min_confidence": self.segmenter.min_confidence,
            **_postprocessing(self.segmenter),
            "outputs": list(options.outputs),
            "alpha": options.alpha,
            "overlay_format": options.overlay_format,
            "jpeg_quality": options.jpeg_quality,
            "confidence_bits": options.confidence_bits,
            "legend": options.legend,
            "overwrite": options.overwrite,
            "max_input_pixels": options.max_input_pixels,
            "workers": options.workers,
        }

    def _check_previous_run(self) -> None:
        """Load the last manifest; refuse to mix its files with ones made differently."""
        self.output_options = {kind: self.kind_options(kind) for kind in self.options.outputs}
        self.previous = PreviousManifest(self.manifest_path)
        before = self.previous.head.get("output_options")
        if not isinstance(before, dict):
            return
        # Files of kinds this run does not write stay on disk: keep their record.
        for kind, record in before.items():
            if kind in OUTPUT_KINDS and kind not in self.output_options:
                self.output_options[kind] = record
        if self.options.overwrite:
            return
        changed: dict[str, str] = {}
        for kind in self.options.outputs:
            record = before.get(kind)
            if not isinstance(record, dict):
                continue
            for key, value in self.kind_options(kind).items():
                if key in record and record[key] != value:
                    changed[key] = f"{key} {record[key]!r} -> {value!r}"
        if changed:
            raise ConfigError(
                f"{self.out} holds outputs made with other options ({', '.join(changed.values())});"
                " pass --overwrite to replace them, or choose another output folder"
            )

    def _check_kind_folders(self) -> None:
        for kind in self.options.outputs:
            folder = self.out / kind
            if folder.is_symlink() and not is_inside(folder.resolve(), self.out_real):
                raise ConfigError(
                    f"{folder} is a symbolic link leading outside {self.out}; outputs are only "
                    "ever written inside the output folder"
                )
            if folder.exists() and not folder.is_dir():
                raise ConfigError(f"{folder} exists and is not a folder")

    # -- stages --------------------------------------------------------------------------------

    def _relpath(self, name: PurePosixPath, kind: str) -> str:
        return output_relpath(name, kind, self.options.extension(kind)).as_posix()

    def _target(self, name: PurePosixPath, kind: str) -> tuple[Path, str]:
        """Absolute path to write and its manifest form, creating folders inside OUT only."""
        relpath = output_relpath(name, kind, self.options.extension(kind))
        current = self.out_real
        for part in relpath.parent.parts:
            child = current / part
            if child in self._made_dirs:
                current = child
                continue
            if child.is_symlink():
                resolved = child.resolve()
                if not is_inside(resolved, self.out_real):
                    raise ConfigError(
                        f"{child} is a symbolic link leading outside {self.out}; not writing "
                        "through it"
                    )
                child = resolved
            if not child.is_dir():
                child.mkdir(exist_ok=True)  # FileExistsError (a file in the way) is an OSError
            self._made_dirs.add(child)
            current = child
        path = current / relpath.name
        if path.is_dir() and not path.is_symlink():
            raise ConfigError(f"{path} is a folder; cannot write the {kind} output there")
        return path, relpath.as_posix()

    def _kinds_to_write(
        self, file: InputFile
    ) -> tuple[tuple[str, ...], dict[str, str], tuple[int, int] | None]:
        """Kinds that need (re)writing, the manifest paths of all kinds, and the input's size
        when it was read to check existing outputs."""
        kinds = self.options.outputs
        relpaths = {k: self._relpath(file.name, k) for k in kinds}
        if self.options.overwrite:
            return kinds, relpaths, None
        existing = [k for k in kinds if os.path.lexists(self.out_real / relpaths[k])]
        if not existing:
            return kinds, relpaths, None
        size = oriented_size(file.path)
        try:
            input_mtime = file.path.stat().st_mtime_ns
        except OSError:
            return kinds, relpaths, None
        if size is None:
            return kinds, relpaths, None
        todo = []
        for kind in kinds:
            fmt, modes = expected_format(kind, self.options)
            expected = None if kind == "panel" else size
            if kind not in existing or not valid_output(
                self.out_real / relpaths[kind], fmt, modes, expected, input_mtime
            ):
                todo.append(kind)
        return tuple(todo), relpaths, size

    def prepare(self, index: int, file: InputFile) -> _Prepared:
        """Decode stage (worker thread): resume check, then read the image."""
        prepared = _Prepared(index, file)
        started = time.perf_counter()
        try:
            kinds, relpaths, size = self._kinds_to_write(file)
            if not kinds:
                prepared.entry = self._skipped_entry(
                    file, relpaths, size, time.perf_counter() - started
                )
                return prepared
            prepared.kinds = kinds
            prepared.loaded = open_image(file.path, max_pixels=self.options.max_input_pixels)
        except Exception as exc:
            prepared.entry = ManifestEntry(
                input=str(file.path),
                name=str(file.name),
                status="error",
                error=_error_text(file.path, exc),
                timing={"decode": time.perf_counter() - started},
            )
            log.debug("decoding %s failed", file.path, exc_info=not isinstance(exc, CamVidSegError))
            return prepared
        prepared.timing["decode"] = time.perf_counter() - started
        return prepared

    def _skipped_entry(
        self,
        file: InputFile,
        relpaths: dict[str, str],
        size: tuple[int, int] | None,
        seconds: float,
    ) -> ManifestEntry:
        before = self.previous.entry(str(file.name)) if self.previous else None
        mode = areas = None
        notes: tuple[str, ...] = ()
        if before is not None:
            mode, areas = before.get("mode"), before.get("class_areas")
            notes = tuple(str(n) for n in before.get("notes") or () if n != _ALREADY_PRESENT)
        return ManifestEntry(
            input=str(file.path),
            name=str(file.name),
            status="skipped",
            outputs=relpaths,
            size=size,
            mode=mode if isinstance(mode, str) else None,
            class_areas=areas if isinstance(areas, dict) else None,
            timing={"check": seconds},
            notes=(_ALREADY_PRESENT, *notes),
        )

    def _run_model(
        self, arrays: list[ImageArray]
    ) -> list[tuple[Scores | None, Segmentation | None]]:
        """Scores per image, to post-process in the writers; or the finished segmentation when
        the backend finds the labels itself (e.g. inside the TF graph) or the segmenter
        finalises the image in row bands (tiled, very large)."""
        segmenter = self.segmenter
        if segmenter.fused_labels and isinstance(segmenter.backend, LabelBackend):
            # Labels come back from the model (5 bytes a pixel instead of 4 per class): let the
            # segmenter run the whole step, it knows when scores are needed after all.
            return [(None, seg) for seg in segmenter.segment_batch(arrays, len(arrays))]
        banded = [self.segmenter.needs_bands(array) for array in arrays]
        whole = [array for array, bands in zip(arrays, banded, strict=True) if not bands]
        scores = iter(self.segmenter.predict_scores(whole) if whole else [])
        return [
            (None, self.segmenter.segment(array)) if bands else (next(scores), None)
            for array, bands in zip(arrays, banded, strict=True)
        ]

    def infer(self, batch: list[_Prepared], encode_pool: ThreadPoolExecutor) -> None:
        """Model stage (one of two model threads); failing batches are retried image by
        image."""
        arrays = [p.loaded.array for p in batch if p.loaded is not None]
        started = time.perf_counter()
        try:
            results = self._run_model(arrays)
        except Exception as exc:
            if len(batch) > 1:
                log.info("a batch of %d failed (%s); retrying image by image", len(batch), exc)
                for prepared in batch:
                    self.infer([prepared], encode_pool)
                return
            with self.lock:
                self.model_failures += 1
                unusable = (
                    self.model_calls_ok == 0 and self.model_failures >= MAX_INITIAL_MODEL_FAILURES
                )
            failed = batch[0]
            self.record(
                failed.index,
                ManifestEntry(
                    input=str(failed.file.path),
                    name=str(failed.file.name),
                    status="error",
                    error=_error_text(failed.file.path, exc),
                    timing=failed.timing,
                ),
            )
            if unusable:
                raise BackendError(
                    f"the model failed on each of the first {self.model_failures} images, "
                    f"so it is not usable; the last error: {exc}"
                ) from exc
            return
        with self.lock:
            self.model_calls_ok += 1
        share = (time.perf_counter() - started) / len(batch)
        for prepared, (scores, segmentation) in zip(batch, results, strict=True):
            prepared.timing["inference"] = share
            self.encode_slots.acquire()
            future = encode_pool.submit(self.encode, prepared, scores, segmentation)
            future.add_done_callback(self._release_slot)

    def _release_slot(self, future: Future[None]) -> None:
        self.encode_slots.release()

    def encode(
        self, prepared: _Prepared, scores: Scores | None, segmentation: Segmentation | None
    ) -> None:
        """Encode stage (worker thread): post-process the scores (unless the model stage gave
        a finished segmentation) and write every output kind."""
        started = time.perf_counter()
        file = prepared.file
        loaded = prepared.loaded
        assert loaded is not None  # only decoded images reach the model
        try:
            if segmentation is not None:
                seg = segmentation
            elif scores is not None:
                seg = self.segmenter.from_scores(loaded.array, scores, source=file.path)
            else:  # pragma: no cover - the model stage always gives one of them
                raise BackendError(f"{file.path}: the model stage returned nothing")
            outputs: dict[str, str] = {}
            for kind in self.options.outputs:
                if kind in prepared.kinds:
                    path, relpath = self._target(file.name, kind)
                    self._write(kind, path, seg, loaded.array)
                else:  # kept from an earlier run
                    relpath = self._relpath(file.name, kind)
                outputs[kind] = relpath
            if self.on_segmentation is not None:
                self.on_segmentation(file, seg)
            prepared.timing["encode"] = time.perf_counter() - started
            entry = ManifestEntry(
                input=str(file.path),
                name=str(file.name),
                status="ok",
                outputs=outputs,
                size=loaded.size,
                mode=loaded.mode,
                class_areas={k: round(v, 6) for k, v in seg.class_areas().items()},
                timing=prepared.timing,
                notes=_notes(loaded),
            )
        except Exception as exc:
            prepared.timing["encode"] = time.perf_counter() - started
            log.debug("writing outputs of %s failed", file.path, exc_info=True)
            entry = ManifestEntry(
                input=str(file.path),
                name=str(file.name),
                status="error",
                error=_error_text(file.path, exc),
                size=loaded.size,
                mode=loaded.mode,
                timing=prepared.timing,
                notes=_notes(loaded),
            )
        self.record(prepared.index, entry)

    def _write(self, kind: str, path: Path, seg: Segmentation, image: ImageArray) -> None:
        options = self.options
        if kind == "labels":
            save_label_png(path, seg.labels, seg.palette)
        elif kind == "color":
            save_image(path, seg.colorize())
        elif kind == "overlay":
            save_image(path, seg.overlay(options.alpha), quality=options.jpeg_quality)
        elif kind == "confidence":
            save_image(path, confidence_image(seg.confidence, options.confidence_bits))
        elif kind == "panel":
            save_image(path, panel(image, seg, legend=options.legend, alpha=options.alpha))
        else:  # pragma: no cover - RunOptions validates the kinds
            raise ConfigError(f"unknown output kind {kind!r}")

    # -- bookkeeping ---------------------------------------------------------------------------

    def record(self, index: int, entry: ManifestEntry) -> None:
        blob = serialise_entry(entry)
        with self.lock:
            self.store.put(self.first_file_slot + index, blob)
            self.statuses[index] = STATUS_CODES[entry.status]
            if self.on_entry is not None:
                try:
                    self.on_entry(entry)
                except Exception:
                    log.exception("the progress callback failed")

    def _report(self, interrupted: bool) -> tuple[RunReport, array[int]]:
        """The report so far, and the slots of its entries."""
        with self.lock:
            slots = self.store.filled()
            counts = {status: self.statuses.count(code) for status, code in STATUS_CODES.items()}
        rejected = self.first_file_slot
        summary = RunSummary(
            total=len(self.plan.files) + rejected,
            ok=counts["ok"],
            error=counts["error"] + rejected,
            skipped=counts["skipped"],
            not_processed=len(self.plan.files) - (len(slots) - rejected),
            interrupted=interrupted,
            seconds=time.perf_counter() - self.started,
        )
        entries = StoredEntries(self.store, slots)
        return RunReport(self.out, self.manifest_path, entries, summary), slots

    def write_manifest(self, status: str, interrupted: bool = False) -> RunReport:
        report, slots = self._report(interrupted)
        head = {
            "format": MANIFEST_FORMAT,
            "camvidseg_version": __version__,
            "status": status,
            "started": self.started_at,
            "updated": _now(),
            "output": str(self.out),
            "model": {"handle": self.model, "backend": self.segmenter.backend.name},
            "options": self.options_json(),
            "output_options": self.output_options,
            "summary": report.summary.to_json(),
        }
        if self.manifest_extra is not None:
            head.update(self.manifest_extra())
        began = time.perf_counter()
        with atomic_write(self.manifest_path) as handle:
            dump_manifest(handle, head, (self.store.get(slot) for slot in slots))
        # Keep checkpoints under ~5 % of the run even when the manifest grows large.
        spent = time.perf_counter() - began
        self.next_checkpoint = time.perf_counter() + max(
            self.options.checkpoint_seconds, 20 * spent
        )
        return report

    def maybe_checkpoint(self) -> None:
        if time.perf_counter() >= self.next_checkpoint:
            self.write_manifest("running")

    # -- driver --------------------------------------------------------------------------------

    def execute(self) -> RunReport:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the output folder {self.out}: {exc}") from exc
        self._check_kind_folders()
        self.store = EntryStore(len(self.plan.rejected) + len(self.plan.files), self.out)
        for slot, entry in enumerate(self.plan.rejected):
            self.store.put(slot, serialise_entry(entry))
        with _output_lock(self.out):
            removed = _remove_stale_temporaries(self.out)
            if removed:
                log.info("removed %d temporary files left by an interrupted run", removed)
            self._check_previous_run()
            self.write_manifest("running")
            return self._execute_locked()

    def _execute_locked(self) -> RunReport:
        workers = self.options.workers
        decode_pool = ThreadPoolExecutor(workers, thread_name_prefix="camvidseg-decode")
        model_pool = ThreadPoolExecutor(MODEL_THREADS, thread_name_prefix="camvidseg-model")
        encode_pool = ThreadPoolExecutor(workers, thread_name_prefix="camvidseg-encode")
        status = "failed"
        try:
            self._loop(decode_pool, model_pool, encode_pool)
            status = "complete"
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            with _sigint_deferred():
                # Batches in the model finish and hand their results to the writers first.
                decode_pool.shutdown(wait=True, cancel_futures=True)
                model_pool.shutdown(wait=True, cancel_futures=True)
                encode_pool.shutdown(wait=True)
                report = self.write_manifest(status, interrupted=status == "interrupted")
        if status == "interrupted":
            raise PipelineInterrupted(report)
        return report

    def _loop(
        self,
        decode_pool: ThreadPoolExecutor,
        model_pool: ThreadPoolExecutor,
        encode_pool: ThreadPoolExecutor,
    ) -> None:
        pending: deque[Future[_Prepared]] = deque()
        in_model: deque[Future[None]] = deque()
        jobs = iter(enumerate(self.plan.files))

        def refill() -> None:
            while len(pending) < self.prefetch:
                job = next(jobs, None)
                if job is None:
                    return
                pending.append(decode_pool.submit(self.prepare, *job))

        def to_model(batch: list[_Prepared]) -> None:
            self.model_slots.acquire()
            future = model_pool.submit(self.infer, batch, encode_pool)
            future.add_done_callback(lambda _: self.model_slots.release())
            in_model.append(future)
            while in_model and in_model[0].done():
                in_model.popleft().result()  # a model found unusable stops the run here

        refill()
        batch: list[_Prepared] = []
        while pending:
            future = pending.popleft()
            refill()
            prepared = future.result()
            if prepared.entry is not None:
                self.record(prepared.index, prepared.entry)
            else:
                batch.append(prepared)
                if len(batch) >= self.batch_size:
                    to_model(batch)
                    batch = []
            self.maybe_checkpoint()
        if batch:
            to_model(batch)
        for model_future in in_model:
            model_future.result()


def run_pipeline(
    segmenter: Segmenter,
    plan: InputPlan,
    options: RunOptions | None = None,
    *,
    model: str | None = None,
    on_entry: Callable[[ManifestEntry], None] | None = None,
    on_segmentation: Callable[[InputFile, Segmentation], None] | None = None,
    manifest_extra: Callable[[], Mapping[str, Any]] | None = None,
) -> RunReport:
    """Segment every file of ``plan`` and write the outputs and ``manifest.json`` under
    ``plan.output``.

    Args:
        segmenter: The model and label set (its ``batch_size`` sets the model batches).
        plan: From :func:`discover_inputs`.
        options: What to write (default :class:`RunOptions`).
        model: The model handle recorded in the manifest (default: the backend's name).
        on_entry: Called with each input's entry as it finishes (from worker threads, one call
            at a time); for progress bars and error lines.
        on_segmentation: Called with each input and its :class:`Segmentation` once its
            outputs are written (from worker threads, possibly at once), e.g. to score it
            against ground truth; an exception makes that input an error.
        manifest_extra: Called whenever the manifest is written; its keys are added to the
            manifest's top level (e.g. ``{"evaluation": ...}``).

    Returns:
        The report; ``report.summary.error`` counts failed inputs.

    Raises:
        PipelineInterrupted: on Ctrl-C, after the outputs being written were finished and the
            manifest was written.
        ConfigError: when the output folder cannot be used (another run holds it, a run with
            other options wrote it, a link leads out of it).
        BackendError: when the model fails on each of the first images (it is unusable).

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> from camvidseg.testing import NearestColorBackend, street_scene
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "in").mkdir()
        >>> image, truth = street_scene(24, 32)
        >>> Image.fromarray(image).save(folder / "in" / "street.png")
        >>> plan = discover_inputs([folder / "in"], folder / "out")
        >>> report = run_pipeline(Segmenter(NearestColorBackend()), plan)
        >>> report.summary.ok, sorted(report.entries[0].outputs.values())
        (1, ['color/street.png', 'labels/street.png', 'overlay/street.jpg'])
    """
    options = options or RunOptions()
    run = _Run(
        segmenter,
        plan,
        options,
        model or segmenter.backend.name,
        on_entry,
        on_segmentation,
        manifest_extra,
    )
    return run.execute()


def segment_paths(
    segmenter: Segmenter,
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    globs: Sequence[str] = (),
    model: str | None = None,
) -> RunReport:
    """:func:`discover_inputs` then :func:`run_pipeline`: segment files and folders into
    ``output``.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> from camvidseg.testing import NearestColorBackend
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.new("RGB", (4, 3), (128, 64, 128)).save(folder / "road.png")
        >>> report = segment_paths(
        ...     Segmenter(NearestColorBackend()), [folder / "road.png"], folder / "out",
        ...     RunOptions(outputs=("labels",)),
        ... )
        >>> report.entries[0].class_areas
        {'Road': 1.0}
    """
    plan = discover_inputs(inputs, output, globs=globs)
    return run_pipeline(segmenter, plan, options, model=model)
