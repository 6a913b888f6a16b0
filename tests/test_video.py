"""camvidseg.video with PyAV: reading (rotation, rates, damaged files), writing, segmenting."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from camvidseg.backends.fake import NearestColorBackend, SpeckleNoiseBackend
from camvidseg.exceptions import ConfigError, VideoDecodeError, VideoError
from camvidseg.segmenter import Segmenter
from camvidseg.video import (
    FlickerMeter,
    Frame,
    FrameRange,
    VideoWriter,
    open_frames,
    segment_frames,
    segment_video,
)
from camvidseg.video.testing import moving_shapes, write_video

av = pytest.importorskip("av")
# Writing rotation metadata (the test videos' display matrix) needs PyAV >= 18; reading it 14.1.
writes_rotation = pytest.mark.skipif(
    not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
    reason="PyAV < 18 cannot write rotation metadata",
)

NTSC = Fraction(30000, 1001)


def decoded(path: Path) -> tuple[list[NDArray[np.uint8]], list[Fraction], Fraction]:
    """Frames (RGB as stored), their times in seconds and the average rate of ``path``."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(frame.pts * stream.time_base)
        return frames, times, Fraction(stream.average_rate)


@pytest.fixture(scope="module")
def scenes() -> list[tuple[NDArray[np.uint8], NDArray[np.uint8]]]:
    return list(moving_shapes(12, 48, 64))


@pytest.fixture(scope="module")
def lossless(
    tmp_path_factory: pytest.TempPathFactory,
    scenes: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]],
) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "in.mkv", [i for i, _ in scenes])


@pytest.fixture(scope="module")
def h264(
    tmp_path_factory: pytest.TempPathFactory,
    scenes: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]],
) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "in.mp4", [i for i, _ in scenes])


# -- reading ---------------------------------------------------------------------------------------


def test_a_lossless_video_reads_back_exactly_with_its_rational_rate(
    lossless: Path, scenes: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]]
) -> None:
    with open_frames(lossless) as source:
        frames = list(source)
        info = source.info
    assert info.rate == NTSC
    assert (info.width, info.height) == (64, 48)
    assert info.kind == "video"
    assert info.codec == "ffv1"
    assert info.rotation == 0
    assert len(frames) == len(scenes)
    for frame, (image, _) in zip(frames, scenes, strict=True):
        np.testing.assert_array_equal(frame.image, image)
    assert [f.index for f in frames] == list(range(12))
    # Matroska stores milliseconds: times are within half a millisecond of i * 1001/30000.
    assert all(abs(f.time - f.index / NTSC) <= Fraction(1, 2000) for f in frames)


def test_h264_input_keeps_its_exact_timestamps(h264: Path) -> None:
    with open_frames(h264) as source:
        frames = list(source)
        assert source.info.frames == 12
        assert source.info.duration == 12 / NTSC
    assert [f.time for f in frames] == [i / NTSC for i in range(12)]


@writes_rotation
@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_is_applied(tmp_path: Path, rotation: int) -> None:
    stored = np.zeros((48, 64, 3), np.uint8)
    stored[:8, :16] = [128, 64, 128]  # a mark in the stored top-left corner
    path = write_video(tmp_path / "turned.mkv", [stored] * 3, rotation=rotation)
    with open_frames(path) as source:
        frames = list(source)
        assert source.info.rotation == rotation % 360
    upright = np.rot90(stored, rotation // 90)  # players turn it counter-clockwise
    assert (source.info.height, source.info.width) == upright.shape[:2]
    for frame in frames:
        np.testing.assert_array_equal(frame.image, upright)


def test_start_seeks_and_numbers_frames_by_time(h264: Path) -> None:
    with open_frames(h264, frames=FrameRange(start=0.2, every=2)) as source:
        frames = list(source)
    assert [f.index for f in frames] == [6, 8, 10]
    assert [f.time for f in frames] == [i / NTSC for i in (6, 8, 10)]


def test_a_truncated_file_gives_its_frames_then_a_clear_error(
    tmp_path: Path, lossless: Path
) -> None:
    data = lossless.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 6 // 10])
    got: list[Frame] = []
    with (
        pytest.raises(
            VideoDecodeError,
            match=r"cut\.mkv: ended at 0\.\d+ s of the 0\.400 s it states \(truncated",
        ),
        open_frames(cut) as source,
    ):
        got.extend(source)
    assert 1 <= len(got) < 12


def test_damaged_data_gives_the_frames_before_it_then_a_clear_error(
    tmp_path: Path, lossless: Path
) -> None:
    data = bytearray(lossless.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = np.random.default_rng(0).integers(0, 256, 400, np.uint8).tobytes()
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    got: list[Frame] = []
    with pytest.raises(VideoDecodeError, match=r"damaged\.mkv"), open_frames(damaged) as source:
        got.extend(source)
    assert 1 <= len(got) < 12


def test_sources_that_cannot_be_opened_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match=r"junk\.mp4: cannot open as a video"):
        open_frames(tmp_path / "junk.mp4")
    with pytest.raises(VideoError, match=r"missing\.mp4: no such file"):
        open_frames(tmp_path / "missing.mp4")
    with pytest.raises(VideoError, match="holds no image files"):
        open_frames(tmp_path / "empty")
    with pytest.raises(VideoError, match="no frames"):
        open_frames([])


def test_a_folder_of_frames_reads_in_natural_order_and_skips_bad_files(tmp_path: Path) -> None:
    images = [image for image, _ in moving_shapes(11, 16, 24)]
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"f{i}.png")
    (tmp_path / "f3.png").write_bytes(b"broken")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "f5.png")  # wrong size
    errors: list[str] = []
    with open_frames(tmp_path, rate="25", on_error=errors.append) as source:
        frames = list(source)
        assert source.info.rate == 25
        assert source.info.frames == 11
    assert [f.index for f in frames] == [0, 1, 2, 4, 6, 7, 8, 9, 10]
    assert [f.time for f in frames] == [Fraction(f.index, 25) for f in frames]
    for frame in frames:
        np.testing.assert_array_equal(frame.image, images[frame.index])
        assert frame.source == tmp_path / f"f{frame.index}.png"
    assert len(errors) == 2
    assert "f3.png" in errors[0]
    assert "f5.png: size 8x8 differs" in errors[1]


