"""Frames in: a video file (PyAV), a folder of images in order, or any iterable of images.

Every source yields :class:`Frame` values (an upright ``(H, W, 3)`` uint8 RGB image, its frame
number and its exact time in seconds as a :class:`~fractions.Fraction`) and describes itself
with a :class:`VideoInfo`. A video's rotation metadata (the display matrix phones write) is
applied, so frames come out the way players show them. Rates and times stay rational: a
29.97 fps video has the rate ``30000/1001``, never ``29``.
"""

from __future__ import annotations

import abc
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import attrs
import numpy as np

from camvidseg._types import ImageArray, ImageLike
from camvidseg.exceptions import CamVidSegError, ConfigError, VideoDecodeError, VideoError
from camvidseg.imageio import IMAGE_SUFFIXES, open_image, to_rgb_array
from camvidseg.validators import ge, gt, int_range, optional
from camvidseg.video._av import exact, require_av

if TYPE_CHECKING:
    import av.container
    import av.video.frame
    import av.video.stream

__all__ = [
    "DEFAULT_RATE",
    "Frame",
    "FrameRange",
    "FrameSource",
    "VideoInfo",
    "frame_files",
    "open_frames",
    "parse_rate",
    "rate_text",
]

log = logging.getLogger("camvidseg")

#: Frame rate of a folder of frames or an iterable of images unless one is given.
DEFAULT_RATE = Fraction(30)


@attrs.frozen(eq=False)
class Frame:
    """One decoded frame.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB, upright (rotation metadata applied).
        index: Frame number in the source, counted from 0 (after a seek, the first frame's
            number comes from its time and the average rate).
        time: Seconds from the source's first timestamp, exact.
        source: The image file, for a folder of frames.
    """

    image: ImageArray
    index: int
    time: Fraction
    source: Path | None = None


