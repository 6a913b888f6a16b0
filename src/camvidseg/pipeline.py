"""Segment files and folders into an output folder: what ``camvidseg segment`` runs.

Three stages overlap. Decode threads read images ahead of the model (and check which outputs of
an earlier run can be kept); two model threads take turns on the backend, one preparing or
handing on a batch while the other's batch is in the model; encode threads post-process the
scores (argmax, confidence) and write the outputs. Every queue between the stages is bounded and
finished manifest entries wait in a temporary file, so memory stays flat however many files
there are.

The output folder ``OUT`` gets one sub-folder per output kind, mirroring each input's path
relative to the folder it was found in (``in/a/b.jpg`` -> ``OUT/labels/a/b.png``), and a
``manifest.json`` that describes every input. Guarantees:

* Every file is written to a temporary file beside it and moved into place (:func:`os.replace`):
  a killed run never leaves a half-written file under a final name.
* Re-running resumes: inputs whose outputs exist, are valid images of the right size and are not
  older than the input are skipped (``overwrite=True`` redoes them).
* Nothing is ever written outside ``OUT`` (no ``..``; symlinked folders leading out are refused)
  and inputs are never written to: an ``OUT`` that would be read back as input is refused.
* Two inputs that map to one output name (``a.jpg`` and ``a.png``) are reported; the second is
  not processed.
* One bad file is an ``error`` entry in the manifest; the others are still processed.
* On Ctrl-C the batches in the model and the files being written are finished and the manifest
  is written before :class:`PipelineInterrupted` (a :class:`KeyboardInterrupt`) propagates.
* Only one run writes into an output folder at a time (an advisory lock, POSIX only).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
import time
import weakref
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import IO, Any, overload

import attrs
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from camvidseg._types import ConfidenceMap, ImageArray, LabelMap, Scores
from camvidseg._version import __version__
from camvidseg.backends.base import Backend, LabelBackend
from camvidseg.exceptions import BackendError, CamVidSegError, ConfigError
from camvidseg.imageio import LoadedImage, atomic_write, open_image, save_image, save_label_png
from camvidseg.postprocess import ChannelLayout
from camvidseg.segmenter import Segmentation, Segmenter
from camvidseg.visualize import panel

__all__ = [
    "DEFAULT_OUTPUTS",
    "IMAGE_SUFFIXES",
    "MANIFEST_NAME",
    "OUTPUT_KINDS",
    "InputFile",
    "InputPlan",
    "ManifestEntry",
    "PipelineInterrupted",
    "RunOptions",
    "RunReport",
    "RunSummary",
    "discover_inputs",
    "output_name",
    "run_pipeline",
    "segment_paths",
]

log = logging.getLogger("camvidseg")

#: Every output kind, in the order outputs are written and listed.
OUTPUT_KINDS: tuple[str, ...] = ("labels", "color", "overlay", "panel", "confidence")
DEFAULT_OUTPUTS: tuple[str, ...] = ("labels", "color", "overlay")
#: File suffixes (lower case) picked up in folders when no glob is given.
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
    | {".ppm", ".pgm", ".pbm", ".pnm"}
)
MANIFEST_NAME = "manifest.json"
#: Version of the manifest layout; bumped when a field changes meaning.
MANIFEST_FORMAT = 1
LOCK_NAME = ".camvidseg.lock"
#: Stop, as a model error, when the model fails on this many images before any success.
MAX_INITIAL_MODEL_FAILURES = 3

# Temporary files of camvidseg.imageio.atomic_write: ".<name>.<8 random chars>.tmp".
_TEMP_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_STATUS_CODES = {"ok": 1, "error": 2, "skipped": 3}
_ALREADY_PRESENT = "outputs already present"


def _check_outputs(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    kinds = tuple(value)
    unknown = [kind for kind in kinds if kind not in OUTPUT_KINDS]
    if unknown or not kinds:
        raise ConfigError(
            f"outputs must be a non-empty selection of {', '.join(OUTPUT_KINDS)} (got {kinds})"
        )
    if len(set(kinds)) != len(kinds):
        raise ConfigError(f"outputs are listed more than once: {kinds}")


def _in_range(low: float, high: float) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not low <= value <= high:
            raise ConfigError(f"{attribute.name} must be in [{low}, {high}] (got {value})")

    return check


def _one_of(*allowed: object) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in allowed:
            raise ConfigError(f"{attribute.name} must be one of {allowed} (got {value!r})")

    return check


def _sorted_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(kinds)
    return tuple(sorted(chosen, key=lambda k: OUTPUT_KINDS.index(k) if k in OUTPUT_KINDS else 99))


@attrs.frozen
class RunOptions:
    """What a batch run writes and how.

    Attributes:
        outputs: Output kinds to write, from :data:`OUTPUT_KINDS`.
        alpha: Mask weight of the overlay blend, in ``[0, 1]``.
        overlay_format: ``"jpg"`` or ``"png"``.
        jpeg_quality: JPEG quality of overlays, 1..100.
        confidence_bits: 16 (``I;16`` PNG, ``round(p * 65535)``) or 8 (``L`` PNG,
            ``round(p * 255)``).
        legend: Draw the legend on panels.
        overwrite: Redo inputs whose outputs already exist and are valid.
        max_input_pixels: Refuse images with more pixels before decoding them (``None``: only
            Pillow's decompression-bomb limit, ``PIL.Image.MAX_IMAGE_PIXELS``). Images the model
            cannot take whole are tiled by the :class:`~camvidseg.segmenter.Segmenter`.
        workers: Threads for decoding, and as many again for encoding.
        prefetch: Images decoded ahead of the model (default: batch size + 2 x workers).
        checkpoint_seconds: How often the manifest is rewritten during a run (it is always
            written at the end and on Ctrl-C), so a killed run still leaves a recent one.

    Example:
        >>> RunOptions(outputs=("labels", "panel")).outputs
        ('labels', 'panel')
        >>> RunOptions(outputs=("mask",))
        Traceback (most recent call last):
        ...
        camvidseg.exceptions.ConfigError: outputs must be a non-empty selection of labels, \
color, overlay, panel, confidence (got ('mask',))
    """

    outputs: tuple[str, ...] = attrs.field(
        default=DEFAULT_OUTPUTS, converter=_sorted_kinds, validator=_check_outputs
    )
    alpha: float = attrs.field(default=0.6, validator=_in_range(0.0, 1.0))
    overlay_format: str = attrs.field(default="jpg", validator=_one_of("jpg", "png"))
    jpeg_quality: int = attrs.field(default=92, validator=_in_range(1, 100))
    confidence_bits: int = attrs.field(default=16, validator=_one_of(8, 16))
    legend: bool = True
    overwrite: bool = False
    max_input_pixels: int | None = attrs.field(default=None, validator=_in_range(1, float("inf")))
    workers: int = attrs.field(default=4, validator=_in_range(1, 256))
    prefetch: int | None = attrs.field(default=None, validator=_in_range(1, 100_000))
    checkpoint_seconds: float = attrs.field(default=10.0, validator=_in_range(0.0, float("inf")))

    def extension(self, kind: str) -> str:
        """File extension (with the dot) of an output kind.

        Example:
            >>> RunOptions().extension("overlay"), RunOptions().extension("labels")
            ('.jpg', '.png')
        """
        return f".{self.overlay_format}" if kind == "overlay" else ".png"


# -- inputs ------------------------------------------------------------------------------------


def _fspath(value: str | os.PathLike[str]) -> str:
    return os.fspath(value)


@attrs.frozen
class InputFile:
    """One image to segment.

    Attributes:
        path: The file to read (under an input folder, or named directly).
        name: Output name relative to each output folder, without extension: the path relative
            to the input folder it was found in (``a/b/frame``), or the file's stem when it was
            named directly.

    Example:
        >>> InputFile(Path("in/a/b.jpg"), PurePosixPath("a/b")).name.parts
        ('a', 'b')
    """

    # Kept as strings (a third of the memory of path objects): a run may hold millions.
    _path: str = attrs.field(alias="path", converter=_fspath)
    _name: str = attrs.field(alias="name", converter=str)

    @property
    def path(self) -> Path:
        return Path(self._path)

    @property
    def name(self) -> PurePosixPath:
        return PurePosixPath(self._name)


@attrs.frozen
class InputPlan:
    """The inputs of a run: files to segment and inputs rejected before any work.

    Attributes:
        output: The output folder.
        files: Files to segment, in order (folders sorted by name), output names unique.
        rejected: ``error`` entries for inputs that cannot be processed: a second input mapping
            to an output name already taken, unreadable folders, broken links.
    """

    output: Path
    files: tuple[InputFile, ...]
    rejected: tuple[ManifestEntry, ...] = ()


def output_name(relative: PurePosixPath) -> PurePosixPath:
    """The output name of an input path relative to its folder: the path without its suffix.

    Raises:
        ConfigError: if a part of the path could lead elsewhere (empty, ``.``, ``..``, NUL or a
            backslash).

    Example:
        >>> output_name(PurePosixPath("a/b/frame.jpg")), output_name(PurePosixPath("...png"))
        (PurePosixPath('a/b/frame'), PurePosixPath('...png'))
    """
    parts = relative.parts
    if not parts or relative.is_absolute():
        raise ConfigError(f"input path {str(relative)!r} has no usable relative name")
    for part in parts:
        if part in ("", ".", "..") or "\x00" in part or "\\" in part:
            raise ConfigError(f"input path {str(relative)!r} has an unsafe part {part!r}")
    suffix = relative.suffix
    stem = relative.name[: -len(suffix)] if suffix else relative.name
    if stem in (".", ".."):  # "..png": keep the whole name rather than a path-like stem
        stem = relative.name
    return relative.parent / stem


def _output_relpath(name: PurePosixPath, kind: str, extension: str) -> PurePosixPath:
    """``kind/name + extension``."""
    return PurePosixPath(kind) / name.parent / (name.name + extension)


def _is_inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _reached_by_walk(target: Path, root: Path) -> bool:
    """Whether walking ``root`` (hidden folders skipped) would enter ``target`` inside it."""
    if not _is_inside(target, root):
        return False
    return not any(part.startswith(".") for part in target.relative_to(root).parts)


def _selected(relative: PurePosixPath, globs: Sequence[str]) -> bool:
    if globs:
        return any(relative.match(pattern) for pattern in globs)
    return relative.suffix.lower() in IMAGE_SUFFIXES


def _rejected(path: Path | str, name: PurePosixPath | str, reason: str) -> ManifestEntry:
    return ManifestEntry(input=str(path), name=str(name), status="error", error=reason)


class _Walker:
    """Depth-first, name-sorted walk of an input folder that refuses to reach ``OUT``."""

    def __init__(self, out_real: Path, globs: Sequence[str]) -> None:
        self.out_real = out_real
        self.globs = globs
        self.rejected: list[ManifestEntry] = []
        self._seen_dirs: set[tuple[int, int]] = set()

    def walk(self, root: Path) -> Iterator[tuple[Path, PurePosixPath]]:
        st = root.stat()
        self._seen_dirs.add((st.st_dev, st.st_ino))
        yield from self._walk(root, PurePosixPath())

    def _refuse_if_reaches_out(self, folder: Path, shown: Path) -> None:
        real = folder.resolve()
        if _is_inside(real, self.out_real) or _reached_by_walk(self.out_real, real):
            raise ConfigError(
                f"input folder {shown} leads into the output folder {self.out_real} (through "
                "a symbolic link), so outputs would be read back as inputs; choose an output "
                "folder outside the inputs"
            )

    def _walk(self, folder: Path, relative: PurePosixPath) -> Iterator[tuple[Path, PurePosixPath]]:
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self.rejected.append(
                _rejected(folder, relative, f"{folder}: cannot list folder ({reason})")
            )
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files and folders, our own temporary files included
            path = folder / entry.name
            rel = relative / entry.name
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError as exc:
                self.rejected.append(_rejected(path, rel, f"{path}: {exc.strerror}"))
                continue
            if is_dir:
                if entry.is_symlink():
                    self._refuse_if_reaches_out(path, path)
                st = path.stat()
                key = (st.st_dev, st.st_ino)
                if key in self._seen_dirs:
                    log.debug("%s: folder already visited (symbolic link loop), skipped", path)
                    continue
                self._seen_dirs.add(key)
                yield from self._walk(path, rel)
            elif _selected(rel, self.globs):
                if is_file:
                    yield path, rel
                elif entry.is_symlink() and not path.exists():
                    self.rejected.append(_rejected(path, rel, f"{path}: broken symbolic link"))
                else:
                    self.rejected.append(_rejected(path, rel, f"{path}: not a regular file"))


def discover_inputs(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    globs: Sequence[str] = (),
) -> InputPlan:
    """Find the images to segment and check that ``output`` is a safe place for their results.

    Folders are walked recursively in name order; hidden files and folders (names starting with
    ``.``) are skipped, symbolic links are followed (loops are walked once). Without ``globs``
    files with an image suffix (:data:`IMAGE_SUFFIXES`) are taken; with ``globs``, files whose
    path relative to their folder matches one of them (:meth:`pathlib.PurePath.match`, e.g.
    ``"*.jpg"`` or ``"cam1/*.png"``). Files named directly are always taken.

    Args:
        inputs: Image files and folders.
        output: The output folder (need not exist yet).
        globs: Patterns selecting files inside folders.

    Returns:
        The plan: unique files in order, and ``error`` entries for inputs that cannot be used.

    Raises:
        ConfigError: when an input does not exist, or ``output`` is an input folder or inside one
            where the walk would read outputs back, or an input is inside ``output``.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "in" / "a").mkdir(parents=True)
        >>> for name in ("a/x.jpg", "b.png", "b.jpg", "notes.txt"):
        ...     _ = (folder / "in" / name).write_bytes(b"")
        >>> plan = discover_inputs([folder / "in"], folder / "out")
        >>> [str(f.name) for f in plan.files], [e.input[-5:] for e in plan.rejected]
        (['a/x', 'b'], ['b.png'])
    """
    out = Path(output)
    out_real = out.resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a folder")
    walker = _Walker(out_real, globs)
    seen: dict[str, InputFile] = {}
    sources: set[tuple[Path, PurePosixPath]] = set()
    files: list[InputFile] = []
    rejected: list[ManifestEntry] = []
    for raw in inputs:
        given = Path(raw)
        if not given.exists():
            kind = "broken symbolic link" if given.is_symlink() else "no such file or folder"
            raise ConfigError(f"input {given}: {kind}")
        real = given.resolve()
        if real == out_real:
            raise ConfigError(f"the output folder {out} is also an input; choose another one")
        if _is_inside(real, out_real):
            raise ConfigError(
                f"input {given} is inside the output folder {out}; outputs could overwrite it. "
                "Choose an output folder outside the inputs"
            )
        if given.is_dir():
            if _reached_by_walk(out_real, real):
                raise ConfigError(
                    f"the output folder {out} is inside the input folder {given}, so its "
                    "outputs would be read back as inputs; choose an output folder outside the "
                    "inputs (or a hidden one, like INPUT/.camvidseg)"
                )
            found: Iterable[tuple[Path, PurePosixPath]] = walker.walk(given)
        else:
            found = [(given, PurePosixPath(given.name))]
        for path, relative in found:
            try:
                name = output_name(relative)
            except ConfigError as exc:
                rejected.append(_rejected(path, relative, f"{path}: {exc}"))
                continue
            if path.is_symlink() and _is_inside(path.resolve(), out_real):
                raise ConfigError(
                    f"input {path} is a link into the output folder {out}; outputs could "
                    "overwrite it. Choose an output folder outside the inputs"
                )
            source = (path.resolve(), name)
            if source in sources:
                continue  # the same file reached twice under the same name
            sources.add(source)
            key = os.path.normcase(str(name))
            if key in seen:
                rejected.append(
                    _rejected(
                        path,
                        name,
                        f"{path}: its outputs ({name}.*) would overwrite those of "
                        f"{seen[key].path}; rename one of them or segment them into separate "
                        "output folders",
                    )
                )
                continue
            file = InputFile(path, name)
            seen[key] = file
            files.append(file)
    return InputPlan(out, tuple(files), tuple(walker.rejected + rejected))


# -- manifest ----------------------------------------------------------------------------------


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


class _EntryStore:
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


class _StoredEntries(Sequence[ManifestEntry]):
    """A read-only view of entries in an :class:`_EntryStore`, decoded on access."""

    def __init__(self, store: _EntryStore, slots: array[int]) -> None:
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


def _serialise(entry: ManifestEntry) -> bytes:
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


def _dump_manifest(handle: IO[bytes], head: Mapping[str, Any], entries: Iterable[bytes]) -> None:
    """Write the manifest JSON: ``head``'s fields, then ``"entries"`` one per line.

    ``entries`` are already JSON objects; writing them one by one never holds a second copy of
    the whole manifest in memory (and ``grep`` finds one input per line).
    """
    text = json.dumps(head, indent=1)
    handle.write(text[: text.rindex("}")].rstrip().encode())
    handle.write(b',\n "entries": [')
    separator = b"\n  "
    for entry in entries:
        handle.write(separator)
        handle.write(entry)
        separator = b",\n  "
    handle.write(b"\n ]\n}\n")


_ENTRIES_LINE = b' "entries": ['


class _PreviousManifest:
    """The manifest an earlier run left: its head (options) and where each finished input's
    line is, so that a resumed run can repeat what it said without holding it in memory.

    Reads the layout :func:`_dump_manifest` writes (one entry per line) as a stream; any other
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
            if line.rstrip(b"\r\n") == _ENTRIES_LINE:
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