def test_a_rate_is_refused_for_a_video(lossless: Path) -> None:
    with pytest.raises(ConfigError, match="keeps its own frame rate"):
        open_frames(lossless, rate=25)


# -- writing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [NTSC, Fraction(25), Fraction(24000, 1001), Fraction(15000, 1001)])
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_the_writer_keeps_the_exact_rate_and_frame_count(
    tmp_path: Path, rate: Fraction, suffix: str
) -> None:
    images = [image for image, _ in moving_shapes(7, 32, 48)]
    with VideoWriter(tmp_path / f"out{suffix}", width=48, height=32, rate=rate) as writer:
        for i, image in enumerate(images):
            writer.write(image, i / rate)
    frames, times, average = decoded(tmp_path / f"out{suffix}")
    assert average == rate
    assert len(frames) == 7
    tolerance = Fraction(1, 1000) if suffix == ".mkv" else Fraction(0)
    assert all(abs(t - i / rate) <= tolerance for i, t in enumerate(times))
    if suffix == ".mkv":  # lossless
        for frame, image in zip(frames, images, strict=True):
            np.testing.assert_array_equal(frame, image)
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]


def test_variable_frame_times_are_kept(tmp_path: Path) -> None:
    image = np.zeros((16, 16, 3), np.uint8)
    times = [Fraction(0), Fraction(1, 30), Fraction(3, 30), Fraction(37, 300), Fraction(5, 30)]
    with VideoWriter(tmp_path / "vfr.mp4", width=16, height=16, rate=Fraction(30)) as writer:
        shown = [writer.write(image, t + 7) for t in times]  # offsets are removed
    assert shown == times
    assert decoded(tmp_path / "vfr.mp4")[1] == times


def test_odd_sizes_are_padded_in_mp4_and_exact_in_mkv(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 256, (47, 63, 3), np.uint8)
    for suffix, size in ((".mp4", (48, 64)), (".mkv", (47, 63))):
        with VideoWriter(tmp_path / f"odd{suffix}", width=63, height=47, rate=NTSC) as writer:
            writer.write(image, Fraction(0))
            assert writer.padded == (suffix == ".mp4")
        frames = decoded(tmp_path / f"odd{suffix}")[0]
        assert frames[0].shape[:2] == size
    np.testing.assert_array_equal(decoded(tmp_path / "odd.mkv")[0][0], image)


def test_an_aborted_writer_leaves_nothing_and_the_old_file_alone(tmp_path: Path) -> None:
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"previous")
    writer = VideoWriter(target, width=16, height=16, rate=NTSC)
    writer.write(np.zeros((16, 16, 3), np.uint8), Fraction(0))
    assert writer.temporary_path.exists()
    assert len(writer.temporary_path.name) < 30
    writer.abort()
    assert [p.name for p in tmp_path.iterdir()] == ["keep.mp4"]
    assert target.read_bytes() == b"previous"


def test_the_writer_refuses_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"must end in \.mp4 or \.mkv"):
        VideoWriter(tmp_path / "out.avi", width=8, height=8, rate=NTSC)
    with pytest.raises(ConfigError, match=r"^crf must be an integer in 0\.\.51 \(got 60\)$"):
        VideoWriter(tmp_path / "out.mp4", width=8, height=8, rate=NTSC, crf=60)
    writer = VideoWriter(tmp_path / "out.mp4", width=8, height=8, rate=NTSC)
    with pytest.raises(VideoError, match=r"frames must be 8x8x3 uint8"):
        writer.write(np.zeros((8, 9, 3), np.uint8), Fraction(0))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_audio_is_copied_and_cut_like_the_video(tmp_path: Path) -> None:
    images = [image for image, _ in moving_shapes(30, 32, 48)]
    source = write_video(tmp_path / "talk.mp4", images, audio_seconds=1.0)
    with VideoWriter(
        tmp_path / "out.mp4",
        width=48,
        height=32,
        rate=NTSC,
        audio_from=source,
        audio_zero=Fraction(1, 2),
    ) as writer:
        for i in range(9):  # 0.3 s of video starting at 0.5 s
            writer.write(images[15 + i], Fraction(15 + i) / NTSC)
    with av.open(str(tmp_path / "out.mp4")) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        seconds = sum(p.duration or 0 for p in container.demux(audio)) * audio.time_base
    assert abs(seconds - 9 / NTSC) < Fraction(1, 20)  # AAC packets are 23 ms long


