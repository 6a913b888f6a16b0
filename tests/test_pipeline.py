"""camvidseg.pipeline: discovery, safety of output paths, resume, isolation, interruption."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import threading
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from PIL import Image

from camvidseg import BackendError, ConfigError, Segmenter
from camvidseg.backends.fake import NearestColorBackend
from camvidseg.imageio import load_label_png
from camvidseg.palette import CamVidPalette
from camvidseg.pipeline import (
    LOCK_NAME,
    MANIFEST_NAME,
    MODEL_THREADS,
    InputPlan,
    ManifestEntry,
    PipelineInterrupted,
    RunOptions,
    discover_inputs,
    output_name,
    run_pipeline,
    segment_paths,
)
from camvidseg.testing import street_scene
from tests.hostile import ROAD, ROAD_ID, tree_digest, write_mode_zoo, write_scene


def loaded(path: Path) -> Image.Image:
    """An image read fully into memory, its file closed."""
    with Image.open(path) as image:
        image.load()
        copy: Image.Image = image.copy()
    return copy


def fake_segmenter(batch_size: int = 1, **options: Any) -> Segmenter:
    return Segmenter(NearestColorBackend(), batch_size=batch_size, **options)


def manifest(out: Path) -> dict[str, object]:
    data = json.loads((out / MANIFEST_NAME).read_text())
    assert isinstance(data, dict)
    return data


def entries_by_name(out: Path) -> dict[str, dict[str, object]]:
    entries = manifest(out)["entries"]
    assert isinstance(entries, list)
    return {str(e["name"]): e for e in entries}


def final_files(out: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of every non-hidden file under OUT's output folders."""
    return {
        p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in out.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST_NAME
    }


# -- discovery -------------------------------------------------------------------------------------


