"""Segmenting a stream of frames: batches to the model, temporal smoothing, bounded memory."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import TYPE_CHECKING, Generic, TypeVar, cast

import attrs
import numpy as np

from camvidseg._types import ImageLike, LabelMap, Scores
from camvidseg.segmenter import Segmentation
from camvidseg.video.frames import Frame, FrameRange, FrameSource, open_frames
from camvidseg.video.temporal import EmaSmoother, SceneCutDetector, TemporalSmoothing

if TYPE_CHECKING:
    from camvidseg.segmenter import Segmenter

__all__ = ["SegmentedFrame", "VideoStats", "prefetch", "segment_frames", "segment_video"]

T = TypeVar("T")


@attrs.frozen(eq=False)
class SegmentedFrame:
    """One frame and its segmentation.

    Attributes:
        frame: The decoded frame (image, frame number, exact time).
        segmentation: The result, after temporal smoothing when it is on.
        unsmoothed: With smoothing on and ``unsmoothed=True``, the labels the frame alone
            gives (for the flicker comparison); else ``None``.
        cut: Whether the frame starts a new shot (smoothing restarted there).
    """

    frame: Frame
    segmentation: Segmentation
    unsmoothed: LabelMap | None = None
    cut: bool = False


@attrs.define
class VideoStats:
    """Counters of a :func:`segment_frames` run, updated as frames are yielded.

    Attributes:
        frames: Frames yielded.
        scene_cuts: Scene cuts found (the first frame is not one).
        model_seconds: Seconds spent in the segmenter's model calls (with labels from the
            model, its post-processing too).
    """

    frames: int = 0
    scene_cuts: int = 0
    model_seconds: float = 0.0


class _Prefetcher(Generic[T]):
    """Runs an iterable in a background thread, at most ``size`` items ahead.

    The iterable is consumed (and, when it has ``close``, closed) by that thread only, so a
    PyAV container never crosses threads. An exception in the thread is raised to the reader
    after the items produced before it.
    """

    def __init__(self, items: Iterable[T], size: int, name: str) -> None:
        self._queue: queue.Queue[tuple[bool, T | BaseException | None]] = queue.Queue(
            maxsize=max(1, size)
        )
        self._stop = threading.Event()
        self._items = items
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: tuple[bool, T | BaseException | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _run(self) -> None:
        iterator = iter(self._items)
        try:
            for item in iterator:
                if not self._put((True, item)):
                    return
                del item  # not held while the next one is produced
            self._put((False, None))
        except BaseException as exc:  # handed to the reader, who raises it
            self._put((False, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        while True:
            more, item = self._queue.get()
            if not more:
                if isinstance(item, BaseException):
                    raise item
                return
            yield cast("T", item)

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():  # drain, so a blocked put sees the stop flag
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        self._thread.join()


def prefetch(
    items: Iterable[T], size: int, name: str = "camvidseg-prefetch"
) -> Generator[T, None, None]:
    """``items`` produced by a background thread at most ``size`` ahead (``size`` 0: in this
    thread). Closing the returned generator stops the thread (after the item it is making).
    """
    if size <= 0:
        yield from items
        return
    fetcher = _Prefetcher(items, size, name)
    try:
        yield from fetcher
    finally:
        fetcher.close()


def _batches(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _model_calls(
    segmenter: Segmenter,
    frames: Iterable[Frame],
    scores: bool,
    stats: VideoStats,
) -> Generator[tuple[list[Frame], list[Segmentation] | list[Scores]], None, None]:
    """Each batch of frames with the model's answer: class probabilities (``scores``), else
    finished segmentations (the backend may compute labels itself then)."""
    for batch in _batches(frames, segmenter.batch_size):
        images = [frame.image for frame in batch]
        began = time.perf_counter()
        results: list[Segmentation] | list[Scores]
        if scores:
            results = segmenter.predict_scores(images)
        else:
            results = list(segmenter.segment_batch(images, batch_size=len(images)))
        stats.model_seconds += time.perf_counter() - began
        yield batch, results
        del batch, images, results


def segment_frames(
    segmenter: Segmenter,
    frames: Iterable[Frame],
    *,
    temporal: str | TemporalSmoothing | None = None,
    unsmoothed: bool = False,
    threads: bool = True,
    stats: VideoStats | None = None,
) -> Generator[SegmentedFrame, None, None]:
    """Segment frames in order, ``segmenter.batch_size`` per model call.

    With ``threads`` the frames are decoded one batch ahead in one background thread and the
    model runs one batch ahead of the smoothing and post-processing in another, so the model
    never waits for either. About four batches of frames (and, with ``ema``, two batches of
    ``(H, W, C)`` float32 probabilities plus the smoothing state) are held at once, however
    long the video.

    Args:
        segmenter: Any :class:`~camvidseg.segmenter.Segmenter`; its settings (label set,
            ``max_side``, tiling, TTA, cleanup, ``min_confidence``) apply to every frame.
        frames: :class:`Frame` values in time order (e.g. a :class:`FrameSource`).
        temporal: ``"none"`` (default), ``"ema"`` or a :class:`TemporalSmoothing`. With
            ``ema`` the class probabilities (:meth:`Segmenter.predict_scores`) are averaged
            over time before :meth:`Segmenter.from_scores` turns them into labels.
        unsmoothed: With smoothing on, also compute each frame's own labels
            (:attr:`SegmentedFrame.unsmoothed`); this runs the post-processing twice.
        threads: Decode and run the model in background threads (``False``: all in the
            calling thread).
        stats: Counters to update (frames, scene cuts, seconds spent in the model).
    """
    smoothing = TemporalSmoothing.parse(temporal)
    stats = VideoStats() if stats is None else stats
    ahead = segmenter.batch_size if threads else 0
    detector = SceneCutDetector(smoothing.cut_threshold)
    ema = EmaSmoother(smoothing.alpha) if smoothing.enabled else None
    decoded = prefetch(frames, ahead, "camvidseg-decode")
    calls = prefetch(
        _model_calls(segmenter, decoded, ema is not None, stats), int(threads), "camvidseg-model"
    )
    # The frame's own labels (for the flicker comparison) are computed beside the smoothed ones.
    helper = ThreadPoolExecutor(1, "camvidseg-unsmoothed") if ema and unsmoothed else None
    try:
        for batch, results in calls:
            for frame, result in zip(batch, results, strict=True):
                cut = detector.is_cut(frame.image)
                stats.frames += 1
                stats.scene_cuts = detector.cuts
                if ema is None:
                    assert isinstance(result, Segmentation)
                    seg = result
                    if frame.source is not None:
                        seg = attrs.evolve(seg, source=frame.source)
                    yield SegmentedFrame(frame, seg, None, cut)
                    continue
                assert isinstance(result, np.ndarray)
                if cut:
                    ema.reset()
                own = None
                if helper is not None:
                    own = helper.submit(segmenter.from_scores, frame.image, result)
                smoothed = segmenter.from_scores(
                    frame.image, ema.update(result), source=frame.source
                )
                labels = None if own is None else own.result().labels
                yield SegmentedFrame(frame, smoothed, labels, cut)
            del batch, results
    finally:
        calls.close()  # stops the model thread, which stops the decoding thread
        decoded.close()
        if helper is not None:
            helper.shutdown()


def segment_video(
    segmenter: Segmenter,
    source: str | os.PathLike[str] | Iterable[ImageLike] | FrameSource,
    *,
    temporal: str | TemporalSmoothing | None = None,
    rate: Fraction | str | float | None = None,
    frames: FrameRange | None = None,
) -> Iterator[Segmentation]:
    """Segment a video file, a folder of frames (natural order) or any iterable of images.

    Frames are decoded ahead in a background thread and sent to the model
    ``segmenter.batch_size`` at a time; memory stays bounded by a few frames however long the
    video is. A video's rotation metadata is applied, so results are upright.

    Args:
        segmenter: The segmenter to run.
        source: See :func:`~camvidseg.video.open_frames`.
        temporal: ``"none"`` (default), ``"ema"`` (average class probabilities over time,
            restarted at scene cuts) or a :class:`~camvidseg.video.TemporalSmoothing`.
        rate: Frame rate of a folder or iterable (it only matters for ``frames``' times).
        frames: Which frames to take (start/end seconds, every N-th, at most N).

    Yields:
        One :class:`~camvidseg.segmenter.Segmentation` per frame taken, in order.

    Raises:
        VideoError: if the source cannot be opened or holds no frames;
            :class:`~camvidseg.exceptions.VideoDecodeError` after the last good frame of a
            truncated or damaged video.

    Example:
        >>> import numpy as np
        >>> from camvidseg.testing import NearestColorBackend
        >>> from camvidseg.segmenter import Segmenter
        >>> road = np.full((4, 6, 3), [128, 64, 128], np.uint8)
        >>> results = segment_video(Segmenter(NearestColorBackend()), [road] * 3, temporal="ema")
        >>> [seg.class_areas() for seg in results]
        [{'Road': 1.0}, {'Road': 1.0}, {'Road': 1.0}]
    """
    opened = open_frames(source, rate=rate, frames=frames)
    results = segment_frames(segmenter, opened, temporal=temporal)
    try:
        for item in results:
            yield item.segmentation
    finally:
        results.close()  # stops the decoding thread before the file is closed
        opened.close()
