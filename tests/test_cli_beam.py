"""``camvidseg beam`` end to end on the DirectRunner, against ``camvidseg segment`` and
``camvidseg evaluate`` on the same inputs.

The runs are shared by the tests of this module (a module fixture): Beam's start-up is slow.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("apache_beam")

from camvidseg.cli import main
from camvidseg.imageio import load_label_png
from camvidseg.palette import CamVidPalette
from camvidseg.testing import street_scene
from tests.childproc import CHILD_TIMEOUT, cli_env

pytestmark = pytest.mark.beam

KINDS = ("labels", "color", "overlay", "panel", "confidence")
OUTPUT_ARGS = ("--model", "fake:33", "--outputs", ",".join(KINDS), "--max-input-pixels", "3000")
#: Inputs whose outputs both commands write (relative path -> output name).
GOOD = {"a.png": "a", "b.jpg": "b", "sub/c.png": "sub/c", "dup.jpg": "dup", "sub/e.png": "sub/e"}
#: Inputs that fail, and the stage each fails in.
BAD = {
    "corrupt.png": "decode",
    "truncated.png": "decode",
    "large.png": "decode",
    "dup.png": "input",  # its outputs would overwrite those of dup.jpg
}


@attrs.frozen
class Run:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Run(code, out.getvalue(), err.getvalue())


@attrs.frozen
class Runs:
    root: Path
    inputs: Path
    truth: Path
    segment: Path
    beam: Path
    first: Run
    again: Run
    first_files: dict[str, int]
    manifest: dict[str, Any]


def write_inputs(root: Path) -> tuple[Path, Path]:
    inputs, truth = root / "in", root / "gt"
    (inputs / "sub").mkdir(parents=True)
    truth.mkdir()
    palette = CamVidPalette.camvid32()
    sizes = {"a.png": (24, 32), "b.jpg": (24, 32), "sub/c.png": (30, 20), "dup.jpg": (16, 16)}
    sizes["sub/e.png"] = (24, 32)
    for seed, (name, (height, width)) in enumerate(sorted(sizes.items())):
        image, labels = street_scene(height, width, seed=seed)
        Image.fromarray(image).save(inputs / name, quality=95)
        Image.fromarray(palette.colorize(labels)).save(truth / f"{Path(name).stem}_L.png")
    Image.fromarray(street_scene(16, 16, seed=9)[0]).save(inputs / "dup.png")
    (inputs / "corrupt.png").write_bytes(b"GIF89a, or so it says")
    data = (inputs / "a.png").read_bytes()
    (inputs / "truncated.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(street_scene(64, 64, seed=7)[0]).save(inputs / "large.png")
    (inputs / "README.txt").write_text("not an image: not an input either")
    (inputs / ".hidden.png").write_bytes(b"skipped")
    return inputs, truth


def mtimes(out: Path) -> dict[str, int]:
    return {
        p.relative_to(out).as_posix(): p.stat().st_mtime_ns
        for kind in KINDS
        for p in (out / kind).rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("beam_cli")
    inputs, truth = write_inputs(root)
    segment, beam = root / "segment_out", root / "beam_out"
    run_cli("segment", str(inputs), "-o", str(segment), *OUTPUT_ARGS)
    beam_args = (f"{inputs}/**", "-o", str(beam), *OUTPUT_ARGS, "--gt", str(truth))
    first = run_cli("beam", *beam_args, "--max-batch-size", "2", "--json")
    first_files = mtimes(beam)
    manifest = json.loads((beam / "manifest.json").read_text())
    again = run_cli("beam", *beam_args, "--json", "--", "--direct_num_workers=1")
    return Runs(root, inputs, truth, segment, beam, first, again, first_files, manifest)


@pytest.mark.slow
def test_outputs_are_those_of_segment(runs: Runs) -> None:
    for relative, name in GOOD.items():
        for kind in KINDS:
            suffix = ".jpg" if kind == "overlay" else ".png"
            ours = runs.beam / kind / f"{name}{suffix}"
            theirs = runs.segment / kind / f"{name}{suffix}"
            assert ours.read_bytes() == theirs.read_bytes(), (relative, kind)
        labels = load_label_png(runs.beam / "labels" / f"{name}.png")
        with Image.open(runs.inputs / relative) as image:
            assert labels.shape == (image.height, image.width)
    written = {
        p.relative_to(runs.beam / "labels").as_posix()
        for p in (runs.beam / "labels").rglob("*.png")
    }
    assert written == {f"{name}.png" for name in GOOD.values()}
    assert not list(runs.beam.rglob(".*.tmp"))
    assert not (runs.beam / ".camvidseg-beam").exists()


@pytest.mark.slow
def test_each_bad_input_is_one_dead_letter_and_the_others_finish(runs: Runs) -> None:
    assert runs.first.code == 1
    records = [json.loads(line) for line in (runs.beam / "errors.jsonl").read_text().splitlines()]
    expected = {f"{runs.inputs}/{name}": stage for name, stage in BAD.items()}
    assert sorted((r["uri"], r["stage"]) for r in records) == sorted(expected.items())
    for record in records:
        assert record["error"].startswith(record["uri"] + ": ")
        assert f"camvidseg: error: {record['error']}" in runs.first.stderr
    dup = next(r for r in records if r["stage"] == "input")
    assert "would overwrite those of" in dup["error"]
    assert dup["error"].endswith("rename one of them or segment them into separate output folders")
    summary = json.loads(runs.first.stdout.splitlines()[-1])
    assert (summary["ok"], summary["error"], summary["skipped"], summary["total"]) == (5, 4, 0, 9)


@pytest.mark.slow
def test_manifest_reads_like_segment_s(runs: Runs) -> None:
    manifest = runs.manifest
    theirs = json.loads((runs.segment / "manifest.json").read_text())
    assert manifest["format"] == theirs["format"]
    assert manifest["output_options"] == theirs["output_options"]
    ours_by_input = {e["input"]: e for e in manifest["entries"]}
    theirs_by_input = {e["input"]: e for e in theirs["entries"]}
    assert sorted(ours_by_input) == sorted(theirs_by_input)
    for path in ours_by_input:
        ours, other = ours_by_input[path], theirs_by_input[path]
        for key in ("name", "status", "outputs", "size", "mode", "class_areas", "notes"):
            assert ours[key] == other[key], (path, key)
    statuses = sorted(e["status"] for e in manifest["entries"])
    assert statuses == ["error"] * 4 + ["ok"] * 5
    assert manifest["summary"]["ok"] == 5
    # `segment` resumes a folder `beam` wrote: same settings, every output kept.
    resumed = run_cli("segment", str(runs.inputs), "-o", str(runs.beam), *OUTPUT_ARGS, "--json")
    assert json.loads(resumed.stdout)["skipped"] == 5
    assert mtimes(runs.beam) == runs.first_files


@pytest.mark.slow
def test_evaluation_equals_camvidseg_evaluate(runs: Runs) -> None:
    evaluated = run_cli("evaluate", str(runs.beam), str(runs.truth), "--json")
    theirs = json.loads(evaluated.stdout)
    ours = json.loads(runs.first.stdout.splitlines()[-1])["evaluation"]
    for key in ("miou", "pixel_accuracy", "mean_class_accuracy", "fw_iou", "per_class"):
        assert ours[key] == theirs[key], key
    assert ours["confusion_matrix"] == theirs["confusion_matrix"]
    assert ours["num_images"] == 5
    assert 0.0 < ours["miou"] < 1.0  # JPEG inputs shift colours: not exact, and still equal
    assert runs.manifest["evaluation"]["miou"] == ours["miou"]
    # The re-run scores the kept label files: the same figures.
    again = json.loads(runs.again.stdout.splitlines()[-1])["evaluation"]
    assert again["confusion_matrix"] == theirs["confusion_matrix"]


@pytest.mark.slow
def test_a_rerun_skips_finished_inputs(runs: Runs) -> None:
    summary = json.loads(runs.again.stdout.splitlines()[-1])
    assert (summary["ok"], summary["skipped"], summary["error"]) == (0, 5, 4)
    assert summary["metrics"]["skipped"] == 5
    assert summary["metrics"]["images"] == 0
    assert runs.again.code == 1
    manifest = json.loads((runs.beam / "manifest.json").read_text())
    kept = {e["name"]: e for e in manifest["entries"] if e["status"] == "skipped"}
    first = {e["name"]: e for e in runs.manifest["entries"] if e["status"] == "ok"}
    assert sorted(kept) == sorted(GOOD.values())
    for name, entry in kept.items():
        assert entry["notes"][0] == "outputs already present"
        assert entry["class_areas"] == first[name]["class_areas"]  # from the earlier manifest
        assert entry["mode"] == first[name]["mode"]
    assert len((runs.beam / "errors.jsonl").read_text().splitlines()) == 4


@pytest.mark.slow
def test_beam_counters_are_printed(runs: Runs) -> None:
    metrics = json.loads(runs.first.stdout.splitlines()[-1])["metrics"]
    pixels = sum(h * w for h, w in ((24, 32), (24, 32), (30, 20), (16, 16), (24, 32)))
    assert metrics["images"] == 5
    assert metrics["failures"] == 4
    assert metrics["pixels"] == pixels
    assert metrics["model_ms"] >= 0
    line = next(text for text in runs.first.stderr.splitlines() if "beam counters" in text)
    assert f"images=5 failures=4 pixels={pixels} model_seconds=" in line


@pytest.mark.slow
def test_a_stale_output_is_redone(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = (f"{runs.inputs}/sub/*.png", "-o", str(out), "--model", "fake:33", "--json")
    assert run_cli("beam", *args).code == 0
    labels = out / "labels" / "c.png"
    before = labels.read_bytes()
    labels.write_bytes(before[: len(before) // 2])  # a damaged output is not kept
    again = run_cli("beam", *args)
    summary = json.loads(again.stdout.splitlines()[-1])
    assert (summary["ok"], summary["skipped"]) == (1, 1)
    assert labels.read_bytes() == before
    changed = run_cli("beam", *args, "--classes", "11")
    assert changed.code == 2
    assert (
        "holds outputs made with other options (classes 'camvid32' -> 'camvid11'" in changed.stderr
    )


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    nothing = run_cli("beam", f"{tmp_path}/none/*.png", "-o", str(tmp_path / "out"))
    assert nothing.code == 2
    assert f"no files match {tmp_path}/none/*.png" in nothing.stderr
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.png").write_bytes(b"")
    inside = run_cli("beam", f"{tmp_path}/in/*.png", "-o", str(tmp_path))
    assert inside.code == 2
    assert "inside the output folder" in inside.stderr
    with pytest.raises(SystemExit) as exc:
        run_cli("beam", "x/*.png", "-o", "out", "--max-batch-size", "0")
    assert exc.value.code == 2


def test_everything_after_the_double_dash_goes_to_beam() -> None:
    from camvidseg.cli import build_parser

    args = build_parser().parse_args(
        ["beam", "in/*.png", "-o", "out", "--model-copies", "2", "--", "--runner=X", "--y"]
    )
    assert args.pattern == "in/*.png"
    assert args.model_copies == 2
    assert args.pipeline_args == ["--runner=X", "--y"]
    assert build_parser().parse_args(["beam", "in/*.png", "-o", "out"]).pipeline_args == []


def test_help_and_the_package_never_import_beam() -> None:
    code = (
        "import sys, contextlib, io\n"
        "import camvidseg\n"
        "from camvidseg.cli import main\n"
        "for argv in (['--help'], ['beam', '--help']):\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        "    assert 'beam' in out.getvalue()\n"
        "print(out.getvalue())\n"
        "assert not [m for m in sys.modules if m.startswith(('apache_beam', 'tensorflow'))]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert "camvidseg beam 'frames/**/*.jpg' -o out/" in done.stdout  # an example
    assert "-- BEAM_PIPELINE_OPTIONS" in done.stdout


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Path]:
    """A folder that Beam's FileSystems reach as ``camvidtest://`` paths only."""
    from tests.beam_remote import RemoteFileSystemForTests

    root = tmp_path / "bucket"
    root.mkdir()
    previous = RemoteFileSystemForTests.root
    RemoteFileSystemForTests.root = root
    yield root
    RemoteFileSystemForTests.root = previous


