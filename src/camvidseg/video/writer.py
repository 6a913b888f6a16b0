"""Frames out: ``.mp4`` (H.264, yuv420p, plays in browsers) or ``.mkv`` (FFV1, lossless RGB).

The output keeps the input's exact rational frame rate (divided by N when every N-th frame is
kept) and each frame's timestamp: frames on the constant-rate grid stay exactly on it, others
(variable frame rate) keep their own time to a tenth of a frame. yuv420p stores colour at half
resolution, so H.264 needs even sizes: an odd width or height is padded by one column or row
repeating the last one (players show the padded size; ``.mkv`` keeps the exact size). The file
is written under a short temporary name beside the output and renamed by :meth:`close`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from camvidseg._types import ImageArray
from camvidseg.exceptions import ConfigError, VideoError
from camvidseg.validators import gt, int_range
from camvidseg.video._av import exact, require_av

if TYPE_CHECKING:
    import av.container
    import av.packet
    import av.stream

__all__ = ["DEFAULT_CRF", "OUTPUT_FORMATS", "VideoWriter", "check_output_path"]

log = logging.getLogger("camvidseg")

#: Output suffix -> (container format, video codec, pixel format).
OUTPUT_FORMATS: dict[str, tuple[str, str, str]] = {
    ".mp4": ("mp4", "libx264", "yuv420p"),
    ".mkv": ("matroska", "ffv1", "bgr0"),
}
#: x264 constant rate factor of ``.mp4`` outputs (0 lossless-ish .. 51 worst; 18 looks lossless).
DEFAULT_CRF = 20
#: Time-base ticks per output frame: variable-rate timestamps keep a tenth of a frame.
_TICKS_PER_FRAME = 10


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if its suffix is one :class:`VideoWriter` writes, else :class:`ConfigError`."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(
            f"{path}: the output must end in {' or '.join(OUTPUT_FORMATS)} (got "
            f"{path.suffix or 'no suffix'!r}): .mp4 is H.264 for browsers, .mkv lossless FFV1"
        )
    return path


def _create_temporary(folder: Path) -> Path:
    """A new empty file with a short name in ``folder`` (any output name the file system
    takes must work), created with the usual permissions (0o666 less the umask)."""
    for _ in range(100):
        path = folder / f".camvidseg-{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path
    raise VideoError(f"{folder}: cannot create a temporary file")


class _AudioCopy:
    """Copies the first audio stream of a file into the output, packet by packet (no
    re-encoding), shifted so that input time ``zero`` becomes output time 0."""

    def __init__(self, output: av.container.OutputContainer, path: Path, zero: Fraction) -> None:
        import av

        try:
            self._input = av.open(os.fspath(path))
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoError(f"{path}: cannot open for --copy-audio ({exc})") from None
        if not self._input.streams.audio:
            self._input.close()
            raise VideoError(f"{path}: has no audio stream to copy")
        source = self._input.streams.audio[0]
        codec = source.codec_context.name
        if codec not in output.supported_codecs:
            self._input.close()
            raise VideoError(
                f"{path}: its {codec} audio cannot be stored in a {output.format.name} file "
                "(write .mkv, or leave out --copy-audio)"
            )
        self.stream = output.add_stream_from_template(source)
        self._output = output
        self._source = source
        self._time_base = exact(source.time_base) or Fraction(1, 1)
        self._zero = zero
        self._shift = round(zero / self._time_base)
        if zero > 0:
            with contextlib.suppress(av.error.FFmpegError):
                self._input.seek(math.floor(zero / self._time_base), stream=source)
        self._packets: Iterator[av.packet.Packet[Any]] = self._input.demux(source)
        self._pending: av.packet.Packet[Any] | None = None
        self.packets = 0

    def copy_until(self, until: Fraction) -> None:
        """Mux the audio packets that start before output time ``until`` (seconds)."""
        import av

        while True:
            packet = self._pending
            self._pending = None
            if packet is None:
                try:
                    packet = next(self._packets)
                except StopIteration:
                    return
                except av.error.FFmpegError as exc:
                    log.warning("audio copy stopped: %s", exc)
                    self._packets = iter(())
                    return
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:  # the demuxer's end-of-stream marker
                continue
            at = stamp * self._time_base - self._zero
            if at >= until:
                self._pending = packet
                return
            if at < 0:
                continue
            packet.pts = None if packet.pts is None else packet.pts - self._shift
            packet.dts = None if packet.dts is None else max(0, packet.dts - self._shift)
            packet.stream = self.stream
            self._output.mux(packet)
            self.packets += 1

    def close(self) -> None:
        self._input.close()


class VideoWriter:
    """Writes ``(H, W, 3)`` uint8 RGB frames to a video file.

    Args:
        path: The output, ``.mp4`` or ``.mkv`` (see :data:`OUTPUT_FORMATS`).
        width: Frame width (an ``.mp4`` pads an odd one by a column).
        height: Frame height (an ``.mp4`` pads an odd one by a row).
        rate: Frame rate of the output, exact (e.g. ``Fraction(30000, 1001)``).
        crf: x264 quality of an ``.mp4`` (lower is better; :data:`DEFAULT_CRF`).
        preset: x264 speed/size trade-off of an ``.mp4``.
        audio_from: Copy the first audio stream of this file (no re-encoding).
        audio_zero: Input time (seconds, on the audio's clock) that becomes output time 0.

    Use as a context manager, or call :meth:`close` (keep the file) or :meth:`abort`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        rate: Fraction,
        crf: int = DEFAULT_CRF,
        preset: str = "fast",
        audio_from: str | os.PathLike[str] | None = None,
        audio_zero: Fraction = Fraction(0),
    ) -> None:
        require_av()
        import av

        self.path = check_output_path(path)
        container_format, codec, pix_fmt = OUTPUT_FORMATS[self.path.suffix.lower()]
        int_range(0, 51).check(crf, "crf")
        gt(0).check(rate, "rate")
        self.width, self.height = int(width), int(height)
        self.padded = codec == "libx264" and bool(self.width % 2 or self.height % 2)
        self.frame_size = (self.width + self.width % 2, self.height + self.height % 2)
        if not self.padded:
            self.frame_size = (self.width, self.height)
        self.rate = Fraction(rate)
        self.codec = codec
        self.pix_fmt = pix_fmt
        self.frames = 0
        self._time_base = 1 / (self.rate * _TICKS_PER_FRAME)
        self._origin: Fraction | None = None
        self._last_tick = -1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temp = _create_temporary(self.path.parent)
        temp = os.fspath(self._temp)
        self._audio: _AudioCopy | None = None
        try:
            options = {"movflags": "+faststart"} if container_format == "mp4" else {}
            self._container = av.open(temp, "w", format=container_format, options=options)
            stream = self._container.add_stream(codec, rate=self.rate)
            assert isinstance(stream, av.video.stream.VideoStream)
            stream.width, stream.height = self.frame_size
            stream.pix_fmt = pix_fmt
            stream.codec_context.time_base = self._time_base
            stream.time_base = self._time_base
            if codec == "libx264":
                stream.options = {"crf": str(crf), "preset": preset}
            self._stream = stream
            if audio_from is not None:
                self._audio = _AudioCopy(self._container, Path(audio_from), audio_zero)
            self._container.start_encoding()
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise VideoError(f"{self.path}: cannot start writing ({exc})") from None
        except BaseException:
            self.abort()
            raise

    @property
    def temporary_path(self) -> Path:
        """Where the frames go until :meth:`close` renames the file."""
        return self._temp

    def _tick(self, time: Fraction) -> int:
        """Output timestamp of input time ``time``: on the frame grid when within a quarter
        frame of it, else the nearest tick; always after the previous frame's."""
        if self._origin is None:
            self._origin = time
        ticks = (time - self._origin) / self._time_base
        nearest_frame = round(ticks / _TICKS_PER_FRAME) * _TICKS_PER_FRAME
        tick = nearest_frame if abs(ticks - nearest_frame) <= _TICKS_PER_FRAME / 4 else round(ticks)
        return max(tick, self._last_tick + 1)

    def write(self, image: ImageArray, time: Fraction) -> Fraction:
        """Encode one frame shown at input time ``time`` (seconds; the first frame's time
        becomes 0 in the output); returns its time in the output."""
        import av

        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise VideoError(
                f"{self.path}: frames must be {self.height}x{self.width}x3 uint8 "
                f"(got shape {image.shape}, dtype {image.dtype})"
            )
        if self.padded:
            image = np.pad(image, ((0, self.height % 2), (0, self.width % 2), (0, 0)), mode="edge")
        tick = self._tick(time)
        self._last_tick = tick
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = tick
        frame.time_base = self._time_base
        if self._audio is not None:
            self._audio.copy_until(tick * self._time_base)
        try:
            self._container.mux(self._stream.encode(frame))
        except av.error.FFmpegError as exc:
            raise VideoError(f"{self.path}: cannot write frame {self.frames} ({exc})") from None
        self.frames += 1
        return tick * self._time_base

    @property
    def duration(self) -> Fraction:
        """Seconds of video written: up to the end of the last frame."""
        if self.frames == 0:
            return Fraction(0)
        return (self._last_tick + _TICKS_PER_FRAME) * self._time_base

    @property
    def audio_packets(self) -> int:
        return 0 if self._audio is None else self._audio.packets

    def close(self) -> Path:
        """Flush the encoder, finish the file and move it to :attr:`path`."""
        import av

        try:
            self._container.mux(self._stream.encode(None))
            if self._audio is not None:
                self._audio.copy_until(self.duration)
                self._audio.close()
            self._container.close()
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise VideoError(f"{self.path}: cannot finish the file ({exc})") from None
        os.replace(self._temp, self.path)
        return self.path

    def abort(self) -> None:
        """Stop and delete the temporary file; :attr:`path` is left as it was."""
        container = getattr(self, "_container", None)
        with contextlib.suppress(Exception):
            if self._audio is not None:
                self._audio.close()
        if container is not None:
            with contextlib.suppress(Exception):
                container.close()
        with contextlib.suppress(FileNotFoundError):
            self._temp.unlink()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "codec": self.codec,
            "pix_fmt": self.pix_fmt,
            "size": [self.width, self.height],
            "encoded_size": list(self.frame_size),
            "padded": self.padded,
            "frames": self.frames,
            "duration": float(self.duration),
        }
