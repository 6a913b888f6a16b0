from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camvidseg import CamVidPalette
from camvidseg.cli import main
from camvidseg.imageio import load_label_png, save_label_png
from camvidseg.metrics import ConfusionMatrix
from camvidseg.palette import get_grouping
from camvidseg.testing import street_scene
from camvidseg.visualize import render_confusion
from tests.metrics_reference import assert_matches, slow_metrics

ROOT = Path(__file__).resolve().parents[1]
C32 = CamVidPalette.camvid32()
MERGE = get_grouping("merge")


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`camvidseg segment` with the fake model over the bundled JPEG examples."""
    out = tmp_path_factory.mktemp("segmented")
    code = main(["segment", str(ROOT / "examples" / "images"), "-o", str(out), "--model", "fake:33",
                 "--outputs", "labels", "-q"])  # fmt: skip
    assert code == 0
    return out


def _reference(segmented: Path, classes: int) -> dict[str, object]:
    preds, truths = [], []
    for path in sorted((segmented / "labels").glob("*.png")):
        preds.append(load_label_png(path))
        rgb = np.asarray(Image.open(ROOT / "examples" / "labels" / f"{path.stem}_L.png"))
        truths.append(C32.decode(rgb))
    if classes == 11:
        return slow_metrics(
            [MERGE.remap(p) for p in preds], [MERGE.remap(t) for t in truths], MERGE.target
        )
    return slow_metrics(preds, truths, C32)


@pytest.mark.parametrize("classes", [32, 11])
def test_evaluate_json_matches_reference(
    segmented: Path, classes: int, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = segmented / "labels"
    code = main(["evaluate", str(labels), str(ROOT / "examples" / "labels"), "--json",
                 "--classes", str(classes)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    expected_keys = {"miou", "pixel_accuracy", "mean_class_accuracy", "fw_iou", "per_class",
                     "per_class_accuracy", "confusion_matrix", "num_images", "classes"}  # fmt: skip
    assert expected_keys <= set(data)
    assert data["num_images"] == 3
    assert data["palette"] == f"camvid{classes}"
    assert len(data["classes"]) == {32: 31, 11: 11}[classes]  # Void is not scored
    assert_matches(data, _reference(segmented, classes))
    # JPEG artefacts make the fake model miss a little: realistic, below 1.
    assert 0.3 < data["miou"] < 1.0
    assert 0.9 < data["pixel_accuracy"] < 1.0
    assert data["problems"] == []


def test_evaluate_table_and_report(
    segmented: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report"
    code = main(["evaluate", str(segmented), str(ROOT / "examples" / "labels"), "--classes", "11",
                 "-o", str(report)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["class", "IoU"]
    assert any(line.startswith("Road ") for line in lines)
    assert "mIoU" in out
    metrics = json.loads((report / "metrics.json").read_text())
    reference = _reference(segmented, 11)
    assert_matches(metrics, reference)
    assert f"mIoU {100 * metrics['miou']:.2f}%" in out
    plot = report / "confusion.png"
    with Image.open(plot) as image:
        expected = render_confusion(ConfusionMatrix.from_dict(metrics["confusion_matrix"]))
        assert image.size == expected.image.size
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # cells, text, shading
    np.testing.assert_array_equal(pixels, np.asarray(expected.image))
    assert (report / "metrics.txt").read_text().splitlines()[0] == lines[0]


def test_evaluate_reports_problems_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, truth = street_scene(20, 24, seed=1)
    save_label_png(tmp_path / "pred" / "good.png", truth, C32)
    save_label_png(tmp_path / "pred" / "small.png", truth[:10], C32)
    save_label_png(tmp_path / "pred" / "extra.png", truth, C32)
    (tmp_path / "gt").mkdir()
    for name in ("good", "small", "missing"):
        Image.fromarray(C32.colorize(truth)).save(tmp_path / "gt" / f"{name}_L.png")
    code = main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    data = json.loads(captured.out)
    assert data["num_images"] == 1
    assert data["miou"] == 1.0
    assert sorted((p["kind"], Path(p["path"]).name) for p in data["problems"]) == [
        ("missing_ground_truth", "extra.png"),
        ("missing_prediction", "missing_L.png"),
        ("size_mismatch", "small.png"),
    ]
    err = captured.err.splitlines()
    assert any("small.png: size 24x10 does not match ground truth" in line for line in err)
    assert any("extra.png: no ground truth" in line for line in err)
    assert any("missing_L.png: no prediction" in line for line in err)
    assert "3 files could not be evaluated" in captured.err


def test_evaluate_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    assert main(["evaluate", str(tmp_path / "nope"), str(tmp_path / "gt")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("camvidseg: error: no file in")
    assert len(err.strip().splitlines()) == 1
    # CamVid-11 index ground truth evaluated in 32 classes.
    save_label_png(tmp_path / "pred" / "a.png", np.zeros((4, 4), np.uint8), C32)
    Image.fromarray(np.zeros((4, 4), np.uint8), mode="L").save(tmp_path / "gt" / "a.png")
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt")]) == 2
    assert "--classes 11" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--classes", "11",
                 "-q"]) == 0  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--gt-format", "jpg"])
    assert info.value.code == 2


def test_evaluate_gt_format_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, truth = street_scene(20, 24, seed=4)
    save_label_png(tmp_path / "pred" / "a.png", truth, C32)
    (tmp_path / "gt").mkdir()
    Image.fromarray(C32.colorize(truth)).save(tmp_path / "gt" / "a_L.png")
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--gt-format",
                 "index", "--json"]) == 1  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert [p["kind"] for p in data["problems"]] == ["unreadable"]
    assert "mode RGB" in data["problems"][0]["message"]
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--gt-format", "rgb",
                 "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["miou"] == 1.0
