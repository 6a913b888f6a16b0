"""``drop_void`` reaches the argmax on every path that builds or runs a Segmenter.

With a 32-channel model channel 0 is Void. The fake model gives black pixels to Void (colour
(0, 0, 0)); with ``drop_void`` channel 0 is discarded and the nearest other colour wins:
TrafficCone (0, 0, 64). So a half-black image tells at once whether the setting was honoured.
Public names only: the modules that build Segmenters are being reorganised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from camvidseg import Segmenter
from camvidseg.backends.fake import NearestColorBackend
from camvidseg.cli import main
from camvidseg.config import SegmentConfig
from camvidseg.imageio import load_label_png
from camvidseg.palette import CamVidPalette
from camvidseg.tta import TTAConfig
from camvidseg.tune import SearchSpace, tune

C32 = CamVidPalette.camvid32()
ROAD, VOID, TRAFFIC_CONE = C32.id_of("Road"), C32.id_of("Void"), C32.id_of("TrafficCone")
HEIGHT, WIDTH, SPLIT = 16, 24, 12
#: Columns at least 3 pixels from the Road/black edge: exact even after a resize.
INTERIOR = np.r_[0 : SPLIT - 3, SPLIT + 3 : WIDTH]
#: Only the search's baseline: drop_void is a base setting, not a tuned one.
BASELINE_ONLY = SearchSpace(
    tta=[None], opening=[0], closing=[0], min_region=[0], majority=[0], min_confidence=[None]
)


def half_black() -> NDArray[np.uint8]:
    """Road on the left, black on the right."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[:, :SPLIT] = C32.color_of("Road")
    return image


def expected(drop_void: bool) -> NDArray[np.uint8]:
    labels = np.full((HEIGHT, WIDTH), ROAD, np.uint8)
    labels[:, SPLIT:] = TRAFFIC_CONE if drop_void else VOID
    return labels


def test_the_fake_model_puts_black_on_channel_0() -> None:
    # The premise of this file: on black, channel 0 (Void) wins, and TrafficCone comes next.
    batch = half_black()[None].astype(np.float32) / np.float32(255.0)
    scores = NearestColorBackend(channels=32).predict(batch)[0]
    assert set(scores[:, SPLIT:].argmax(-1).ravel().tolist()) == {0}
    runner_up = np.argsort(scores[0, -1])[-2]
    assert runner_up == TRAFFIC_CONE + 1  # channels 1.. are ids 0..29 in order


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"tile": 10, "overlap": 3, "batch_size": 2},
        {"tta": TTAConfig(flip=True, scales=(1.0, 0.5))},
        {"max_side": 12},
    ],
    ids=["whole", "tiled", "tta", "max_side"],
)
@pytest.mark.parametrize("drop_void", [True, False])
def test_segmenter(options: dict[str, Any], drop_void: bool) -> None:
    segmenter = Segmenter(NearestColorBackend(channels=32), drop_void=drop_void, **options)
    # Three images: the first learns the layout, the later ones may take the fused-label path.
    results = segmenter.segment_batch([half_black()] * 3, return_scores=False)
    for seg in results:
        np.testing.assert_array_equal(seg.labels[:, INTERIOR], expected(drop_void)[:, INTERIOR])
        assert (VOID in seg.labels) is not drop_void
    scored = segmenter.segment(half_black(), return_scores=True)
    assert scored.scores is not None
    if drop_void:
        assert float(np.abs(scored.scores[..., VOID]).max()) == 0.0
    else:
        assert float(scored.scores[:, -1, VOID].min()) > 0.5


@pytest.mark.parametrize("drop_void", [True, False])
def test_segment_config_build_segmenter(drop_void: bool) -> None:
    config = SegmentConfig.from_dict(json.loads(json.dumps({"drop_void": drop_void})))
    assert config.drop_void is drop_void
    segmenter = config.build_segmenter(NearestColorBackend(channels=32))
    np.testing.assert_array_equal(segmenter.segment(half_black()).labels, expected(drop_void))


@pytest.mark.parametrize("drop_void", [True, False])
def test_cli_segment_with_a_config_file(tmp_path: Path, drop_void: bool) -> None:
    Image.fromarray(half_black()).save(tmp_path / "a.png")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"drop_void": drop_void}))
    code = main(["segment", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model",
                 "fake:32", "--config", str(config), "--outputs", "labels", "-q"])  # fmt: skip
    assert code == 0
    labels = load_label_png(tmp_path / "out" / "labels" / "a.png")
    np.testing.assert_array_equal(labels, expected(drop_void))


@pytest.fixture
def tune_data(tmp_path: Path) -> Path:
    """One half-black image whose ground truth says TrafficCone where it is black."""
    (tmp_path / "images").mkdir()
    (tmp_path / "gt").mkdir()
    Image.fromarray(half_black()).save(tmp_path / "images" / "a.png")
    Image.fromarray(C32.colorize(expected(drop_void=True))).save(tmp_path / "gt" / "a_L.png")
    return tmp_path


def test_tune_predictions(tune_data: Path) -> None:
    # Both runs share one prediction cache: the cached views must not mix the two settings.
    for drop_void, accuracy in ((False, 0.5), (True, 1.0), (False, 0.5)):
        result = tune(
            tune_data / "images",
            tune_data / "gt",
            model=NearestColorBackend(channels=32),
            cache_dir=tune_data / "cache",
            base=SegmentConfig(drop_void=drop_void),
            space=BASELINE_ONLY,
        )
        metrics = result.baseline.result
        assert metrics.pixel_accuracy == accuracy, drop_void
        assert metrics.per_class["TrafficCone"] == (1.0 if drop_void else 0.0)
        assert metrics.per_class["Road"] == 1.0
        assert result.config.drop_void is drop_void


def test_cli_tune_with_a_config_file(tune_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tune_data / "grid.json"
    grid.write_text(json.dumps(BASELINE_ONLY.to_dict()))
    for drop_void, accuracy in ((True, 1.0), (False, 0.5)):
        config = tune_data / "config.json"
        config.write_text(json.dumps({"drop_void": drop_void}))
        code = main(["tune", str(tune_data / "images"), str(tune_data / "gt"), "--model",
                     "fake:32", "--cache", str(tune_data / "cache"), "--config", str(config),
                     "--grid", str(grid), "--json"])  # fmt: skip
        assert code == 0
        report = json.loads(capsys.readouterr().out)
        assert report["baseline"]["pixel_accuracy"] == accuracy, drop_void
        assert report["config"]["drop_void"] is drop_void


@pytest.mark.tf
@pytest.mark.parametrize("drop_void", [True, False])
def test_segment_config_with_a_savedmodel(fake_savedmodel_32: Path, drop_void: bool) -> None:
    # The TF backend may compute labels inside the graph: the layout must reach it too.
    config = SegmentConfig(model=str(fake_savedmodel_32), drop_void=drop_void)
    segmenter = config.build_segmenter()
    for seg in segmenter.segment_batch([half_black()] * 2):
        np.testing.assert_array_equal(seg.labels, expected(drop_void))
