"""What a report reads: the manifest of ``camvidseg segment`` / ``camvidseg beam``, Beam's
``errors.jsonl`` dead letters, and the ``OUTPUT.json`` manifests of ``camvidseg video``.

Everything is read defensively: a key a newer (or older) writer leaves out gives an empty
field, never a crash. The entries of a manifest are streamed (one per line, the layout every
camvidseg writer uses), so a run of any size is read in constant memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import attrs

from camvidseg.exceptions import ConfigError

__all__ = [
    "ERRORS_NAME",
    "MANIFEST_NAME",
    "VIDEO_FORMAT",
    "DeadLetter",
    "Entry",
    "RunTotals",
    "class_colors",
    "fallback_color",
    "iter_entries",
    "read_dead_letters",
    "read_head",
    "read_video_manifest",
    "scan_entries",
]

#: The manifest of ``camvidseg segment`` and ``camvidseg beam``.
MANIFEST_NAME = "manifest.json"
#: Beam's dead-letter file: one ``{"uri", "stage", "error"}`` object per line.
ERRORS_NAME = "errors.jsonl"
#: ``format`` of a ``camvidseg video`` manifest.
VIDEO_FORMAT = "camvidseg-video"

_ENTRIES_LINE = b' "entries": ['
#: A head (everything before the entries) larger than this is not the streaming layout.
_MAX_HEAD_BYTES = 64 << 20
#: Video manifests are small; a larger ``.json`` file is something else and is not read.
_MAX_VIDEO_MANIFEST_BYTES = 8 << 20

RGB = tuple[int, int, int]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _size(value: Any) -> tuple[int, int] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        width, height = value
        if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
            return (width, height)
    return None


def _numbers(value: Any) -> dict[str, float]:
    """The finite numbers of a JSON object, by key (anything else gives ``{}``)."""
    if not isinstance(value, Mapping):
        return {}
    numbers = {str(key): _float(item) for key, item in value.items()}
    return {key: number for key, number in numbers.items() if number is not None}


@attrs.frozen
class Entry:
    """One input of a run, as its manifest line says (missing keys give empty fields).

    Attributes:
        index: Position in the manifest (0-based).
        input: The input path as found.
        name: Its output name (relative, no extension).
        status: ``"ok"``, ``"skipped"``, ``"error"`` (or whatever the manifest says).
        error: Why it failed.
        outputs: Output kind -> path relative to the output folder (``/`` separated).
        size: ``(width, height)``.
        class_areas: Class name -> fraction of the image's pixels.
        timing: Stage -> seconds.
        notes: What was done to the image on the way in.
    """

    index: int
    input: str
    name: str
    status: str
    error: str | None = None
    outputs: Mapping[str, str] = attrs.field(factory=dict)
    size: tuple[int, int] | None = None
    class_areas: Mapping[str, float] = attrs.field(factory=dict)
    timing: Mapping[str, float] = attrs.field(factory=dict)
    notes: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, index: int, data: Any) -> Entry:
        """The entry of one manifest line (any JSON value; a non-object is an error entry)."""
        if not isinstance(data, Mapping):
            return cls(index, f"<entry {index}>", f"<entry {index}>", "error", "not an object")
        name = _text(data.get("name")) or _text(data.get("input")) or f"<entry {index}>"
        outputs = data.get("outputs")
        areas = data.get("class_areas")
        timing = data.get("timing")
        notes = data.get("notes")
        return cls(
            index=index,
            input=_text(data.get("input")) or name,
            name=name,
            status=_text(data.get("status")) or "unknown",
            error=_text(data.get("error")),
            outputs=(
                {str(k): str(v) for k, v in outputs.items() if isinstance(v, str)}
                if isinstance(outputs, Mapping)
                else {}
            ),
            size=_size(data.get("size")),
            class_areas=_numbers(areas),
            timing=_numbers(timing),
            notes=tuple(str(n) for n in notes) if isinstance(notes, list) else (),
        )


def _bad_manifest(path: Path, why: str) -> ConfigError:
    return ConfigError(f"{path}: not a readable camvidseg manifest ({why})")


def _head_of(handle: IO[bytes], path: Path) -> dict[str, Any] | None:
    """The head of the streaming layout (``None``: another layout); leaves ``handle`` at the
    first entry line."""
    head = bytearray()
    while True:
        line = handle.readline()
        if not line:
            return None
        if line.rstrip(b"\r\n") == _ENTRIES_LINE:
            break
        head += line
        if len(head) > _MAX_HEAD_BYTES:
            return None
    try:
        data = json.loads(bytes(head).rstrip().rstrip(b",") + b"}")
    except ValueError:
        return None
    if not isinstance(data, dict):
        raise _bad_manifest(path, "not a JSON object")
    return data


def _load_whole(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = json.load(handle)
    except ValueError as exc:
        raise _bad_manifest(path, f"invalid JSON: {exc}") from None
    except OSError as exc:
        raise _bad_manifest(path, exc.strerror or str(exc)) from None
    if not isinstance(data, dict):
        raise _bad_manifest(path, "not a JSON object")
    return data


def read_head(path: Path) -> dict[str, Any]:
    """The manifest's fields other than ``entries``.

    Raises:
        ConfigError: the file cannot be read or is not a JSON object.
    """
    try:
        with open(path, "rb") as handle:
            head = _head_of(handle, path)
    except OSError as exc:
        raise _bad_manifest(path, exc.strerror or str(exc)) from None
    if head is None:
        head = _load_whole(path)
        head.pop("entries", None)
    return head


def iter_entries(path: Path) -> Iterator[Entry]:
    """The manifest's entries in order, read one line at a time.

    Raises:
        ConfigError: the file cannot be read, or an entry line is not JSON.
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed in finally, across yields)
    except OSError as exc:
        raise _bad_manifest(path, exc.strerror or str(exc)) from None
    try:
        if _head_of(handle, path) is None:
            entries = _load_whole(path).get("entries")
            for index, data in enumerate(entries if isinstance(entries, list) else ()):
                yield Entry.from_json(index, data)
            return
        index = 0
        for number, line in enumerate(handle, start=1):
            text = line.strip().rstrip(b",")
            if not text.startswith(b"{"):
                if text.startswith(b"]"):
                    return
                continue
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise _bad_manifest(path, f"entry line {number} after the head: {exc}") from None
            yield Entry.from_json(index, data)
            index += 1
    finally:
        handle.close()


