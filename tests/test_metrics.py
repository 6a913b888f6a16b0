from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from camvidseg import CamVidPalette, ConfigError, InvalidImageError, get_grouping
from camvidseg.exceptions import InvalidLabelError
from camvidseg.metrics import ConfusionMatrix, EvaluationProblem, format_table
from tests.metrics_reference import assert_matches, slow_metrics

PALETTES = {"32": CamVidPalette.camvid32(), "11": CamVidPalette.camvid11()}

Pair = tuple[NDArray[np.uint8], NDArray[np.uint8]]


@st.composite
def evaluation_sets(draw: st.DrawFn, palette: CamVidPalette | None = None) -> tuple[
    CamVidPalette, list[Pair]
]:  # fmt: skip
    """A palette and a few (prediction, ground truth) pairs.

    Ids are drawn from a small random subset of the classes (so some classes are absent from
    both sides), ground truth includes Void and 255, predictions include Void and 255.
    """
    palette = palette or draw(st.sampled_from(list(PALETTES.values())))
    void = palette.void_id
    assert void is not None
    classes = draw(st.lists(st.sampled_from(palette.scored_ids), min_size=1, max_size=5))
    gt_ids = st.sampled_from([*classes, void, 255])
    pred_ids = st.sampled_from([*classes, void, 255, draw(st.sampled_from(palette.scored_ids))])
    pairs = []
    for _ in range(draw(st.integers(1, 3))):
        shape = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
        pred = draw(hnp.arrays(np.uint8, shape, elements=pred_ids))
        gt = draw(hnp.arrays(np.uint8, shape, elements=gt_ids))
        pairs.append((pred, gt))
    return palette, pairs


def _matrix(palette: CamVidPalette, pairs: list[Pair]) -> ConfusionMatrix:
    cm = ConfusionMatrix(palette)
    for pred, gt in pairs:
        cm.update(pred, gt)
    return cm


@given(evaluation_sets())
def test_metrics_equal_slow_pixel_loop(data: tuple[CamVidPalette, list[Pair]]) -> None:
    palette, pairs = data
    result = _matrix(palette, pairs).compute()
    expected = slow_metrics([p for p, _ in pairs], [g for _, g in pairs], palette)
    assert_matches(result.to_dict(), expected)
    assert result.confusion.scored_pixels == expected["scored_pixels"]
    assert result.num_images == len(pairs)
    assert result.classes == tuple(palette.names[i] for i in palette.scored_ids)


@given(evaluation_sets())
def test_counts_equal_slow_pixel_loop(data: tuple[CamVidPalette, list[Pair]]) -> None:
    palette, pairs = data
    cm = _matrix(palette, pairs)
    n = len(palette)
    expected = np.zeros((n + 1, n + 1), np.int64)
    for pred, gt in pairs:
        for p, g in zip(pred.ravel().tolist(), gt.ravel().tolist(), strict=True):
            expected[n if g == 255 else g, n if p == 255 else p] += 1
    np.testing.assert_array_equal(cm.counts, expected)
    ignored = sum(int(((g == palette.void_id) | (g == 255)).sum()) for _, g in pairs)
    assert cm.ignored_pixels == ignored


@given(evaluation_sets(), st.integers(0, 3))
def test_merging_partial_matrices_equals_one_matrix(
    data: tuple[CamVidPalette, list[Pair]], split: int
) -> None:
    palette, pairs = data
    whole = _matrix(palette, pairs)
    first, second = _matrix(palette, pairs[:split]), _matrix(palette, pairs[split:])
    merged = first + second
    assert merged.equals(whole)
    assert ConfusionMatrix.merge_all([first, second]).equals(whole)
    assert merged.compute().to_dict() == whole.compute().to_dict()
    assert first.counts.sum() + second.counts.sum() == whole.counts.sum()  # inputs untouched


