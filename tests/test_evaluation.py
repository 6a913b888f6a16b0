from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from camvidseg import CamVidPalette, ConfigError, Segmenter
from camvidseg.evaluation import evaluate_folders, evaluate_segmenter, write_report
from camvidseg.imageio import save_label_png
from camvidseg.metrics import ConfusionMatrix
from camvidseg.palette import get_grouping
from camvidseg.testing import NearestColorBackend, street_scene
from camvidseg.visualize import render_confusion, shade
from tests.metrics_reference import assert_matches, slow_metrics

C32, C11 = CamVidPalette.camvid32(), CamVidPalette.camvid11()
MERGE = get_grouping("merge")


def _scenes(count: int = 3) -> list[tuple[NDArray[np.uint8], NDArray[np.uint8]]]:
    return [street_scene(30 + 4 * i, 40, seed=10 + i) for i in range(count)]


def _corrupt(labels: NDArray[np.uint8], seed: int) -> NDArray[np.uint8]:
    """A plausible prediction: the truth with a block of wrong classes and some abstentions."""
    rng = np.random.default_rng(seed)
    out: NDArray[np.uint8] = labels.copy()
    out[: labels.shape[0] // 3, : labels.shape[1] // 2] = C32.id_of("Building")
    out[rng.random(labels.shape) < 0.05] = 255
    out[rng.random(labels.shape) < 0.05] = C32.void_id or 0
    return out


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path, list[NDArray[np.uint8]], list[NDArray[np.uint8]]]:
    """pred/ (indexed PNGs) and gt/ (RGB *_L.png) for three scenes."""
    preds, truths = [], []
    for i, (_, truth) in enumerate(_scenes()):
        pred = _corrupt(truth, i)
        save_label_png(tmp_path / "pred" / f"f{i}.png", pred, C32)
        (tmp_path / "gt").mkdir(exist_ok=True)
        Image.fromarray(C32.colorize(truth)).save(tmp_path / "gt" / f"f{i}_L.png")
        preds.append(pred)
        truths.append(truth)
    return tmp_path / "pred", tmp_path / "gt", preds, truths


def test_folders_match_slow_reference_in_32_and_11_classes(
    dataset: tuple[Path, Path, list[NDArray[np.uint8]], list[NDArray[np.uint8]]],
) -> None:
    pred_dir, gt_dir, preds, truths = dataset
    result = evaluate_folders(pred_dir, gt_dir)
    assert result.num_images == 3
    assert result.problems == ()
    assert_matches(result.to_dict(), slow_metrics(preds, truths, C32))
    assert result.miou is not None
    assert 0.2 < result.miou < 1.0
    eleven = evaluate_folders(pred_dir, gt_dir, classes=11)
    expected = slow_metrics([MERGE.remap(p) for p in preds], [MERGE.remap(t) for t in truths], C11)
    assert_matches(eleven.to_dict(), expected)
    assert eleven.classes == C11.names[:11]


def test_problems_are_reported_and_the_rest_evaluated(
    dataset: tuple[Path, Path, list[NDArray[np.uint8]], list[NDArray[np.uint8]]],
) -> None:
    pred_dir, gt_dir, preds, truths = dataset
    save_label_png(pred_dir / "small.png", np.zeros((5, 5), np.uint8), C32)
    Image.fromarray(C32.colorize(np.zeros((6, 5), np.uint8))).save(gt_dir / "small_L.png")
    save_label_png(pred_dir / "orphan.png", np.zeros((5, 5), np.uint8), C32)
    Image.fromarray(C32.colorize(np.zeros((5, 5), np.uint8))).save(gt_dir / "nopred_L.png")
    odd = C32.colorize(np.zeros((5, 5), np.uint8))
    odd[0, 0] = (9, 9, 9)
    Image.fromarray(odd).save(gt_dir / "odd_L.png")
    save_label_png(pred_dir / "odd.png", np.zeros((5, 5), np.uint8), C32)
    (pred_dir / "junk.png").write_bytes(b"\x89PNG broken")
    Image.fromarray(C32.colorize(np.zeros((5, 5), np.uint8))).save(gt_dir / "junk_L.png")

    result = evaluate_folders(pred_dir, gt_dir)
    kinds = {Path(p.path).name: p.kind for p in result.problems}
    assert kinds == {
        "small.png": "size_mismatch",
        "orphan.png": "missing_ground_truth",
        "nopred_L.png": "missing_prediction",
        "odd_L.png": "unknown_colors",
        "junk.png": "unreadable",
    }
    message = next(p.message for p in result.problems if p.kind == "size_mismatch")
    assert "5x5" in message
    assert "5x6" in message
    assert "small_L.png" in message
    assert result.num_images == 3
    assert_matches(result.to_dict(), slow_metrics(preds, truths, C32))
    # Unknown colours as Void: the odd file now counts (its one odd pixel is ignored).
    lenient = evaluate_folders(pred_dir, gt_dir, unknown="void")
    assert "unknown_colors" not in {p.kind for p in lenient.problems}
    assert lenient.num_images == 4
    assert lenient.confusion.ignored_pixels == result.confusion.ignored_pixels + 1


