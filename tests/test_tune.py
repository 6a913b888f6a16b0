"""camvidseg.tune: cached predictions, one-pass threshold counting, and the search itself.

The scenario: four synthetic street scenes with exact ground truth, segmented by a fake model
with known noise (:class:`SpeckleNoiseBackend`, 10 % of the pixels take the scores of a random
other pixel). Cleanup must repair most of it, and the tuner must find that.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray
from PIL import Image

from camvidseg import CamVidPalette, CleanupConfig, ConfigError, ConfusionMatrix, TTAConfig
from camvidseg.backends.base import Backend
from camvidseg.config import SegmentConfig, load_config, save_config
from camvidseg.evaluation import evaluate_segmenter
from camvidseg.postprocess import ChannelLayout, labels_and_confidence
from camvidseg.predcache import DEFAULT_TOP_K, PredictionCache, ViewPrediction, combine_views
from camvidseg.testing import NearestColorBackend, SpeckleNoiseBackend, street_scene
from camvidseg.tune import (
    ABSTAIN_NOTE,
    Objective,
    SearchSpace,
    Setting,
    ThresholdCounter,
    TuneResult,
    canonical_cleanup,
    cleaned_variants,
    load_grid,
    threshold_confusions,
    tune,
)
from camvidseg.uncertainty import apply_min_confidence
from tests.strategies import probability_scores

C32 = CamVidPalette.camvid32()
C11 = CamVidPalette.camvid11()


# -- the scenario ----------------------------------------------------------------------------------


def write_scenes(folder: Path, count: int = 4, size: tuple[int, int] = (72, 96)) -> list[Path]:
    """``count`` street scenes as ``i.png`` with exact ``i_L.png`` ground truth in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for i in range(count):
        image, truth = street_scene(*size, seed=i)
        Image.fromarray(image).save(folder / f"{i}.png")
        Image.fromarray(C32.colorize(truth)).save(folder / f"{i}_L.png")
        images.append(folder / f"{i}.png")
    return images


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_scenes(tmp_path_factory.mktemp("scenes"))


