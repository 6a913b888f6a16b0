"""Pixels whose ground truth is Void (or an unknown colour read as Void) are ignored, whatever
class is predicted on them, by ``camvidseg evaluate`` and :func:`evaluate_folders`.

One 3 x 6 image, metrics worked out by hand::

    ground truth        prediction
    R R R S S Void      R R S S S Road
    R R R S S Void      R R S S S Sky
    R R R S S ?         R R S S S Road      (? = a colour of no class, read as Void)

Scored pixels: the 15 of the first five columns. Road: 9 in the truth, 6 hit, 3 taken for Sky;
Sky: 6 in the truth, all hit, 9 predicted. Counting the predictions on the last column would
make Road's IoU 6/11 and Sky's 6/10 instead of 6/9 each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from camvidseg.cli import main
from camvidseg.evaluation import evaluate_folders
from camvidseg.imageio import save_label_png
from camvidseg.palette import CamVidPalette

C32 = CamVidPalette.camvid32()
R, S, V = C32.id_of("Road"), C32.id_of("Sky"), C32.id_of("Void")
UNKNOWN_COLOUR = (1, 2, 3)

EXPECTED: dict[str, Any] = {
    "pixel_accuracy": 12 / 15,
    "iou": {"Road": 6 / 9, "Sky": 6 / 9},
    "accuracy": {"Road": 6 / 9, "Sky": 6 / 6},
    "miou": 6 / 9,
    "mean_class_accuracy": (6 / 9 + 6 / 6) / 2,
    "fw_iou": (9 * (6 / 9) + 6 * (6 / 9)) / 15,
    "scored_pixels": 15,
    "ignored_pixels": 3,
}


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    truth = np.array([[R, R, R, S, S, V]] * 3, np.uint8)
    truth_rgb = C32.colorize(truth)
    truth_rgb[2, 5] = UNKNOWN_COLOUR
    (tmp_path / "gt").mkdir()
    Image.fromarray(truth_rgb).save(tmp_path / "gt" / "a_L.png")
    prediction = np.array([[R, R, S, S, S, R], [R, R, S, S, S, S], [R, R, S, S, S, R]], np.uint8)
    save_label_png(tmp_path / "pred" / "a.png", prediction, C32)
    return tmp_path


def check(metrics: dict[str, Any]) -> None:
    """``metrics`` in the layout of ``EvaluationResult.to_dict`` (and ``evaluate --json``)."""
    assert metrics["pixel_accuracy"] == EXPECTED["pixel_accuracy"]
    assert metrics["scored_pixels"] == EXPECTED["scored_pixels"]
    assert metrics["ignored_pixels"] == EXPECTED["ignored_pixels"]
    assert {k: v for k, v in metrics["per_class"].items() if v is not None} == EXPECTED["iou"]
    present = {k: v for k, v in metrics["per_class_accuracy"].items() if v is not None}
    assert present == EXPECTED["accuracy"]
    # Means: exact up to the order of a float sum.
    for key in ("miou", "mean_class_accuracy", "fw_iou"):
        assert metrics[key] == pytest.approx(EXPECTED[key], rel=1e-12, abs=0), key


@pytest.mark.parametrize("classes", [32, 11])
def test_evaluate_folders_ignores_predictions_on_void(folders: Path, classes: int) -> None:
    result = evaluate_folders(folders / "pred", folders / "gt", classes=classes, unknown="void")
    assert result.problems == ()
    assert result.num_images == 1
    check(result.to_dict())


@pytest.mark.parametrize("classes", [32, 11])
def test_cli_evaluate_ignores_predictions_on_void(
    folders: Path, classes: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["evaluate", str(folders / "pred"), str(folders / "gt"), "--json", "--classes",
                 str(classes), "--unknown-colors", "void"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    metrics = json.loads(captured.out)
    assert metrics["problems"] == []
    check(metrics)