def _confidence_image(confidence: ConfidenceMap, bits: int) -> Image.Image:
    top = 65535 if bits == 16 else 255
    values = np.rint(np.clip(confidence, 0.0, 1.0) * np.float32(top))
    if bits == 16:
        return Image.fromarray(values.astype(np.uint16))
    return Image.fromarray(values.astype(np.uint8))


def _expected_format(kind: str, options: RunOptions) -> tuple[str, frozenset[str] | None]:
    """Pillow format and modes of a valid output file (``None``: any mode)."""
    if kind == "labels":
        return "PNG", frozenset({"P"})
    if kind == "color":
        return "PNG", frozenset({"RGB"})
    if kind == "overlay":
        return ("JPEG" if options.overlay_format == "jpg" else "PNG"), frozenset({"RGB"})
    if kind == "confidence":
        return "PNG", frozenset({"I;16", "I"} if options.confidence_bits == 16 else {"L"})
    return "PNG", None


def _valid_output(
    path: Path,
    fmt: str,
    modes: frozenset[str] | None,
    size: tuple[int, int] | None,
    not_before_ns: int,
) -> bool:
    """Whether ``path`` is a complete image of the expected format, mode and size, newer than
    its input."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0 or st.st_mtime_ns < not_before_ns:
            return False
        with Image.open(path) as image:
            if image.format != fmt or (modes is not None and image.mode not in modes):
                return False
            if size is not None and image.size != size:
                return False
            image.verify()  # PNG: every chunk's CRC up to IEND
        if fmt == "JPEG":
            with open(path, "rb") as handle:
                handle.seek(-2, os.SEEK_END)
                return handle.read(2) == b"\xff\xd9"
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return False
    return True


def _oriented_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` of an image after EXIF orientation, from its header alone."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width
            return (width, height)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None


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

    @property
    def label_set(self) -> object:
        """The wrapped model's own label set (a fine-tuned head's), or ``None``."""
        return getattr(self._backend, "label_set", None)

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
        self.store: _EntryStore
        self.statuses = bytearray(len(plan.files))  # _STATUS_CODES; 0 = not finished
        self.lock = threading.Lock()
        self.batch_size = segmenter.batch_size
        self.prefetch = options.prefetch or self.batch_size + 2 * options.workers
        self.encode_slots = threading.BoundedSemaphore(self.batch_size + options.workers)
        self.model_slots = threading.BoundedSemaphore(MODEL_THREADS)
        self.previous: _PreviousManifest | None = None
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
        self.previous = _PreviousManifest(self.manifest_path)
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
            if folder.is_symlink() and not _is_inside(folder.resolve(), self.out_real):
                raise ConfigError(
                    f"{folder} is a symbolic link leading outside {self.out}; outputs are only "
                    "ever written inside the output folder"
                )
            if folder.exists() and not folder.is_dir():
                raise ConfigError(f"{folder} exists and is not a folder")

    # -- stages --------------------------------------------------------------------------------

    def _relpath(self, name: PurePosixPath, kind: str) -> str:
        return _output_relpath(name, kind, self.options.extension(kind)).as_posix()

    def _target(self, name: PurePosixPath, kind: str) -> tuple[Path, str]:
        """Absolute path to write and its manifest form, creating folders inside OUT only."""
        relpath = _output_relpath(name, kind, self.options.extension(kind))
        current = self.out_real
        for part in relpath.parent.parts:
            child = current / part
            if child in self._made_dirs:
                current = child
                continue
            if child.is_symlink():
                resolved = child.resolve()
                if not _is_inside(resolved, self.out_real):
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
        size = _oriented_size(file.path)
        try:
            input_mtime = file.path.stat().st_mtime_ns
        except OSError:
            return kinds, relpaths, None
        if size is None:
            return kinds, relpaths, None
        todo = []
        for kind in kinds:
            fmt, modes = _expected_format(kind, self.options)
            expected = None if kind == "panel" else size
            if kind not in existing or not _valid_output(
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
            save_image(path, _confidence_image(seg.confidence, options.confidence_bits))
        elif kind == "panel":
            save_image(path, panel(image, seg, legend=options.legend, alpha=options.alpha))
        else:  # pragma: no cover - RunOptions validates the kinds
            raise ConfigError(f"unknown output kind {kind!r}")

    # -- bookkeeping ---------------------------------------------------------------------------

    def record(self, index: int, entry: ManifestEntry) -> None:
        blob = _serialise(entry)
        with self.lock:
            self.store.put(self.first_file_slot + index, blob)
            self.statuses[index] = _STATUS_CODES[entry.status]
            if self.on_entry is not None:
                try:
                    self.on_entry(entry)
                except Exception:
                    log.exception("the progress callback failed")

    def _report(self, interrupted: bool) -> tuple[RunReport, array[int]]:
        """The report so far, and the slots of its entries."""
        with self.lock:
            slots = self.store.filled()
            counts = {status: self.statuses.count(code) for status, code in _STATUS_CODES.items()}
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
        entries = _StoredEntries(self.store, slots)
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
            _dump_manifest(handle, head, (self.store.get(slot) for slot in slots))
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
        self.store = _EntryStore(len(self.plan.rejected) + len(self.plan.files), self.out)
        for slot, entry in enumerate(self.plan.rejected):
            self.store.put(slot, _serialise(entry))
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