@pytest.fixture(scope="module")
def tuned(scenes: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[TuneResult, Path]:
    cache = tmp_path_factory.mktemp("cache")
    return tune(scenes, scenes[0].parent, model=SpeckleNoiseBackend(), cache_dir=cache), cache


def test_tuning_beats_the_default_on_a_noisy_model(tuned: tuple[TuneResult, Path]) -> None:
    result, _ = tuned
    assert result.num_images == 4
    baseline, best = result.baseline, result.best
    assert baseline.setting == Setting()
    # Measured: 10 % speckle costs the default 16 points of mIoU; a 3x3 majority filter
    # repairs nearly all of it (thin lane markings and the pole suffer a little).
    assert baseline.score == pytest.approx(0.8357, abs=5e-5)
    assert baseline.result.pixel_accuracy == pytest.approx(0.9189, abs=5e-5)
    assert best.score == pytest.approx(0.9403, abs=5e-5)
    assert best.result.pixel_accuracy == pytest.approx(0.9909, abs=5e-5)
    assert result.improvement is not None
    assert result.improvement > 0.10
    assert best.setting.cleanup.enabled
    assert best.setting == Setting(cleanup=CleanupConfig(majority=3))
    assert result.search == "grid"
    assert result.passes == 1
    assert len(result.trials) == SearchSpace().size * len(SearchSpace().min_confidence)
    assert [t.score for t in result.trials] == sorted(
        (t.score for t in result.trials), key=lambda s: -(s or 0.0)
    )


def test_tuned_config_reproduces_its_score(
    tuned: tuple[TuneResult, Path], scenes: list[Path], tmp_path: Path
) -> None:
    result, _ = tuned
    path = save_config(result.config, tmp_path / "best.json")
    config = load_config(path)
    assert config == result.config
    assert config.cleanup == CleanupConfig(majority=3)
    assert (config.tta, config.min_confidence) == (None, None)
    assert "miou 0.9403 (baseline 0.8357)" in config.description
    segmenter = config.build_segmenter(SpeckleNoiseBackend())
    measured = evaluate_segmenter(segmenter, scenes, scenes[0].parent)
    assert measured.miou == result.best.score
    assert measured.confusion.equals(result.best.result.confusion)


def test_every_untransformed_trial_matches_the_segmenter(
    tuned: tuple[TuneResult, Path], scenes: list[Path]
) -> None:
    # Without TTA the cache holds the Segmenter's own labels, so every cleanup and threshold
    # scores exactly what `segment` would produce (confidence in float16 flips no pixel here).
    result, _ = tuned
    plain = [t for t in result.trials if t.setting.tta is None]
    for trial in plain[:: max(1, len(plain) // 12)]:
        segmenter = trial.setting.apply_to(SegmentConfig()).build_segmenter(SpeckleNoiseBackend())
        measured = evaluate_segmenter(segmenter, scenes, scenes[0].parent)
        assert measured.confusion.equals(trial.result.confusion), trial.setting


def test_thresholds_never_raise_pixel_accuracy(tuned: tuple[TuneResult, Path]) -> None:
    result, _ = tuned
    without = {
        (t.setting.tta, t.setting.cleanup): t.result.pixel_accuracy
        for t in result.trials
        if t.setting.min_confidence is None
    }
    with_threshold = [t for t in result.trials if t.setting.min_confidence is not None]
    assert with_threshold
    for trial in with_threshold:
        assert trial.result.pixel_accuracy is not None
        reference = without[(trial.setting.tta, trial.setting.cleanup)]
        assert reference is not None
        assert trial.result.pixel_accuracy <= reference
    assert ABSTAIN_NOTE in result.table()


def test_table_and_json(tuned: tuple[TuneResult, Path]) -> None:
    result, _ = tuned
    lines = result.table(top=3).splitlines()
    assert lines[0].split() == ["rank", "mIoU", "pixel", "acc", "TTA", "cleanup", "min", "conf"]
    assert lines[1].split() == ["1", "94.03%", "99.09%", "-", "majority", "3", "-"]
    assert lines[5].split()[:3] == ["base", "83.57%", "91.89%"]
    assert "+10.46 points over the baseline" in lines[6]
    data = json.loads(json.dumps(result.to_dict(top=3)))
    assert data["best"]["cleanup"]["majority"] == 3
    assert data["best"]["score"] == result.best.score
    assert data["baseline"]["miou"] == result.baseline.score
    assert len(data["trials"]) == 3
    assert data["config"] == result.config.to_dict()
    assert data["note"] == ABSTAIN_NOTE
    # Rows whose results equal a better-ranked (simpler) setting's are folded away.
    distinct = result.distinct_trials()
    keys = [t.result.confusion.counts.tobytes() for t in distinct]
    assert len(set(keys)) == len(keys) < len(result.trials)


def test_coordinate_search_finds_the_grid_optimum(
    tuned: tuple[TuneResult, Path], scenes: list[Path]
) -> None:
    grid, cache = tuned
    backend = SpeckleNoiseBackend()
    result = tune(scenes, scenes[0].parent, model=backend, cache_dir=cache, search="coordinate")
    assert result.search == "coordinate"
    assert backend.calls == 0
    assert result.best.setting == grid.best.setting
    assert result.best.result.confusion.equals(grid.best.result.confusion)
    assert 1 < result.passes < 10
    assert len(result.trials) < len(grid.trials)


# -- the cache -------------------------------------------------------------------------------------


def test_second_run_never_calls_the_model(scenes: list[Path], tmp_path: Path) -> None:
    backend = SpeckleNoiseBackend()
    space = SearchSpace(
        tta=[None, TTAConfig(flip=True)], opening=[0], closing=[0], min_region=[0], majority=[0, 3]
    )
    first = tune(scenes, scenes[0].parent, model=backend, cache_dir=tmp_path, space=space)
    assert backend.calls == 4 * 2  # once per image and view (plain, flipped)
    assert (first.computed_views, first.reused_views) == (8, 0)
    assert len(list(tmp_path.glob("*.npz"))) == 8

    loads: list[int] = []

    def factory() -> Backend:
        loads.append(1)
        return backend

    again = tune(
        scenes, scenes[0].parent, model=factory, model_key=backend.name, cache_dir=tmp_path,
        space=space,
    )  # fmt: skip
    assert backend.calls == 8
    assert loads == []
    assert (again.computed_views, again.reused_views) == (0, 8)
    assert again.best.result.confusion.equals(first.best.result.confusion)

    # Another setting that changes predictions (max_side) is another key: computed again.
    tune(
        scenes, scenes[0].parent, model=factory, model_key=backend.name, cache_dir=tmp_path,
        space=space, base=SegmentConfig(max_side=48),
    )  # fmt: skip
    assert loads == [1]
    assert backend.calls == 16
    # A new TTA scale computes only its own views.
    scaled = attrs.evolve(space, tta=(TTAConfig(flip=True, scales=(0.5, 1.0)),))
    result = tune(scenes, scenes[0].parent, model=backend, cache_dir=tmp_path, space=scaled)
    assert (result.computed_views, result.reused_views) == (8, 8)
    assert backend.calls == 24


def test_damaged_cache_files_are_recomputed(
    scenes: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = SpeckleNoiseBackend()
    space = SearchSpace(tta=[None], opening=[0], closing=[0], min_region=[0], majority=[0, 3])
    first = tune(scenes[:2], scenes[0].parent, model=backend, cache_dir=tmp_path, space=space)
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 2
    assert backend.calls == 2
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncated
    with caplog.at_level(logging.WARNING, logger="camvidseg"):
        again = tune(scenes[:2], scenes[0].parent, model=backend, cache_dir=tmp_path, space=space)
    assert backend.calls == 3
    assert again.best.result.confusion.equals(first.best.result.confusion)
    # A file stored under another key (e.g. renamed by hand) is not trusted either.
    files = sorted(tmp_path.glob("*.npz"))
    files[1].write_bytes(files[0].read_bytes())
    with caplog.at_level(logging.WARNING, logger="camvidseg"):
        tune(scenes[:2], scenes[0].parent, model=backend, cache_dir=tmp_path, space=space)
    assert backend.calls == 4
    assert not list(tmp_path.glob(".*"))  # atomic writes leave no temporary files


def test_cache_round_trip_and_key(tmp_path: Path) -> None:
    batch = street_scene(12, 16, seed=2)[0][None].astype(np.float32) / np.float32(255)
    scores = NearestColorBackend().predict(batch)[0]
    view = ViewPrediction.from_scores(scores, ChannelLayout.detect(33))
    cache = PredictionCache(tmp_path, model="m", settings={"max_side": None})
    assert cache.load("abc", (1.0, False)) is None
    assert not cache.contains("abc", (1.0, False))
    cache.store("abc", (1.0, False), view)
    assert cache.contains("abc", (1.0, False))
    loaded = cache.load("abc", (1.0, False), (12, 16))
    assert loaded is not None
    for name in ("ids", "probs", "weight", "channel_ids"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(view, name))
    assert cache.load("abc", (1.0, False), (12, 17)) is None  # wrong size: not trusted
    assert cache.path("abc", (1.0, True)) != cache.path("abc", (1.0, False))
    other = PredictionCache(tmp_path, model="other", settings={"max_side": None})
    assert other.path("abc", (1.0, False)) != cache.path("abc", (1.0, False))
    assert json.loads(cache.key("abc", (0.75, True)))["view"] == [0.75, True]


# -- compact predictions ---------------------------------------------------------------------------


@given(probability_scores(channels=33), st.integers(1, 5))
def test_view_prediction_top_1_is_the_segmenters_answer(
    scores: NDArray[np.float32], top_k: int
) -> None:
    layout = ChannelLayout.detect(33)
    view = ViewPrediction.from_scores(scores, layout, top_k)
    labels, conf = labels_and_confidence(scores, layout)
    np.testing.assert_array_equal(view.ids[0], labels)
    np.testing.assert_array_equal(view.probs[0], conf.astype(np.float16))
    assert view.ids.shape == (top_k, *labels.shape)
    # Distinct classes per pixel, best first, each with its renormalised probability.
    kept = scores[..., 1:] / scores[..., 1:].sum(axis=-1, keepdims=True)
    for y, x in np.ndindex(*labels.shape):
        ids = view.ids[:, y, x].tolist()
        assert len(set(ids)) == top_k
        expected = kept[y, x, ids].astype(np.float16)
        np.testing.assert_allclose(view.probs[:, y, x], expected, atol=1e-3)
        assert np.all(np.diff(kept[y, x, ids]) <= 0)


@given(probability_scores(channels=32), st.booleans())
def test_view_prediction_32_channel_layouts(scores: NDArray[np.float32], drop: bool) -> None:
    layout = ChannelLayout.detect(32, drop_void=drop)
    view = ViewPrediction.from_scores(scores, layout, 2)
    labels, _ = labels_and_confidence(scores, layout)
    np.testing.assert_array_equal(view.ids[0], labels)
    np.testing.assert_array_equal(view.channel_ids, layout.channel_ids)
    total = layout.kept(scores).sum(axis=-1)
    np.testing.assert_array_equal(view.weight, total.astype(np.float16))


def slow_combine(views: list[ViewPrediction]) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """The average of dense per-view arrays, channel by channel (same float32 arithmetic)."""
    channel_ids = views[0].channel_ids.tolist()
    height, width = views[0].shape
    total = np.zeros((height, width, len(channel_ids)), np.float32)
    weight = np.zeros((height, width), np.float32)
    for view in views:
        dense = np.zeros_like(total)
        for y, x in np.ndindex(height, width):
            for j in range(view.ids.shape[0]):
                position = channel_ids.index(int(view.ids[j, y, x]))
                dense[y, x, position] = np.float32(view.probs[j, y, x]) * np.float32(
                    view.weight[y, x]
                )
        total += dense
        weight += view.weight.astype(np.float32)
    position = total.argmax(axis=-1)
    labels = np.asarray(channel_ids, np.uint8)[position]
    best = np.take_along_axis(total, position[..., None], axis=-1)[..., 0]
    return labels, np.clip(best / weight, 0, 1).astype(np.float32)


@st.composite
def views_of_one_image(draw: st.DrawFn, count: int) -> list[NDArray[np.float32]]:
    """``count`` 33-channel score arrays of one shape, values from a small set (ties common)."""
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 6)), 33)
    values = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0])
    views = []
    for _ in range(count):
        raw = draw(hnp.arrays(np.float32, shape, elements=values))
        raw[..., -1] += 1e-3
        views.append((raw / raw.sum(axis=-1, keepdims=True)).astype(np.float32))
    return views