def test_discovery_recurses_sorted_and_skips_hidden_and_non_images(tmp_path: Path) -> None:
    src = tmp_path / "in"
    for name in ("b/z.jpg", "b/a.PNG", "a.tif", "c/d/e.webp", ".hidden/x.png", "b/.y.png"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(b"x")
    (src / "notes.txt").write_text("no")
    plan = discover_inputs([src], tmp_path / "out")
    assert [str(f.name) for f in plan.files] == ["a", "b/a", "b/z", "c/d/e"]
    assert plan.files[1].path == src / "b" / "a.PNG"
    assert plan.rejected == ()


def test_glob_filters_folder_contents_but_not_named_files(tmp_path: Path) -> None:
    src = tmp_path / "in"
    for name in ("cam1/a.png", "cam1/b.jpg", "cam2/c.png", "raw.dat"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(b"x")
    plan = discover_inputs([src], tmp_path / "out", globs=["cam1/*.png", "*.dat"])
    assert [str(f.name) for f in plan.files] == ["cam1/a", "raw"]
    named = discover_inputs([src / "cam1" / "b.jpg"], tmp_path / "out", globs=["*.png"])
    assert [str(f.name) for f in named.files] == ["b"]


def test_collisions_are_reported_and_first_input_wins(tmp_path: Path) -> None:
    src = tmp_path / "in"
    labels_jpg = write_scene(src / "a.png", seed=1)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src / "a.jpg")  # sorts first
    write_scene(tmp_path / "other" / "a.png", seed=2)
    plan = discover_inputs([src, tmp_path / "other" / "a.png"], tmp_path / "out")
    assert [f.path.name for f in plan.files] == ["a.jpg"]
    assert len(plan.rejected) == 2
    for entry in plan.rejected:
        assert entry.status == "error"
        assert entry.error is not None
        assert str(src / "a.jpg") in entry.error
        assert entry.input in entry.error
    report = run_pipeline(fake_segmenter(), plan)
    assert report.summary.error == 2
    assert report.summary.ok == 1
    # The output is a.jpg's (all Void), not a.png's street scene.
    written = load_label_png(tmp_path / "out" / "labels" / "a.png")
    assert not np.array_equal(written, labels_jpg)
    assert set(np.unique(written).tolist()) == {30}


def test_same_file_twice_is_segmented_once(tmp_path: Path) -> None:
    write_scene(tmp_path / "in" / "a.png")
    plan = discover_inputs([tmp_path / "in", tmp_path / "in" / "a.png"], tmp_path / "out")
    assert len(plan.files) == 1
    assert plan.rejected == ()


def test_missing_input_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.png: no such file or folder"):
        discover_inputs([tmp_path / "nope.png"], tmp_path / "out")


@pytest.mark.parametrize(
    ("inputs", "output", "message"),
    [
        (["in"], "in", "is also an input"),
        (["in"], "in/out", "inside the input folder"),
        (["in/sub"], "in", "inside the output folder"),
        (["in/sub/a.png"], "in", "inside the output folder"),
        (["in"], "in/sub/deeper/out", "inside the input folder"),
    ],
)
def test_output_that_would_be_read_back_is_refused(
    tmp_path: Path, inputs: list[str], output: str, message: str
) -> None:
    write_scene(tmp_path / "in" / "sub" / "a.png")
    before = tree_digest(tmp_path / "in")
    with pytest.raises(ConfigError, match=message):
        discover_inputs([tmp_path / i for i in inputs], tmp_path / output)
    assert tree_digest(tmp_path / "in") == before


def test_hidden_output_inside_input_is_allowed(tmp_path: Path) -> None:
    write_scene(tmp_path / "in" / "a.png")
    out = tmp_path / "in" / ".camvidseg"
    for _ in range(2):  # the second run must not read the first run's outputs
        plan = discover_inputs([tmp_path / "in"], out)
        assert [str(f.name) for f in plan.files] == ["a"]
        run_pipeline(fake_segmenter(), plan)


def test_symlinked_input_folder_leading_into_output_is_refused(tmp_path: Path) -> None:
    write_scene(tmp_path / "in" / "a.png")
    (tmp_path / "out" / "labels").mkdir(parents=True)
    (tmp_path / "in" / "link").symlink_to(tmp_path / "out")
    with pytest.raises(ConfigError, match="leads into the output folder"):
        discover_inputs([tmp_path / "in"], tmp_path / "out")


def test_symlink_loops_are_walked_once(tmp_path: Path) -> None:
    write_scene(tmp_path / "in" / "a" / "x.png")
    (tmp_path / "in" / "a" / "loop").symlink_to(tmp_path / "in")
    plan = discover_inputs([tmp_path / "in"], tmp_path / "out")
    assert [str(f.name) for f in plan.files] == ["a/x"]


@given(
    st.lists(
        st.text(st.characters(blacklist_characters="/\\\x00"), min_size=1, max_size=8),
        min_size=1,
        max_size=4,
    )
)
def test_output_names_never_leave_their_folder(parts: list[str]) -> None:
    relative = PurePosixPath(*parts)
    if ".." in relative.parts or not relative.parts:
        with pytest.raises(ConfigError):
            output_name(relative)
        return
    name = output_name(relative)
    assert name.parent == relative.parent
    assert relative.name.startswith(name.name)
    assert not {".", ".."} & set(name.parts)
    target = PurePosixPath("/out/labels") / name.parent / (name.name + ".png")
    assert os.path.normpath(target) == str(target)
    assert str(target).startswith("/out/labels/")


def test_output_name_strips_only_the_last_suffix() -> None:
    assert output_name(PurePosixPath("a/b.c/frame.tar.jpg")) == PurePosixPath("a/b.c/frame.tar")
    assert output_name(PurePosixPath("noext")) == PurePosixPath("noext")
    assert output_name(PurePosixPath("a/..png")) == PurePosixPath("a/..png")
    with pytest.raises(ConfigError, match="unsafe"):
        output_name(PurePosixPath("a/../b.png"))


# -- outputs ---------------------------------------------------------------------------------------


def test_every_output_kind_holds_exact_values(tmp_path: Path) -> None:
    truth = write_scene(tmp_path / "in" / "sub" / "f.png", 30, 40, seed=5)
    image = np.asarray(loaded(tmp_path / "in" / "sub" / "f.png"))
    options = RunOptions(
        outputs=("confidence", "overlay", "labels", "color"), overlay_format="png", alpha=0.3
    )
    report = segment_paths(fake_segmenter(), [tmp_path / "in"], tmp_path / "out", options)
    out = tmp_path / "out"
    expected = fake_segmenter().segment(image)
    np.testing.assert_array_equal(expected.labels, truth)
    labels_png = loaded(out / "labels/sub/f.png")
    assert labels_png.mode == "P"
    assert (labels_png.getpalette() or [])[: 3 * 32] == CamVidPalette.camvid32().to_pil_palette()[
        : 3 * 32
    ]
    np.testing.assert_array_equal(load_label_png(out / "labels/sub/f.png"), truth)
    np.testing.assert_array_equal(np.asarray(loaded(out / "color/sub/f.png")), expected.colorize())
    np.testing.assert_array_equal(
        np.asarray(loaded(out / "overlay/sub/f.png")), expected.overlay(0.3)
    )
    confidence = loaded(out / "confidence/sub/f.png")
    assert confidence.mode == "I;16"
    np.testing.assert_array_equal(
        np.asarray(confidence), np.rint(expected.confidence * 65535).astype(np.uint16)
    )
    (entry,) = report.entries
    assert entry.outputs == {
        "labels": "labels/sub/f.png",
        "color": "color/sub/f.png",
        "overlay": "overlay/sub/f.png",
        "confidence": "confidence/sub/f.png",
    }
    assert entry.size == (40, 30)
    assert entry.class_areas == {k: round(v, 6) for k, v in expected.class_areas().items()}
    assert set(entry.timing) == {"decode", "inference", "encode"}


def test_images_the_segmenter_tiles_go_through_segment_not_whole_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = write_scene(tmp_path / "in" / "small.png", 8, 12, seed=1)
    large = write_scene(tmp_path / "in" / "large.png", 40, 60, seed=2)
    # Scores come back from the model (no fused labels): 40 x 60 is banded, 8 x 12 is not.
    segmenter = fake_segmenter(batch_size=2, max_pixels=1000, fused_labels=False)
    whole: list[tuple[int, ...]] = []
    real = Segmenter.predict_scores

    def spy(self: Segmenter, images: list[NDArray[np.uint8]]) -> list[NDArray[np.float32]]:
        whole.extend(image.shape for image in images)
        return real(self, images)

    monkeypatch.setattr(Segmenter, "predict_scores", spy)
    report = segment_paths(segmenter, [tmp_path / "in"], tmp_path / "out")
    assert report.summary.ok == 2
    assert (8, 12, 3) in whole
    assert (40, 60, 3) not in whole  # its full scores array was never built by the pipeline
    np.testing.assert_array_equal(load_label_png(tmp_path / "out/labels/small.png"), small)
    np.testing.assert_array_equal(load_label_png(tmp_path / "out/labels/large.png"), large)


@pytest.mark.parametrize("fused", [True, False])
def test_labels_from_the_model_or_from_scores_written_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fused: bool
) -> None:
    truths = {f"f{i}": write_scene(tmp_path / "in" / f"f{i}.png", 12, 16, seed=i) for i in range(5)}
    calls = {"predict_labels": 0, "from_scores": 0}
    real_labels, real_finish = NearestColorBackend.predict_labels, Segmenter.from_scores

    def predict_labels(self: NearestColorBackend, *args: Any) -> Any:
        calls["predict_labels"] += 1
        return real_labels(self, *args)

    def from_scores(self: Segmenter, *args: Any, **kwargs: Any) -> Any:
        calls["from_scores"] += 1
        return real_finish(self, *args, **kwargs)

    monkeypatch.setattr(NearestColorBackend, "predict_labels", predict_labels)
    monkeypatch.setattr(Segmenter, "from_scores", from_scores)
    segmenter = fake_segmenter(batch_size=2, fused_labels=fused)
    options = RunOptions(outputs=("labels", "confidence"))
    report = segment_paths(segmenter, [tmp_path / "in"], tmp_path / "out", options)
    assert report.summary.ok == 5
    # Fused: the first batches learn the channel layout from scores, the rest get labels.
    if fused:
        assert calls["from_scores"] == 0
        assert 1 <= calls["predict_labels"] <= 2
    else:
        assert calls == {"predict_labels": 0, "from_scores": 5}
    for name, truth in truths.items():
        np.testing.assert_array_equal(load_label_png(tmp_path / f"out/labels/{name}.png"), truth)
        image = np.asarray(loaded(tmp_path / "in" / f"{name}.png"))
        expected = np.rint(fake_segmenter().segment(image).confidence * 65535)
        written = np.asarray(loaded(tmp_path / f"out/confidence/{name}.png")).astype(np.float64)
        assert np.abs(written - expected).max() <= 1  # confidence equal within CONFIDENCE_RTOL


