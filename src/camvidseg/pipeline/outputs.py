"""The output files of a run: where each kind goes, how it is encoded, and whether a file an
earlier run left is complete."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
from PIL import Image

from camvidseg._types import ConfidenceMap, ImageArray
from camvidseg.exceptions import ConfigError
from camvidseg.imageio import save_image, save_label_png
from camvidseg.pipeline.inputs import is_inside
from camvidseg.pipeline.options import RunOptions
from camvidseg.segmenter import Segmentation
from camvidseg.visualize import panel

__all__ = [
    "OutputWriter",
    "confidence_image",
    "expected_format",
    "oriented_size",
    "output_relpath",
    "valid_image",
    "valid_output",
    "write_output",
]

_EXIF_ORIENTATION = 0x0112
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def output_relpath(name: PurePosixPath, kind: str, extension: str) -> PurePosixPath:
    """``kind/name + extension``: where an output of the input named ``name`` goes, relative
    to the output folder.

    Example:
        >>> output_relpath(PurePosixPath("a/frame"), "overlay", ".jpg").as_posix()
        'overlay/a/frame.jpg'
    """
    return PurePosixPath(kind) / name.parent / (name.name + extension)


def confidence_image(confidence: ConfidenceMap, bits: int) -> Image.Image:
    """The confidence output: ``round(p * 65535)`` as a 16-bit image, or ``round(p * 255)``
    8-bit (``confidence``: ``(H, W)`` float32 in ``[0, 1]``).

    Example:
        >>> confidence_image(np.array([[0.0, 0.5, 1.0]], np.float32), 8).getpixel((1, 0))
        128
    """
    top = 65535 if bits == 16 else 255
    values = np.rint(np.clip(confidence, 0.0, 1.0) * np.float32(top))
    if bits == 16:
        return Image.fromarray(values.astype(np.uint16))
    return Image.fromarray(values.astype(np.uint8))


def expected_format(kind: str, options: RunOptions) -> tuple[str, frozenset[str] | None]:
    """Pillow format and modes of a valid output file of ``kind`` (``None``: any mode).

    Example:
        >>> expected_format("labels", RunOptions())
        ('PNG', frozenset({'P'}))
    """
    if kind == "labels":
        return "PNG", frozenset({"P"})
    if kind == "color":
        return "PNG", frozenset({"RGB"})
    if kind == "overlay":
        return ("JPEG" if options.overlay_format == "jpg" else "PNG"), frozenset({"RGB"})
    if kind == "confidence":
        return "PNG", frozenset({"I;16", "I"} if options.confidence_bits == 16 else {"L"})
    return "PNG", None


def valid_image(
    handle: IO[bytes],
    fmt: str,
    modes: frozenset[str] | None,
    size: tuple[int, int] | None,
    length: int,
) -> bool:
    """Whether the open file ``handle`` (seekable, ``length`` bytes) is a complete image of
    the expected format, mode and size. Any binary file object works: a local file or one
    from Beam's ``FileSystems``."""
    try:
        with Image.open(handle) as image:
            if image.format != fmt or (modes is not None and image.mode not in modes):
                return False
            if size is not None and image.size != size:
                return False
            image.verify()  # PNG: every chunk's CRC up to IEND
        if fmt == "JPEG":
            handle.seek(length - 2)
            return handle.read(2) == b"\xff\xd9"
    except _IMAGE_ERRORS:
        return False
    return True