@given(evaluation_sets(palette=CamVidPalette.camvid32()))
def test_regroup_equals_counting_remapped_labels(data: tuple[CamVidPalette, list[Pair]]) -> None:
    _, pairs = data
    grouping = get_grouping("merge")
    regrouped = _matrix(CamVidPalette.camvid32(), pairs).regroup("merge")
    direct = _matrix(
        CamVidPalette.camvid11(), [(grouping.remap(p), grouping.remap(g)) for p, g in pairs]
    )
    assert regrouped.equals(direct)


@given(evaluation_sets())
def test_json_round_trip(data: tuple[CamVidPalette, list[Pair]]) -> None:
    palette, pairs = data
    cm = _matrix(palette, pairs)
    restored = ConfusionMatrix.from_json(cm.to_json())
    assert restored.equals(cm)
    assert restored.palette is palette  # built-in palettes are restored as themselves
    result = json.loads(cm.compute().to_json())
    assert ConfusionMatrix.from_dict(result["confusion_matrix"]).equals(cm)


def test_void_ground_truth_is_ignored_and_abstaining_is_a_miss() -> None:
    palette = CamVidPalette.camvid32()
    road, sky, void = palette.id_of("Road"), palette.id_of("Sky"), palette.void_id
    gt = np.array([[road, road, road, road, void, void]], np.uint8)
    confident = np.array([[road, road, sky, sky, sky, road]], np.uint8)
    abstaining = np.array([[road, road, 255, void, sky, road]], np.uint8)  # no wrong guesses
    wrong = _matrix(palette, [(confident, gt)]).compute()
    abstain = _matrix(palette, [(abstaining, gt)]).compute()
    assert wrong.per_class["Road"] == 0.5
    assert wrong.per_class["Sky"] == 0.0  # Sky predicted on Road pixels, never in truth
    assert abstain.per_class["Road"] == 0.5  # 255 and Void on Road pixels are misses
    assert abstain.per_class["Sky"] is None  # the Sky on a Void pixel does not count
    assert abstain.pixel_accuracy == wrong.pixel_accuracy == 0.5
    assert abstain.per_class_accuracy["Road"] == 0.5
    assert abstain.confusion.ignored_pixels == 2
    assert "Void" not in abstain.per_class
    assert abstain.miou == 0.5
    assert wrong.miou == 0.25  # Sky is present (predicted), so it counts with IoU 0


@given(evaluation_sets(), st.integers(0, 2**32 - 1))
def test_abstaining_never_raises_accuracy_nor_beats_the_right_answer(
    data: tuple[CamVidPalette, list[Pair]], seed: int
) -> None:
    palette, pairs = data
    rng = np.random.default_rng(seed)
    base = _matrix(palette, pairs).compute()
    abstained, corrected = [], []
    for pred, gt in pairs:
        mask = rng.random(pred.shape) < 0.5
        abstained.append((np.where(mask, np.uint8(255), pred), gt))
        corrected.append((np.where(mask, gt, pred), gt))
    result = _matrix(palette, abstained).compute()
    right = _matrix(palette, corrected).compute()
    if base.pixel_accuracy is None:
        assert result.pixel_accuracy is None
        return
    assert result.pixel_accuracy is not None
    assert right.pixel_accuracy is not None
    assert result.pixel_accuracy <= base.pixel_accuracy <= right.pixel_accuracy
    for name, value in result.per_class_accuracy.items():
        before = base.per_class_accuracy[name]
        assert (value is None) == (before is None)  # abstained pixels stay in the denominator
        assert value is None or before is None or value <= before
    assert result.miou is not None
    assert right.miou is not None
    assert result.miou <= right.miou


def test_absent_classes_are_none_and_excluded_from_means() -> None:
    palette = CamVidPalette.camvid11()
    cm = ConfusionMatrix(palette)
    cm.update(np.array([[0, 0, 3]], np.uint8), np.array([[0, 0, 3]], np.uint8))
    result = cm.compute()
    assert result.per_class["Sky"] == 1.0
    assert result.per_class["Road"] == 1.0
    assert result.per_class["Car"] is None
    assert result.miou == 1.0  # 9 absent classes do not pull it down
    data = json.loads(result.to_json())
    assert data["per_class"]["Car"] is None
    assert data["per_class_accuracy"]["Car"] is None
    assert data["fw_iou"] == 1.0


