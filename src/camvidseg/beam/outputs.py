"""Output files in ``camvidseg segment``'s layout: where they go, how they are encoded, and
when files an earlier run wrote can be kept (:class:`SkipFinished`).

An input's outputs are kept when each exists, is a complete image of the expected format, mode
and size, and is not older than the input; they are then not segmented again and the manifest
entry says ``skipped``, repeating what the earlier manifest said of the input.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import Metrics
from apache_beam.pvalue import TaggedOutput
from PIL import Image

from camvidseg._types import ConfidenceMap
from camvidseg.beam.handler import METRICS_NAMESPACE
from camvidseg.beam.manifest import previous_entries
from camvidseg.exceptions import ConfigError
from camvidseg.imageio import save_image, save_label_png
from camvidseg.pipeline import ManifestEntry, RunOptions
from camvidseg.segmenter import Segmentation
from camvidseg.visualize import panel

__all__ = [
    "SkipFinished",
    "confidence_image",
    "expected_format",
    "output_relpath",
    "write_output",
]

log = logging.getLogger("camvidseg")

_EXIF_ORIENTATION = 0x0112
_ALREADY_PRESENT = "outputs already present"
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def output_relpath(name: str, kind: str, options: RunOptions) -> str:
    """``kind/name.ext``: where ``camvidseg segment`` puts one output of the input named
    ``name``, relative to the output folder.

    Example:
        >>> output_relpath("a/frame", "overlay", RunOptions())
        'overlay/a/frame.jpg'
    """
    return f"{kind}/{name}{options.extension(kind)}"


def confidence_image(confidence: ConfidenceMap, bits: int) -> Image.Image:
    """The confidence output: ``round(p * 65535)`` as a 16-bit image, or ``round(p * 255)``
    8-bit, as ``camvidseg segment`` writes it.

    Example:
        >>> confidence_image(np.array([[0.0, 0.5, 1.0]], np.float32), 8).getpixel((1, 0))
        128
    """
    top = 65535 if bits == 16 else 255
    values = np.rint(np.clip(confidence, 0.0, 1.0) * np.float32(top))
    return Image.fromarray(values.astype(np.uint16 if bits == 16 else np.uint8))


def write_output(kind: str, path: Path, *, seg: Segmentation, options: RunOptions) -> None:
    """Write one output kind of ``seg`` to a local ``path`` with the library's encoders, as
    ``camvidseg segment`` does (``seg.image`` is needed for overlays and panels)."""
    if kind == "labels":
        save_label_png(path, seg.labels, seg.palette)
    elif kind == "color":
        save_image(path, seg.colorize())
    elif kind == "overlay":
        save_image(path, seg.overlay(options.alpha), quality=options.jpeg_quality)
    elif kind == "confidence":
        save_image(path, confidence_image(seg.confidence, options.confidence_bits))
    elif kind == "panel":
        if seg.image is None:
            raise ConfigError("a panel needs the input image on the Segmentation")
        save_image(path, panel(seg.image, seg, legend=options.legend, alpha=options.alpha))
    else:
        raise ConfigError(f"unknown output kind {kind!r}")


def expected_format(kind: str, options: RunOptions) -> tuple[str, frozenset[str] | None]:
    """Pillow format and modes of a valid output file of ``kind`` (``None``: any mode).

    Example:
        >>> expected_format("labels", RunOptions())
        ('PNG', frozenset({'P'}))
    """
    if kind == "labels":
        return "PNG", frozenset({"P"})
    if kind in ("color", "overlay"):
        jpeg = kind == "overlay" and options.overlay_format == "jpg"
        return ("JPEG" if jpeg else "PNG"), frozenset({"RGB"})
    if kind == "confidence":
        return "PNG", frozenset({"I;16", "I"} if options.confidence_bits == 16 else {"L"})
    return "PNG", None


def _open(uri: str) -> IO[bytes]:
    handle: IO[bytes] = FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED)
    return handle


def oriented_size(uri: str) -> tuple[int, int] | None:
    """``(width, height)`` of an image after EXIF orientation, from its header alone."""
    try:
        with _open(uri) as handle, Image.open(handle) as image:
            width, height = image.size
            if image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width
            return (width, height)
    except Exception:
        return None


def valid_output(
    uri: str,
    fmt: str,
    modes: frozenset[str] | None,
    size: tuple[int, int] | None,
    not_before: float,
    metadata: Any,
) -> bool:
    """Whether ``uri`` is a complete image of the expected format, mode and size, not older than
    its input (``metadata``: its ``FileSystems`` match)."""
    if not metadata.size_in_bytes or (metadata.last_updated_in_seconds or 0.0) < not_before:
        return False
    try:
        with _open(uri) as handle, Image.open(handle) as image:
            if image.format != fmt or (modes is not None and image.mode not in modes):
                return False
            if size is not None and image.size != size:
                return False
            image.verify()  # PNG: every chunk's CRC up to IEND
        if fmt == "JPEG":
            with _open(uri) as handle:
                handle.seek(metadata.size_in_bytes - 2)
                return bool(handle.read(2) == b"\xff\xd9")
    except _IMAGE_ERRORS:
        return False
    return True


class SkipFinished(beam.DoFn):
    """Named inputs (:class:`~camvidseg.beam.transforms.MatchedFile`) whose outputs must be
    written go to the main output; those whose outputs an earlier run left complete go to
    ``"skipped"`` as manifest entries. Every input is redone with ``options.overwrite``.

    Args:
        output: The output folder.
        options: The outputs to look for.
        manifest: The earlier run's manifest, whose entries the skipped ones repeat.
    """

    def __init__(self, output: str, options: RunOptions, manifest: str) -> None:
        beam.DoFn.__init__(self)
        self.output = output.rstrip("/")
        self.options = options
        self.manifest = manifest
        self.previous: dict[str, dict[str, Any]] | None = None
        self.skipped = Metrics.counter(METRICS_NAMESPACE, "skipped")

    def setup(self) -> None:
        self.previous = {} if self.options.overwrite else previous_entries(self.manifest)

    def process(self, file: Any) -> Iterator[Any]:
        relpaths = {
            kind: output_relpath(file.name, kind, self.options) for kind in self.options.outputs
        }
        size = None if self.options.overwrite else self._kept_size(file, relpaths)
        if size is None:
            yield file
            return
        self.skipped.inc()
        before = (self.previous or {}).get(file.name, {})
        yield TaggedOutput(
            "skipped",
            ManifestEntry(
                input=file.uri,
                name=file.name,
                status="skipped",
                outputs=relpaths,
                size=size,
                mode=before.get("mode"),
                class_areas=before.get("class_areas"),
                notes=(_ALREADY_PRESENT, *before.get("notes", ())),
            ),
        )

    def _kept_size(self, file: Any, relpaths: dict[str, str]) -> tuple[int, int] | None:
        """The input's size when every output can be kept, else ``None``."""
        targets = [f"{self.output}/{relpath}" for relpath in relpaths.values()]
        try:
            matches = FileSystems.match(targets)
        except Exception:
            return None
        found = [result.metadata_list for result in matches]
        if not all(len(metadata) == 1 for metadata in found):
            return None
        size = oriented_size(file.uri)
        if size is None:
            return None
        for kind, target, metadata in zip(relpaths, targets, found, strict=True):
            fmt, modes = expected_format(kind, self.options)
            expected = None if kind == "panel" else size
            if not valid_output(target, fmt, modes, expected, file.last_updated, metadata[0]):
                log.debug("%s: %s output %s cannot be kept", file.uri, kind, target)
                return None
        return size