def test_segnet_index_ground_truth_needs_11_classes(tmp_path: Path) -> None:
    _, truth = street_scene(24, 32, seed=1)
    save_label_png(tmp_path / "pred" / "a.png", truth, C32)
    (tmp_path / "testannot").mkdir()
    Image.fromarray(MERGE.remap(truth), mode="L").save(tmp_path / "testannot" / "a.png")
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(tmp_path / "a.png")  # the photo
    with pytest.raises(ConfigError, match=r"CamVid-11 ids.*--classes 11"):
        evaluate_folders(tmp_path / "pred", tmp_path)
    result = evaluate_folders(tmp_path / "pred", tmp_path, classes=11)
    assert result.problems == ()
    assert result.miou == 1.0
    assert result.pixel_accuracy == 1.0


def test_predictions_of_11_classes(tmp_path: Path) -> None:
    _, truth = street_scene(24, 32, seed=2)
    save_label_png(tmp_path / "pred" / "a.png", MERGE.remap(truth), C11)
    (tmp_path / "gt").mkdir()
    Image.fromarray(C32.colorize(truth)).save(tmp_path / "gt" / "a_L.png")
    with pytest.raises(ConfigError, match=r"prediction .*a\.png holds CamVid-11 ids"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt")
    assert evaluate_folders(tmp_path / "pred", tmp_path / "gt", classes=11).miou == 1.0
    # Grayscale predictions have no palette: --pred-classes says what they hold.
    Image.fromarray(truth, mode="L").save(tmp_path / "pred" / "a.png")
    as32 = evaluate_folders(tmp_path / "pred", tmp_path / "gt", classes=11, prediction_classes=32)
    assert as32.miou == 1.0
    wrong = evaluate_folders(tmp_path / "pred", tmp_path / "gt", classes=11)
    assert [p.kind for p in wrong.problems] == ["invalid_labels"]


def test_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="no such folder"):
        evaluate_folders(tmp_path / "nope", tmp_path / "g")
    with pytest.raises(ConfigError, match="not a folder"):
        evaluate_folders(tmp_path / "p", tmp_path / "file")
    save_label_png(tmp_path / "p" / "a.png", np.zeros((2, 2), np.uint8), C32)
    save_label_png(tmp_path / "g" / "b_L.png", np.zeros((2, 2), np.uint8), C32)
    with pytest.raises(ConfigError, match=r"no file in .* pairs .*1 files, e\.g\. 'a\.png'"):
        evaluate_folders(tmp_path / "p", tmp_path / "g")
    with pytest.raises(ConfigError, match="classes must be 32 or 11"):
        evaluate_folders(tmp_path / "p", tmp_path / "g", classes=12)


def test_segment_output_folder_is_accepted(tmp_path: Path) -> None:
    _, truth = street_scene(16, 20, seed=3)
    save_label_png(tmp_path / "out" / "labels" / "a.png", truth, C32)
    (tmp_path / "out" / "manifest.json").write_text("{}")
    Image.fromarray(C32.colorize(truth)).save(tmp_path / "a_L.png")
    assert evaluate_folders(tmp_path / "out", tmp_path).miou == 1.0


def test_evaluate_segmenter_on_the_fly(tmp_path: Path) -> None:
    scenes = [street_scene(30, 40, seed=20 + i) for i in range(3)]
    for i, (image, truth) in enumerate(scenes):
        Image.fromarray(image).save(tmp_path / f"s{i}.png")
        Image.fromarray(C32.colorize(truth)).save(tmp_path / f"s{i}_L.png")
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "lonely.jpg")
    backend = NearestColorBackend()
    segmenter = Segmenter(backend, batch_size=2)
    images = [tmp_path / f"s{i}.png" for i in range(3)] + [tmp_path / "lonely.jpg"]
    result = evaluate_segmenter(segmenter, images, tmp_path)
    assert result.num_images == 3
    assert result.miou == 1.0  # noise-free scenes segment exactly
    assert [(p.kind, Path(p.path).name) for p in result.problems] == [
        ("missing_ground_truth", "lonely.jpg")
    ]
    assert backend.calls == 2  # batches of two images
    eleven = evaluate_segmenter(segmenter, images[:3], tmp_path, classes=11)
    assert eleven.palette is C11
    assert eleven.miou == 1.0
    # Abstaining everywhere scores nothing: every labelled pixel is a miss.
    abstaining = Segmenter(NearestColorBackend(), min_confidence=1.0)
    nothing = evaluate_segmenter(abstaining, images[:3], tmp_path)
    assert nothing.pixel_accuracy == 0.0
    assert nothing.miou == 0.0
    assert set(nothing.per_class_accuracy.values()) <= {0.0, None}


