"""The output files of a run: where each kind goes, how it is encoded, and whether a file an
earlier run left is complete."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from camvidseg._types import ConfidenceMap
from camvidseg.pipeline.options import RunOptions

_EXIF_ORIENTATION = 0x0112


def output_relpath(name: PurePosixPath, kind: str, extension: str) -> PurePosixPath:
    """``kind/name + extension``."""
    return PurePosixPath(kind) / name.parent / (name.name + extension)


def confidence_image(confidence: ConfidenceMap, bits: int) -> Image.Image:
    top = 65535 if bits == 16 else 255
    values = np.rint(np.clip(confidence, 0.0, 1.0) * np.float32(top))
    if bits == 16:
        return Image.fromarray(values.astype(np.uint16))
    return Image.fromarray(values.astype(np.uint8))


def expected_format(kind: str, options: RunOptions) -> tuple[str, frozenset[str] | None]:
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


def valid_output(
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


def oriented_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` of an image after EXIF orientation, from its header alone."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width
            return (width, height)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None