@pytest.mark.slow
def test_remote_inputs_outputs_and_ground_truth_go_through_beam_file_systems(
    remote: Path,
) -> None:
    inputs, _ = write_inputs(remote)
    for name in ("corrupt.png", "truncated.png", "large.png", "dup.png", "b.jpg", "dup.jpg"):
        (inputs / name).unlink()
    args = ("camvidtest://in/**", "-o", "camvidtest://out", "--model", "fake:33", "--json")
    first = run_cli("beam", *args, "--gt", "camvidtest://gt", "--outputs", "labels,panel")
    assert first.code == 0, first.stderr
    summary = json.loads(first.stdout.splitlines()[-1])
    assert (summary["ok"], summary["error"], summary["manifest"]) == (
        3,
        0,
        "camvidtest://out/manifest.json",
    )
    assert summary["evaluation"]["miou"] == 1.0  # PNG street scenes: the fake model is exact
    out = remote / "out"
    for name in ("a", "sub/c", "sub/e"):
        labels = load_label_png(out / "labels" / f"{name}.png")
        _, expected = street_scene(*labels.shape, seed=sorted(GOOD).index(_input_of(name)))
        np.testing.assert_array_equal(labels, expected)
        assert (out / "panel" / f"{name}.png").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(e["input"] for e in manifest["entries"]) == [
        "camvidtest://in/a.png",
        "camvidtest://in/sub/c.png",
        "camvidtest://in/sub/e.png",
    ]
    assert (out / "errors.jsonl").read_text() == ""
    again = run_cli("beam", *args, "--outputs", "labels,panel")
    assert json.loads(again.stdout.splitlines()[-1])["skipped"] == 3