@attrs.define
class RunTotals:
    """What the report's first page says of the whole run, gathered in one pass.

    Attributes:
        entries: Entries in the manifest.
        statuses: Status -> count.
        class_pixels: Class name -> pixels (area fraction x image size) over the run.
        class_images: Class name -> images where the class is present.
        pixels: Pixels of the images with class areas.
        timing: Stage -> (seconds summed, entries that timed it).
        errors: The error entries.
    """

    entries: int = 0
    statuses: dict[str, int] = attrs.field(factory=dict)
    class_pixels: dict[str, float] = attrs.field(factory=dict)
    class_images: dict[str, int] = attrs.field(factory=dict)
    pixels: float = 0.0
    timing: dict[str, tuple[float, int]] = attrs.field(factory=dict)
    errors: list[Entry] = attrs.field(factory=list)

    def add(self, entry: Entry) -> None:
        self.entries += 1
        self.statuses[entry.status] = self.statuses.get(entry.status, 0) + 1
        if entry.status == "error":
            self.errors.append(entry)
        if entry.class_areas:
            # Images without a recorded size weigh as one megapixel.
            pixels = float(entry.size[0] * entry.size[1]) if entry.size else 1e6
            self.pixels += pixels
            for name, fraction in entry.class_areas.items():
                self.class_pixels[name] = self.class_pixels.get(name, 0.0) + fraction * pixels
                if fraction > 0:
                    self.class_images[name] = self.class_images.get(name, 0) + 1
        for stage, seconds in entry.timing.items():
            total, count = self.timing.get(stage, (0.0, 0))
            self.timing[stage] = (total + seconds, count + 1)

    def class_shares(self) -> list[tuple[str, float, int]]:
        """``(class, share of the run's pixels, images where present)``, largest share first."""
        if self.pixels <= 0:
            return []
        shares = [
            (name, pixels / self.pixels, self.class_images.get(name, 0))
            for name, pixels in self.class_pixels.items()
        ]
        return sorted(shares, key=lambda item: (-item[1], item[0]))


