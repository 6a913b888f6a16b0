"""A whole video job: frames in, segmented video (+ label PNGs, areas, manifest) out.

Three threads share the work with bounded queues between them, so a few frames are in flight
at any time: one decodes, the calling thread runs the model (and the smoothing), one renders
the view, encodes it and writes the label files. Ctrl-C, a truncated or damaged input, and a
failing model all end the same way: the frames segmented so far are encoded, the video is
closed (playable) and renamed into place, and the manifest says what happened.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from camvidseg._signals import sigint_deferred
from camvidseg._types import ImageArray
from camvidseg._version import __version__
from camvidseg.exceptions import ConfigError, VideoDecodeError, VideoError
from camvidseg.imageio import atomic_write, save_image
from camvidseg.validators import in_, in_range, int_range
from camvidseg.video.areas import AreaTimeline, area_fractions, draw_area_chart
from camvidseg.video.frames import FrameRange, FrameSource, VideoFileSource, rate_text
from camvidseg.video.segment import SegmentedFrame, VideoStats, segment_frames
from camvidseg.video.temporal import FlickerMeter, TemporalSmoothing
from camvidseg.video.writer import DEFAULT_CRF, VideoWriter, check_output_path

if TYPE_CHECKING:
    from camvidseg.palette import CamVidPalette
    from camvidseg.segmenter import Segmentation, Segmenter

__all__ = [
    "MANIFEST_FORMAT",
    "VIEWS",
    "VideoInterrupted",
    "VideoOptions",
    "VideoReport",
    "manifest_path",
    "render_view",
    "run_video",
]

log = logging.getLogger("camvidseg")

MANIFEST_FORMAT = "camvidseg-video"
MANIFEST_VERSION = 1
VIEWS = ("overlay", "color", "panel")
_LABEL_NAME = "frame_{:06d}.png"


@attrs.frozen
class VideoOptions:
    """What :func:`run_video` writes.

    Args:
        view: What the output video shows: ``"overlay"`` (mask blended over the frame),
            ``"color"`` (the mask) or ``"panel"`` (frame | mask | overlay side by side).
        alpha: Mask weight of the overlay.
        temporal: Temporal smoothing (see :class:`~camvidseg.video.TemporalSmoothing`).
        frames: Which frames to take.
        labels_dir: Also write ``frame_000000.png`` (indexed PNG of the labels shown in the
            video), ``areas.csv`` and ``areas.png`` here.
        crf: x264 quality of an ``.mp4`` output.
        copy_audio: Copy the input's first audio stream (cut like the video).
    """

    view: str = attrs.field(default="overlay", validator=in_(VIEWS))
    alpha: float = attrs.field(default=0.6, validator=in_range(0, 1))
    temporal: TemporalSmoothing = attrs.field(factory=TemporalSmoothing)
    frames: FrameRange = attrs.field(factory=FrameRange)
    labels_dir: Path | None = attrs.field(default=None)
    crf: int = attrs.field(default=DEFAULT_CRF, validator=int_range(0, 51))
    copy_audio: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "alpha": self.alpha,
            "temporal": self.temporal.to_json(),
            "frames": self.frames.to_json(),
            "labels_dir": None if self.labels_dir is None else str(self.labels_dir),
            "crf": self.crf,
            "copy_audio": self.copy_audio,
        }


@attrs.frozen
class VideoReport:
    """How a :func:`run_video` job ended.

    Attributes:
        status: ``"ok"``, ``"interrupted"`` (Ctrl-C) or ``"error"`` (the input ended early or
            holds damaged data; the frames before it were written).
        error: The reason, for ``"error"``.
        output: The video written, or ``None`` if no frame was.
        manifest: ``OUTPUT.json``, or ``None`` if nothing was written.
        frames: Frames written.
        seconds: Wall time of the job.
        flicker: Mean fraction of pixels whose label changes between consecutive frames,
            ``{"without_smoothing": ..., "with_smoothing": ... or None}``.
    """

    status: str
    error: str | None
    output: Path | None
    manifest: Path | None
    frames: int
    seconds: float
    flicker: Mapping[str, float | None]

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class VideoInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_video`; the output was closed and :attr:`report` says what
    was written."""

    def __init__(self, report: VideoReport) -> None:
        super().__init__("interrupted")
        self.report = report


def manifest_path(output: str | Path) -> Path:
    """``OUTPUT.json`` beside ``OUTPUT``."""
    output = Path(output)
    return output.with_name(output.name + ".json")


