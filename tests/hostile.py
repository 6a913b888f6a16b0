"""Builders of image files in every awkward mode and of every kind of bad file.

Shared by the pipeline and CLI tests. Each bad file comes with the phrase its error must contain.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from camvidseg.testing import street_scene

ROAD = (128, 64, 128)
SKY = (128, 128, 128)
ROAD_ID = 17
SKY_ID = 21


def write_scene(path: Path, height: int = 24, width: int = 32, seed: int = 0) -> np.ndarray:
    """Write a lossless street scene; return its exact CamVid-32 labels."""
    image, labels = street_scene(height, width, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return labels


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A 57-byte PNG whose header claims ``width x height`` pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")


def two_sample_16bit_tiff(width: int = 4, height: int = 4) -> bytes:
    """A valid TIFF with 2 samples of 16 bits per pixel, a layout Pillow cannot read."""
    spp, bps = 2, 16
    data = bytes(width * height * spp * bps // 8)
    entries = 10
    ifd_size = 2 + entries * 12 + 4
    bps_offset = 8 + ifd_size
    format_offset = bps_offset + 2 * spp
    data_offset = format_offset + 2 * spp
    tags = [
        (256, 3, 1, width),
        (257, 3, 1, height),
        (258, 3, spp, bps_offset),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, data_offset),
        (277, 3, 1, spp),
        (278, 3, 1, height),
        (279, 4, 1, len(data)),
        (339, 3, spp, format_offset),
    ]
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(tags)))
    for tag, kind, count, value in tags:
        if kind == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0)
    out += struct.pack("<HH", bps, bps) + struct.pack("<HH", 1, 1) + data
    return bytes(out)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_bad_files(folder: Path) -> dict[str, str]:
    """Write one file of every bad kind into ``folder``; return name -> expected reason.

    ``too_large.png`` is a valid 200x200 image: it fails only with a pixel limit under 40,000.
    ``unreadable.png`` has mode 000 (see :func:`emulate_permissions` when running as root).
    """
    folder.mkdir(parents=True, exist_ok=True)
    image, _ = street_scene(24, 32, seed=3)
    good = png_bytes(Image.fromarray(image))
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "not_an_image.jpg").write_bytes(b"%PDF-1.4 this is not an image\n" * 4)
    (folder / "bomb.png").write_bytes(bomb_png())
    (folder / "unsupported.tif").write_bytes(two_sample_16bit_tiff())
    (folder / "too_large.png").write_bytes(png_bytes(Image.new("RGB", (200, 200), ROAD)))
    unreadable = folder / "unreadable.png"
    unreadable.write_bytes(good)
    unreadable.chmod(0)
    (folder / "broken_link.png").symlink_to(folder / "missing-target.png")
    os.mkfifo(folder / "fifo.png")
    return {
        "empty.png": "empty file",
        "truncated.png": "cannot decode",
        "not_an_image.jpg": "not an image",
        "bomb.png": "decompression bomb",
        "unsupported.tif": "a TIFF file Pillow cannot decode",
        "too_large.png": "too large",
        "unreadable.png": "permission denied",
        "broken_link.png": "broken symbolic link",
        "fifo.png": "not a regular file",
    }


def write_mode_zoo(folder: Path) -> dict[str, tuple[np.ndarray, str]]:
    """Images in awkward modes; return name -> (exact CamVid-32 labels, expected note)."""
    folder.mkdir(parents=True, exist_ok=True)
    zoo: dict[str, tuple[np.ndarray, str]] = {}
    scene, labels = street_scene(20, 28, seed=4)

    Image.fromarray(scene).convert("RGBA").save(folder / "rgba.png")
    zoo["rgba.png"] = (labels, "transparency ignored")

    gray = np.full((6, 5), 128, np.uint8)
    Image.fromarray(gray, mode="L").save(folder / "gray.png")
    zoo["gray.png"] = (np.full((6, 5), SKY_ID, np.uint8), "converted from mode L")

    Image.fromarray(gray, mode="L").convert("LA").save(folder / "gray_alpha.png")
    zoo["gray_alpha.png"] = (np.full((6, 5), SKY_ID, np.uint8), "transparency ignored")

    # 16-bit 128 * 257 must become 8-bit 128 (Sky); clipping would give 255 (another class).
    sixteen = Image.fromarray(np.full((5, 7), 128 * 257, np.uint16))
    assert sixteen.mode == "I;16"
    sixteen.save(folder / "sixteen.png")
    zoo["sixteen.png"] = (np.full((5, 7), SKY_ID, np.uint8), "scaled to 8 bits")

    pixels = np.zeros((4, 6), np.uint8)
    pixels[:, 3:] = 1
    palette = Image.fromarray(pixels, mode="P")
    palette.putpalette([*ROAD, *SKY] + [0] * 762)
    palette.save(folder / "palette.png", transparency=1)
    zoo["palette.png"] = (np.where(pixels == 0, ROAD_ID, SKY_ID).astype(np.uint8), "mode P")

    Image.new("RGB", (9, 4), ROAD).convert("CMYK").save(folder / "cmyk.jpg", quality=100)
    zoo["cmyk.jpg"] = (np.full((4, 9), ROAD_ID, np.uint8), "converted from mode CMYK")

    # Stored 3 wide x 2 high, orientation 6: shown (and segmented) 2 wide x 3 high.
    stored = np.zeros((2, 3, 3), np.uint8)
    stored[:] = SKY
    stored[:, 0] = ROAD
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(folder / "rotated.png", exif=exif.tobytes())
    shown = np.rot90(np.where(stored[..., 1] == ROAD[1], ROAD_ID, SKY_ID), k=-1)
    zoo["rotated.png"] = (shown.astype(np.uint8), "EXIF orientation applied")

    frames = [Image.new("RGB", (5, 3), ROAD), Image.new("RGB", (5, 3), SKY)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], loop=0)
    zoo["animated.gif"] = (np.full((3, 5), ROAD_ID, np.uint8), "first frame used (of 2)")
    return zoo


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 (or link target, or kind) of every entry under ``folder``, by relative path."""
    digest: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        if path.is_symlink():
            digest[key] = "link:" + str(path.readlink())
        elif path.is_fifo():
            digest[key] = "fifo"
        elif path.is_file():
            mode = path.stat().st_mode & 0o777
            if mode & 0o400:
                digest[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                digest[key] = f"mode:{mode:o}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
        else:
            digest[key] = "dir"
    return digest
