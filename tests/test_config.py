"""SegmentConfig: validation, JSON round trips, config files, building Segmenters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from camvidseg import CamVidPalette, CleanupConfig, ConfigError, Segmenter, TTAConfig
from camvidseg.config import CONFIG_VERSION, SegmentConfig, load_config, save_config
from camvidseg.testing import NearestColorBackend, street_scene

# -- strategies ------------------------------------------------------------------------------------

cleanups = st.builds(
    CleanupConfig,
    opening=st.integers(0, 3),
    closing=st.integers(0, 3),
    shape=st.sampled_from(["square", "cross", "disk"]),
    min_region=st.integers(0, 1000),
    connectivity=st.sampled_from([4, 8]),
    majority=st.sampled_from([0, 1, 3, 5, 7]),
    classes=st.none() | st.lists(st.integers(0, 10), max_size=4),
)
ttas = st.none() | st.builds(
    TTAConfig,
    flip=st.booleans(),
    scales=st.lists(
        st.floats(0.25, 4.0, allow_nan=False).map(lambda s: round(s, 3)),
        min_size=1,
        max_size=4,
        unique=True,
    ),
)


@st.composite
def configs(draw: st.DrawFn) -> SegmentConfig:
    tile = draw(st.none() | st.integers(16, 1024))
    return SegmentConfig(
        model=draw(st.none() | st.text(max_size=30)),
        classes=draw(st.sampled_from([32, 11])),
        max_side=draw(st.none() | st.integers(1, 10_000)),
        batch_size=draw(st.integers(1, 64)),
        tile=tile,
        overlap=draw(st.integers(0, (tile or 512) // 2)),
        drop_void=draw(st.booleans()),
        tta=draw(ttas),
        cleanup=draw(cleanups),
        min_confidence=draw(st.none() | st.floats(0.0, 1.0, allow_nan=False)),
        description=draw(st.text(max_size=40)),
    )


# -- round trips -----------------------------------------------------------------------------------


@given(configs())
def test_dict_and_json_round_trip(config: SegmentConfig) -> None:
    data = config.to_dict()
    assert data["version"] == CONFIG_VERSION
    assert next(iter(data)) == "version"
    assert SegmentConfig.from_dict(data) == config
    assert SegmentConfig.from_dict(json.loads(config.to_json())) == config


@given(configs())
def test_file_round_trip(tmp_path_factory: pytest.TempPathFactory, config: SegmentConfig) -> None:
    folder = tmp_path_factory.mktemp("configs")
    path = save_config(config, folder / "sub" / "c.json")
    assert load_config(path) == config
    assert [p.name for p in path.parent.iterdir()] == ["c.json"]  # no temporary file left


def test_defaults_and_identity_tta() -> None:
    config = SegmentConfig.from_dict({})
    assert config == SegmentConfig()
    assert config.classes == 32
    assert config.tta is None
    assert not config.cleanup.enabled
    assert SegmentConfig(tta=TTAConfig()).tta is None  # the identity is no augmentation
    assert SegmentConfig.from_dict({"tta": {"flip": False, "scales": [1]}}).tta is None
    assert SegmentConfig.from_dict({"min_confidence": 1}).min_confidence == 1.0


def test_version_may_be_omitted_but_not_newer() -> None:
    assert SegmentConfig.from_dict({"classes": 11}).classes == 11
    with pytest.raises(ConfigError, match=r"key 'version'.*got 2"):
        SegmentConfig.from_dict({"version": CONFIG_VERSION + 1})
    with pytest.raises(ConfigError, match=r"key 'version'"):
        SegmentConfig.from_dict({"version": 0})


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"maxside": 3}, r"unknown key\(s\) 'maxside'; expected some of version, model"),
        ({"max_side": "512"}, r"max_side must be an integer >= 1 or null \(got '512'\)"),
        ({"max_side": 0}, r"max_side must be an integer >= 1 or null \(got 0\)"),
        ({"max_side": True}, r"max_side must be an integer >= 1 or null \(got True\)"),
        ({"classes": 12}, r"classes must be 32 or 11 \(got 12\)"),
        ({"classes": "11"}, r"classes must be 32 or 11 \(got '11'\)"),
        ({"grouping": "strict"}, r"grouping must be one of merge \(got 'strict'\)"),
        ({"min_confidence": 1.5}, r"min_confidence must be a number in \[0, 1\]"),
        ({"min_confidence": "high"}, r"min_confidence must be a number in \[0, 1\] or null"),
        ({"overlap": 300}, r"overlap must be at most half the tile \(256; got 300\)"),
        ({"tile": 100, "overlap": 64}, r"overlap must be at most half the tile \(50; got 64\)"),
        ({"drop_void": "no"}, r"drop_void must be true or false \(got 'no'\)"),
        ({"tta": [1.0]}, r"tta must be an object or null \(got \[1.0\]\)"),
        ({"tta": {"flip": 1}}, r"key 'tta': flip must be true or false \(got 1\)"),
        ({"tta": {"scales": []}}, r"key 'tta': scales must not be empty"),
        ({"tta": {"scales": [0.5, "x"]}}, r"key 'tta': every scale must be a number in \(0, 4\] "
         r"\(got 'x'\)"),
        ({"tta": {"mirror": True}}, r"unknown key\(s\) 'tta.mirror'"),
        ({"cleanup": {"majority": 4}}, r"key 'cleanup': majority must be 0 \(off\) or an odd"),
        ({"cleanup": {"majority": "3"}}, r"key 'cleanup': majority must be .*\(got '3'\)"),
        ({"cleanup": {"shape": "round"}}, r"key 'cleanup': shape must be one of square, cross, "
         r"disk"),
        ({"cleanup": {"min_region": -1}}, r"min_region must be an integer >= 0"),
        ({"cleanup": {"classes": [40]}}, r"cleanup.classes must be ids of CamVid-32 \(0..31\); "
         r"got \[40\]"),
        ({"classes": 11, "cleanup": {"classes": [11, 12]}}, r"ids of CamVid-11 \(0..11\); got "
         r"\[12\]"),
        ({"cleanup": {"radius": 2}}, r"unknown key\(s\) 'cleanup.radius'"),
        ({"model": 3}, r"model must be a string \(model handle or folder\) or null \(got 3\)"),
        ({"description": None}, r"description must be a string \(got None\)"),
        ({"batch_size": 0}, r"batch_size must be an integer >= 1 \(got 0\)"),
        ({"batch_size": 2.0}, r"batch_size must be an integer >= 1 \(got 2.0\)"),
    ],
)  # fmt: skip
def test_bad_values_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SegmentConfig.from_dict(data)


def test_not_an_object() -> None:
    with pytest.raises(ConfigError, match=r"a config must be a JSON object \(got \[1, 2\]\)"):
        SegmentConfig.from_dict([1, 2])  # type: ignore[arg-type]


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ConfigError, match="tta must be a TTAConfig"):
        SegmentConfig(tta={"flip": True})
    with pytest.raises(ConfigError, match="cleanup must be a CleanupConfig"):
        SegmentConfig(cleanup={"majority": 3})
    with pytest.raises(ConfigError, match="classes must be 32 or 11"):
        SegmentConfig(classes=33)


# -- files -----------------------------------------------------------------------------------------


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ConfigError, match=rf"{missing}: no such config file"):
        load_config(missing)
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"max_side": 512,\n "tile": }')
    with pytest.raises(ConfigError, match=rf"{broken}: not valid JSON \(.* line 2, column 10\)"):
        load_config(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"cleanup": {"majority": "3"}}))
    with pytest.raises(ConfigError, match=rf"{wrong}: key 'cleanup': majority must be"):
        load_config(wrong)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match=rf"{binary}: cannot read config file"):
        load_config(binary)


def test_save_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    save_config(SegmentConfig(max_side=10), path)
    save_config(SegmentConfig(max_side=20), path)
    assert load_config(path).max_side == 20
    assert json.loads(path.read_text())["version"] == CONFIG_VERSION
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


# -- building Segmenters ---------------------------------------------------------------------------


def test_segmenter_options_build_a_segmenter() -> None:
    config = SegmentConfig(
        classes=11,
        max_side=64,
        tile=32,
        overlap=8,
        tta=TTAConfig(flip=True),
        cleanup=CleanupConfig(majority=3),
        min_confidence=0.25,
    )
    segmenter = config.build_segmenter(NearestColorBackend(), batch_size=2)
    assert segmenter.palette == CamVidPalette.camvid11()
    assert (segmenter.max_side, segmenter.tile, segmenter.overlap) == (64, 32, 8)
    assert segmenter.tta == TTAConfig(flip=True)
    assert segmenter.cleanup == CleanupConfig(majority=3)
    assert (segmenter.min_confidence, segmenter.batch_size) == (0.25, 2)
    assert SegmentConfig().segmenter_options()["cleanup"] is None  # nothing to run
    same = Segmenter(NearestColorBackend(), **config.segmenter_options())
    image, _ = street_scene(40, 48, seed=3)
    np.testing.assert_array_equal(segmenter.segment(image).labels, same.segment(image).labels)


@pytest.mark.tf
def test_build_segmenter_loads_the_model_handle(fake_savedmodel: Path) -> None:
    segmenter = SegmentConfig(model=str(fake_savedmodel)).build_segmenter()
    image, truth = street_scene(24, 32, seed=1)
    np.testing.assert_array_equal(segmenter.segment(image).labels, truth)