def render_view(
    view: str, segmentation: Segmentation, image: ImageArray, alpha: float
) -> ImageArray:
    """The picture of one frame the output video shows (see :class:`VideoOptions`).

    Panels have no legend, so every frame of a video has the same size.
    """
    if view == "overlay":
        return segmentation.overlay(alpha, image=image)
    if view == "color":
        return segmentation.colorize()
    from camvidseg.visualize import panel

    return np.asarray(panel(image, segmentation, legend=False, alpha=alpha))


class _LabelsOutput:
    """``frame_NNNNNN.png`` per frame, ``areas.csv`` as it goes, ``areas.png`` at the end."""

    def __init__(self, folder: Path, palette: CamVidPalette) -> None:
        self.folder = folder
        self.palette = palette
        folder.mkdir(parents=True, exist_ok=True)
        self.timeline = AreaTimeline(len(palette) + 1)
        self._stack = contextlib.ExitStack()
        self._csv = self._stack.enter_context(atomic_write(folder / "areas.csv"))
        header = ["frame", "time", "source_time", *palette.names, "unlabelled"]
        self._csv.write((",".join(_csv_field(h) for h in header) + "\n").encode())
        self.frames = 0

    def add(self, segmentation: Segmentation, time: Fraction, source_time: Fraction) -> None:
        if segmentation.palette.name != self.palette.name:
            raise ConfigError(
                f"labels of {segmentation.palette.name}, expected {self.palette.name}"
            )
        segmentation.save(self.folder / _LABEL_NAME.format(self.frames))
        fractions = area_fractions(segmentation.labels, len(self.palette))
        row = [str(self.frames), f"{float(time):.6f}", f"{float(source_time):.6f}"]
        row += [f"{value:.6f}" for value in fractions]
        self._csv.write((",".join(row) + "\n").encode())
        self.timeline.add(fractions, float(time))
        self.frames += 1

    def close(self, duration: float) -> None:
        self._stack.close()
        chart = draw_area_chart(self.timeline, self.palette, duration)
        save_image(self.folder / "areas.png", chart)
        # frame_*.png beyond this run's frames are left from a longer earlier run.
        for path in self.folder.glob("frame_*.png"):
            number = path.stem.removeprefix("frame_")
            if number.isdigit() and int(number) >= self.frames:
                path.unlink()


def _csv_field(text: str) -> str:
    return f'"{text}"' if any(c in text for c in ',"\n') else text


class _Outputs:
    """Everything written, opened at the first frame (its size is the video's)."""

    def __init__(
        self,
        output: Path,
        options: VideoOptions,
        source: FrameSource,
        palette: CamVidPalette,
    ) -> None:
        self.output = output
        self.options = options
        self.source = source
        self.palette = palette
        self.rate = source.info.rate / options.frames.every
        self.writer: VideoWriter | None = None
        self.labels: _LabelsOutput | None = None

    def add(self, item: SegmentedFrame) -> None:
        picture = render_view(
            self.options.view, item.segmentation, item.frame.image, self.options.alpha
        )
        if self.writer is None:
            self.writer = self._open(picture, item)
        shown = self.writer.write(picture, item.frame.time)
        if self.labels is not None:
            self.labels.add(item.segmentation, shown, item.frame.time)

    def _open(self, picture: ImageArray, item: SegmentedFrame) -> VideoWriter:
        audio_from = None
        audio_zero = Fraction(0)
        if self.options.copy_audio:
            if not isinstance(self.source, VideoFileSource) or self.source.info.audio is None:
                raise ConfigError(f"{self.source.name}: has no audio stream to copy")
            audio_from = self.source.path
            audio_zero = self.source.origin + item.frame.time
        writer = VideoWriter(
            self.output,
            width=int(picture.shape[1]),
            height=int(picture.shape[0]),
            rate=self.rate,
            crf=self.options.crf,
            audio_from=audio_from,
            audio_zero=audio_zero,
        )
        if self.options.labels_dir is not None:
            try:
                self.labels = _LabelsOutput(self.options.labels_dir, self.palette)
            except BaseException:
                writer.abort()
                raise
        return writer

    def close(self) -> Path | None:
        if self.writer is None:
            return None
        path = self.writer.close()
        if self.labels is not None:
            self.labels.close(float(self.writer.duration))
        return path

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


