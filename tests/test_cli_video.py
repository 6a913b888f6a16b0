"""``camvidseg video``: outputs, label files, manifest, smoothing, damaged inputs, Ctrl-C."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from camvidseg.cli import main
from camvidseg.imageio import read_label_png
from camvidseg.palette import CamVidPalette
from camvidseg.video.testing import moving_shapes, write_video
from tests.childproc import cli_command, cli_env, run_python

av = pytest.importorskip("av")
# Writing rotation metadata (the test videos' display matrix) needs PyAV >= 18; reading it 14.1.
writes_rotation = pytest.mark.skipif(
    not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
    reason="PyAV < 18 cannot write rotation metadata",
)

NTSC = Fraction(30000, 1001)
Scenes = list[tuple[NDArray[np.uint8], NDArray[np.uint8]]]


def video(*args: str | Path, model: str = "fake:33") -> int:
    return main(["video", *map(str, args), "--model", model])


def probe(path: Path) -> dict[str, Any]:
    """What a player sees: frames (RGB), rate, size, audio streams."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return {
            "frames": frames,
            "rate": Fraction(stream.average_rate),
            "size": (stream.codec_context.width, stream.codec_context.height),
            "audio": [a.codec_context.name for a in container.streams.audio],
        }


def manifest(output: Path) -> dict[str, Any]:
    data = json.loads(output.with_name(output.name + ".json").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def scenes() -> Scenes:
    return list(moving_shapes(15, 48, 64, cut_at=10))


@pytest.fixture(scope="module")
def lossless(tmp_path_factory: pytest.TempPathFactory, scenes: Scenes) -> Path:
    return write_video(tmp_path_factory.mktemp("in") / "drive.mkv", [i for i, _ in scenes])


@pytest.fixture(scope="module")
def h264(tmp_path_factory: pytest.TempPathFactory, scenes: Scenes) -> Path:
    folder = tmp_path_factory.mktemp("in")
    return write_video(folder / "drive.mp4", [i for i, _ in scenes], audio_seconds=0.5)


def test_mp4_output_keeps_rate_count_and_size_and_the_manifest_says_so(
    tmp_path: Path, lossless: Path
) -> None:
    out = tmp_path / "seg.mp4"
    assert video(lossless, "-o", out) == 0
    seen = probe(out)
    assert seen["rate"] == NTSC
    assert len(seen["frames"]) == 15
    assert seen["size"] == (64, 48)
    data = manifest(out)
    assert data["format"] == "camvidseg-video"
    assert data["status"] == "ok"
    assert data["input"]["fps"] == "30000/1001"
    assert data["output"]["fps"] == "30000/1001"
    assert data["frames"] == 15
    assert data["input"]["size"] == [64, 48]
    assert data["output"]["codec"] == "libx264"
    assert data["output"]["pix_fmt"] == "yuv420p"
    assert data["smoothing"]["mode"] == "none"
    assert data["smoothing"]["scene_cuts"] == 1
    assert data["flicker"]["with_smoothing"] is None
    assert 0 < data["flicker"]["without_smoothing"] < 0.2
    assert data["flicker"]["frame_pairs"] == 13
    assert data["settings"]["model"] == "fake:33"
    assert data["model"]["handle"] == "fake:33"
    assert data["timing"]["frames_per_second"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.mp4", "seg.mp4.json"]


def test_h264_input_and_lossless_output(tmp_path: Path, h264: Path, scenes: Scenes) -> None:
    out = tmp_path / "seg.mkv"
    assert video(h264, "-o", out, "--view", "color") == 0
    seen = probe(out)
    assert seen["rate"] == NTSC
    assert len(seen["frames"]) == 15
    # The colour view of a lossless output is exactly the palette's colours of the labels.
    palette = CamVidPalette.camvid32()
    truth = palette.colorize(scenes[0][1])
    assert np.mean(np.all(seen["frames"][0] == truth, axis=-1)) > 0.9  # H.264 input edges differ


def test_label_files_are_exact_on_a_lossless_input(
    tmp_path: Path, lossless: Path, scenes: Scenes
) -> None:
    labels = tmp_path / "labels"
    stale = labels / "frame_000099.png"  # left by an earlier, longer run
    labels.mkdir()
    stale.write_bytes(b"old")
    assert video(lossless, "-o", tmp_path / "seg.mp4", "--labels-dir", labels) == 0
    for i, (_, truth) in enumerate(scenes):
        got, embedded = read_label_png(labels / f"frame_{i:06d}.png")
        np.testing.assert_array_equal(got, truth)
        assert embedded is not None
    assert not stale.exists()
    with open(labels / "areas.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 15
    assert rows[1]["frame"] == "1"
    assert float(rows[1]["time"]) == pytest.approx(float(1 / NTSC), abs=1e-6)
    first_truth = scenes[0][1]
    assert float(rows[0]["Road"]) == pytest.approx(np.mean(first_truth == 17), abs=1e-6)
    assert float(rows[12]["Building"]) > 0.3  # after the cut
    assert sum(
        float(v) for k, v in rows[0].items() if k not in ("frame", "time", "source_time")
    ) == pytest.approx(1, abs=1e-4)
    with Image.open(labels / "areas.png") as chart:
        assert chart.format == "PNG"
        assert chart.size == (960, 420)


def test_every_start_end_and_max_frames(tmp_path: Path, lossless: Path) -> None:
    out = tmp_path / "every.mp4"
    assert video(lossless, "-o", out, "--every", "3") == 0
    seen = probe(out)
    assert len(seen["frames"]) == 5
    assert seen["rate"] == NTSC / 3
    out = tmp_path / "range.mkv"
    assert video(lossless, "-o", out, "--start", "0.1", "--end", "0.4", "--every", "2") == 0
    assert len(probe(out)["frames"]) == 5  # frames 3, 5, 7, 9, 11 of 3..11
    assert manifest(out)["options"]["frames"] == {
        "start": 0.1,
        "end": 0.4,
        "every": 2,
        "max_frames": None,
    }
    out = tmp_path / "max.mp4"
    assert video(lossless, "-o", out, "--max-frames", "4") == 0
    assert len(probe(out)["frames"]) == 4


def test_ema_lowers_the_flicker_on_a_noisy_model(tmp_path: Path, lossless: Path) -> None:
    out = tmp_path / "smooth.mp4"
    assert (
        video(lossless, "-o", out, "--temporal", "ema", "--ema-alpha", "0.7", model="fake:noisy")
        == 0
    )
    data = manifest(out)
    flicker = data["flicker"]
    assert flicker["without_smoothing"] > 0.08
    assert flicker["with_smoothing"] < 0.5 * flicker["without_smoothing"]
    assert data["smoothing"] == {
        "mode": "ema",
        "alpha": 0.7,
        "cut_threshold": 0.15,
        "scene_cuts": 1,
    }


def test_odd_sizes_work_in_both_containers(tmp_path: Path) -> None:
    scenes = list(moving_shapes(6, 47, 63))
    source = write_video(tmp_path / "odd.mkv", [i for i, _ in scenes])
    assert video(source, "-o", tmp_path / "odd.mp4") == 0
    assert probe(tmp_path / "odd.mp4")["size"] == (64, 48)
    assert manifest(tmp_path / "odd.mp4")["output"]["padded"] is True
    labels = tmp_path / "labels"
    assert video(source, "-o", tmp_path / "odd.mkv.out.mkv", "--labels-dir", labels) == 0
    assert probe(tmp_path / "odd.mkv.out.mkv")["size"] == (63, 47)
    np.testing.assert_array_equal(read_label_png(labels / "frame_000005.png")[0], scenes[5][1])


@writes_rotation
def test_rotation_metadata_is_honoured(tmp_path: Path) -> None:
    scenes = list(moving_shapes(4, 48, 64))
    source = write_video(tmp_path / "phone.mkv", [i for i, _ in scenes], rotation=-90)
    labels = tmp_path / "labels"
    assert video(source, "-o", tmp_path / "out.mp4", "--labels-dir", labels) == 0
    assert probe(tmp_path / "out.mp4")["size"] == (48, 64)
    upright = np.rot90(scenes[2][1], -1)
    np.testing.assert_array_equal(read_label_png(labels / "frame_000002.png")[0], upright)
    assert manifest(tmp_path / "out.mp4")["input"]["rotation"] == 270


def test_panel_view_and_audio_copy(tmp_path: Path, h264: Path) -> None:
    out = tmp_path / "panel.mp4"
    assert video(h264, "-o", out, "--view", "panel", "--copy-audio") == 0
    seen = probe(out)
    assert seen["audio"] == ["aac"]
    assert len(seen["frames"]) == 15
    assert seen["size"][0] > 3 * 64  # image | mask | overlay
    assert manifest(out)["output"]["audio_packets"] > 0


def test_a_folder_of_frames_with_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, (image, _) in enumerate(moving_shapes(8, 32, 48)):
        Image.fromarray(image).save(frames / f"{i}.png")
    (frames / "4.png").write_bytes(b"broken")
    out = tmp_path / "frames.mp4"
    assert video(frames, "-o", out, "--fps", "25") == 1
    err = capsys.readouterr().err
    assert "4.png" in err
    assert "Traceback" not in err
    # The frames after the bad one keep their times: it leaves a gap, not a jump.
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        times = [frame.time for frame in container.decode(stream)]
        assert stream.base_rate == 25
    assert times == pytest.approx([i / 25 for i in (0, 1, 2, 3, 5, 6, 7)])
    assert len(manifest(out)["input"]["skipped"]) == 1


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_input_closes_a_playable_partial_output(
    tmp_path: Path, lossless: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(lossless.read_bytes())
    if damage == "truncated":
        data = data[: len(data) * 6 // 10]
    else:
        middle = len(data) // 2
        data[middle : middle + 400] = (
            np.random.default_rng(3).integers(0, 256, 400, np.uint8).tobytes()
        )
    broken = tmp_path / f"{damage}.mkv"
    broken.write_bytes(bytes(data))
    out = tmp_path / "partial.mp4"
    assert video(broken, "-o", out, "--labels-dir", tmp_path / "labels") == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1  # one clear line, no traceback
    assert lines[0].startswith(f"camvidseg: error: {broken}")
    assert f"are in {out}, closed and playable (manifest: {out}.json)" in lines[0]
    frames = probe(out)["frames"]
    assert 1 <= len(frames) < 15
    data_json = manifest(out)
    assert data_json["status"] == "error"
    assert data_json["frames"] == len(frames)
    assert len(list((tmp_path / "labels").glob("frame_*.png"))) == len(frames)


def test_an_input_that_cannot_be_opened_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01 not a video" * 50)
    out = tmp_path / "out" / "seg.mp4"
    assert video(junk, "-o", out, "--labels-dir", tmp_path / "labels") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "junk.mp4: cannot open as a video" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.mp4"]
    assert video(tmp_path / "missing.mkv", "-o", out) == 1
    assert "missing.mkv: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "out.avi"], r"must end in \.mp4"),
        (["-o", "out.mkv", "--crf", "18"], r"--crf applies to \.mp4"),
        (["-o", "out.mp4", "--ema-alpha", "0.5"], "apply to --temporal ema"),
        (["-o", "out.mp4", "--start", "2", "--end", "1"], "must be after --start"),
        (["-o", "out.mp4", "--fps", "25"], "--fps applies to a folder"),
    ],
)
def test_usage_errors_exit_2_before_reading(
    tmp_path: Path,
    lossless: Path,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert video(lossless, *args) == 2
    err = capsys.readouterr().err
    assert re.search(message, err)
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_usage_messages(tmp_path: Path, lossless: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert video(lossless, "-o", tmp_path / "a.avi") == 2
    assert ".mp4 (H.264, for browsers) or .mkv (lossless)" in capsys.readouterr().err
    assert video(lossless, "-o", tmp_path / "a.mkv", "--crf", "18") == 2
    assert "--crf applies to .mp4 outputs" in capsys.readouterr().err
    assert video(lossless, "-o", lossless) == 2
    assert "would overwrite the input" in capsys.readouterr().err


def test_a_very_long_output_name_works(tmp_path: Path, lossless: Path) -> None:
    # The video's temporary name is short whatever the output's; 200 characters leave room
    # for the manifest's temporary name (imageio.atomic_write's, being shortened in issue 10).
    out = tmp_path / ("v" * 200 + ".mp4")
    assert video(lossless, "-o", out, "--max-frames", "2") == 0
    assert len(probe(out)["frames"]) == 2


def test_json_summary(tmp_path: Path, lossless: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "video",
                str(lossless),
                "-o",
                str(tmp_path / "s.mp4"),
                "--model",
                "fake:33",
                "--json",
                "-q",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["status"] == "ok"
    assert summary["frames"] == 15
    assert captured.err == ""


@pytest.mark.slow
def test_ctrl_c_closes_a_playable_file(tmp_path: Path, lossless: Path) -> None:
    out = tmp_path / "seg.mp4"
    labels = tmp_path / "labels"
    command = cli_command(
        "video", str(lossless), "-o", str(out), "--labels-dir", str(labels),
        "--model", "fake:33?latency=0.3",
    )  # fmt: skip
    proc = subprocess.Popen(
        command, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (labels / "frame_000001.png").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.splitlines() == [
        f"camvidseg: interrupted; the {manifest(out)['frames']} frames before it are in {out}, "
        f"closed and playable (manifest: {out}.json)"
    ]
    frames = probe(out)["frames"]
    assert 2 <= len(frames) < 15
    assert manifest(out)["status"] == "interrupted"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_help_and_import_never_load_pyav() -> None:
    script = (
        "import sys, contextlib, io\n"
        "import camvidseg\n"
        "from camvidseg.cli import main\n"
        "for argv in (['--help'], ['video', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "    assert 'camvidseg video drive.mp4 -o drive_seg.mp4' in out.getvalue()\n"
        "import camvidseg.video\n"
        "print('av' in sys.modules)\n"
    )
    proc = run_python(script, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