@given(st.integers(2, 3).flatmap(views_of_one_image), st.integers(1, 33))
def test_combine_views_matches_a_dense_average(
    views: list[NDArray[np.float32]], top_k: int
) -> None:
    layout = ChannelLayout.detect(33)
    compact = [ViewPrediction.from_scores(v, layout, top_k) for v in views]
    labels, conf = combine_views(compact)
    expected_labels, expected_conf = slow_combine(compact)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_allclose(conf, expected_conf, rtol=1e-6)


@given(views_of_one_image(2))
def test_combine_views_with_every_class_is_the_segmenters_average(
    views: list[NDArray[np.float32]],
) -> None:
    layout = ChannelLayout.detect(33)
    mean = views[0] + (views[1] - views[0]) * np.float32(0.5)
    labels, conf = combine_views([ViewPrediction.from_scores(v, layout, 32) for v in views])
    expected_labels, expected_conf = labels_and_confidence(mean, layout)
    # float16 storage: equal wherever the two best classes are not within rounding of a tie.
    kept = np.sort(mean[..., 1:], axis=-1)
    clear = kept[..., -1] - kept[..., -2] > 2e-3
    np.testing.assert_array_equal(labels[clear], expected_labels[clear])
    np.testing.assert_allclose(conf, expected_conf, atol=2e-3)