# -- segmenting ------------------------------------------------------------------------------------


def test_file_folder_and_arrays_give_the_same_labels(
    tmp_path: Path, lossless: Path, scenes: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]]
) -> None:
    for i, (image, _) in enumerate(scenes):
        Image.fromarray(image).save(tmp_path / f"{i:03d}.png")
    segmenter = Segmenter(NearestColorBackend(), batch_size=3)
    for source in (lossless, tmp_path, [image for image, _ in scenes]):
        labels = [seg.labels for seg in segment_video(segmenter, source)]
        assert len(labels) == len(scenes)
        for got, (_, truth) in zip(labels, scenes, strict=True):
            np.testing.assert_array_equal(got, truth)


def test_segmenter_segment_video_delegates(
    scenes: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]],
) -> None:
    images = [image for image, _ in scenes]
    results = list(
        Segmenter(NearestColorBackend()).segment_video(images, frames=FrameRange(every=5))
    )
    assert len(results) == 3
    np.testing.assert_array_equal(results[1].labels, scenes[5][1])


def test_ema_on_clean_probabilities_keeps_a_static_scene(
    scenes: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]],
) -> None:
    image, truth = scenes[0]
    results = list(segment_video(Segmenter(NearestColorBackend()), [image] * 5, temporal="ema"))
    for seg in results:
        np.testing.assert_array_equal(seg.labels, truth)


def flicker(results: Iterator[object]) -> float:
    meter = FlickerMeter()
    for seg in results:
        meter.add(seg.labels)  # type: ignore[attr-defined]
    assert meter.value is not None
    return meter.value


def test_ema_lowers_the_flicker_of_a_noisy_model() -> None:
    images = [image for image, _ in moving_shapes(20, 48, 64)]
    segmenter = Segmenter(SpeckleNoiseBackend(fraction=0.1), batch_size=4)
    raw = flicker(segment_video(segmenter, images))
    smoothed = flicker(segment_video(segmenter, images, temporal="ema"))
    assert raw > 0.08  # 10 % speckle on both frames of a pair
    assert smoothed < 0.5 * raw


def test_ema_restarts_at_a_scene_cut() -> None:
    scenes = list(moving_shapes(8, 48, 64, cut_at=4))
    segmenter = Segmenter(NearestColorBackend())
    items = list(
        segment_frames(
            segmenter, open_frames([i for i, _ in scenes]), temporal="ema", unsmoothed=True
        )
    )
    assert [item.cut for item in items] == [True, False, False, False, True, False, False, False]
    # Right after the cut nothing of the old scene shows through.
    np.testing.assert_array_equal(items[4].segmentation.labels, scenes[4][1])
    assert items[4].unsmoothed is not None


def most_frames_alive(count: int, batch_size: int) -> int:
    """The most input images alive at once while ``count`` frames are segmented with EMA."""
    alive: list[weakref.ref[NDArray[np.uint8]]] = []
    most = 0

    def frames() -> Iterator[NDArray[np.uint8]]:
        nonlocal most
        for i in range(count):
            image = np.full((8, 8, 3), i % 256, np.uint8)
            alive.append(weakref.ref(image))
            most = max(most, sum(ref() is not None for ref in alive[-64:]))
            yield image

    segmenter = Segmenter(NearestColorBackend(), batch_size=batch_size, keep_image=False)
    assert sum(1 for _ in segment_video(segmenter, frames(), temporal="ema")) == count
    return most


def test_memory_holds_a_few_batches_however_long_the_video() -> None:
    # One batch decoded ahead, one being gathered, one at the model, one waiting for the
    # smoothing, one being smoothed, and the frame being decoded.
    short, long = most_frames_alive(40, 4), most_frames_alive(400, 4)
    assert long <= 5 * 4 + 2
    assert long <= short + 2  # timing decides how full the queues are, not the length


def test_stopping_early_stops_the_background_threads(lossless: Path) -> None:
    before = threading.active_count()
    results = segment_video(Segmenter(NearestColorBackend()), lossless)
    next(results)
    names = {thread.name for thread in threading.enumerate()}
    assert {"camvidseg-decode", "camvidseg-model"} <= names
    results.close()  # type: ignore[attr-defined]
    assert threading.active_count() == before
