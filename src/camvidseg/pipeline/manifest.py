"""The manifest of a run: one :class:`ManifestEntry` per input, the :class:`RunSummary`, and
the files that hold them while a run goes on."""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import tempfile
import threading
import time
import weakref
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, overload

import attrs

from camvidseg._version import __version__
from camvidseg.backends.precision import backend_settings
from camvidseg.imageio import atomic_write
from camvidseg.pipeline.options import RunOptions

if TYPE_CHECKING:
    from camvidseg.cleanup import CleanupConfig
    from camvidseg.palette import CamVidPalette
    from camvidseg.tta import TTAConfig

__all__ = [
    "ENTRIES_LINE",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "ManifestEntry",
    "PipelineInterrupted",
    "RunReport",
    "RunSummary",
    "SegmenterSettings",
    "dump_manifest",
    "kind_options",
    "now",
    "options_json",
    "postprocessing_json",
]

log = logging.getLogger("camvidseg")

MANIFEST_NAME = "manifest.json"
#: Version of the manifest layout; bumped when a field changes meaning.
MANIFEST_FORMAT = 1
STATUS_CODES = {"ok": 1, "error": 2, "skipped": 3}


@attrs.frozen
class ManifestEntry:
    """What happened to one input.

    Attributes:
        input: The input path as found.
        name: Its output name (relative, no extension).
        status: ``"ok"``, ``"error"`` or ``"skipped"`` (outputs already present and valid).
        error: Why it failed (path and reason), for ``"error"``.
        outputs: Output kind -> file path relative to the output folder.
        size: ``(width, height)`` of the image after EXIF orientation.
        mode: Pillow mode of the file.
        class_areas: Fraction of pixels per class present, largest first.
        timing: Seconds spent per stage (``decode``, ``inference``, ``encode``, ``check``).
        notes: What was done to the image on the way (first frame of an animation, EXIF
            orientation, conversion from another mode).
    """

    input: str
    name: str
    status: str = attrs.field(validator=attrs.validators.in_(("ok", "error", "skipped")))
    error: str | None = None
    outputs: Mapping[str, str] = attrs.field(factory=dict)
    size: tuple[int, int] | None = None
    mode: str | None = None
    class_areas: Mapping[str, float] | None = None
    timing: Mapping[str, float] = attrs.field(factory=dict)
    notes: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ManifestEntry:
        """The entry :meth:`to_json` gave (timings are rounded to 0.1 ms there).

        Example:
            >>> entry = ManifestEntry("in/a.png", "a", "ok", size=(4, 3), notes=("x",))
            >>> ManifestEntry.from_json(entry.to_json()) == entry
            True
        """
        size = data.get("size")
        return cls(
            input=str(data["input"]),
            name=str(data["name"]),
            status=str(data["status"]),
            error=data.get("error"),
            outputs=dict(data.get("outputs") or {}),
            size=None if size is None else (int(size[0]), int(size[1])),
            mode=data.get("mode"),
            class_areas=data.get("class_areas"),
            timing=dict(data.get("timing") or {}),
            notes=tuple(data.get("notes") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "input": self.input,
            "name": self.name,
            "status": self.status,
            "error": self.error,
            "outputs": dict(self.outputs),
            "size": None if self.size is None else list(self.size),
            "mode": self.mode,
            "class_areas": None if self.class_areas is None else dict(self.class_areas),
            "timing": {k: round(v, 4) for k, v in self.timing.items()},
            "notes": list(self.notes),
        }


@attrs.frozen
class RunSummary:
    """Counts and speed of a run.

    Attributes:
        total: Inputs found (rejected ones included).
        ok: Segmented and written.
        error: Failed (reported with a reason).
        skipped: Outputs were already present and valid.
        not_processed: Not reached because the run was interrupted.
        interrupted: Whether the run was stopped by Ctrl-C.
        seconds: Wall time of the run.
    """

    total: int
    ok: int
    error: int
    skipped: int
    not_processed: int
    interrupted: bool
    seconds: float

    @property
    def images_per_second(self) -> float:
        """Images segmented (``ok``) per second of wall time."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "total": self.total,
            "ok": self.ok,
            "error": self.error,
            "skipped": self.skipped,
            "not_processed": self.not_processed,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 3),
        }


class EntryStore:
    """Finished entries as JSON lines in an anonymous temporary file, by slot.

    Memory per entry is two integers, however many inputs a run has; the manifest and the
    report read the lines back in slot order. Thread-safe.
    """

    def __init__(self, slots: int, folder: Path) -> None:
        # An anonymous file in the output folder (which has room for far more than the outputs'
        # manifest lines); it lives as long as the reports that read it.
        self._file = tempfile.TemporaryFile(  # noqa: SIM115
            prefix=".camvidseg-entries.", suffix=".tmp", dir=folder
        )
        self._closer = weakref.finalize(self, self._file.close)
        self._lock = threading.Lock()
        self._offsets = array("q", [-1]) * slots
        self._lengths = array("q", [0]) * slots
        self._end = 0

    def put(self, slot: int, blob: bytes) -> None:
        with self._lock:
            self._file.seek(self._end)
            self._file.write(blob)
            self._offsets[slot] = self._end
            self._lengths[slot] = len(blob)
            self._end += len(blob)

    def get(self, slot: int) -> bytes:
        with self._lock:
            self._file.seek(self._offsets[slot])
            return self._file.read(self._lengths[slot])

    def filled(self) -> array[int]:
        """Slots holding an entry, in order."""
        with self._lock:
            return array("q", (slot for slot, at in enumerate(self._offsets) if at >= 0))


class StoredEntries(Sequence[ManifestEntry]):
    """A read-only view of entries in an :class:`EntryStore`, decoded on access."""

    def __init__(self, store: EntryStore, slots: array[int]) -> None:
        self._store = store
        self._slots = slots

    def __len__(self) -> int:
        return len(self._slots)

    @overload
    def __getitem__(self, index: int) -> ManifestEntry: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ManifestEntry]: ...

    def __getitem__(self, index: int | slice) -> ManifestEntry | Sequence[ManifestEntry]:
        if isinstance(index, slice):
            return [self._decode(slot) for slot in self._slots[index]]
        return self._decode(self._slots[index])

    def _decode(self, slot: int) -> ManifestEntry:
        return ManifestEntry.from_json(json.loads(self._store.get(slot)))


def serialise_entry(entry: ManifestEntry) -> bytes:
    return json.dumps(entry.to_json()).encode()


@attrs.frozen(eq=False)
class RunReport:
    """The result of :func:`run_pipeline`: every entry (as in the manifest) and the summary.

    ``entries`` lists the rejected inputs first, then the processed ones in input order.
    """

    output: Path
    manifest: Path
    entries: Sequence[ManifestEntry]
    summary: RunSummary

    @property
    def errors(self) -> list[ManifestEntry]:
        """The entries that failed."""
        return [entry for entry in self.entries if entry.status == "error"]


class PipelineInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run after the manifest was written; ``report`` describes it."""

    def __init__(self, report: RunReport) -> None:
        super().__init__("interrupted")
        self.report = report


#: The line that opens the entries in the manifest :func:`dump_manifest` writes.
ENTRIES_LINE = b' "entries": ['


def dump_manifest(handle: IO[bytes], head: Mapping[str, Any], entries: Iterable[bytes]) -> None:
    """Write the manifest JSON: ``head``'s fields, then ``"entries"`` one per line.

    ``entries`` are already JSON objects; writing them one by one never holds a second copy of
    the whole manifest in memory (and ``grep`` finds one input per line).
    """
    text = json.dumps(head, indent=1)
    handle.write(text[: text.rindex("}")].rstrip().encode())
    handle.write(b",\n" + ENTRIES_LINE)
    separator = b"\n  "
    for entry in entries:
        handle.write(separator)
        handle.write(entry)
        separator = b",\n  "
    handle.write(b"\n ]\n}\n")


class PreviousManifest:
    """The manifest an earlier run left: its head (options) and where each finished input's
    line is, so that a resumed run can repeat what it said without holding it in memory.

    Reads the layout :func:`dump_manifest` writes (one entry per line) as a stream; any other
    valid JSON manifest is read whole.
    """

    def __init__(self, path: Path) -> None:
        """Index ``path`` (a missing or unreadable manifest gives an empty one)."""
        self.head: dict[str, Any] = {}
        self._lines: dict[str, int] = {}
        self._parsed: dict[str, dict[str, Any]] = {}
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()
        # Read from a private copy: the run replaces the manifest while it still needs the old
        # lines (and an open file could not be replaced at all on Windows).
        handle = tempfile.TemporaryFile(  # noqa: SIM115
            prefix=".camvidseg-previous.", suffix=".tmp", dir=path.parent
        )
        try:
            with open(path, "rb") as source:
                shutil.copyfileobj(source, handle)
        except OSError as exc:
            handle.close()
            if not isinstance(exc, FileNotFoundError):
                log.warning("%s: ignoring the manifest of an earlier run (%s)", path, exc)
            return
        try:
            handle.seek(0)
            if self._index_lines(handle):
                self._file = handle
                weakref.finalize(self, handle.close)
                return
        except (OSError, ValueError):
            pass  # not the one-entry-per-line layout: read it as plain JSON
        try:
            self.head, self._lines = {}, {}
            handle.seek(0)
            self._read_whole(handle)
        except (OSError, ValueError) as exc:
            log.warning("%s: ignoring an unreadable manifest of an earlier run (%s)", path, exc)
            self.head, self._parsed = {}, {}
        finally:
            handle.close()

    def _index_lines(self, handle: IO[bytes]) -> bool:
        head = bytearray()
        while True:
            line = handle.readline()
            if not line:
                return False
            if line.rstrip(b"\r\n") == ENTRIES_LINE:
                break
            head += line
        self.head = json.loads(bytes(head).rstrip().rstrip(b",") + b"}")
        while True:
            offset = handle.tell()
            line = handle.readline()
            text = line.strip().rstrip(b",")
            if not text.startswith(b"{"):
                return True
            self._remember(json.loads(text), offset)

    def _read_whole(self, handle: IO[bytes]) -> None:
        data = json.load(handle)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        entries = data.pop("entries", None)
        self.head = data
        for entry in entries if isinstance(entries, list) else ():
            self._remember(entry, None)

    def _remember(self, entry: Any, offset: int | None) -> None:
        if isinstance(entry, dict) and entry.get("status") in ("ok", "skipped") and "name" in entry:
            if offset is None:
                self._parsed[str(entry["name"])] = entry
            else:
                self._lines[str(entry["name"])] = offset

    def entry(self, name: str) -> dict[str, Any] | None:
        """What the earlier run said of the input named ``name``, if it finished it."""
        if name in self._parsed:
            return self._parsed[name]
        offset = self._lines.get(name)
        if offset is None or self._file is None:
            return None
        with self._lock:
            self._file.seek(offset)
            line = self._file.readline()
        try:
            entry = json.loads(line.strip().rstrip(b","))
        except ValueError:
            return None
        return entry if isinstance(entry, dict) else None


# -- outputs -----------------------------------------------------------------------------------


# -- what the manifest records of the settings -------------------------------------------------


class SegmenterSettings(Protocol):
    """The settings the manifest records: what a :class:`~camvidseg.Segmenter` and a
    :class:`~camvidseg.config.SegmentConfig` both have."""

    @property
    def palette(self) -> CamVidPalette: ...
    @property
    def grouping(self) -> str: ...
    @property
    def max_side(self) -> int | None: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def drop_void(self) -> bool: ...
    @property
    def min_confidence(self) -> float | None: ...
    @property
    def tile(self) -> int | None: ...
    @property
    def overlap(self) -> int: ...
    @property
    def tta(self) -> TTAConfig | None: ...
    @property
    def cleanup(self) -> CleanupConfig | None: ...


def postprocessing_json(settings: SegmenterSettings) -> dict[str, Any]:
    """The tiling, TTA and cleanup settings, JSON-ready (they change the outputs)."""
    return {
        "tile": settings.tile,
        "overlap": settings.overlap if settings.tile is not None else None,
        "tta": None if settings.tta is None else settings.tta.to_dict(),
        "cleanup": (
            settings.cleanup.to_dict()
            if settings.cleanup is not None and settings.cleanup.enabled
            else None
        ),
    }


def _precision_and_threads(settings: SegmenterSettings) -> dict[str, Any]:
    """``precision`` and ``threads`` of a Segmenter's backend, or of a SegmentConfig."""
    return backend_settings(getattr(settings, "backend", settings))


def kind_options(
    kind: str, options: RunOptions, settings: SegmenterSettings, model: str
) -> dict[str, Any]:
    """The options that decide what the files of one output kind hold (the manifest's
    ``output_options[kind]``; a resumed run refuses to mix files made with other ones).

    ``settings`` is a :class:`~camvidseg.Segmenter` or a
    :class:`~camvidseg.config.SegmentConfig`: both give the same record.

    Example:
        >>> from camvidseg.config import SegmentConfig
        >>> record = kind_options("overlay", RunOptions(), SegmentConfig(classes=11), "m")
        >>> record["classes"], record["grouping"], record["jpeg_quality"]
        ('camvid11', 'merge', 92)
    """
    common: dict[str, Any] = {
        "model": model,
        "classes": settings.palette.name,
        "grouping": settings.grouping if settings.palette.name == "camvid11" else None,
        "max_side": settings.max_side,
        "drop_void": settings.drop_void,
        "min_confidence": settings.min_confidence,
        **postprocessing_json(settings),
    }
    precision = _precision_and_threads(settings)["precision"]
    if precision != "fp32":  # bf16 changes labels; fp32 keeps older manifests valid
        common["precision"] = precision
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


def options_json(options: RunOptions, settings: SegmenterSettings, model: str) -> dict[str, Any]:
    """The ``options`` of the manifest: the run's settings, JSON-ready."""
    return {
        "model": model,
        "classes": settings.palette.name,
        "batch_size": settings.batch_size,
        "max_side": settings.max_side,
        "min_confidence": settings.min_confidence,
        **postprocessing_json(settings),
        **_precision_and_threads(settings),
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


# -- the manifest of a run in progress ---------------------------------------------------------


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class ManifestWriter:
    """The record of one run: finished entries by slot, their counts, and the manifest file.

    Entries wait in an :class:`EntryStore` (the rejected inputs in the first slots, then the
    files in input order); :meth:`write` writes the manifest atomically, :meth:`maybe_checkpoint`
    rewrites it every ``checkpoint_seconds`` (or less often when the manifest is large).
    Thread-safe.

    Args:
        out: The output folder.
        rejected: ``error`` entries of inputs rejected before the run.
        files: Number of files to segment.
        describe: The run's fields of the manifest head (``model``, ``options``,
            ``output_options``), called whenever the manifest is written.
        checkpoint_seconds: Time between checkpoints.
        on_entry: Called with each entry as it is recorded.
        extra: Called whenever the manifest is written; its keys are added to the head.
    """

    def __init__(
        self,
        out: Path,
        rejected: Sequence[ManifestEntry],
        files: int,
        *,
        describe: Callable[[], Mapping[str, Any]],
        checkpoint_seconds: float,
        on_entry: Callable[[ManifestEntry], None] | None = None,
        extra: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.out = out
        self.path = out / MANIFEST_NAME
        self._rejected = rejected
        self._files = files
        self._describe = describe
        self._checkpoint_seconds = checkpoint_seconds
        self._on_entry = on_entry
        self._extra = extra
        # Entries by slot: the rejected inputs first, then the files in input order. The store
        # is opened in the output folder once it exists (see open()).
        self._first_file_slot = len(rejected)
        self._store: EntryStore
        self._statuses = bytearray(files)  # STATUS_CODES; 0 = not finished
        self._lock = threading.Lock()
        self.started_at = now()
        self.started = time.perf_counter()
        self._next_checkpoint = self.started + checkpoint_seconds

    def open(self) -> None:
        """Open the entry store in the output folder (which must exist) with the rejected
        inputs."""
        self._store = EntryStore(len(self._rejected) + self._files, self.out)
        for slot, entry in enumerate(self._rejected):
            self._store.put(slot, serialise_entry(entry))

    def record(self, index: int, entry: ManifestEntry) -> None:
        """Store the entry of file ``index`` and tell ``on_entry``."""
        blob = serialise_entry(entry)
        with self._lock:
            self._store.put(self._first_file_slot + index, blob)
            self._statuses[index] = STATUS_CODES[entry.status]
            if self._on_entry is not None:
                try:
                    self._on_entry(entry)
                except Exception:
                    log.exception("the progress callback failed")

    def report(self, interrupted: bool) -> tuple[RunReport, array[int]]:
        """The report so far, and the slots of its entries."""
        with self._lock:
            slots = self._store.filled()
            counts = {status: self._statuses.count(code) for status, code in STATUS_CODES.items()}
        rejected = self._first_file_slot
        summary = RunSummary(
            total=self._files + rejected,
            ok=counts["ok"],
            error=counts["error"] + rejected,
            skipped=counts["skipped"],
            not_processed=self._files - (len(slots) - rejected),
            interrupted=interrupted,
            seconds=time.perf_counter() - self.started,
        )
        entries = StoredEntries(self._store, slots)
        return RunReport(self.out, self.path, entries, summary), slots

    def write(self, status: str, interrupted: bool = False) -> RunReport:
        """Write the manifest with the run's ``status``; the report it describes."""
        report, slots = self.report(interrupted)
        head = {
            "format": MANIFEST_FORMAT,
            "camvidseg_version": __version__,
            "status": status,
            "started": self.started_at,
            "updated": now(),
            "output": str(self.out),
            **self._describe(),
            "summary": report.summary.to_json(),
        }
        if self._extra is not None:
            head.update(self._extra())
        began = time.perf_counter()
        with atomic_write(self.path) as handle:
            dump_manifest(handle, head, (self._store.get(slot) for slot in slots))
        # Keep checkpoints under ~5 % of the run even when the manifest grows large.
        spent = time.perf_counter() - began
        self._next_checkpoint = time.perf_counter() + max(self._checkpoint_seconds, 20 * spent)
        return report

    def maybe_checkpoint(self) -> None:
        """Write the manifest (status ``running``) when a checkpoint is due."""
        if time.perf_counter() >= self._next_checkpoint:
            self.write("running")