def test_empty_matrix_has_no_metrics() -> None:
    result = ConfusionMatrix(CamVidPalette.camvid11()).compute()
    assert result.miou is None
    assert result.pixel_accuracy is None
    assert result.fw_iou is None
    assert result.mean_class_accuracy is None
    assert set(result.per_class.values()) == {None}
    assert "n/a" in result.table()


def test_to_dict_keys_and_values() -> None:
    palette = CamVidPalette.camvid11()
    cm = ConfusionMatrix(palette)
    cm.update(np.array([[0, 3, 3, 0]], np.uint8), np.array([[0, 0, 3, 11]], np.uint8))
    problem = EvaluationProblem("missing_prediction", "gt/x.png", "gt/x.png: no prediction")
    data = cm.compute([problem]).to_dict()
    assert {
        "miou", "pixel_accuracy", "mean_class_accuracy", "fw_iou", "per_class",
        "per_class_accuracy", "confusion_matrix", "num_images", "classes", "problems",
    } <= set(data)  # fmt: skip
    assert data["classes"] == list(palette.names[:11])
    assert list(data["per_class"]) == data["classes"]
    assert data["per_class"]["Sky"] == 0.5
    assert data["per_class"]["Road"] == 0.5
    assert data["miou"] == 0.5
    assert data["pixel_accuracy"] == pytest.approx(2 / 3)
    assert data["mean_class_accuracy"] == pytest.approx(0.75)
    assert data["fw_iou"] == pytest.approx(2 / 3 * 0.5 + 1 / 3 * 0.5)
    assert data["num_images"] == 1
    assert data["scored_pixels"] == 3
    assert data["ignored_pixels"] == 1
    assert data["confusion_matrix"]["counts"][0][3] == 1
    assert data["confusion_matrix"]["labels"][-1] == "unlabelled"
    assert data["problems"] == [problem.to_dict()]
    json.dumps(data)  # serialisable as is


def test_table_lists_every_scored_class() -> None:
    cm = ConfusionMatrix(CamVidPalette.camvid32())
    cm.update(np.array([[17, 17]], np.uint8), np.array([[17, 21]], np.uint8))
    table = format_table(cm.compute())
    lines = table.splitlines()
    assert lines[0].split() == ["class", "IoU", "accuracy", "GT", "pixels"]
    road = next(line for line in lines if line.startswith("Road "))
    assert road.split() == ["Road", "50.00%", "100.00%", "1"]
    sky = next(line for line in lines if line.startswith("Sky "))
    assert sky.split() == ["Sky", "0.00%", "0.00%", "1"]
    assert not any(line.startswith("Void ") for line in lines)
    assert "mIoU 25.00%" in table


def test_update_validates_shapes_and_ids() -> None:
    cm = ConfusionMatrix(CamVidPalette.camvid11())
    with pytest.raises(InvalidImageError, match=r"one shape.*\(1, 2\).*\(2, 1\)"):
        cm.update(np.zeros((1, 2), np.uint8), np.zeros((2, 1), np.uint8))
    with pytest.raises(InvalidLabelError, match=r"prediction holds ids.*camvid11.*: 12, 31"):
        cm.update(np.array([[12, 31]], np.uint8), np.zeros((1, 2), np.uint8))
    with pytest.raises(InvalidLabelError, match="ground truth holds ids"):
        cm.update(np.zeros((1, 2), np.uint8), np.array([[0, 200]], np.uint8))
    with pytest.raises(InvalidImageError, match="integer label map"):
        cm.update(np.zeros((1, 2), np.float32), np.zeros((1, 2), np.uint8))
    with pytest.raises(InvalidImageError, match=r"0\.\.255"):
        cm.update(np.array([[0, 300]]), np.zeros((1, 2), np.uint8))
    assert cm.num_images == 0
    assert cm.counts.sum() == 0  # a refused update adds nothing
    cm.update(np.array([[1, 255]], np.int64), np.array([[1, 1]], np.int32))  # other int dtypes
    assert cm.counts[1, 1] == 1
    assert cm.counts[1, cm.unlabelled_index] == 1


