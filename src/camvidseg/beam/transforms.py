"""The PTransforms users compose: match and read images, segment them, write the outputs.

Each returns ``(main, dead_letters)``: its results, and one :class:`DeadLetter` per input that
failed in it, so a bad file never fails the pipeline and the others finish::

    images, unreadable = pipeline | ReadImages("gs://bucket/frames/**/*.jpg")
    segmented, failed = images | Segment(SegmenterModelHandler(config))
    entries, unwritten = segmented | WriteOutputs("gs://bucket/out", base="gs://bucket/frames/")
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, cast

import apache_beam as beam
import attrs
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.metrics.metric import Metrics
from apache_beam.ml.inference.base import RunInference
from apache_beam.pvalue import PBegin, PCollection, TaggedOutput

from camvidseg.beam.files import (
    glob_base,
    is_image_name,
    is_local,
    local_copy,
    mirrored_name,
    with_uri,
    write_atomically,
)
from camvidseg.beam.handler import METRICS_NAMESPACE, SegmenterModelHandler
from camvidseg.beam.outputs import output_relpath
from camvidseg.beam.records import DEAD_LETTER, DeadLetter, KeyedImage, Segmented
from camvidseg.exceptions import ConfigError
from camvidseg.imageio import LoadedImage, open_image
from camvidseg.pipeline import ManifestEntry, RunOptions
from camvidseg.pipeline.outputs import write_output
from camvidseg.pipeline.stages import error_text, image_notes

__all__ = [
    "MatchImages",
    "MatchedFile",
    "MirrorNames",
    "ReadImages",
    "Segment",
    "WriteOutputs",
]

log = logging.getLogger("camvidseg")

#: What each transform returns: its results and its dead letters.
_Pair = tuple[PCollection[Any], PCollection[Any]]


def _counter(name: str) -> Any:
    return Metrics.counter(METRICS_NAMESPACE, name)


@attrs.frozen
class MatchedFile:
    """A file matched by a pattern.

    Attributes:
        uri: Its path or URL, as the file system gave it.
        last_updated: Modification time (seconds since the epoch), to tell stale outputs.
        name: Its output name (relative, no suffix) once :class:`MirrorNames` gave it one.
    """

    uri: str
    last_updated: float = 0.0
    name: str = ""


# -- matching and naming ---------------------------------------------------------------------


class _KeepImages(beam.DoFn):
    """Matched files with an image suffix and no hidden part below ``base``, outside
    ``exclude`` (the output folder, whose files must never be read back as inputs)."""

    def __init__(self, base: str, exclude: str | None) -> None:
        beam.DoFn.__init__(self)
        self.base = base
        self.exclude = exclude

    def process(self, metadata: FileMetadata) -> Iterator[MatchedFile]:
        uri = str(metadata.path)
        if self.exclude is not None:
            where = os.path.abspath(uri) if is_local(uri) else uri  # noqa: PTH100
            if where.startswith(self.exclude):
                return
        relative = PurePosixPath(uri[len(self.base) :] if uri.startswith(self.base) else uri)
        if is_image_name(relative):
            yield MatchedFile(uri, float(metadata.last_updated_in_seconds or 0.0))


class MatchImages(beam.PTransform[PBegin, PCollection[MatchedFile]]):
    """``pipeline | MatchImages(pattern)``: the image files a Beam file pattern matches
    (``**`` crosses folders), as :class:`MatchedFile` s.

    Files with an image suffix (:data:`camvidseg.pipeline.IMAGE_SUFFIXES`) are kept; hidden
    ones (a part below the pattern's fixed part starting with ``.``) and files under
    ``exclude`` are skipped. Matching happens on the workers, through Beam's own file systems.
    """

    def __init__(self, pattern: str, *, exclude: str | None = None) -> None:
        beam.PTransform.__init__(self)
        self.pattern = pattern
        self.exclude = exclude

    def expand(self, pbegin: PBegin) -> PCollection[MatchedFile]:
        return cast(
            "PCollection[MatchedFile]",
            pbegin
            | "Pattern" >> beam.Create([self.pattern])
            | "Match" >> fileio.MatchAll(fileio.EmptyMatchTreatment.ALLOW)
            | "KeepImages" >> beam.ParDo(_KeepImages(glob_base(self.pattern), self.exclude)),
        )


class _Name(beam.DoFn):
    def __init__(self, base: str) -> None:
        beam.DoFn.__init__(self)
        self.base = base
        self.failures = _counter("failures")

    def process(self, file: MatchedFile) -> Iterator[Any]:
        try:
            name = str(mirrored_name(file.uri, self.base))
        except ConfigError as exc:
            self.failures.inc()
            yield TaggedOutput(
                DEAD_LETTER, DeadLetter(file.uri, "input", error_text(file.uri, exc))
            )
            return
        # Case-insensitive file systems would put both into one file.
        yield os.path.normcase(name), attrs.evolve(file, name=name)


class _OnePerName(beam.DoFn):
    def __init__(self) -> None:
        beam.DoFn.__init__(self)
        self.failures = _counter("failures")

    def process(self, group: tuple[str, Iterable[MatchedFile]]) -> Iterator[Any]:
        files = sorted(group[1], key=lambda f: f.uri)
        first = files[0]
        yield first
        for file in files[1:]:
            self.failures.inc()
            message = (
                f"{file.uri}: its outputs ({file.name}.*) would overwrite those of {first.uri}; "
                "rename one of them or segment them into separate output folders"
            )
            yield TaggedOutput(DEAD_LETTER, DeadLetter(file.uri, "input", message))


class MirrorNames(beam.PTransform[PCollection[MatchedFile], _Pair]):
    """Give each :class:`MatchedFile` its output name: its path relative to ``base`` without the
    suffix (``base/a/b.jpg`` -> ``a/b``).

    Two inputs that would share an output name (``a.jpg`` and ``a.png``) are never both written:
    the first in path order keeps the name, each other one becomes a dead letter (stage
    ``input``), as does a path with an unsafe part. Only names travel in the shuffle that finds
    them, never images.

    Output:
        ``(named, dead_letters)``.
    """

    def __init__(self, base: str) -> None:
        beam.PTransform.__init__(self)
        self.base = base

    def expand(self, files: PCollection[MatchedFile]) -> _Pair:
        named = files | "Name" >> beam.ParDo(_Name(self.base)).with_outputs(
            DEAD_LETTER, main="named"
        )
        unique = (
            named.named
            | "ByName" >> beam.GroupByKey()
            | "OnePerName" >> beam.ParDo(_OnePerName()).with_outputs(DEAD_LETTER, main="unique")
        )
        bad = (named[DEAD_LETTER], unique[DEAD_LETTER]) | "DeadLetters" >> beam.Flatten()
        return unique.unique, bad


# -- reading -----------------------------------------------------------------------------------


class _DecodeImages(beam.DoFn):
    def __init__(self, max_pixels: int | None) -> None:
        beam.DoFn.__init__(self)
        self.max_pixels = max_pixels
        self.failures = _counter("failures")
        self.decode_ms = _counter("decode_ms")

    def process(self, uri: str) -> Iterator[Any]:
        started = time.perf_counter()
        decoded = self._decode(uri)
        if isinstance(decoded, DeadLetter):
            self.failures.inc()
            yield TaggedOutput(DEAD_LETTER, decoded)
            return
        self.decode_ms.inc(round((time.perf_counter() - started) * 1000))
        yield uri, decoded

    def _decode(self, uri: str) -> LoadedImage | DeadLetter:
        try:
            with local_copy(uri) as local:
                try:
                    loaded = open_image(local, max_pixels=self.max_pixels)
                except Exception as exc:
                    message = with_uri(error_text(str(local), exc), local, uri)
                    return DeadLetter(uri, "decode", message)
        except Exception as exc:  # a remote file that could not be fetched
            return DeadLetter(uri, "read", error_text(uri, exc))
        # A temporary copy is gone by now: keep the path of local files only.
        return attrs.evolve(loaded, path=loaded.path if str(loaded.path) == uri else None)


class ReadImages(beam.PTransform[PBegin | PCollection[str], _Pair]):
    """Read and decode images into keyed ``(uri, LoadedImage)`` elements.

    ``pipeline | ReadImages(pattern)`` matches a Beam file pattern (:class:`MatchImages`);
    ``uris | ReadImages()`` reads a PCollection of paths or URLs. Local files, ``gs://``,
    ``s3://`` ... go through Beam's own file systems. Decoding is the library's: EXIF
    orientation applied, 16-bit images scaled, the first frame of an animation, decompression
    bombs refused.

    Args:
        pattern: A file pattern, when applied to a pipeline.
        max_pixels: Refuse images with more pixels, from the header, before decoding them.

    Output:
        ``(images, dead_letters)``: one dead letter per file that could not be fetched (stage
        ``read``) or decoded (stage ``decode``: not an image, damaged, truncated, too large).
    """

    def __init__(self, pattern: str | None = None, *, max_pixels: int | None = None) -> None:
        beam.PTransform.__init__(self)
        self.pattern = pattern
        self.max_pixels = max_pixels

    def expand(self, source: PBegin | PCollection[str]) -> _Pair:
        if isinstance(source, PBegin):
            if self.pattern is None:
                raise ConfigError("ReadImages needs a file pattern when applied to a pipeline")
            source = (
                source
                | "Match" >> MatchImages(self.pattern)
                | "Uri" >> beam.Map(lambda file: file.uri)
                | "Spread" >> beam.Reshuffle()
            )
        elif self.pattern is not None:
            raise ConfigError("ReadImages takes a pattern or a PCollection of URIs, not both")
        decoded = source | "Decode" >> beam.ParDo(_DecodeImages(self.max_pixels)).with_outputs(
            DEAD_LETTER, main="images"
        )
        return decoded.images, decoded[DEAD_LETTER]


# -- segmenting --------------------------------------------------------------------------------


class _SplitOutcomes(beam.DoFn):
    def __init__(self) -> None:
        beam.DoFn.__init__(self)
        self.images = _counter("images")
        self.pixels = _counter("pixels")
        self.model_ms = _counter("model_ms")
        self.failures = _counter("failures")

    def process(self, outcome: Segmented | DeadLetter) -> Iterator[Any]:
        if isinstance(outcome, DeadLetter):
            self.failures.inc()
            yield TaggedOutput(DEAD_LETTER, outcome)
            return
        height, width = outcome.segmentation.shape
        self.images.inc()
        self.pixels.inc(height * width)
        self.model_ms.inc(round(outcome.model_seconds * 1000))
        yield outcome


class Segment(beam.PTransform[PCollection[KeyedImage], _Pair]):
    """Segment keyed ``(uri, image)`` elements with Beam's ``RunInference`` and
    :class:`SegmenterModelHandler`.

    Batches follow the handler's ``batch_elements_kwargs``; each element is checked before the
    model and a model failure is retried image by image, so each bad element is one dead letter
    (stage ``validate`` or ``inference``) and its batch-mates are segmented. Counts the Beam
    metrics ``camvidseg:images``, ``pixels``, ``model_ms`` and ``failures``.

    Args:
        handler: The model handler.
        model_identifier: Shares one loaded model between RunInference steps with the same id.

    Output:
        ``(segmented, dead_letters)``: :class:`Segmented` and :class:`DeadLetter` records.
    """

    def __init__(
        self, handler: SegmenterModelHandler, *, model_identifier: str | None = None
    ) -> None:
        beam.PTransform.__init__(self)
        self.handler = handler
        self.model_identifier = model_identifier

    def expand(self, images: PCollection[KeyedImage]) -> _Pair:
        outcomes = images | "RunInference" >> RunInference(
            self.handler, model_identifier=self.model_identifier
        )
        split = outcomes | "Split" >> beam.ParDo(_SplitOutcomes()).with_outputs(
            DEAD_LETTER, main="segmented"
        )
        return split.segmented, split[DEAD_LETTER]


# -- writing -----------------------------------------------------------------------------------


class _WriteOutputs(beam.DoFn):
    def __init__(self, output: str, base: str, options: RunOptions) -> None:
        beam.DoFn.__init__(self)
        self.output = output.rstrip("/")
        self.base = base
        self.options = options
        self.failures = _counter("failures")
        self.written = _counter("written")
        self.scratch: Path | None = None

    def setup(self) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="camvidseg-beam-"))

    def teardown(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def process(self, item: Segmented) -> Iterator[Any]:
        if self.scratch is None:  # pragma: no cover - Beam calls setup first
            self.setup()
        assert self.scratch is not None
        started = time.perf_counter()
        scratch, seg, options = self.scratch, item.segmentation, self.options
        try:
            name = str(mirrored_name(item.uri, self.base))
            outputs: dict[str, str] = {}
            for kind in self.options.outputs:
                relpath = output_relpath(name, kind, self.options)
                target = f"{self.output}/{relpath}"
                write_atomically(
                    target, partial(write_output, kind, seg=seg, options=options), scratch
                )
                outputs[kind] = relpath
        except Exception as exc:
            log.debug("writing outputs of %s failed", item.uri, exc_info=True)
            self.failures.inc()
            yield TaggedOutput(
                DEAD_LETTER, DeadLetter(item.uri, "write", error_text(item.uri, exc))
            )
            return
        self.written.inc()
        loaded: LoadedImage = item.image
        yield ManifestEntry(
            input=item.uri,
            name=name,
            status="ok",
            outputs=outputs,
            size=loaded.size,
            mode=loaded.mode,
            class_areas={k: round(v, 6) for k, v in item.segmentation.class_areas().items()},
            timing={"inference": item.model_seconds, "encode": time.perf_counter() - started},
            notes=image_notes(loaded),
        )


class WriteOutputs(beam.PTransform[PCollection[Segmented], _Pair]):
    """Write each :class:`Segmented` image's outputs under ``output`` in ``camvidseg segment``'s
    layout (``labels/`` indexed PNGs with the palette, ``color/``, ``overlay/``,
    ``confidence/``, ``panel/``), mirroring its path relative to ``base``.

    Every file is encoded with the library's writers, then written under a temporary name and
    renamed into place through Beam's ``FileSystems``. Names must be unique (see
    :class:`MirrorNames`).

    Args:
        output: The output folder (local, ``gs://...``, ...).
        base: The fixed part of the input pattern (:func:`~camvidseg.beam.glob_base`).
        options: Which outputs and how (only the output fields of
            :class:`~camvidseg.pipeline.RunOptions` are used).

    Output:
        ``(entries, dead_letters)``: a :class:`~camvidseg.pipeline.ManifestEntry` per image
        written, a dead letter (stage ``write``) per image that could not be.
    """

    def __init__(self, output: str, *, base: str, options: RunOptions | None = None) -> None:
        beam.PTransform.__init__(self)
        self.output = output
        self.base = base
        self.options = options or RunOptions()

    def expand(self, segmented: PCollection[Segmented]) -> _Pair:
        written = segmented | "Write" >> beam.ParDo(
            _WriteOutputs(self.output, self.base, self.options)
        ).with_outputs(DEAD_LETTER, main="entries")
        return written.entries, written[DEAD_LETTER]