def valid_output(
    path: Path,
    fmt: str,
    modes: frozenset[str] | None,
    size: tuple[int, int] | None,
    not_before_ns: int,
) -> bool:
    """Whether the local file ``path`` is a complete image of the expected format, mode and
    size (:func:`valid_image`), newer than its input."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0 or st.st_mtime_ns < not_before_ns:
            return False
        with open(path, "rb") as handle:
            return valid_image(handle, fmt, modes, size, st.st_size)
    except OSError:
        return False


def oriented_size(source: Path | IO[bytes]) -> tuple[int, int] | None:
    """``(width, height)`` of an image (a path or an open binary file) after EXIF orientation,
    from its header alone; ``None`` when it cannot be read."""
    try:
        with Image.open(source) as image:
            width, height = image.size
            if image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width
            return (width, height)
    except _IMAGE_ERRORS:
        return None


def write_output(
    kind: str,
    path: Path,
    seg: Segmentation,
    options: RunOptions,
    *,
    image: ImageArray | None = None,
) -> None:
    """Encode one output ``kind`` of ``seg`` and write it to ``path`` atomically.

    Args:
        kind: One of :data:`~camvidseg.pipeline.OUTPUT_KINDS`.
        path: A local file.
        seg: The segmentation.
        options: How outputs are encoded.
        image: The input image, for panels (default: ``seg.image``).

    Raises:
        ConfigError: for an unknown kind, or a panel without the input image.
    """
    if kind == "labels":
        save_label_png(path, seg.labels, seg.palette)
    elif kind == "color":
        save_image(path, seg.colorize())
    elif kind == "overlay":
        save_image(path, seg.overlay(options.alpha), quality=options.jpeg_quality)
    elif kind == "confidence":
        save_image(path, confidence_image(seg.confidence, options.confidence_bits))
    elif kind == "panel":
        image = seg.image if image is None else image
        if image is None:
            raise ConfigError("a panel needs the input image on the Segmentation")
        save_image(path, panel(image, seg, legend=options.legend, alpha=options.alpha))
    else:
        raise ConfigError(f"unknown output kind {kind!r}")


class OutputWriter:
    """Writes the output files of a run, each inside the output folder only.

    Folders are created on the way down, never through a symbolic link that leads out of the
    output folder; each file is written by :mod:`camvidseg.imageio`'s atomic writers.
    """

    def __init__(self, out: Path, options: RunOptions) -> None:
        self.out = out
        self.out_real = out.resolve()
        self.options = options
        self._made_dirs: set[Path] = set()

    def check_kind_folders(self) -> None:
        """Refuse kind folders that are links leading out of the output folder, or files."""
        for kind in self.options.outputs:
            folder = self.out / kind
            if folder.is_symlink() and not is_inside(folder.resolve(), self.out_real):
                raise ConfigError(
                    f"{folder} is a symbolic link leading outside {self.out}; outputs are only "
                    "ever written inside the output folder"
                )
            if folder.exists() and not folder.is_dir():
                raise ConfigError(f"{folder} exists and is not a folder")

    def relpath(self, name: PurePosixPath, kind: str) -> str:
        """The manifest form of an output path: ``kind/name.ext``."""
        return output_relpath(name, kind, self.options.extension(kind)).as_posix()

    def target(self, name: PurePosixPath, kind: str) -> tuple[Path, str]:
        """Absolute path to write and its manifest form, creating folders inside OUT only."""
        relpath = output_relpath(name, kind, self.options.extension(kind))
        current = self.out_real
        for part in relpath.parent.parts:
            child = current / part
            if child in self._made_dirs:
                current = child
                continue
            if child.is_symlink():
                resolved = child.resolve()
                if not is_inside(resolved, self.out_real):
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

    def write_all(
        self, name: PurePosixPath, kinds: tuple[str, ...], seg: Segmentation, image: ImageArray
    ) -> dict[str, str]:
        """Write the output ``kinds`` of one input; the manifest paths of every output kind
        (those not in ``kinds`` are kept from an earlier run)."""
        outputs: dict[str, str] = {}
        for kind in self.options.outputs:
            if kind in kinds:
                path, relpath = self.target(name, kind)
                self.write(kind, path, seg, image)
            else:  # kept from an earlier run
                relpath = self.relpath(name, kind)
            outputs[kind] = relpath
        return outputs

    def write(self, kind: str, path: Path, seg: Segmentation, image: ImageArray) -> None:
        """Encode and write one output file (:func:`write_output`)."""
        write_output(kind, path, seg, self.options, image=image)