def test_eight_bit_confidence_and_camvid11(tmp_path: Path) -> None:
    truth = write_scene(tmp_path / "f.png", seed=6)
    options = RunOptions(outputs=("labels", "confidence"), confidence_bits=8)
    segmenter = fake_segmenter(palette=CamVidPalette.camvid11())
    segment_paths(segmenter, [tmp_path / "f.png"], tmp_path / "out", options)
    expected = fake_segmenter().segment(np.asarray(loaded(tmp_path / "f.png")))
    confidence = loaded(tmp_path / "out/confidence/f.png")
    assert confidence.mode == "L"
    np.testing.assert_array_equal(
        np.asarray(confidence), np.rint(expected.confidence * 255).astype(np.uint8)
    )
    np.testing.assert_array_equal(expected.labels, truth)
    grouped = CamVidPalette.camvid11()
    labels = loaded(tmp_path / "out/labels/f.png")
    assert (labels.getpalette() or [])[: 3 * 12] == grouped.to_pil_palette()[: 3 * 12]
    np.testing.assert_array_equal(
        load_label_png(tmp_path / "out/labels/f.png"), expected.to_camvid11().labels
    )
    road11 = grouped.id_of("Road")
    assert np.array_equal(np.asarray(labels) == road11, np.isin(truth, [10, 11, 17]))


