"""Output files in ``camvidseg segment``'s layout: where they go, how they are encoded, and
when files an earlier run wrote can be kept (:class:`SkipFinished`).

An input's outputs are kept when each exists, is a complete image of the expected format, mode
and size, and is not older than the input; they are then not segmented again and the manifest
entry says ``skipped``, repeating what the earlier manifest said of the input.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import IO, Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import Metrics
from apache_beam.pvalue import TaggedOutput

from camvidseg.beam.handler import METRICS_NAMESPACE
from camvidseg.beam.manifest import previous_entries
from camvidseg.pipeline import ManifestEntry, RunOptions
from camvidseg.pipeline.outputs import expected_format, oriented_size, valid_image
from camvidseg.pipeline.outputs import output_relpath as _pipeline_relpath
from camvidseg.pipeline.resume import ALREADY_PRESENT

__all__ = ["SkipFinished", "output_relpath", "remote_oriented_size", "remote_valid_output"]

log = logging.getLogger("camvidseg")


def output_relpath(name: str, kind: str, options: RunOptions) -> str:
    """``kind/name.ext``: where ``camvidseg segment`` puts one output of the input named
    ``name``, relative to the output folder.

    Example:
        >>> output_relpath("a/frame", "overlay", RunOptions())
        'overlay/a/frame.jpg'
    """
    return _pipeline_relpath(PurePosixPath(name), kind, options.extension(kind)).as_posix()


def _open(uri: str) -> IO[bytes]:
    handle: IO[bytes] = FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED)
    return handle


def remote_oriented_size(uri: str) -> tuple[int, int] | None:
    """:func:`~camvidseg.pipeline.outputs.oriented_size` of a file Beam's ``FileSystems``
    reach (``None``: it cannot be opened or read)."""
    try:
        with _open(uri) as handle:
            return oriented_size(handle)
    except Exception:
        return None


def remote_valid_output(
    uri: str,
    fmt: str,
    modes: frozenset[str] | None,
    size: tuple[int, int] | None,
    not_before: float,
    metadata: Any,
) -> bool:
    """Whether ``uri`` is a complete image of the expected format, mode and size
    (:func:`~camvidseg.pipeline.outputs.valid_image`), not older than its input
    (``metadata``: its ``FileSystems`` match)."""
    if not metadata.size_in_bytes or (metadata.last_updated_in_seconds or 0.0) < not_before:
        return False
    try:
        with _open(uri) as handle:
            return valid_image(handle, fmt, modes, size, metadata.size_in_bytes)
    except (OSError, ValueError):
        return False


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
                notes=(ALREADY_PRESENT, *before.get("notes", ())),
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
        size = remote_oriented_size(file.uri)
        if size is None:
            return None
        for kind, target, metadata in zip(relpaths, targets, found, strict=True):
            fmt, modes = expected_format(kind, self.options)
            expected = None if kind == "panel" else size
            if not remote_valid_output(
                target, fmt, modes, expected, file.last_updated, metadata[0]
            ):
                log.debug("%s: %s output %s cannot be kept", file.uri, kind, target)
                return None
        return size
