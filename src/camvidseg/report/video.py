"""The report's section on ``camvidseg video`` runs: one block per ``OUTPUT.json`` manifest.

Every key is optional: what the manifest leaves out is not shown. The video itself is embedded
(``<video>``, no script) when it is beside its manifest, and the label-area chart
(``LABELS_DIR/areas.png``) is shown when it can be found; a chart outside the report's folder is
copied into ``thumbs/`` so the folder stays self-contained.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from camvidseg.imageio import atomic_write
from camvidseg.report.render import attr, href, key_value_table, number, percent, text
from camvidseg.report.thumbs import THUMBS_FOLDER

__all__ = ["video_name", "video_section"]

_VIDEO_TYPES = {".mp4": "video/mp4", ".mkv": "video/x-matroska", ".webm": "video/webm"}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def video_name(manifest: Path) -> str:
    """The video a manifest describes: ``clip.mp4`` for ``clip.mp4.json``."""
    return manifest.name.removesuffix(".json")


def _size(value: Any) -> str | None:
    if isinstance(value, list) and len(value) == 2:
        return f"{value[0]}\u00d7{value[1]}"
    return None


def _rows(data: Mapping[str, Any], keys: Sequence[tuple[str, str]]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for label, key in keys:
        value = data.get(key)
        if key in ("size", "encoded_size"):
            value = _size(value)
        elif key in ("duration", "seconds") and isinstance(value, (int, float)):
            value = f"{value:.3f} s"
        elif key == "skipped" and isinstance(value, list):
            value = len(value) or None
        if value is not None and value != "":
            rows.append((label, value))
    return rows


def _inside(path: Path, folder: Path) -> str | None:
    """``path`` relative to ``folder`` (``/`` separated) when it lies inside it."""
    try:
        relative = path.resolve().relative_to(folder.resolve())
    except (OSError, ValueError):
        return None
    return relative.as_posix() if relative.parts else None


def _labels_dir(value: Any, manifest: Path) -> Path | None:
    if not isinstance(value, str) or not value:
        return None
    given = Path(value)
    # A relative labels dir was relative to where the command ran: try there, then beside the
    # manifest.
    for candidate in (given, manifest.parent / given) if not given.is_absolute() else (given,):
        if (candidate / "areas.png").is_file():
            return candidate
    return None


def _copy_into(folder: Path, source: Path) -> str | None:
    """``source`` copied into ``folder/thumbs`` (reused while up to date); its relpath."""
    key = hashlib.sha256(os.fsencode(source.resolve())).hexdigest()
    relpath = f"{THUMBS_FOLDER}/video/{key[:20]}{source.suffix.lower()}"
    target = folder / relpath
    try:
        if not target.is_file() or target.stat().st_mtime_ns < source.stat().st_mtime_ns:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(source, "rb") as reader, atomic_write(target) as writer:
                shutil.copyfileobj(reader, writer)
    except OSError:
        return None
    return relpath


def _chart(data: Mapping[str, Any], manifest: Path, folder: Path) -> str:
    labels = _labels_dir(
        data.get("labels_dir") or _mapping(data.get("options")).get("labels_dir"), manifest
    )
    if labels is None:
        return ""
    chart = labels / "areas.png"
    inside = _inside(chart, folder)
    shown = inside or _copy_into(folder, chart)
    if shown is None:
        return ""
    links = ""
    csv = _inside(labels / "areas.csv", folder) if (labels / "areas.csv").is_file() else None
    if csv is not None:
        links = f' <a href="{href(csv)}">areas.csv</a>'
    return (
        f'<h4>Class areas over time{links}</h4><a href="{href(shown)}">'
        f'<img class="chart" src="{href(shown)}" loading="lazy"'
        f"{attr('alt', 'class areas of ' + video_name(manifest))}></a>"
    )


def _one(manifest: Path, data: Mapping[str, Any], folder: Path, index: int) -> str:
    name = video_name(manifest)
    status = str(data.get("status") or "unknown")
    parts = [
        f'<div class="video" id="video-{index}"><h3>{text(name)}'
        f'<span class="badge {text(status)}">{text(status)}</span></h3>'
    ]
    if data.get("error"):
        parts.append(f'<p class="msg" style="color:var(--err)">{text(data["error"])}</p>')
    video = manifest.with_name(name)
    relpath = _inside(video, folder) if video.is_file() else None
    if relpath is not None:
        kind = _VIDEO_TYPES.get(video.suffix.lower())
        source = f'<source src="{href(relpath)}"' + (f' type="{kind}"' if kind else "") + ">"
        parts.append(
            f'<video controls preload="metadata">{source}</video>'
            f'<a href="{href(relpath)}">{text(name)}</a>'
        )
    inputs = _mapping(data.get("input"))
    output = _mapping(data.get("output"))
    smoothing = _mapping(data.get("smoothing"))
    flicker = _mapping(data.get("flicker"))
    timing = _mapping(data.get("timing"))
    model = _mapping(data.get("model"))
    summary = [("frames written", data.get("frames"))]
    without, with_ = flicker.get("without_smoothing"), flicker.get("with_smoothing")
    if isinstance(without, (int, float)):
        summary.append(("flicker without smoothing", percent(without, 2)))
    if isinstance(with_, (int, float)):
        summary.append(("flicker with smoothing", percent(with_, 2)))
        if isinstance(without, (int, float)) and without > 0:
            summary.append(("flicker kept by smoothing", percent(with_ / without, 1)))
    summary += _rows(flicker, [("frame pairs", "frame_pairs")])
    summary += _rows(timing, [("seconds", "seconds"), ("frames / s", "frames_per_second")])
    summary += _rows(model, [("model", "handle"), ("backend", "backend")])
    summary += _rows(data, [("started", "started"), ("finished", "finished")])
    columns = [
        ("Run", [(k, v) for k, v in summary if v is not None]),
        (
            "Input",
            _rows(
                inputs,
                [
                    ("file", "path"),
                    ("kind", "kind"),
                    ("size", "size"),
                    ("fps", "fps"),
                    ("frames", "frames"),
                    ("duration", "duration"),
                    ("codec", "codec"),
                    ("container", "container"),
                    ("rotation", "rotation"),
                    ("audio", "audio"),
                    ("damaged frames skipped", "skipped"),
                ],
            ),
        ),
        (
            "Output",
            _rows(
                output,
                [
                    ("codec", "codec"),
                    ("pixel format", "pix_fmt"),
                    ("size", "size"),
                    ("encoded size", "encoded_size"),
                    ("fps", "fps"),
                    ("frames", "frames"),
                    ("duration", "duration"),
                    ("audio packets", "audio_packets"),
                ],
            ),
        ),
        (
            "Smoothing",
            _rows(
                smoothing,
                [
                    ("mode", "mode"),
                    ("alpha", "alpha"),
                    ("scene-cut threshold", "cut_threshold"),
                    ("scene cuts", "scene_cuts"),
                ],
            ),
        ),
    ]
    parts.append('<div class="cols">')
    for title, rows in columns:
        if rows:
            parts.append(f"<div><h4>{title}</h4>{key_value_table(rows)}</div>")
    parts.append("</div>")
    settings = _mapping(data.get("settings"))
    options = _mapping(data.get("options"))
    if settings or options:
        parts.append(
            "<details><summary>settings and options</summary>"
            f"{key_value_table(sorted({**settings, **options}.items()))}</details>"
        )
    parts.append(_chart(data, manifest, folder))
    parts.append("</div>")
    return "".join(parts)


def video_section(videos: Sequence[tuple[Path, Mapping[str, Any]]], folder: Path) -> str:
    """Every video manifest of the folder, by name."""
    if not videos:
        return ""
    blocks = [_one(path, data, folder, i) for i, (path, data) in enumerate(videos)]
    return (
        f'<section id="videos"><h2>Videos ({number(len(videos))})</h2>{"".join(blocks)}</section>'
    )
