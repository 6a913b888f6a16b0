"""Label sets, class-list files, model metadata and the "exact" channel layout (no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from camvidseg import ConfigError, ModelLoadError
from camvidseg.labelset import (
    METADATA_PATH,
    LabelSet,
    ModelMetadata,
    output_palette,
    read_model_metadata,
    write_model_metadata,
)
from camvidseg.palette import CamVidPalette
from camvidseg.postprocess import ChannelLayout, labels_and_confidence, to_class_scores


def test_builtin_label_sets() -> None:
    c32, c11 = LabelSet.camvid32(), LabelSet.camvid11()
    assert (c32.channels, c32.ignore_ids, c32.num_classes) == (31, (30,), 32)
    assert (c11.channels, c11.ignore_ids, c11.trained_ids) == (11, (11,), tuple(range(11)))
    assert c32.to_palette() is CamVidPalette.camvid32()
    assert c11.to_palette() is CamVidPalette.camvid11()
    # The exact layout of CamVid-32 maps channels as the 32-channel model does with Void dropped.
    dropped = ChannelLayout.detect(32, drop_void=True).channel_ids
    assert c32.channel_layout().channel_ids.tolist() == dropped.tolist()
    assert c32.channel_layout().name == "exact"
    assert LabelSet.by_classes("11") is c11
    assert LabelSet.by_classes(32) is c32
    assert c32.is_camvid
    assert c32.describe() == "camvid32 (31 classes + ignored Void)"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_json_class_list(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "street.json",
        json.dumps(
            [
                {"name": "road", "color": [128, 64, 128]},
                {"name": "car", "color": [64, 0, 128]},
                {"name": "dontcare", "color": [0, 0, 0], "ignore": True},
                {"name": "person", "color": [64, 64, 0]},
            ]
        ),
    )
    label_set = LabelSet.from_file(path)
    assert label_set.name == "street"
    assert label_set.names == ("road", "car", "dontcare", "person")
    assert label_set.ignore_ids == (2,)
    assert label_set.trained_ids == (0, 1, 3)
    assert label_set.channel_of_id()[[0, 1, 2, 3, 255]].tolist() == [0, 1, 255, 2, 255]
    palette = label_set.to_palette()
    assert (palette.name, palette.void_id, palette.color_of("car")) == ("street", 2, (64, 0, 128))
    assert label_set.to_palette() is palette  # built once


def test_csv_class_list_with_header_comments_and_void(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "mine.csv",
        "name,r,g,b\n# my classes\nroad, 128, 64, 128\nsky,128,128,128\n\nVoid,0,0,0\n",
    )
    label_set = LabelSet.from_file(path)
    assert label_set.names == ("road", "sky", "Void")
    assert label_set.ignore_ids == (2,)  # a class named Void is ignored by default
    explicit = _write(tmp_path, "x.csv", "road,1,1,1,no\nsky,2,2,2,no\nVoid,0,0,0,no\n")
    assert LabelSet.from_file(explicit).ignore_ids == ()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.json", "[{'name': 1}]", "not valid JSON (Expecting property name"),
        ("a.json", '{"road": 1}', "expected a JSON list"),
        ("a.json", '[{"name": "road"}]', "entry 0 ('road'): no color"),
        ("a.json", '[{"name": "", "color": [1, 2, 3]}]', "entry 0: name must be a non-empty"),
        ("a.json", '[{"name": "r", "color": [1, 2]}]', "color must be [r, g, b]"),
        ("a.json", '[{"name": "r", "color": [1, 2, 300]}]', "component 300 is not in 0..255"),
        ("a.json", '[{"name": "r", "colour": [1, 2, 3]}]', "unknown key(s) ['colour']"),
        ("a.json", "[]", "holds no classes"),
        ("a.csv", "road,1,2,3\nsky,1,2\n", "a.csv, line 2: expected name,r,g,b[,ignore]"),
        ("a.csv", "road,1,2,x\n", "line 1: color must be three integers"),
        ("a.csv", "road,1,2,3,maybe\nsky,3,3,3\n", "line 1: ignore must be true or false"),
        ("a.csv", "road,1,2,3\nRoad,3,3,3\n", "both named 'Road'"),
        ("a.csv", "road,1,2,3\nsky,1,2,3\n", "'road' and 'sky' share the colour (1, 2, 3)"),
        ("a.csv", "road,1,2,3\nvoid,0,0,0\n", "at least 2 classes that are not ignored"),
    ],
)
def test_bad_class_lists_name_the_file_and_place(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(ConfigError) as excinfo:
        LabelSet.from_file(path)
    assert str(path) in str(excinfo.value)
    assert message in str(excinfo.value)


def test_missing_class_list(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        LabelSet.from_file(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="is a folder"):
        LabelSet.from_file(tmp_path)


_names = st.lists(
    st.text(st.characters(min_codepoint=65, max_codepoint=122), min_size=1, max_size=8),
    min_size=2,
    max_size=12,
    unique_by=str.lower,
)


@given(names=_names, data=st.data())
def test_dict_round_trip(names: list[str], data: st.DataObject) -> None:
    colors = data.draw(
        st.lists(
            st.tuples(*[st.integers(0, 255)] * 3),
            min_size=len(names),
            max_size=len(names),
            unique=True,
        )
    )
    ignored = data.draw(st.sets(st.sampled_from(range(len(names))), max_size=len(names) - 2))
    label_set = LabelSet("custom", names, colors, ignored)
    again = LabelSet.from_dict(json.loads(json.dumps(label_set.to_dict())))
    assert again == label_set
    assert hash(again) == hash(label_set)
    assert again.channels == len(names) - len(ignored)
    layout = again.channel_layout()
    assert layout.num_channels == again.channels
    assert set(layout.channel_ids.tolist()).isdisjoint(again.ignore_ids)


def test_from_dict_rejects_bad_objects() -> None:
    good = LabelSet.camvid11().to_dict()
    assert LabelSet.from_dict(good) is LabelSet.camvid11()
    with pytest.raises(ConfigError, match=r"class ids must be 0..11 in order"):
        LabelSet.from_dict({**good, "classes": good["classes"][::-1]})
    with pytest.raises(ConfigError, match="not a label set"):
        LabelSet.from_dict({"name": "x"})


def test_output_palette_rules() -> None:
    c32, c11 = LabelSet.camvid32(), LabelSet.camvid11()
    mine = LabelSet.from_classes("mine", [("a", (1, 1, 1)), ("b", (2, 2, 2))])
    assert output_palette(c32).name == "camvid32"
    assert output_palette(c32, 32).name == "camvid32"
    assert output_palette(c32, 11).name == "camvid11"  # grouped
    assert output_palette(c11, 11).name == "camvid11"
    assert output_palette(mine).name == "mine"
    with pytest.raises(ConfigError, match=r"classes 32 does not fit .* camvid11"):
        output_palette(c11, 32)
    with pytest.raises(ConfigError, match=r"classes 11 does not fit .* mine"):
        output_palette(mine, 11)


def test_model_metadata_round_trip(tmp_path: Path) -> None:
    label_set = LabelSet.from_classes("mine", [("a", (1, 1, 1)), ("b", (2, 2, 2))])
    metadata = ModelMetadata(label_set, "https://example.com/m/1", "probe1:8:1,2", 2)
    path = write_model_metadata(tmp_path, metadata)
    assert path == tmp_path / METADATA_PATH
    data = json.loads(path.read_text())
    assert data["format"] == "camvidseg-model"
    assert data["channels"] == 2
    assert data["label_set"]["classes"][1] == {"id": 1, "name": "b", "color": [2, 2, 2]}
    assert read_model_metadata(tmp_path) == metadata
    assert read_model_metadata(tmp_path / "elsewhere") is None
    with pytest.raises(ConfigError, match="channels 3 does not match"):
        ModelMetadata(label_set, "x", "y", 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "Expecting property name"),
        ('{"format": "other"}', "not a camvidseg model metadata object"),
        ('{"format": "camvidseg-model", "version": 99}', "metadata version 99"),
        ('{"format": "camvidseg-model", "version": 1}', "malformed metadata"),
    ],
)
def test_bad_metadata_names_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / METADATA_PATH
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(ModelLoadError) as excinfo:
        read_model_metadata(tmp_path)
    assert str(path) in str(excinfo.value)
    assert message in str(excinfo.value)


def test_exact_layout_labels_and_class_scores() -> None:
    label_set = LabelSet.from_classes(
        "mine", [("a", (1, 1, 1)), ("void", (0, 0, 0)), ("b", (2, 2, 2))], ignore=["void"]
    )
    layout = label_set.channel_layout()
    scores = np.array([[[0.9, 0.1], [0.2, 0.8]]], np.float32)
    labels, conf = labels_and_confidence(scores, layout)
    assert labels.tolist() == [[0, 2]]
    assert conf[0].tolist() == pytest.approx([0.9, 0.8])
    class_scores = to_class_scores(scores, layout)
    assert class_scores.shape == (1, 2, 3)
    assert class_scores[0, 1].tolist() == pytest.approx([0.2, 0.0, 0.8])
