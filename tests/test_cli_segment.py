"""``camvidseg segment`` end to end: outputs, bad files, kills, Ctrl-C, progress, exit codes."""

from __future__ import annotations

import builtins
import errno
import fcntl
import json
import os
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import camvidseg
from camvidseg.backends.fake import NearestColorBackend
from camvidseg.cli import main
from camvidseg.imageio import load_label_png
from camvidseg.palette import CamVidPalette
from camvidseg.pipeline import MANIFEST_NAME
from camvidseg.segmenter import Segmenter
from camvidseg.visualize import panel
from tests.childproc import cli_command, cli_env
from tests.hostile import tree_digest, write_bad_files, write_mode_zoo, write_scene


def loaded(path: Path) -> Image.Image:
    """An image read fully into memory, its file closed."""
    with Image.open(path) as image:
        image.load()
        copy: Image.Image = image.copy()
    return copy


def read_manifest(out: Path) -> dict[str, Any]:
    data = json.loads((out / MANIFEST_NAME).read_text())
    assert isinstance(data, dict)
    return data


def final_files(out: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of every output file under its final (non-hidden) name."""
    return {
        p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for kind in ("labels", "color", "overlay", "panel", "confidence")
        if (out / kind).is_dir()
        for p in (out / kind).rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def assert_complete_image(path: Path) -> None:
    with Image.open(path) as image:
        image.load()  # raises on a truncated file


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the subprocess")
        time.sleep(0.01)


@pytest.fixture
def scenes(tmp_path: Path) -> dict[str, np.ndarray]:
    """Six street scenes under in/ (two in a sub-folder); their exact labels by output name."""
    truths = {}
    for i in range(6):
        name = f"sub/s{i}" if i >= 4 else f"s{i}"
        truths[name] = write_scene(tmp_path / "in" / f"{name}.png", 24, 32, seed=i)
    return truths


@pytest.fixture
def emulate_permissions(monkeypatch: pytest.MonkeyPatch) -> None:
    """As root, make files with no read permission unreadable, as for everyone else."""
    if os.geteuid() != 0:
        return
    real_open = builtins.open

    def guarded(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, os.PathLike)):
            try:
                unreadable = not Path(file).stat().st_mode & 0o444
            except OSError:
                unreadable = False
            if unreadable:
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)


# -- outputs -------------------------------------------------------------------------------------


def test_segment_writes_exact_label_maps_and_a_manifest(
    tmp_path: Path, scenes: dict[str, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    extra = write_scene(tmp_path / "single.png", 16, 20, seed=42)
    before = tree_digest(tmp_path / "in")
    out = tmp_path / "out"
    code = main(["segment", str(tmp_path / "in"), str(tmp_path / "single.png"), "-o", str(out),
                 "--model", "fake:33", "--batch-size", "4", "--json"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] == 7
    assert summary["error"] == 0
    assert summary["manifest"] == str(out / MANIFEST_NAME)
    for name, truth in {**scenes, "single": extra}.items():
        labels = loaded(out / "labels" / f"{name}.png")
        assert labels.mode == "P"
        np.testing.assert_array_equal(load_label_png(out / "labels" / f"{name}.png"), truth)
        assert (out / "color" / f"{name}.png").is_file()
        assert (out / "overlay" / f"{name}.jpg").is_file()
    assert not (out / "panel").exists()
    data = read_manifest(out)
    assert data["status"] == "complete"
    assert data["camvidseg_version"] == camvidseg.__version__
    assert data["model"] == {"handle": "fake:33", "backend": "fake:nearest-color-33"}
    assert data["options"]["outputs"] == ["labels", "color", "overlay"]
    assert data["options"]["batch_size"] == 4
    assert data["summary"]["ok"] == 7
    entry = next(e for e in data["entries"] if e["name"] == "sub/s4")
    assert entry["input"] == str(tmp_path / "in" / "sub" / "s4.png")
    assert entry["status"] == "ok"
    assert entry["outputs"] == {
        "labels": "labels/sub/s4.png",
        "color": "color/sub/s4.png",
        "overlay": "overlay/sub/s4.jpg",
    }
    assert entry["size"] == [32, 24]
    assert abs(sum(entry["class_areas"].values()) - 1) < 1e-4
    assert tree_digest(tmp_path / "in") == before


def test_classes_11_writes_camvid11_ids_with_their_palette(
    tmp_path: Path, scenes: dict[str, np.ndarray]
) -> None:
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "in"), "-o", str(out), "--model", "fake:32",
                 "--classes", "11", "--outputs", "labels", "-q"]) == 0  # fmt: skip
    eleven = CamVidPalette.camvid11()
    for name, truth in scenes.items():
        image = loaded(out / "labels" / f"{name}.png")
        assert (image.getpalette() or [])[: 3 * 12] == eleven.to_pil_palette()[: 3 * 12]
        expected = Segmenter(NearestColorBackend()).segment(
            np.asarray(loaded(tmp_path / "in" / f"{name}.png"))
        )
        np.testing.assert_array_equal(expected.labels, truth)
        np.testing.assert_array_equal(np.asarray(image), expected.to_camvid11().labels)


def test_panel_and_confidence_outputs(tmp_path: Path) -> None:
    truth = write_scene(tmp_path / "in" / "a.png", 30, 40, seed=7)
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "in"), "-o", str(out), "--model", "fake:33",
                 "--outputs", "labels,confidence", "--panel", "--alpha", "0.4",
                 "--confidence-bits", "8", "-q"]) == 0  # fmt: skip
    image = np.asarray(loaded(tmp_path / "in" / "a.png"))
    seg = Segmenter(NearestColorBackend()).segment(image)
    np.testing.assert_array_equal(seg.labels, truth)
    expected = panel(image, seg, legend=True, alpha=0.4)
    written = loaded(out / "panel" / "a.png")
    assert written.size == expected.size
    np.testing.assert_array_equal(np.asarray(written), np.asarray(expected))
    confidence = loaded(out / "confidence" / "a.png")
    assert confidence.mode == "L"
    np.testing.assert_array_equal(
        np.asarray(confidence), np.rint(seg.confidence * 255).astype(np.uint8)
    )
    assert sorted(read_manifest(out)["entries"][0]["outputs"]) == ["confidence", "labels", "panel"]

    again = tmp_path / "again"
    assert main(["segment", str(tmp_path / "in"), "-o", str(again), "--model", "fake:33",
                 "--outputs", "panel", "--no-legend", "-q"]) == 0  # fmt: skip
    no_legend = panel(image, seg, legend=False, alpha=0.6)
    np.testing.assert_array_equal(
        np.asarray(loaded(again / "panel" / "a.png")), np.asarray(no_legend)
    )


@pytest.mark.tf
def test_segment_with_the_fake_savedmodel(
    tmp_path: Path, scenes: dict[str, np.ndarray], fake_savedmodel: Path
) -> None:
    zoo = write_mode_zoo(tmp_path / "in" / "zoo")
    out = tmp_path / "out"
    code = main(["segment", str(tmp_path / "in"), "-o", str(out), "--model",
                 str(fake_savedmodel), "--batch-size", "3", "-q"])  # fmt: skip
    assert code == 0
    for name, truth in scenes.items():
        np.testing.assert_array_equal(load_label_png(out / "labels" / f"{name}.png"), truth)
    for name, (truth, _) in zoo.items():
        stem = name.rsplit(".", 1)[0]
        np.testing.assert_array_equal(load_label_png(out / "labels/zoo" / f"{stem}.png"), truth)
    data = read_manifest(out)
    assert data["model"]["handle"] == str(fake_savedmodel)
    assert data["summary"]["ok"] == len(scenes) + len(zoo)


# -- bad inputs ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("emulate_permissions")
def test_hostile_folder_reports_every_bad_file_and_processes_the_rest(
    tmp_path: Path, scenes: dict[str, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    reasons = write_bad_files(tmp_path / "in" / "bad")
    before = tree_digest(tmp_path / "in")
    out = tmp_path / "out"
    code = main(["segment", str(tmp_path / "in"), "-o", str(out), "--model", "fake:33",
                 "--max-input-pixels", "10000", "--batch-size", "2"])  # fmt: skip
    assert code == 1
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("camvidseg: error: ")]
    assert len(errors) == len(reasons)
    by_input = {Path(e["input"]).name: e for e in read_manifest(out)["entries"]}
    for name, reason in reasons.items():
        path = str(tmp_path / "in" / "bad" / name)
        entry = by_input[name]
        assert entry["status"] == "error", name
        assert path in entry["error"], name
        assert reason in entry["error"], (name, entry["error"])
        assert any(path in line and reason in line for line in errors), name
        assert not list(out.rglob(name.rsplit(".", 1)[0] + ".*")), name
    for name, truth in scenes.items():
        np.testing.assert_array_equal(load_label_png(out / "labels" / f"{name}.png"), truth)
    summary = read_manifest(out)["summary"]
    assert (summary["ok"], summary["error"]) == (len(scenes), len(reasons))
    assert tree_digest(tmp_path / "in") == before


def test_collisions_are_reported_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_scene(tmp_path / "in" / "a.jpg.png")
    write_scene(tmp_path / "in" / "frame.jpg")
    write_scene(tmp_path / "in" / "frame.png", seed=1)
    code = main(["segment", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                 "--model", "fake:33"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'in' / 'frame.png'}: its outputs (frame.*) would overwrite" in err
    assert str(tmp_path / "in" / "frame.jpg") in err
    entries = read_manifest(tmp_path / "out")["entries"]
    assert sorted((e["name"], e["status"]) for e in entries) == [
        ("a.jpg", "ok"), ("frame", "error"), ("frame", "ok")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("inputs", "output", "message"),
    [
        (["in"], "in", "is also an input"),
        (["in"], "in/results", "is inside the input folder"),
        (["in/a.png"], ".", "is inside the output folder"),
    ],
)
def test_output_that_would_be_read_back_is_refused_with_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    inputs: list[str],
    output: str,
    message: str,
) -> None:
    write_scene(tmp_path / "in" / "a.png")
    monkeypatch.chdir(tmp_path)
    before = tree_digest(tmp_path)
    assert main(["segment", *inputs, "-o", output, "--model", "fake:33"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("camvidseg: error: ")
    assert message in err
    assert tree_digest(tmp_path) == before  # nothing created, nothing touched


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--outputs", "labels,mask"], "expected a comma-separated list"),
        (["--alpha", "1.5"], "expected a number in [0, 1]"),
        (["--confidence-bits", "12"], "invalid choice"),
        (["--model", "fake:7"], "unknown fake model"),
        (["--model", "fake:33?speed=2"], "unknown fake model parameter 'speed'"),
        (["--glob", "*.bmp"], "no images found"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    write_scene(tmp_path / "in" / "a.png")
    try:
        code = main(["segment", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                     "--model", "fake:33", *argv])  # fmt: skip
    except SystemExit as exc:  # argparse
        code = int(str(exc.code))
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_model_that_fails_on_every_image_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken(NearestColorBackend):
        def predict(self, batch: np.ndarray) -> np.ndarray:
            return super().predict(batch)[..., :21]  # a 21-channel model: not CamVid

    for i in range(5):
        write_scene(tmp_path / "in" / f"f{i}.png", 8, 8, seed=i)
    monkeypatch.setattr(
        "camvidseg.cli.segment.build_segmenter", lambda args, config: Segmenter(Broken())
    )
    assert main(["segment", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "the model failed on each of the first" in err
    assert "model returned 21 channels" in err
    assert read_manifest(tmp_path / "out")["status"] == "failed"


def test_missing_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["segment", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"),
                 "--model", "fake:33"]) == 2  # fmt: skip
    assert "x.png: no such file or folder" in capsys.readouterr().err


def test_resume_with_other_options_exits_2_and_overwrite_redoes(
    tmp_path: Path, scenes: dict[str, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["segment", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "fake:33"]
    assert main([*base, "-q"]) == 0
    first = final_files(tmp_path / "out")
    assert main([*base, "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == len(scenes)
    assert final_files(tmp_path / "out") == first
    assert main([*base, "--classes", "11"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*base, "--classes", "11", "--overwrite", "-q"]) == 0
    after = final_files(tmp_path / "out")
    assert all(after[k] != first[k] for k in first)


# -- logging, progress, help -----------------------------------------------------------------------


def test_quiet_verbose_and_summary_lines(
    tmp_path: Path, scenes: dict[str, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["segment", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "fake:33"]
    assert main([*base, "-q"]) == 0
    assert capsys.readouterr().err == ""
    (tmp_path / "out" / "color" / ".s0.png.k2j4h5g6.tmp").write_bytes(b"left by a killed run")
    (tmp_path / "out" / "color" / "s0.png").unlink()
    verbose = subprocess.run(cli_command(*base, "-v"), env=cli_env(), capture_output=True,
                             text=True, timeout=120, check=False)  # fmt: skip
    assert verbose.returncode == 0
    err = verbose.stderr
    assert "camvidseg: INFO: removed 1 temporary files left by an interrupted run" in err
    assert f"camvidseg: 1 segmented, {len(scenes) - 1} already done of {len(scenes)}" in err
    assert not (tmp_path / "out" / "color" / ".s0.png.k2j4h5g6.tmp").exists()


def test_progress_bar_only_on_a_terminal(tmp_path: Path, scenes: dict[str, np.ndarray]) -> None:
    args = ["segment", str(tmp_path / "in"), "-o", str(tmp_path / "tty"), "--model", "fake:33"]
    controller, terminal = os.openpty()
    # A real terminal has a size; a fresh pseudo-terminal reports 0 columns until told.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.run(cli_command(*args), env=cli_env(), stdout=subprocess.PIPE,
                              stderr=terminal, timeout=120, check=False)  # fmt: skip
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO once the terminal side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(controller)
    shown = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert f"{len(scenes)}/{len(scenes)}" in shown
    assert "img/s" in shown

    args[3] = str(tmp_path / "pipe")
    piped = subprocess.run(cli_command(*args), env=cli_env(), capture_output=True, text=True,
                           timeout=120, check=False)  # fmt: skip
    assert piped.returncode == 0
    assert "img/s" not in piped.stderr
    assert "\r" not in piped.stderr
    assert piped.stderr.startswith(f"camvidseg: {len(scenes)} segmented of {len(scenes)}")


def test_help_shows_examples_and_imports_no_tensorflow() -> None:
    script = (
        "import sys\n"
        "from camvidseg.cli import main\n"
        "for argv in (['--help'], ['segment', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('tensorflow imported' if 'tensorflow' in sys.modules else 'no tensorflow')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=cli_env(), capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("examples:") == 2
    assert "camvidseg segment frames/ -o out/ --glob" in proc.stdout
    assert "--outputs KINDS" in proc.stdout
    assert proc.stdout.rstrip().endswith("no tensorflow")


# -- killed and interrupted runs -------------------------------------------------------------------


@pytest.fixture
def slow_inputs(tmp_path: Path) -> dict[str, np.ndarray]:
    return {f"f{i:02d}": write_scene(tmp_path / "in" / f"f{i:02d}.png", seed=i) for i in range(12)}


def _start_slow_run(tmp_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cli_command("segment", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                    "--model", "fake:33?latency=0.1", "--workers", "2"),
        env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        # A shell without job control starts background jobs with SIGINT ignored, and Python
        # keeps an ignored SIGINT ignored; give the child the terminal's default back.
        preexec_fn=_default_sigint,
    )  # fmt: skip


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _labels_written(out: Path) -> int:
    folder = out / "labels"
    return len(list(folder.glob("*.png"))) if folder.is_dir() else 0


def test_killed_run_leaves_no_broken_files_and_resumes_without_rewriting(
    tmp_path: Path, slow_inputs: dict[str, np.ndarray]
) -> None:
    out = tmp_path / "out"
    before_inputs = tree_digest(tmp_path / "in")
    with _start_slow_run(tmp_path) as proc:
        try:
            wait_for(lambda: _labels_written(out) >= 4)
        finally:
            proc.kill()
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    survived = final_files(out)
    assert 4 <= _labels_written(out) < len(slow_inputs), "the kill did not land mid-run"
    for name in survived:  # nothing half-written under a final name
        assert_complete_image(out / name)
    assert read_manifest(out)["status"] == "running"  # the last checkpoint, still valid JSON

    assert main(["segment", str(tmp_path / "in"), "-o", str(out), "--model", "fake:33", "-q"]) == 0
    after = final_files(out)
    for name, state in survived.items():
        assert after[name] == state, f"{name} was rewritten"
    assert len(after) == 3 * len(slow_inputs)
    for name in after:
        assert_complete_image(out / name)
    for name, truth in slow_inputs.items():
        np.testing.assert_array_equal(load_label_png(out / "labels" / f"{name}.png"), truth)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    data = read_manifest(out)
    assert data["status"] == "complete"
    done_before = {
        n for n in slow_inputs if all(f"{k}/{n}.{e}" in survived for k, e in
                                      (("labels", "png"), ("color", "png"), ("overlay", "jpg")))
    }  # fmt: skip
    statuses = {e["name"]: e["status"] for e in data["entries"]}
    assert {n for n, s in statuses.items() if s == "skipped"} == done_before
    assert {n for n, s in statuses.items() if s == "ok"} == set(slow_inputs) - done_before
    assert tree_digest(tmp_path / "in") == before_inputs


def test_ctrl_c_writes_a_valid_manifest_and_exits_130(
    tmp_path: Path, slow_inputs: dict[str, np.ndarray]
) -> None:
    out = tmp_path / "out"
    with _start_slow_run(tmp_path) as proc:
        try:
            wait_for(lambda: _labels_written(out) >= 3)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, stderr.decode()
    assert b"camvidseg: interrupted" in stderr
    data = read_manifest(out)
    assert data["status"] == "interrupted"
    summary = data["summary"]
    assert summary["interrupted"] is True
    assert summary["ok"] >= 3
    assert summary["not_processed"] >= 1
    assert summary["ok"] + summary["not_processed"] == len(slow_inputs)
    assert len(data["entries"]) == summary["ok"]
    for entry in data["entries"]:
        assert entry["status"] == "ok"
        for relpath in entry["outputs"].values():
            assert_complete_image(out / relpath)
        np.testing.assert_array_equal(
            load_label_png(out / entry["outputs"]["labels"]), slow_inputs[entry["name"]]
        )
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