def test_combine_views_checks_its_input() -> None:
    with pytest.raises(ConfigError):
        combine_views([])
    layout = ChannelLayout.detect(33)
    small = ViewPrediction.from_scores(np.full((1, 2, 33), 1 / 33, np.float32), layout)
    large = ViewPrediction.from_scores(np.full((2, 2, 33), 1 / 33, np.float32), layout)
    with pytest.raises(ValueError, match="one shape"):
        combine_views([small, large])


# -- counting and cleanup helpers ------------------------------------------------------------------


@st.composite
def labelled_images(
    draw: st.DrawFn, palette: CamVidPalette
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float32]]:
    shape = (draw(st.integers(1, 10)), draw(st.integers(1, 10)))
    ids = st.sampled_from([*range(len(palette)), 255])
    pred = draw(hnp.arrays(np.uint8, shape, elements=ids))
    gt = draw(hnp.arrays(np.uint8, shape, elements=ids))
    conf = draw(hnp.arrays(np.float32, shape, elements=st.sampled_from([0.0, 0.2, 0.3, 0.5, 1.0])))
    return pred, gt, conf


@given(
    st.sampled_from([C32, C11]).flatmap(lambda p: st.tuples(st.just(p), labelled_images(p))),
    st.lists(st.none() | st.sampled_from([0.0, 0.2, 0.25, 0.3, 0.5, 1.0]), min_size=1),
)
def test_threshold_confusions_equal_one_matrix_per_threshold(
    case: tuple[CamVidPalette, tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float32]]],
    thresholds: list[float | None],
) -> None:
    palette, (pred, gt, conf) = case
    counts = threshold_confusions(pred, gt, conf, thresholds, palette)
    assert counts.shape == (len(thresholds), len(palette) + 1, len(palette) + 1)
    for threshold, got in zip(thresholds, counts, strict=True):
        matrix = ConfusionMatrix(palette)
        labels = pred if threshold is None else apply_min_confidence(pred, conf, threshold)
        matrix.update(labels, gt)
        np.testing.assert_array_equal(got, matrix.counts)