def _check_end(instance: FrameRange, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None:
        gt(instance.start).check(value, "end")


def _decimal(value: float) -> Fraction:
    """The exact value of the shortest decimal that prints as ``value``."""
    return Fraction(repr(float(value)))


@attrs.frozen
class FrameRange:
    """Which frames to take: those in ``[start, end)`` seconds, every ``every``-th of them
    (counting from the first one taken), at most ``max_frames``.

    Example:
        >>> frames = [Frame(np.zeros((1, 1, 3), np.uint8), i, Fraction(i, 10)) for i in range(10)]
        >>> [f.index for f in FrameRange(start=0.2, end=0.8, every=2).select(frames)]
        [2, 4, 6]
        >>> FrameRange(start=0.2, end=0.8, every=2).expected(10, Fraction(10))
        3
    """

    start: float = attrs.field(default=0.0, validator=ge(0))
    end: float | None = attrs.field(default=None, validator=_check_end)
    every: int = attrs.field(default=1, validator=int_range(1))
    max_frames: int | None = attrs.field(default=None, validator=optional(int_range(1)))

    @property
    def bounds(self) -> tuple[Fraction, Fraction | None]:
        """``start`` and ``end`` as the decimals they were written as (``0.2`` is 1/5, not the
        binary float just above it), so a frame at exactly 0.2 s is taken by ``start=0.2``."""
        return _decimal(self.start), None if self.end is None else _decimal(self.end)

    def select(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """The frames of ``frames`` (in time order) this range takes; stops reading at ``end``."""
        start, end = self.bounds
        seen = kept = 0
        for frame in frames:
            if end is not None and frame.time >= end:
                return
            if frame.time < start:
                continue
            if seen % self.every == 0:
                yield frame
                kept += 1
                if self.max_frames is not None and kept >= self.max_frames:
                    return
            seen += 1

    def expected(self, total: int | None, rate: Fraction) -> int | None:
        """How many frames :meth:`select` takes from ``total`` frames at a constant ``rate``
        (``None`` if ``total`` is unknown and the range has no ``max_frames``)."""
        if total is None:
            return self.max_frames
        start, end = self.bounds
        first = math.ceil(start * rate)
        stop = total if end is None else min(total, math.ceil(end * rate))
        count = -(-max(0, stop - first) // self.every)
        return count if self.max_frames is None else min(count, self.max_frames)

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "every": self.every,
            "max_frames": self.max_frames,
        }


@attrs.frozen
class VideoInfo:
    """What a source is.

    Attributes:
        source: The path, or ``"<images>"`` for an iterable.
        kind: ``"video"``, ``"folder"`` or ``"images"``.
        width: Width of the (upright) frames.
        height: Height of the (upright) frames.
        rate: Average frame rate, exact (a folder's or iterable's is given, default 30).
        frames: Frame count the container states (often absent or wrong; a folder's files).
        duration: Seconds the container states, if it does.
        rotation: Degrees the frames were turned counter-clockwise to stand upright.
        codec: The video codec's name.
        container: The container format's name.
        audio: The first audio stream's codec, if any.
    """

    source: str
    kind: str
    width: int
    height: int
    rate: Fraction
    frames: int | None = None
    duration: Fraction | None = None
    rotation: int = 0
    codec: str | None = None
    container: str | None = None
    audio: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.source,
            "kind": self.kind,
            "size": [self.width, self.height],
            "fps": rate_text(self.rate),
            "fps_value": float(self.rate),
            "frames": self.frames,
            "duration": None if self.duration is None else float(self.duration),
            "rotation": self.rotation,
            "codec": self.codec,
            "container": self.container,
            "audio": self.audio,
        }


def rate_text(rate: Fraction) -> str:
    """``"30000/1001"``, or ``"25"`` for a whole rate."""
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def parse_rate(text: str) -> Fraction:
    """A frame rate from ``"25"``, ``"29.97"`` or ``"30000/1001"`` (exact), > 0.

    Example:
        >>> parse_rate("30000/1001"), parse_rate("29.97"), parse_rate("25")
        (Fraction(30000, 1001), Fraction(2997, 100), Fraction(25, 1))
    """
    try:
        rate = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise ConfigError(
            f"a frame rate must be a number such as 25 or 30000/1001 (got {text!r})"
        ) from None
    if rate <= 0:
        raise ConfigError(f"a frame rate must be > 0 (got {text!r})")
    return rate


def _natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """``frame2`` before ``frame10``: digit runs compare as numbers."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.lower())
        for part in re.split(r"(\d+)", name)
        if part
    )


def frame_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files directly in ``folder``, in natural order (``2.png`` before ``10.png``).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     for name in ("f10.png", "f2.png", "notes.txt", "f1.jpg"):
        ...         _ = (Path(tmp) / name).write_bytes(b"")
        ...     [p.name for p in frame_files(tmp)]
        ['f1.jpg', 'f2.png', 'f10.png']
    """
    files = [
        p
        for p in Path(folder).iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: _natural_key(p.name))


class FrameSource(abc.ABC):
    """Frames of one source, read once, in order; close it (or use ``with``) when done.

    The first selected frame is decoded when the source is opened, so a source that opens
    has at least one frame and :attr:`info` knows the frame size.
    """

    def __init__(self, frames: Iterator[Frame], info: Callable[[Frame], VideoInfo]) -> None:
        self._frames = frames
        try:
            self._first: Frame | None = next(frames)
        except StopIteration:
            self.close()
            raise VideoError(f"{self.name}: no frames (in the selected time range)") from None
        except BaseException:
            self.close()
            raise
        self.info = info(self._first)
        self._started = False

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The source as shown in messages."""

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise VideoError(f"{self.name}: frames can be read only once")
        self._started = True
        first, self._first = self._first, None
        if first is not None:
            yield first
            del first  # not held for the rest of the video
        yield from self._frames

    def close(self) -> None:
        """Release the file (safe to call twice)."""
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class VideoFileSource(FrameSource):
    """Frames of a video file decoded with PyAV (seeking to ``frames.start``)."""

    def __init__(self, path: str | os.PathLike[str], frames: FrameRange = FrameRange()) -> None:
        require_av()
        import av

        self.path = Path(path)
        if not self.path.exists():
            raise VideoError(f"{self.path}: no such file")
        try:
            container = av.open(os.fspath(self.path))
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoError(f"{self.path}: cannot open as a video ({_reason(exc)})") from None
        if not container.streams.video:
            container.close()
            raise VideoError(f"{self.path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        self._container = container
        self._stream = stream
        self.rate = _stream_rate(stream, self.path)
        #: Seconds on the file's clock of the video's time 0 (audio shares that clock).
        self.origin = (stream.start_time or 0) * (exact(stream.time_base) or Fraction(1, 1))
        self.range = frames
        self._rotation = 0
        super().__init__(frames.select(self._decode()), self._describe)

    @property
    def name(self) -> str:
        return str(self.path)

    def close(self) -> None:
        super().close()
        self._container.close()

    def _describe(self, first: Frame) -> VideoInfo:
        stream, container = self._stream, self._container
        audio = container.streams.audio
        return VideoInfo(
            source=str(self.path),
            kind="video",
            width=int(first.image.shape[1]),
            height=int(first.image.shape[0]),
            rate=self.rate,
            frames=stream.frames or None,
            duration=_stream_duration(container, stream),
            rotation=self._rotation,
            codec=stream.codec_context.name,
            container=container.format.name,
            audio=audio[0].codec_context.name if audio else None,
        )

    def _decode(self) -> Iterator[Frame]:
        import av

        stream, container = self._stream, self._container
        time_base = exact(stream.time_base) or Fraction(1, 1)
        origin = stream.start_time or 0
        start = self.range.bounds[0]
        seeked = start > 0
        if seeked:
            try:
                container.seek(origin + math.floor(start / time_base), stream=stream)
            except av.error.FFmpegError as exc:
                log.warning("%s: cannot seek (%s); decoding from the start", self.path, exc)
                seeked = False
        first_index: int | None = None
        count = 0
        time = Fraction(0)
        try:
            for decoded in container.decode(stream):
                if decoded.pts is not None:
                    time = (decoded.pts - origin) * time_base
                elif count:
                    time += 1 / self.rate
                if first_index is None:
                    first_index = round(time * self.rate) if seeked else 0
                yield Frame(self._upright(decoded), first_index + count, time)
                count += 1
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(
                f"{self.path}: damaged data after {count} decoded frames, at {float(time):.3f} s "
                f"({_reason(exc)})"
            ) from None
        self._check_complete(count, time)

    def _upright(self, decoded: av.video.frame.VideoFrame) -> ImageArray:
        array = cast("ImageArray", decoded.to_ndarray(format="rgb24"))
        rotation = decoded.rotation
        if rotation % 90:
            log.warning(
                "%s: rotation of %d degrees rounded to %d",
                self.path,
                rotation,
                _nearest90(rotation),
            )
        self._rotation = _nearest90(rotation)
        if self._rotation:
            # The display matrix turns the stored picture counter-clockwise by `rotation`.
            array = np.ascontiguousarray(np.rot90(array, self._rotation // 90))
        return array

    def _check_complete(self, count: int, last_time: Fraction) -> None:
        """Raise :class:`VideoDecodeError` if the decoder stopped well before the stated
        duration (a truncated file usually just ends)."""
        duration = _stream_duration(self._container, self._stream)
        if duration is None or count == 0:
            return
        frame_time = 1 / self.rate
        if last_time + frame_time < duration - Fraction(3, 2) * frame_time:
            raise VideoDecodeError(
                f"{self.path}: ended at {float(last_time + frame_time):.3f} s of the "
                f"{float(duration):.3f} s it states (truncated file?)"
            )


def _nearest90(degrees: int) -> int:
    return (round(degrees / 90) * 90) % 360


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).rstrip(".")


def _stream_rate(stream: av.video.stream.VideoStream, path: Path) -> Fraction:
    for candidate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        rate = exact(candidate)
        if rate is not None and rate > 0:
            return rate
    log.warning("%s: states no frame rate; assuming %s fps", path, DEFAULT_RATE)
    return DEFAULT_RATE


_DURATION_TAG = re.compile(r"^(\d+):(\d{2}):(\d{2})(?:\.(\d+))?$")


def _stream_duration(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> Fraction | None:
    """Seconds of video the file states: the stream's duration, else Matroska's per-track
    ``DURATION`` tag, else the container's (only when video is its one stream)."""
    time_base = exact(stream.time_base)
    if stream.duration and time_base:
        return stream.duration * time_base
    match = _DURATION_TAG.match(stream.metadata.get("DURATION", ""))
    if match:
        hours, minutes, seconds, fraction = match.groups()
        value = Fraction(int(hours) * 3600 + int(minutes) * 60 + int(seconds))
        if fraction:
            value += Fraction(int(fraction), 10 ** len(fraction))
        return value
    if container.duration and len(container.streams) == 1:
        return Fraction(container.duration, 1_000_000)
    return None


class FolderSource(FrameSource):
    """Frames read from the image files of a folder, in natural order, at ``rate``.

    A file that cannot be read, or whose size differs from the first frame's, is reported to
    ``on_error`` and skipped; the frames after it keep their times (frame ``i`` is at
    ``i / rate``).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        rate: Fraction = DEFAULT_RATE,
        frames: FrameRange = FrameRange(),
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        try:
            self.files = frame_files(self.folder)
        except OSError as exc:
            raise VideoError(f"{self.folder}: cannot list the folder ({_reason(exc)})") from None
        if not self.files:
            raise VideoError(f"{self.folder}: holds no image files")
        self.rate = rate
        self.skipped: list[str] = []
        self._on_error = on_error
        super().__init__(frames.select(self._read()), self._describe)

    @property
    def name(self) -> str:
        return str(self.folder)

    def _describe(self, first: Frame) -> VideoInfo:
        return VideoInfo(
            source=str(self.folder),
            kind="folder",
            width=int(first.image.shape[1]),
            height=int(first.image.shape[0]),
            rate=self.rate,
            frames=len(self.files),
            duration=len(self.files) / self.rate,
        )

    def _read(self) -> Iterator[Frame]:
        shape: tuple[int, ...] | None = None
        for index, path in enumerate(self.files):
            time = index / self.rate
            try:
                image = open_image(path).array
                if shape is not None and image.shape != shape:
                    raise VideoError(
                        f"{path}: size {image.shape[1]}x{image.shape[0]} differs from the first "
                        f"frame's {shape[1]}x{shape[0]}; skipped"
                    )
            except CamVidSegError as exc:
                self._report(str(exc))
                continue
            shape = image.shape
            yield Frame(image, index, time, path)

    def _report(self, message: str) -> None:
        self.skipped.append(message)
        if self._on_error is not None:
            self._on_error(message)
        else:
            log.error("%s", message)


class ImagesSource(FrameSource):
    """Frames from any iterable of images (arrays, PIL images or paths) at ``rate``."""

    def __init__(
        self,
        images: Iterable[ImageLike],
        rate: Fraction = DEFAULT_RATE,
        frames: FrameRange = FrameRange(),
    ) -> None:
        self.rate = rate
        self._images = images
        super().__init__(frames.select(self._read()), self._describe)

    @property
    def name(self) -> str:
        return "<images>"

    def _describe(self, first: Frame) -> VideoInfo:
        return VideoInfo(
            source=self.name,
            kind="images",
            width=int(first.image.shape[1]),
            height=int(first.image.shape[0]),
            rate=self.rate,
        )

    def _read(self) -> Iterator[Frame]:
        for index, image in enumerate(self._images):
            source = Path(image) if isinstance(image, (str, os.PathLike)) else None
            yield Frame(to_rgb_array(image), index, index / self.rate, source)


def open_frames(
    source: str | os.PathLike[str] | Iterable[ImageLike] | FrameSource,
    *,
    rate: Fraction | str | float | None = None,
    frames: FrameRange | None = None,
    on_error: Callable[[str], None] | None = None,
) -> FrameSource:
    """Open ``source`` for reading frames.

    Args:
        source: A video file (anything FFmpeg reads), a folder of image files (taken in
            natural order), any iterable of images, or an open :class:`FrameSource` (returned
            as it is).
        rate: Frame rate of a folder or iterable (default :data:`DEFAULT_RATE`); a video's own
            rate is always used.
        frames: Which frames to take (default: all).
        on_error: Called with a message for each folder file that is skipped.

    Raises:
        VideoError: naming the source, if it cannot be opened or holds no frames in range.
        ConfigError: if ``rate`` is given for a video file.
    """
    if isinstance(source, FrameSource):
        return source
    frames = FrameRange() if frames is None else frames
    given = rate if isinstance(rate, Fraction) or rate is None else parse_rate(str(rate))
    if given is not None and given <= 0:
        raise ConfigError(f"a frame rate must be > 0 (got {given})")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return FolderSource(path, given or DEFAULT_RATE, frames, on_error)
        if given is not None:
            raise ConfigError(
                f"{path}: a video keeps its own frame rate; a rate applies to folders"
            )
        return VideoFileSource(path, frames)
    return ImagesSource(source, given or DEFAULT_RATE, frames)