def test_merge_and_regroup_refuse_mismatched_label_sets() -> None:
    with pytest.raises(ConfigError, match="camvid32 and camvid11"):
        ConfusionMatrix(CamVidPalette.camvid32()).merge(ConfusionMatrix(CamVidPalette.camvid11()))
    with pytest.raises(ConfigError, match="maps camvid32, not camvid11"):
        ConfusionMatrix(CamVidPalette.camvid11()).regroup()
    with pytest.raises(TypeError):
        ConfusionMatrix() + 1


def test_constructor_and_json_validation() -> None:
    with pytest.raises(ConfigError, match=r"shape \(13, 13\)"):
        ConfusionMatrix(CamVidPalette.camvid11(), np.zeros((3, 3), np.int64))
    with pytest.raises(ConfigError, match="non-negative"):
        ConfusionMatrix(CamVidPalette.camvid11(), -np.ones((13, 13), np.int64))
    with pytest.raises(ConfigError, match="not valid JSON"):
        ConfusionMatrix.from_json("{")
    with pytest.raises(ConfigError, match="not a camvidseg confusion matrix"):
        ConfusionMatrix.from_json('{"format": "other"}')
    data = ConfusionMatrix(CamVidPalette.camvid11()).to_dict()
    del data["counts"]
    with pytest.raises(ConfigError, match="invalid confusion matrix data"):
        ConfusionMatrix.from_dict(data)


def test_custom_palette_round_trips_through_json() -> None:
    palette = CamVidPalette.from_classes(
        "mine", [("a", (1, 2, 3)), ("b", (4, 5, 6)), ("void", (0, 0, 0))], void="void"
    )
    cm = ConfusionMatrix(palette)
    cm.update(np.array([[0, 1, 2]], np.uint8), np.array([[0, 0, 2]], np.uint8))
    restored = ConfusionMatrix.from_json(cm.to_json())
    assert restored.equals(cm)
    assert restored.palette.names == ("a", "b", "void")
    assert restored.palette.void_id == 2
    assert restored.palette.colors.tolist() == palette.colors.tolist()
    assert restored.compute().per_class == {"a": 0.5, "b": 0.0}


def test_benchmark_script_checks_its_references(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.metrics import main, pairwise_confusion, per_class_confusion, per_class_decode

    rng = np.random.default_rng(7)
    pred = rng.choice(np.array([0, 5, 17, 30, 255], np.uint8), (9, 11))
    gt = rng.choice(np.array([0, 5, 17, 30, 255], np.uint8), (9, 11))
    cm = ConfusionMatrix()
    cm.update(pred, gt)
    np.testing.assert_array_equal(per_class_confusion(pred, gt, 32), cm.counts)
    np.testing.assert_array_equal(pairwise_confusion(pred, gt, 32), cm.counts)
    palette = CamVidPalette.camvid32()
    labels = rng.integers(0, 32, (5, 6), dtype=np.uint8)
    np.testing.assert_array_equal(per_class_decode(palette.colorize(labels), palette), labels)
    rows = main(["--size", "24x32", "--repeats", "1"])
    names = [row["name"] for row in rows]
    assert "confusion_update_speedup_vs_per_class_bincount" in names
    assert "rgb_decode_speedup_vs_per_class_loop" in names
    assert all(row["value"] > 0 for row in rows)
    assert "rgb_decode_speedup_vs_per_class_loop" in capsys.readouterr().out