def test_threshold_confusions_reject_foreign_ids() -> None:
    ok = np.zeros((1, 2), np.uint8)
    bad = np.array([[3, 40]], np.uint8)
    conf = np.ones((1, 2), np.float32)
    with pytest.raises(ValueError, match=r"prediction holds ids .* camvid11 .*: 40"):
        threshold_confusions(bad, ok, conf, [None], C11)
    with pytest.raises(ValueError, match=r"ground truth holds ids .*: 40"):
        threshold_confusions(ok, bad, conf, [None], C11)
    with pytest.raises(ValueError, match="one shape"):
        threshold_confusions(ok, ok, np.ones((2, 1), np.float32), [None], C11)
    counter = ThresholdCounter(ok, conf, [None, 0.5], C11)
    with pytest.raises(ValueError, match=r"prediction must have the ground truth's shape"):
        counter.counts(np.zeros((2, 1), np.uint8))
    np.testing.assert_array_equal(
        counter.counts(ok), threshold_confusions(ok, ok, conf, [None, 0.5], C11)
    )


cleanup_configs = st.builds(
    CleanupConfig,
    opening=st.integers(0, 2),
    closing=st.integers(0, 2),
    shape=st.sampled_from(["square", "cross", "disk"]),
    min_region=st.sampled_from([0, 1, 2, 4, 9]),
    connectivity=st.sampled_from([4, 8]),
    majority=st.sampled_from([0, 1, 3, 5]),
    classes=st.none() | st.just([1, 2]),
)


small_maps = hnp.arrays(
    np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.sampled_from([1, 2, 5])
)


@given(small_maps, st.lists(cleanup_configs, min_size=1, max_size=6))
def test_cleaned_variants_equal_cleanup_apply(
    labels: NDArray[np.uint8], configs: list[CleanupConfig]
) -> None:
    produced = list(cleaned_variants(labels, configs))
    assert [c for c, _ in produced] == configs
    for config, out in produced:
        np.testing.assert_array_equal(out, config.apply(labels))
        np.testing.assert_array_equal(out, canonical_cleanup(config).apply(labels))


# -- settings, spaces, objectives ------------------------------------------------------------------


def test_settings_are_canonical_and_ordered_by_simplicity() -> None:
    assert Setting(TTAConfig(), CleanupConfig(shape="disk", majority=1)) == Setting()
    simple = Setting(cleanup=CleanupConfig(majority=3))
    order = [
        Setting(),
        Setting(min_confidence=0.3),
        simple,
        Setting(cleanup=CleanupConfig(majority=5)),
        Setting(cleanup=CleanupConfig(majority=3, min_region=16)),
        Setting(tta=TTAConfig(flip=True)),
    ]
    assert sorted(order, key=Setting.complexity) == order
    assert Setting(tta=TTAConfig(flip=True, scales=(0.5, 1.0))).model_runs == 4
    assert simple.describe_cleanup() == "majority 3"
    assert Setting(TTAConfig(flip=True, scales=(0.75, 1))).describe_tta() == "flip, scales 0.75,1"
    config = simple.apply_to(SegmentConfig(max_side=100, min_confidence=0.9))
    assert (config.max_side, config.cleanup.majority, config.min_confidence) == (100, 3, None)


