"""Tiny training sets for the fine-tuning tests.

``block_scene`` paints rectangles of three colours on a 4-pixel grid (the backbone's feature
stride), with a few Void pixels: a task a head on the fake backbone learns to near-perfect
validation mIoU in a few epochs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from camvidseg.palette import CamVidPalette
from camvidseg.testing import street_scene

BLOCK_CLASSES = (("red", (200, 40, 40)), ("green", (40, 180, 60)), ("blue", (50, 60, 210)))
VOID_ID = 3


def block_scene(
    seed: int, height: int = 32, width: int = 48
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """``(image, labels)``: grid-aligned blocks of the three classes, 2% Void specks."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), np.uint8)
    for _ in range(6):
        y0, x0 = 4 * rng.integers(0, height // 4 - 2), 4 * rng.integers(0, width // 4 - 2)
        y1 = y0 + 4 * rng.integers(2, (height - y0) // 4 + 1)
        x1 = x0 + 4 * rng.integers(2, (width - x0) // 4 + 1)
        labels[y0:y1, x0:x1] = rng.integers(0, 3)
    labels[rng.random((height, width)) < 0.02] = VOID_ID
    table = np.array([c for _, c in BLOCK_CLASSES] + [(0, 0, 0)], np.int16)
    noise = rng.integers(-20, 21, (height, width, 3))
    image = np.clip(table[labels] + noise, 0, 255).astype(np.uint8)
    return image, labels


def write_class_list(path: Path) -> Path:
    """The blocks' class list (JSON), Void marked ignored."""
    entries: list[dict[str, object]] = [{"name": n, "color": list(c)} for n, c in BLOCK_CLASSES]
    entries.append({"name": "void", "color": [0, 0, 0], "ignore": True})
    path.write_text(json.dumps(entries))
    return path


def write_blocks(root: Path, count: int, *, start: int = 0) -> Path:
    """``root/images/bNN.png``, ``root/labels/bNN.png`` (index PNGs) and
    ``root/classes.json``; returns ``root``."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    for i in range(start, start + count):
        image, labels = block_scene(i)
        Image.fromarray(image).save(root / "images" / f"b{i:02d}.png")
        Image.fromarray(labels, "L").save(root / "labels" / f"b{i:02d}.png")
    write_class_list(root / "classes.json")
    return root


def write_streets(root: Path, count: int, height: int = 32, width: int = 48) -> Path:
    """``root/images/sNN.png`` and CamVid-32 colour labels ``root/labels/sNN_L.png``."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    palette = CamVidPalette.camvid32()
    for i in range(count):
        image, labels = street_scene(height, width, seed=i)
        Image.fromarray(image).save(root / "images" / f"s{i:02d}.png")
        Image.fromarray(palette.colorize(labels)).save(root / "labels" / f"s{i:02d}_L.png")
    return root