def scan_entries(path: Path) -> RunTotals:
    """Totals over every entry of the manifest at ``path``."""
    totals = RunTotals()
    for entry in iter_entries(path):
        totals.add(entry)
    return totals


@attrs.frozen
class DeadLetter:
    """One line of Beam's ``errors.jsonl``: an input that failed, where, and why."""

    uri: str
    stage: str | None
    error: str


def read_dead_letters(path: Path) -> list[DeadLetter]:
    """The records of an ``errors.jsonl`` (none when the file is absent; a line that is not a
    record is reported as one, with the line's text as the error)."""
    records: list[DeadLetter] = []
    try:
        handle = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return records
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the dead letters ({exc.strerror or exc})") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                data = None
            if isinstance(data, Mapping):
                uri = _text(data.get("uri")) or _text(data.get("input")) or f"{path.name}:{number}"
                error = _text(data.get("error")) or "unknown error"
                records.append(DeadLetter(uri, _text(data.get("stage")), error))
            else:
                text = line.decode("utf-8", "replace").strip()
                records.append(DeadLetter(f"{path.name}:{number}", None, f"unreadable: {text}"))
    return records


def read_video_manifest(path: Path) -> dict[str, Any] | None:
    """The ``camvidseg video`` manifest at ``path``, or ``None`` when it is not one."""
    try:
        if path.stat().st_size > _MAX_VIDEO_MANIFEST_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("format") == VIDEO_FORMAT:
        return data
    return None


# -- colours of the classes --------------------------------------------------------------------


def _colors_from_lists(names: Any, colors: Any) -> dict[str, RGB]:
    table: dict[str, RGB] = {}
    if isinstance(names, list) and isinstance(colors, list):
        for name, color in zip(names, colors, strict=False):
            if (
                isinstance(color, (list, tuple))
                and len(color) == 3
                and all(isinstance(c, int) and 0 <= c <= 255 for c in color)
            ):
                table.setdefault(str(name), (int(color[0]), int(color[1]), int(color[2])))
    return table


def _label_set_colors(label_set: Any) -> dict[str, RGB]:
    if not isinstance(label_set, Mapping) or not isinstance(label_set.get("classes"), list):
        return {}
    classes = [c for c in label_set["classes"] if isinstance(c, Mapping)]
    return _colors_from_lists([c.get("name") for c in classes], [c.get("color") for c in classes])


def fallback_color(name: str) -> RGB:
    """A stable colour for a class no palette names (from a hash of the name).

    Example:
        >>> fallback_color("Road") == fallback_color("Road")
        True
    """
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    return (64 + digest[0] % 160, 64 + digest[1] % 160, 64 + digest[2] % 160)


def class_colors(head: Mapping[str, Any]) -> dict[str, RGB]:
    """Class name -> colour, from what the manifest says of its label set.

    In order: the evaluated confusion matrix (names and colours of the label set scored), a
    ``label_set`` object (a fine-tuned model's classes), the built-in palette named by
    ``options.classes``, then CamVid-32 and CamVid-11.
    """
    from camvidseg.exceptions import PaletteError
    from camvidseg.palette import CamVidPalette

    table: dict[str, RGB] = {}
    evaluation = head.get("evaluation")
    if isinstance(evaluation, Mapping):
        matrix = evaluation.get("confusion_matrix")
        if isinstance(matrix, Mapping):
            table.update(_colors_from_lists(matrix.get("classes"), matrix.get("colors")))
    for key in ("label_set",):
        for name, color in _label_set_colors(head.get(key)).items():
            table.setdefault(name, color)
    options = head.get("options")
    palettes: list[CamVidPalette] = []
    if isinstance(options, Mapping) and isinstance(options.get("classes"), str):
        with contextlib.suppress(PaletteError):
            palettes.append(CamVidPalette.by_name(options["classes"]))
    palettes += [CamVidPalette.camvid32(), CamVidPalette.camvid11()]
    for palette in palettes:
        for name, color in zip(palette.names, palette.colors.tolist(), strict=True):
            table.setdefault(name, (int(color[0]), int(color[1]), int(color[2])))
    return table