def test_search_space_axes(tmp_path: Path) -> None:
    space = SearchSpace()
    assert space.size == 2 * 48
    assert space.views() == ((1.0, False), (1.0, True))
    custom = SearchSpace.from_dict(
        {"tta": [None, {"flip": True, "scales": [0.5, 1]}], "majority": 3, "shape": ["disk"]}
    )
    assert custom.majority == (3,)
    assert custom.views() == ((1.0, False), (0.5, False), (0.5, True), (1.0, True))
    # Settings that give the same labels are one candidate: shape without opening/closing.
    no_morphology = SearchSpace(opening=[0], closing=[0])
    all_shapes = attrs.evolve(no_morphology, shape=("square", "disk", "cross"))
    assert all_shapes.cleanups() == no_morphology.cleanups()
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(custom.to_dict()))
    assert load_grid(grid) == custom


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"majority": [2]},
            r"search axis 'majority': values must be 0 \(off\) or an odd "
            r"integer \(got 2\)",
        ),
        ({"opening": [-1]}, r"search axis 'opening': values must be an integer >= 0 \(got -1\)"),
        ({"shape": ["round"]}, r"search axis 'shape'"),
        ({"connectivity": [6]}, r"search axis 'connectivity'"),
        ({"min_confidence": [1.5]}, r"search axis 'min_confidence'"),
        ({"tta": ["flip"]}, r"search axis 'tta': values must be null or"),
        ({"tta": [{"scales": []}]}, r"search axis 'tta': scales must not be empty"),
        ({"majority": []}, r"search axis 'majority' must list at least one value"),
        ({"kernel": [3]}, r"unknown search axis\(es\) 'kernel'"),
    ],
)
def test_bad_grids(data: dict[str, object], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        SearchSpace.from_dict(data)
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=rf"{path}: "):
        load_grid(path)


def test_grid_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such grid file"):
        load_grid(tmp_path / "nope.json")
    path = tmp_path / "g.json"
    path.write_text("[")
    with pytest.raises(ConfigError, match=rf"{path}: not valid JSON"):
        load_grid(path)


def test_objectives() -> None:
    assert Objective.parse("mIoU", C32) == Objective()
    assert Objective.parse("iou:column_pole", C32).class_name == "Column_Pole"
    assert Objective.parse("IoU: road", C11).label == "IoU Road"
    for bad, message in [
        ("accuracy", "must be 'miou' or 'iou:CLASS'"),
        ("iou:", "must be 'miou' or 'iou:CLASS'"),
        ("iou:Void", "not a scored class of camvid32"),
        ("iou:Pavement", "not a scored class of camvid32"),
    ]:
        with pytest.raises(ConfigError, match=message):
            Objective.parse(bad, C32)


# -- tuning options and problems -------------------------------------------------------------------


def test_class_objective_and_camvid11(tuned: tuple[TuneResult, Path], scenes: list[Path]) -> None:
    _, cache = tuned
    backend = SpeckleNoiseBackend()
    result = tune(
        scenes, scenes[0].parent, model=backend, cache_dir=cache, base=SegmentConfig(classes=11),
        objective="iou:pedestrian",
    )  # fmt: skip
    assert backend.calls == 0  # predictions are CamVid-32: the cache serves both label sets
    assert result.best.result.palette == C11
    best, base = result.best.score, result.baseline.score
    assert best is not None
    assert base is not None
    assert best > base + 0.02
    assert result.config.classes == 11
    assert result.best.score == result.best.result.per_class["Pedestrian"]
    assert result.table().splitlines()[0].split()[:4] == ["rank", "IoU", "Pedestrian", "mIoU"]
    segmenter = result.config.build_segmenter(SpeckleNoiseBackend())
    measured = evaluate_segmenter(segmenter, scenes, scenes[0].parent)
    assert measured.per_class["Pedestrian"] == result.best.score


def test_undefined_objective_is_an_error(scenes: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="iou:Train is undefined for every setting"):
        tune(
            scenes[:1], scenes[0].parent, model=NearestColorBackend(), cache_dir=tmp_path,
            objective="iou:train", space=SearchSpace(tta=[None], majority=[0]),
        )  # fmt: skip