def test_evaluate_segmenter_mismatches(tmp_path: Path) -> None:
    image, truth = street_scene(20, 24, seed=5)
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(C32.colorize(truth[:10])).save(tmp_path / "a_L.png")
    result = evaluate_segmenter(Segmenter(NearestColorBackend()), tmp_path / "a.png", tmp_path)
    assert [p.kind for p in result.problems] == ["size_mismatch"]
    assert result.num_images == 0
    assert result.miou is None
    with pytest.raises(ConfigError, match="CamVid-11 segmenter"):
        evaluate_segmenter(
            Segmenter(NearestColorBackend(), palette=C11), tmp_path, tmp_path, classes=32
        )
    with pytest.raises(ConfigError, match="no such file or folder"):
        evaluate_segmenter(Segmenter(NearestColorBackend()), tmp_path / "nope", tmp_path)


def test_report_files(
    tmp_path: Path,
    dataset: tuple[Path, Path, list[NDArray[np.uint8]], list[NDArray[np.uint8]]],
) -> None:
    pred_dir, gt_dir, _, _ = dataset
    result = evaluate_folders(pred_dir, gt_dir)
    written = write_report(result, tmp_path / "report")
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "confusion.png",
        "metrics.json",
        "metrics.txt",
    ]
    assert json.loads(written["metrics"].read_text()) == json.loads(result.to_json())
    assert written["table"].read_text() == result.table() + "\n"
    with Image.open(written["confusion"]) as plot:
        assert plot.size == render_confusion(result.confusion).image.size
        assert plot.mode == "RGB"


def test_confusion_plot_cells_show_row_normalised_values() -> None:
    cm = ConfusionMatrix(C11)
    sky, road, car = C11.id_of("Sky"), C11.id_of("Road"), C11.id_of("Car")
    gt = np.array([sky] * 4 + [road] * 4 + [11] * 2, np.uint8)
    pred = np.array([sky] * 4 + [road, road, road, 255] + [car] * 2, np.uint8)
    cm.update(pred, gt)
    plot = render_confusion(cm)
    image = np.asarray(plot.image)
    assert plot.rows == C11.names[:11]
    assert plot.columns == (*C11.names, "unlabelled")
    assert plot.fractions[sky, sky] == 1.0
    assert plot.fractions[road, road] == 0.75
    assert plot.fractions[road, 12] == 0.25
    assert np.isnan(plot.fractions[car]).all()  # no Car ground truth: no row values

    def corner(row: int, column: int) -> tuple[int, ...]:
        left, top, _, _ = plot.cell_box(row, column)
        return tuple(int(v) for v in image[top + 4, left + 4])

    assert corner(sky, sky) == shade(1.0)
    assert corner(road, road) == shade(0.75)
    assert corner(road, 12) == shade(0.25)
    assert corner(sky, road) == shade(0.0)
    assert corner(car, car) == (225, 225, 225)  # grey: no pixels
    right, bottom = plot.cell_box(len(plot.rows) - 1, len(plot.columns) - 1)[2:]
    assert plot.image.width > right + 20  # room for the IoU column
    assert plot.image.height >= bottom
    # Class names are drawn: dark text pixels left of the grid and above it.
    assert (image[plot.origin[1] :, : plot.origin[0]] < 80).all(axis=-1).sum() > 100
    assert (image[: plot.origin[1], plot.origin[0] :] < 80).all(axis=-1).sum() > 100


def test_progress_bar_on_request(
    dataset: tuple[Path, Path, list[NDArray[np.uint8]], list[NDArray[np.uint8]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    pred_dir, gt_dir, _, _ = dataset
    quiet = evaluate_folders(pred_dir, gt_dir)
    assert capsys.readouterr().err == ""
    shown = evaluate_folders(pred_dir, gt_dir, progress=True)
    assert "evaluating" in capsys.readouterr().err
    assert shown.to_dict() == quiet.to_dict()


def test_predictions_inside_the_ground_truth_folder(tmp_path: Path) -> None:
    _, truth = street_scene(16, 20, seed=6)
    save_label_png(tmp_path / "preds" / "a.png", truth, C32)
    (tmp_path / "annotations").mkdir()
    Image.fromarray(MERGE.remap(truth), mode="L").save(tmp_path / "annotations" / "a.png")
    result = evaluate_folders(tmp_path / "preds", tmp_path, classes=11)
    assert result.problems == ()
    assert result.miou == 1.0
