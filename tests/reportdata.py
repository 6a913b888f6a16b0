"""Builders of what ``camvidseg report`` reads, without running a model: manifests in the
layout ``camvidseg segment``/``beam`` write, Beam dead letters, ``camvidseg video`` manifests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from camvidseg.palette import CamVidPalette

NAMES = CamVidPalette.camvid32().names


def write_manifest(
    folder: Path,
    entries: Iterable[Any],
    head: Mapping[str, Any] | None = None,
    *,
    streaming: bool = True,
) -> Path:
    """``folder/manifest.json``: ``head`` then the entries one per line (as every camvidseg
    writer does), or, with ``streaming=False``, plain indented JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    head = dict(head or {"format": 1, "status": "complete", "options": {"classes": "camvid32"}})
    path = folder / "manifest.json"
    if not streaming:
        path.write_text(json.dumps({**head, "entries": list(entries)}, indent=2))
        return path
    with open(path, "w", encoding="utf-8") as handle:
        text = json.dumps(head, indent=1)
        handle.write(text[: text.rindex("}")].rstrip() + ',\n "entries": [')
        separator = "\n  "
        for entry in entries:
            handle.write(separator + json.dumps(entry))
            separator = ",\n  "
        handle.write("\n ]\n}\n")
    return path


def ok_entry(name: str, index: int = 0, outputs: Mapping[str, str] | None = None) -> dict[str, Any]:
    areas = {NAMES[(index + k) % 32]: round(0.5 / (k + 1), 6) for k in range(4)}
    return {
        "input": f"in/{name}.png",
        "name": name,
        "status": "ok",
        "error": None,
        "outputs": dict(outputs or {}),
        "size": [32, 24],
        "mode": "RGB",
        "class_areas": areas,
        "timing": {"decode": 0.001, "inference": 0.002},
        "notes": [],
    }


def error_entry(name: str, message: str | None = None) -> dict[str, Any]:
    return {
        "input": f"in/{name}.png",
        "name": name,
        "status": "error",
        "error": message or f"in/{name}.png: cannot decode",
        "outputs": {},
        "size": None,
        "class_areas": None,
        "timing": {},
        "notes": [],
    }


def write_outputs(folder: Path, name: str, kinds: Iterable[str]) -> dict[str, str]:
    """Small output images of ``name`` for each kind; the manifest's ``outputs``."""
    outputs = {}
    for kind in kinds:
        relpath = f"{kind}/{name}" + (".jpg" if kind == "overlay" else ".png")
        path = folder / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "labels":
            image = Image.new("P", (32, 24), 17)
            image.putpalette(CamVidPalette.camvid32().to_pil_palette())
        elif kind == "confidence":
            image = Image.new("I;16", (32, 24), 40000)
        else:
            image = Image.new("RGB", (96 if kind == "panel" else 32, 24), (128, 64, 128))
        image.save(path)
        outputs[kind] = relpath
    return outputs


def video_manifest(
    labels_dir: str | None = None, status: str = "ok", error: str | None = None
) -> dict[str, Any]:
    """A manifest as ``camvidseg video`` writes it (feat-video, format camvidseg-video/1)."""
    return {
        "format": "camvidseg-video",
        "version": 1,
        "camvidseg_version": "0.1.0",
        "status": status,
        "error": error,
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:00:09+00:00",
        "input": {
            "path": "in/drive.mov",
            "kind": "video",
            "size": [64, 48],
            "fps": "30000/1001",
            "fps_value": 29.97002997002997,
            "frames": 90,
            "duration": 3.003,
            "rotation": 0,
            "codec": "h264",
            "container": "mov,mp4,m4a,3gp,3g2,mj2",
            "audio": "aac",
            "skipped": [],
        },
        "output": {
            "path": "out/drive.mp4",
            "codec": "libx264",
            "pix_fmt": "yuv420p",
            "size": [64, 48],
            "encoded_size": [64, 48],
            "padded": False,
            "frames": 90,
            "duration": 3.003,
            "fps": "30000/1001",
            "fps_value": 29.97002997002997,
            "audio_packets": 141,
        },
        "labels_dir": labels_dir,
        "frames": 90,
        "model": {"handle": "fake:33", "backend": "fake:nearest-color-33"},
        "settings": {"classes": 32, "batch_size": 4},
        "options": {"view": "overlay", "alpha": 0.6, "labels_dir": labels_dir},
        "smoothing": {"mode": "ema", "alpha": 0.5, "cut_threshold": 0.5, "scene_cuts": 2},
        "flicker": {"without_smoothing": 0.0421, "with_smoothing": 0.0107, "frame_pairs": 87},
        "timing": {"seconds": 9.5, "frames_per_second": 9.47, "segmenter_seconds": 7.1},
    }