def test_awkward_modes_are_converted_and_noted(tmp_path: Path) -> None:
    zoo = write_mode_zoo(tmp_path / "in")
    report = segment_paths(fake_segmenter(batch_size=3), [tmp_path / "in"], tmp_path / "out")
    by_input = {Path(e.input).name: e for e in report.entries}
    assert set(by_input) == set(zoo)
    for name, (labels, note) in zoo.items():
        entry = by_input[name]
        assert entry.status == "ok", entry.error
        assert any(note in n for n in entry.notes), (name, entry.notes)
        assert entry.size == (labels.shape[1], labels.shape[0])
        written = load_label_png(tmp_path / "out" / entry.outputs["labels"])
        np.testing.assert_array_equal(written, labels, err_msg=name)
    assert by_input["animated.gif"].notes[0] == "animated: first frame used (of 2)"
    # A resumed run keeps what the first one learnt about the inputs it skips.
    again = segment_paths(fake_segmenter(), [tmp_path / "in"], tmp_path / "out")
    skipped = next(e for e in again.entries if Path(e.input).name == "animated.gif")
    assert skipped.status == "skipped"
    assert skipped.notes == ("outputs already present", *by_input["animated.gif"].notes)
    assert skipped.mode == "P"
    assert skipped.class_areas == by_input["animated.gif"].class_areas == {"Road": 1.0}


# -- safety of the output folder -------------------------------------------------------------------