def _input_of(name: str) -> str:
    return next(relative for relative, output in GOOD.items() if output == name)


def test_a_model_folder_on_a_beam_file_system_is_staged_locally(
    remote: Path, tmp_path: Path
) -> None:
    from camvidseg.beam.handler import stage_model

    model = remote / "models" / "hrnet"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"graph")
    (model / "variables" / "variables.index").write_bytes(b"index")
    staged, cache = stage_model("camvidtest://models/hrnet", None, local_root=tmp_path / "local")
    assert Path(staged).is_relative_to(tmp_path / "local")
    assert (Path(staged) / "saved_model.pb").read_bytes() == b"graph"
    assert (Path(staged) / "variables" / "variables.index").read_bytes() == b"index"
    assert cache is None
    # Once per machine: a second call reuses the copy.
    (model / "saved_model.pb").write_bytes(b"changed")
    assert (
        stage_model("camvidtest://models/hrnet", None, local_root=tmp_path / "local")[0] == staged
    )
    assert (Path(staged) / "saved_model.pb").read_bytes() == b"graph"
    # A TF Hub cache folder in the bucket: the handle's entry is copied into a local cache.
    handle = "https://tfhub.dev/google/HRNet/camvid-hrnetv2-w48/1"
    digest = hashlib.sha1(handle.encode()).hexdigest()
    (remote / "tfhub" / digest).mkdir(parents=True)
    (remote / "tfhub" / digest / "saved_model.pb").write_bytes(b"cached")
    same, local_cache = stage_model(handle, "camvidtest://tfhub", local_root=tmp_path / "local")
    assert same == handle
    assert local_cache is not None
    assert (Path(local_cache) / digest / "saved_model.pb").read_bytes() == b"cached"
    # Local handles and caches are left alone.
    assert stage_model("/models/x", "/cache", local_root=tmp_path / "l") == ("/models/x", "/cache")


@pytest.mark.slow
def test_a_model_that_cannot_load_is_one_line_and_exit_2(tmp_path: Path) -> None:
    Image.fromarray(street_scene(8, 8)[0]).save(tmp_path / "a.png")
    out = tmp_path / "out"
    failed = run_cli("beam", f"{tmp_path}/a.png", "-o", str(out), "--model", "/no/such/model")
    assert failed.code == 2
    lines = failed.stderr.splitlines()
    assert lines == [next(line for line in lines if line.startswith("camvidseg: error: "))]
    assert "/no/such/model" in lines[0]
    assert not (out / ".camvidseg-beam").exists()