class _Worker:
    """Runs ``consume`` on items in a thread, at most ``size`` items queued."""

    def __init__(self, consume: Callable[[SegmentedFrame], None], size: int) -> None:
        self._queue: queue.Queue[SegmentedFrame | None] = queue.Queue(maxsize=size)
        self._consume = consume
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="camvidseg-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # drain, so the producer never blocks
            try:
                self._consume(item)
            except BaseException as exc:  # raised to the producer on its next put
                self.error = exc

    def put(self, item: SegmentedFrame) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(item)

    def finish(self) -> None:
        """Process what is queued, stop the thread, raise its error if it had one."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_video(
    segmenter: Segmenter,
    source: FrameSource,
    output: str | Path,
    options: VideoOptions = VideoOptions(),
    *,
    model: str | None = None,
    settings: Mapping[str, Any] | None = None,
    on_frame: Callable[[SegmentedFrame], None] | None = None,
) -> VideoReport:
    """Segment ``source`` into the video ``output`` (``.mp4`` or ``.mkv``) and its manifest.

    Args:
        segmenter: The segmenter (its ``batch_size`` frames go to the model at once).
        source: Open frames (:func:`~camvidseg.video.open_frames` with ``options.frames``).
        output: The video to write; ``OUTPUT.json`` is written beside it.
        options: View, smoothing, label files, quality, audio.
        model: The model handle, for the manifest.
        settings: The segmenter's settings (``SegmentConfig.to_dict()``), for the manifest.
        on_frame: Called in this thread after each frame is segmented (e.g. a progress bar).

    Returns:
        The report; ``status`` is ``"error"`` when the input ended early or holds damaged
        data (the frames before it were written and the video is playable).

    Raises:
        VideoInterrupted: on Ctrl-C, after the output was closed.
        ConfigError, VideoError: when an output cannot be written (nothing is kept then).
    """
    output = check_output_path(output)
    began, started = time.perf_counter(), _now()
    stats = VideoStats()
    unsmoothed, smoothed = FlickerMeter(), FlickerMeter()
    outputs = _Outputs(output, options, source, segmenter.palette)
    # Two batches of room, so a slow frame to encode does not stall the model behind it.
    worker = _Worker(outputs.add, size=2 * segmenter.batch_size)
    results = segment_frames(
        segmenter, source, temporal=options.temporal, unsmoothed=True, stats=stats
    )
    status, error = "ok", None
    failure: BaseException | None = None
    try:
        for item in results:
            if item.unsmoothed is None:
                unsmoothed.add(item.segmentation.labels, cut=item.cut)
            else:
                unsmoothed.add(item.unsmoothed, cut=item.cut)
                smoothed.add(item.segmentation.labels, cut=item.cut)
            worker.put(item)
            if on_frame is not None:
                on_frame(item)
    except VideoDecodeError as exc:
        status, error = "error", str(exc)
    except KeyboardInterrupt:
        status = "interrupted"
    except BaseException as exc:
        status, error, failure = "error", str(exc) or type(exc).__name__, exc
    with sigint_deferred("closing the video"):
        results.close()
        try:
            worker.finish()
            path = outputs.close()
        except BaseException:
            outputs.abort()
            raise
        seconds = time.perf_counter() - began
        flicker = {
            "without_smoothing": unsmoothed.value,
            "with_smoothing": smoothed.value if options.temporal.enabled else None,
        }
        frames = 0 if outputs.writer is None else outputs.writer.frames
        report = VideoReport(status, error, path, None, frames, seconds, flicker)
        if path is not None:
            head = {
                "format": MANIFEST_FORMAT,
                "version": MANIFEST_VERSION,
                "camvidseg_version": __version__,
                "status": status,
                "error": error,
                "started": started,
                "finished": _now(),
                "input": {**source.info.to_json(), "skipped": list(getattr(source, "skipped", []))},
                "output": {
                    **(outputs.writer.to_json() if outputs.writer else {}),
                    "fps": rate_text(outputs.rate),
                    "fps_value": float(outputs.rate),
                    "audio_packets": outputs.writer.audio_packets if outputs.writer else 0,
                },
                "labels_dir": None if options.labels_dir is None else str(options.labels_dir),
                "frames": frames,
                "model": {"handle": model, "backend": segmenter.backend.name},
                "settings": dict(settings) if settings is not None else None,
                "options": options.to_json(),
                "smoothing": {**options.temporal.to_json(), "scene_cuts": stats.scene_cuts},
                "flicker": {**flicker, "frame_pairs": unsmoothed.pairs},
                "timing": {
                    "seconds": round(seconds, 3),
                    "frames_per_second": round(report.frames_per_second, 3),
                    "segmenter_seconds": round(stats.model_seconds, 3),
                },
            }
            report = attrs.evolve(report, manifest=_write_manifest(output, head))
    if failure is not None:
        raise failure
    if status == "interrupted":
        raise VideoInterrupted(report)
    return report


def _write_manifest(output: Path, head: Mapping[str, Any]) -> Path:
    path = manifest_path(output)
    try:
        with atomic_write(path) as handle:
            handle.write((json.dumps(head, indent=1) + "\n").encode())
    except OSError as exc:
        raise VideoError(f"{path}: cannot write the manifest ({exc.strerror or exc})") from None
    return path