def test_output_folder_symlink_leading_outside_is_refused(tmp_path: Path) -> None:
    write_scene(tmp_path / "in" / "a.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "labels").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="leading outside"):
        segment_paths(fake_segmenter(), [tmp_path / "in"], tmp_path / "out")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_nested_symlink_leading_outside_is_a_per_file_error(tmp_path: Path) -> None:
    write_scene(tmp_path / "in" / "sub" / "a.png")
    truth = write_scene(tmp_path / "in" / "b.png", seed=9)
    (tmp_path / "out" / "labels").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "labels" / "sub").symlink_to(tmp_path / "elsewhere")
    report = segment_paths(fake_segmenter(), [tmp_path / "in"], tmp_path / "out")
    by_name = {e.name: e for e in report.entries}
    assert by_name["sub/a"].status == "error"
    assert "symbolic link leading outside" in str(by_name["sub/a"].error)
    assert by_name["b"].status == "ok"
    np.testing.assert_array_equal(load_label_png(tmp_path / "out/labels/b.png"), truth)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_second_run_on_the_same_output_is_refused_while_one_runs(tmp_path: Path) -> None:
    write_scene(tmp_path / "in" / "a.png")
    (tmp_path / "out").mkdir()
    fd = os.open(tmp_path / "out" / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(ConfigError, match="another camvidseg run"):
            segment_paths(fake_segmenter(), [tmp_path / "in"], tmp_path / "out")
    finally:
        os.close(fd)
    assert segment_paths(fake_segmenter(), [tmp_path / "in"], tmp_path / "out").summary.ok == 1


# -- resume ----------------------------------------------------------------------------------------


def test_resume_keeps_valid_files_and_redoes_broken_ones(tmp_path: Path) -> None:
    truths = {f"f{i}": write_scene(tmp_path / "in" / f"f{i}.png", seed=i) for i in range(4)}
    out = tmp_path / "out"
    first = segment_paths(fake_segmenter(), [tmp_path / "in"], out)
    assert first.summary.ok == 4
    before = final_files(out)
    # f0: truncated label map; f1: colour missing; f2: input edited after its outputs;
    # f3: untouched; plus a temporary file a killed run would leave.
    data = (out / "labels/f0.png").read_bytes()
    (out / "labels/f0.png").write_bytes(data[: len(data) // 2])
    (out / "color/f1.png").unlink()
    later = before["labels/f2.png"][1] + 10**9
    os.utime(tmp_path / "in" / "f2.png", ns=(later, later))
    (out / "labels/.f3.png.abcd1234.tmp").write_bytes(b"half")
    corrupted = final_files(out)

    second = segment_paths(fake_segmenter(), [tmp_path / "in"], out)
    status = {e.name: e.status for e in second.entries}
    assert status == {"f0": "ok", "f1": "ok", "f2": "ok", "f3": "skipped"}
    after = final_files(out)
    assert after["labels/f1.png"] == corrupted["labels/f1.png"]  # valid, kept
    assert after["overlay/f1.jpg"] == corrupted["overlay/f1.jpg"]
    for kind in ("labels/f3.png", "color/f3.png", "overlay/f3.jpg"):
        assert after[kind] == before[kind]
    for rewritten in ("labels/f0.png", "color/f1.png", "labels/f2.png", "overlay/f2.jpg"):
        assert after[rewritten] != corrupted.get(rewritten)
    assert not (out / "labels/.f3.png.abcd1234.tmp").exists()
    for name, truth in truths.items():
        np.testing.assert_array_equal(load_label_png(out / f"labels/{name}.png"), truth)
    skipped = next(e for e in second.entries if e.name == "f3")
    assert skipped.class_areas == next(e for e in first.entries if e.name == "f3").class_areas
    assert skipped.size == (32, 24)
    assert skipped.outputs["overlay"] == "overlay/f3.jpg"

    third = segment_paths(fake_segmenter(), [tmp_path / "in"], out, RunOptions(overwrite=True))
    assert third.summary.ok == 4
    assert all(final_files(out)[k] != after[k] for k in after)


def test_resume_with_other_content_options_is_refused(tmp_path: Path) -> None:
    write_scene(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    segment_paths(fake_segmenter(), [tmp_path / "in"], out)
    eleven = fake_segmenter(palette=CamVidPalette.camvid11())
    with pytest.raises(ConfigError, match=r"classes 'camvid32' -> 'camvid11'.*--overwrite"):
        segment_paths(eleven, [tmp_path / "in"], out)
    with pytest.raises(ConfigError, match=r"alpha 0\.6 -> 0\.2"):
        segment_paths(fake_segmenter(), [tmp_path / "in"], out, RunOptions(alpha=0.2))
    # An option that only concerns outputs not written before is fine.
    options = RunOptions(outputs=("labels", "confidence"), confidence_bits=8)
    assert segment_paths(fake_segmenter(), [tmp_path / "in"], out, options).summary.ok == 1
    # ... and the overlays of the first run are still remembered after it.
    with pytest.raises(ConfigError, match=r"alpha 0\.6 -> 0\.2"):
        segment_paths(fake_segmenter(), [tmp_path / "in"], out, RunOptions(alpha=0.2))
    report = segment_paths(eleven, [tmp_path / "in"], out, RunOptions(overwrite=True))
    assert report.summary.ok == 1
    assert manifest(out)["options"]["classes"] == "camvid11"  # type: ignore[index]


def test_resume_reads_a_reformatted_manifest_and_survives_a_corrupt_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_scene(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    first = segment_paths(fake_segmenter(), [tmp_path / "in"], out)
    # Someone pretty-printed the manifest: not one entry per line any more.
    eleven = fake_segmenter(palette=CamVidPalette.camvid11())
    for indent in (4, 1):
        (out / MANIFEST_NAME).write_text(json.dumps(manifest(out), indent=indent))
        with pytest.raises(ConfigError, match="classes"):
            segment_paths(eleven, [tmp_path / "in"], out)
        second = segment_paths(fake_segmenter(), [tmp_path / "in"], out)
        assert second.entries[0].status == "skipped"
        assert second.entries[0].class_areas == first.entries[0].class_areas
    assert "unreadable manifest" not in caplog.text
    (out / MANIFEST_NAME).write_text('{"entries": [ {"name": "a", "stat')
    third = segment_paths(fake_segmenter(), [tmp_path / "in"], out)
    assert third.entries[0].status == "skipped"  # the files alone show the work is done
    assert third.entries[0].class_areas is None
    assert "ignoring an unreadable manifest of an earlier run" in caplog.text
    assert manifest(out)["status"] == "complete"


# -- isolation, bounded memory, interruption -------------------------------------------------------


class FlakyBackend(NearestColorBackend):
    """Fails on any batch holding an image of a poisoned width; interrupts on a given call."""

    def __init__(self, poisoned_width: int = -1, interrupt_on_call: int = -1) -> None:
        super().__init__()
        self.poisoned_width = poisoned_width
        self.interrupt_on_call = interrupt_on_call

    def predict(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        if self.calls + 1 == self.interrupt_on_call:
            # Ctrl-C as the terminal sends it: a SIGINT, handled in the main thread.
            signal.raise_signal(signal.SIGINT)
        if batch.shape[2] == self.poisoned_width:
            self.calls += 1
            raise BackendError(f"out of memory on a batch of shape {batch.shape}")
        return super().predict(batch)


def test_model_failure_on_one_image_is_isolated_from_its_batch(tmp_path: Path) -> None:
    truths = {}
    for i in range(5):
        truths[f"f{i}"] = write_scene(tmp_path / "in" / f"f{i}.png", 16, 24, seed=i)
    write_scene(tmp_path / "in" / "f2.png", 16, 13, seed=2)  # poisoned width
    segmenter = Segmenter(FlakyBackend(poisoned_width=13), batch_size=4)
    report = segment_paths(segmenter, [tmp_path / "in"], tmp_path / "out")
    by_name = {e.name: e for e in report.entries}
    assert by_name["f2"].status == "error"
    assert "out of memory" in str(by_name["f2"].error)
    assert str(tmp_path / "in" / "f2.png") in str(by_name["f2"].error)
    for name in ("f0", "f1", "f3", "f4"):
        assert by_name[name].status == "ok"
        np.testing.assert_array_equal(
            load_label_png(tmp_path / f"out/labels/{name}.png"), truths[name]
        )


def test_a_model_failing_on_every_image_stops_the_run(tmp_path: Path) -> None:
    for i in range(30):
        write_scene(tmp_path / "in" / f"f{i:02d}.png", 8, 13, seed=i)
    segmenter = Segmenter(FlakyBackend(poisoned_width=13))
    with pytest.raises(BackendError, match=r"failed on each of the first \d+ images"):
        segment_paths(segmenter, [tmp_path / "in"], tmp_path / "out")
    data = manifest(tmp_path / "out")
    assert data["status"] == "failed"
    summary = data["summary"]
    assert isinstance(summary, dict)
    # Stopped after the third failure (images already in the model stage finish first).
    assert 3 <= summary["error"] <= 3 + MODEL_THREADS + 1
    assert summary["not_processed"] == 30 - summary["error"]


def test_decoding_runs_a_bounded_distance_ahead_of_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camvidseg.imageio import open_image as real_open

    (tmp_path / "in").mkdir()
    for i in range(40):
        Image.new("RGB", (6, 4), ROAD).save(tmp_path / "in" / f"{i:02d}.png")
    decoded = 0
    lock = threading.Lock()

    def counting_open(path: Path, **kwargs: int | None) -> object:
        nonlocal decoded
        with lock:
            decoded += 1
        return real_open(path, **kwargs)

    monkeypatch.setattr("camvidseg.pipeline.stages.open_image", counting_open)
    ahead: list[int] = []

    class Watching(NearestColorBackend):
        def predict(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
            with lock:
                ahead.append(decoded - self.calls * 2)
            return super().predict(batch)

    options = RunOptions(outputs=("labels",), workers=2, prefetch=5)
    report = segment_paths(
        Segmenter(Watching(), batch_size=2), [tmp_path / "in"], tmp_path / "out", options
    )
    assert report.summary.ok == 40
    assert decoded == 40
    # Images decoded but not yet in the model: the batch being formed, one batch per model
    # thread and the prefetch window; never the whole folder.
    assert max(ahead) <= 2 * (1 + MODEL_THREADS) + 5
    assert min(ahead) >= 2


def test_interrupt_finishes_writes_and_leaves_a_valid_manifest(tmp_path: Path) -> None:
    # pytest may run with SIGINT ignored (a background job of a shell without job control):
    # restore Python's own handler so the simulated Ctrl-C arrives as a KeyboardInterrupt.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_scenario(tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_scenario(tmp_path: Path) -> None:
    truths = {f"f{i}": write_scene(tmp_path / "in" / f"f{i}.png", seed=i) for i in range(8)}
    before = tree_digest(tmp_path / "in")
    segmenter = Segmenter(FlakyBackend(interrupt_on_call=4))
    with pytest.raises(PipelineInterrupted) as info:
        segment_paths(segmenter, [tmp_path / "in"], tmp_path / "out")
    assert isinstance(info.value, KeyboardInterrupt)
    summary = info.value.report.summary
    # The batches already in the model stage (calls 4 and maybe 5) finish and are written.
    assert summary.interrupted
    assert 3 <= summary.ok <= 3 + MODEL_THREADS
    assert summary.ok + summary.not_processed == 8
    data = manifest(tmp_path / "out")
    assert data["status"] == "interrupted"
    assert data["summary"] == summary.to_json()
    entries = data["entries"]
    assert isinstance(entries, list)
    assert len(entries) == summary.ok
    assert {"f0", "f1", "f2"} <= {e["name"] for e in entries}
    for entry in entries:
        np.testing.assert_array_equal(
            load_label_png(tmp_path / "out" / entry["outputs"]["labels"]), truths[entry["name"]]
        )
    assert not list((tmp_path / "out").rglob("*.tmp"))
    assert tree_digest(tmp_path / "in") == before
    # Resuming finishes the rest without redoing what was done.
    report = segment_paths(fake_segmenter(), [tmp_path / "in"], tmp_path / "out")
    assert (report.summary.skipped, report.summary.ok) == (summary.ok, 8 - summary.ok)


def test_manifest_entries_round_trip_through_json() -> None:
    entry = ManifestEntry(
        input="in/a.png",
        name="a",
        status="ok",
        outputs={"labels": "labels/a.png"},
        size=(4, 3),
        mode="RGB",
        class_areas={"Road": 1.0},
        timing={"decode": 0.123456},
        notes=("EXIF orientation applied",),
    )
    assert json.loads(json.dumps(entry.to_json())) == {
        "input": "in/a.png",
        "name": "a",
        "status": "ok",
        "error": None,
        "outputs": {"labels": "labels/a.png"},
        "size": [4, 3],
        "mode": "RGB",
        "class_areas": {"Road": 1.0},
        "timing": {"decode": 0.1235},
        "notes": ["EXIF orientation applied"],
    }
    with pytest.raises(ValueError, match="status"):
        ManifestEntry(input="a", name="a", status="done")


def test_plan_with_only_rejected_inputs_still_writes_a_manifest(tmp_path: Path) -> None:
    plan = InputPlan(
        tmp_path / "out",
        (),
        (ManifestEntry(input="x", name="x", status="error", error="x: broken"),),
    )
    report = run_pipeline(fake_segmenter(), plan)
    assert report.summary.error == 1
    assert manifest(tmp_path / "out")["entries"] == [report.entries[0].to_json()]


def test_street_scene_fixture_is_exact() -> None:
    image, labels = street_scene(12, 16, seed=1)
    np.testing.assert_array_equal(fake_segmenter().segment(image).labels, labels)
    assert int(np.count_nonzero(labels == ROAD_ID)) > 0
