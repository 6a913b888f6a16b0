"""The manifest of a ``camvidseg beam`` run, in ``camvidseg segment``'s layout.

``manifest.json`` holds the run's settings (``options``, ``output_options``: what decides the
content of each output kind), a ``summary`` and one entry per input, one per line. The layout,
the field names and ``output_options`` are ``segment``'s, so either command resumes the other's
output folder (same settings), ``camvidseg evaluate OUT GT`` reads it, and a resumed run copies
what the previous manifest said of the inputs it skips.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from camvidseg._version import __version__
from camvidseg.beam.files import read_bytes
from camvidseg.config import SegmentConfig
from camvidseg.pipeline import RunOptions
from camvidseg.pipeline.manifest import ENTRIES_LINE, MANIFEST_FORMAT, kind_options, now
from camvidseg.pipeline.resume import kept_fields

__all__ = [
    "manifest_head",
    "output_options",
    "previous_entries",
    "read_previous",
]


def output_options(
    config: SegmentConfig, options: RunOptions, model: str
) -> dict[str, dict[str, Any]]:
    """Per output kind the run writes, the settings that decide what its files hold
    (``segment``'s ``output_options``, :func:`~camvidseg.pipeline.manifest.kind_options`)."""
    return {kind: kind_options(kind, options, config, model) for kind in options.outputs}


def _head_of(data: bytes) -> dict[str, Any]:
    """The manifest's fields without its entries (read up to the entries line when the layout
    is ``segment``'s, else as a whole)."""
    at = data.find(b"\n" + ENTRIES_LINE)
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
            mode, areas, notes = kept_fields(entry)
            found[str(entry["name"])] = {"mode": mode, "class_areas": areas, "notes": notes}
    return found


def _entries_of(data: bytes) -> Iterator[Any]:
    at = data.find(b"\n" + ENTRIES_LINE)
    if at < 0:
        try:
            whole = json.loads(data)
        except ValueError:
            return
        entries = whole.get("entries") if isinstance(whole, dict) else None
        yield from entries if isinstance(entries, list) else ()
        return
    for line in data[at + len(ENTRIES_LINE) + 1 :].splitlines():
        text = line.strip().rstrip(b",")
        if text.startswith(b"{"):
            try:
                yield json.loads(text)
            except ValueError:
                continue


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
