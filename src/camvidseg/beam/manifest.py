"""The manifest of a ``camvidseg beam`` run, in ``camvidseg segment``'s layout.

``manifest.json`` holds the run's settings (``options``, ``output_options``: what decides the
content of each output kind), a ``summary`` and one entry per input, one per line. The layout,
the field names and ``output_options`` are ``segment``'s, so either command resumes the other's
output folder (same settings), ``camvidseg evaluate OUT GT`` reads it, and a resumed run copies
what the previous manifest said of the inputs it skips.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from camvidseg._version import __version__
from camvidseg.beam.files import read_bytes
from camvidseg.config import SegmentConfig
from camvidseg.exceptions import ConfigError
from camvidseg.pipeline import OUTPUT_KINDS, RunOptions
from camvidseg.pipeline.manifest import MANIFEST_FORMAT

__all__ = [
    "MANIFEST_FORMAT",
    "check_previous",
    "dump_manifest",
    "model_identity",
    "output_options",
    "previous_entries",
    "read_previous",
]

_ENTRIES_LINE = b' "entries": ['
_ALREADY_PRESENT = "outputs already present"


def now() -> str:
    """The current UTC time as ``segment`` records it."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def model_identity(handle: str) -> str:
    """The handle recorded in the manifest: a fake model's test parameters (``?latency=``) do
    not change its outputs, so they do not stop a resume.

    Example:
        >>> model_identity("fake:33?latency=0.05"), model_identity("/models/hrnet")
        ('fake:33', '/models/hrnet')
    """
    return handle.split("?", 1)[0] if handle.startswith("fake:") else handle


def output_options(
    config: SegmentConfig, options: RunOptions, model: str
) -> dict[str, dict[str, Any]]:
    """Per output kind, the settings that decide what its files hold (``segment``'s
    ``output_options``): a resumed run refuses to mix files made with other ones."""
    palette = config.palette
    common: dict[str, Any] = {
        "model": model,
        "classes": palette.name,
        "grouping": config.grouping if palette.name == "camvid11" else None,
        "max_side": config.max_side,
        "drop_void": config.drop_void,
        "min_confidence": config.min_confidence,
        "tile": config.tile,
        "overlap": config.overlap if config.tile is not None else None,
        "tta": None if config.tta is None else config.tta.to_dict(),
        "cleanup": config.cleanup.to_dict() if config.cleanup.enabled else None,
    }
    result: dict[str, dict[str, Any]] = {}
    for kind in options.outputs:
        kind_options = dict(common)
        if kind == "overlay":
            kind_options.update(
                alpha=options.alpha,
                overlay_format=options.overlay_format,
                jpeg_quality=options.jpeg_quality,
            )
        elif kind == "panel":
            kind_options.update(alpha=options.alpha, legend=options.legend)
        elif kind == "confidence":
            kind_options.update(confidence_bits=options.confidence_bits)
        result[kind] = kind_options
    return result


def _head_of(data: bytes) -> dict[str, Any]:
    """The manifest's fields without its entries (read up to the entries line when the layout
    is ``segment``'s, else as a whole)."""
    at = data.find(b"\n" + _ENTRIES_LINE)
    if at >= 0:
        head = json.loads(data[:at].rstrip().rstrip(b",") + b"}")
    else:
        head = json.loads(data)
        if isinstance(head, dict):
            head.pop("entries", None)
    if not isinstance(head, dict):
        raise ValueError("not a JSON object")
    return head


def read_previous(path: str) -> dict[str, Any] | None:
    """The head of the manifest an earlier run left at ``path`` (``None``: none, or unreadable
    — the run then redoes what it cannot trust)."""
    try:
        return _head_of(read_bytes(path))
    except Exception:
        return None


def check_previous(
    head: Mapping[str, Any] | None,
    wanted: Mapping[str, Mapping[str, Any]],
    *,
    output: str,
    overwrite: bool,
) -> dict[str, Any]:
    """The ``output_options`` to record: this run's, plus the earlier run's record of kinds
    this run does not write (their files stay).

    Raises:
        ConfigError: when the folder holds outputs of a kind this run writes made with other
            settings, unless ``overwrite``.
    """
    recorded: dict[str, Any] = dict(wanted)
    before = None if head is None else head.get("output_options")
    if not isinstance(before, dict):
        return recorded
    for kind, record in before.items():
        if kind in OUTPUT_KINDS and kind not in recorded:
            recorded[kind] = record
    if overwrite:
        return recorded
    changed: dict[str, str] = {}
    for kind, options in wanted.items():
        record = before.get(kind)
        if not isinstance(record, dict):
            continue
        for key, value in options.items():
            if key in record and record[key] != value:
                changed[key] = f"{key} {record[key]!r} -> {value!r}"
    if changed:
        raise ConfigError(
            f"{output} holds outputs made with other options ({', '.join(changed.values())}); "
            "pass --overwrite to replace them, or choose another output folder"
        )
    return recorded


def previous_entries(path: str) -> dict[str, dict[str, Any]]:
    """What an earlier run's manifest said of each input it finished (``ok`` or ``skipped``),
    by output name: ``mode``, ``class_areas`` and ``notes``. Empty when there is none."""
    try:
        data = read_bytes(path)
    except Exception:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for entry in _entries_of(data):
        if isinstance(entry, dict) and entry.get("status") in ("ok", "skipped") and "name" in entry:
            notes = [str(n) for n in entry.get("notes") or () if n != _ALREADY_PRESENT]
            found[str(entry["name"])] = {
                "mode": entry.get("mode") if isinstance(entry.get("mode"), str) else None,
                "class_areas": entry.get("class_areas")
                if isinstance(entry.get("class_areas"), dict)
                else None,
                "notes": notes,
            }
    return found


def _entries_of(data: bytes) -> Iterator[Any]:
    at = data.find(b"\n" + _ENTRIES_LINE)
    if at < 0:
        try:
            whole = json.loads(data)
        except ValueError:
            return
        entries = whole.get("entries") if isinstance(whole, dict) else None
        yield from entries if isinstance(entries, list) else ()
        return
    for line in data[at + len(_ENTRIES_LINE) + 1 :].splitlines():
        text = line.strip().rstrip(b",")
        if text.startswith(b"{"):
            try:
                yield json.loads(text)
            except ValueError:
                continue


def dump_manifest(handle: IO[bytes], head: Mapping[str, Any], entries: Iterable[bytes]) -> None:
    """Write the manifest: ``head``'s fields, then ``"entries"`` (JSON objects), one per line."""
    text = json.dumps(head, indent=1)
    handle.write(text[: text.rindex("}")].rstrip().encode())
    handle.write(b",\n" + _ENTRIES_LINE)
    separator = b"\n  "
    for entry in entries:
        handle.write(separator)
        handle.write(entry)
        separator = b",\n  "
    handle.write(b"\n ]\n}\n")


def manifest_head(
    *,
    status: str,
    started: str,
    output: str,
    model: str,
    options: Mapping[str, Any],
    recorded: Mapping[str, Any],
    summary: Mapping[str, Any],
    config: SegmentConfig,
    runner: str,
) -> dict[str, Any]:
    """The manifest's fields, ``segment``'s plus ``config`` and ``runner``."""
    return {
        "format": MANIFEST_FORMAT,
        "camvidseg_version": __version__,
        "status": status,
        "started": started,
        "updated": now(),
        "output": output,
        "model": {"handle": model, "backend": None},
        "options": dict(options),
        "output_options": dict(recorded),
        "summary": dict(summary),
        "config": config.to_dict(),
        "runner": runner,
    }
