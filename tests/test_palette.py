from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from numpy.typing import NDArray

from camvidseg import CamVidPalette, PaletteError, UnknownColorError, get_grouping
from camvidseg.palette import MERGE_32_TO_11, ClassGrouping, available_groupings, register_grouping
from tests.strategies import label_maps


def test_camvid32_matches_reference_table() -> None:
    p = CamVidPalette.camvid32()
    assert len(p) == 32
    assert p.names[0] == "Animal"
    assert p.names[31] == "Wall"
    assert p.id_of("Void") == 30 == p.void_id
    assert p.color_of("Road") == (128, 64, 128)
    assert p.color_of(21) == (128, 128, 128)
    assert p.colors.shape == (32, 3)
    assert p.colors.dtype == np.uint8
    assert len({tuple(c) for c in p.colors.tolist()}) == 32  # colours are unique: decodable


def test_camvid11_order_and_void() -> None:
    p = CamVidPalette.camvid11()
    assert p.names == (
        "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
        "Pedestrian", "Bicyclist", "Void",
    )  # fmt: skip
    assert p.void_id == 11
    assert p.color_of("Pavement") == (60, 40, 222)
    assert p.scored_ids == tuple(range(11))


def test_lookups_are_case_insensitive_and_errors_list_classes() -> None:
    p = CamVidPalette.camvid32()
    assert p.id_of("road") == 17
    with pytest.raises(PaletteError, match=r"no class named 'Roadd'.*Animal"):
        p.id_of("Roadd")
    with pytest.raises(PaletteError, match="class id 40"):
        p.name_of(40)
    assert p.name_of(255) == "unlabelled"


def test_palette_is_immutable() -> None:
    p = CamVidPalette.camvid32()
    with pytest.raises(ValueError, match="read-only"):
        p.colors[0, 0] = 1


def test_palette_validation() -> None:
    with pytest.raises(PaletteError, match="2 names but 1 colours"):
        CamVidPalette("x", ("a", "b"), np.zeros((1, 3), np.uint8))
    with pytest.raises(PaletteError, match=r"\(N, 3\) uint8"):
        CamVidPalette("x", ("a",), np.zeros((1, 4), np.uint8))
    with pytest.raises(PaletteError, match="duplicate"):
        CamVidPalette("x", ("a", "a"), np.zeros((2, 3), np.uint8))


def test_by_name() -> None:
    assert CamVidPalette.by_name("32") is CamVidPalette.camvid32()
    assert CamVidPalette.by_name("CamVid11") is CamVidPalette.camvid11()
    with pytest.raises(PaletteError, match="unknown palette"):
        CamVidPalette.by_name("21")


@given(label_maps())
def test_colorize_decode_round_trip(labels: NDArray[np.uint8]) -> None:
    p = CamVidPalette.camvid32()
    rgb = p.colorize(labels)
    assert rgb.shape == (*labels.shape, 3)
    np.testing.assert_array_equal(rgb, p.colors[labels])
    np.testing.assert_array_equal(p.decode(rgb), labels)


@given(label_maps(12))
def test_colorize_decode_round_trip_camvid11(labels: NDArray[np.uint8]) -> None:
    p = CamVidPalette.camvid11()
    np.testing.assert_array_equal(p.decode(p.colorize(labels)), labels)


def test_decode_unknown_colours() -> None:
    p = CamVidPalette.camvid32()
    rgb = np.array([[[128, 64, 128], [1, 2, 3], [1, 2, 3]]], np.uint8)
    with pytest.raises(UnknownColorError, match=r"2 pixels .*\(1, 2, 3\)"):
        p.decode(rgb)
    assert p.decode(rgb, unknown="void").tolist() == [[17, 30, 30]]
    assert p.decode(rgb, unknown="unlabelled").tolist() == [[17, 255, 255]]
    with pytest.raises(UnknownColorError, match="HxWx3 uint8"):
        p.decode(np.zeros((2, 2), np.uint8))


def test_colorize_unlabelled_is_black() -> None:
    p = CamVidPalette.camvid32()
    assert p.colorize(np.array([[255]], np.uint8)).tolist() == [[[0, 0, 0]]]


def test_merge_grouping_matches_reference() -> None:
    g = get_grouping("merge")
    s, t = g.source, g.target
    expected = {
        "Archway": "Building", "Wall": "Building", "TrafficCone": "Pole", "LaneMkgsNonDriv": "Road",
        "RoadShoulder": "Pavement", "ParkingBlock": "Pavement", "VegetationMisc": "Tree",
        "TrafficLight": "SignSymbol", "Misc_Text": "SignSymbol", "Train": "Car",
        "OtherMoving": "Car", "Animal": "Pedestrian", "CartLuggagePram": "Pedestrian",
        "MotorcycleScooter": "Bicyclist", "Void": "Void", "Sky": "Sky",
    }  # fmt: skip
    for source_name, target_name in expected.items():
        assert g.lut[s.id_of(source_name)] == t.id_of(target_name), source_name
    assert g.lut[255] == 255
    assert sum(len(v) for v in MERGE_32_TO_11.values()) == 32
    assert "merge" in available_groupings()


@pytest.mark.usefixtures("isolated_groupings")
def test_grouping_is_data_driven() -> None:
    strict = dict(MERGE_32_TO_11)
    strict["Void"] = ("Void", "Animal")
    strict["Pedestrian"] = ("Pedestrian", "Child", "CartLuggagePram")
    g = ClassGrouping.from_mapping("test-strict", strict)
    assert g.remap(np.array([[0, 16]], np.uint8)).tolist() == [[11, 9]]
    register_grouping(g, replace=True)
    assert get_grouping("test-strict") is g
    with pytest.raises(PaletteError, match="already exists"):
        register_grouping(g)
    assert available_groupings() == ("merge", "test-strict")


def test_grouping_rejects_incomplete_or_duplicate_maps() -> None:
    with pytest.raises(PaletteError, match=r"does not assign: .*Wall"):
        ClassGrouping.from_mapping(
            "x", {k: v for k, v in MERGE_32_TO_11.items() if k != "Building"}
        )
    dup = dict(MERGE_32_TO_11)
    dup["Sky"] = ("Sky", "Road")
    with pytest.raises(PaletteError, match="assigns 'Road' twice"):
        ClassGrouping.from_mapping("x", dup)
    with pytest.raises(PaletteError, match="unknown grouping 'nope'"):
        get_grouping("nope")


def test_pil_palette_has_768_entries() -> None:
    flat = CamVidPalette.camvid32().to_pil_palette()
    assert len(flat) == 768
    assert flat[17 * 3 : 17 * 3 + 3] == [128, 64, 128]