def test_problems_are_reported_and_the_rest_tuned(tmp_path: Path) -> None:
    images = write_scenes(tmp_path / "data", count=2, size=(24, 32))
    Image.fromarray(street_scene(24, 32, seed=9)[0]).save(tmp_path / "data" / "lonely.png")
    Image.fromarray(street_scene(20, 32, seed=8)[0]).save(tmp_path / "data" / "small.png")
    Image.fromarray(C32.colorize(street_scene(24, 32, seed=8)[1])).save(
        tmp_path / "data" / "small_L.png"
    )
    result = tune(
        tmp_path / "data", tmp_path / "data", model=NearestColorBackend(),
        cache_dir=tmp_path / "cache", space=SearchSpace(tta=[None], majority=[0, 3]),
    )  # fmt: skip
    kinds = sorted((p.kind, Path(p.path).name) for p in result.problems)
    assert kinds == [("missing_ground_truth", "lonely.png"), ("size_mismatch", "small.png")]
    assert result.num_images == len(images) == 2
    assert result.baseline.score == 1.0  # the clean fake is exact


def test_bad_arguments(scenes: list[Path], tmp_path: Path) -> None:
    folder = scenes[0].parent
    model = NearestColorBackend()
    with pytest.raises(ConfigError, match="no such folder"):
        tune(scenes, tmp_path / "nope", model=model, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="no image pairs with ground truth"):
        tune(scenes, tmp_path, model=model, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="model_key is required"):
        tune(scenes, folder, model=lambda: model, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="search must be"):
        tune(scenes, folder, model=model, cache_dir=tmp_path, search="random")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="batch_size"):
        tune(scenes, folder, model=model, cache_dir=tmp_path, batch_size=0)


def test_batches_and_tta_scores_are_exact_with_every_class(
    scenes: list[Path], tmp_path: Path
) -> None:
    # top_k = 32 keeps every class: a TTA setting then scores what `segment` produces.
    tta = TTAConfig(flip=True, scales=(0.75, 1.0))
    space = SearchSpace(tta=[tta], opening=[0], closing=[0], min_region=[0], majority=[0, 3])
    backend = SpeckleNoiseBackend()
    result = tune(
        scenes[:3], scenes[0].parent, model=backend, cache_dir=tmp_path, space=space, top_k=32,
        batch_size=2,
    )  # fmt: skip
    assert backend.calls == 2 * 4  # 4 views, images in batches of 2
    for trial in result.trials[:2]:
        config = trial.setting.apply_to(SegmentConfig())
        measured = evaluate_segmenter(config.build_segmenter(backend), scenes[:3], scenes[0].parent)
        assert measured.confusion.equals(trial.result.confusion), trial.setting


def test_default_top_k_is_a_close_approximation(
    tuned: tuple[TuneResult, Path], scenes: list[Path]
) -> None:
    result, _ = tuned
    assert DEFAULT_TOP_K == 3
    flipped = [t for t in result.trials if t.setting.tta is not None][:5]
    for trial in flipped:
        config = trial.setting.apply_to(SegmentConfig())
        measured = evaluate_segmenter(
            config.build_segmenter(SpeckleNoiseBackend()), scenes, scenes[0].parent
        )
        assert measured.miou is not None
        assert trial.score is not None
        assert abs(measured.miou - trial.score) < 5e-3


def test_model_factory_is_called_once(scenes: list[Path], tmp_path: Path) -> None:
    made: list[SpeckleNoiseBackend] = []

    def factory() -> Backend:
        made.append(SpeckleNoiseBackend())
        return made[-1]

    make: Callable[[], Backend] = factory
    tune(
        scenes, scenes[0].parent, model=make, model_key="speckle", cache_dir=tmp_path,
        space=SearchSpace(majority=[0]),
    )  # fmt: skip
    assert len(made) == 1
    assert made[0].calls == 8


def test_segnet_ground_truth_needs_classes_11(scenes: list[Path], tmp_path: Path) -> None:
    from camvidseg import get_grouping

    annot = tmp_path / "testannot"
    annot.mkdir()
    for i in range(2):
        grouped = get_grouping("merge").remap(street_scene(72, 96, seed=i)[1])
        Image.fromarray(grouped, mode="L").save(annot / f"{i}.png")
    space = SearchSpace(tta=[None], opening=[0], closing=[0], min_region=[0], majority=[0, 3])
    with pytest.raises(ConfigError, match="tune with --classes 11"):
        tune(scenes[:2], annot, model=NearestColorBackend(), cache_dir=tmp_path, space=space)
    result = tune(
        scenes[:2], annot, model=NearestColorBackend(), cache_dir=tmp_path, space=space,
        base=SegmentConfig(classes=11),
    )  # fmt: skip
    assert result.baseline.score == 1.0
    assert result.best.setting == Setting()  # nothing beats exact labels; the simplest wins
