from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from numpy.typing import NDArray
from PIL import Image

from camvidseg import CamVidPalette, ConfigError, InvalidImageError, UnknownColorError
from camvidseg.exceptions import InvalidLabelError
from camvidseg.groundtruth import (
    embedded_palette,
    ground_truth_key,
    list_files,
    pair_by_stem,
    read_label_file,
    to_label_set,
)
from camvidseg.imageio import save_label_png
from camvidseg.palette import get_grouping
from camvidseg.testing import street_scene
from tests.strategies import label_maps

ROOT = Path(__file__).resolve().parents[1]
C32, C11 = CamVidPalette.camvid32(), CamVidPalette.camvid11()


@pytest.mark.parametrize(("index", "seed"), [(1, 3), (2, 5), (3, 8)])
def test_bundled_rgb_labels_decode_to_their_scene(index: int, seed: int) -> None:
    # scripts/make_examples.py draws street_NN with these seeds.
    path = ROOT / "examples" / "labels" / f"street_{index:02d}_L.png"
    label = read_label_file(path)
    _, truth = street_scene(360, 480, seed=seed)
    assert label.format == "rgb"
    assert label.palette is C32
    assert label.shape == (360, 480)
    np.testing.assert_array_equal(label.labels, truth)


@given(label_maps(32))
def test_rgb_round_trip_and_palettised_rgb(labels: NDArray[np.uint8]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rgb_path = Path(tmp) / "a_L.png"
        Image.fromarray(C32.colorize(labels)).save(rgb_path)
        for fmt in ("auto", "rgb"):
            np.testing.assert_array_equal(
                read_label_file(rgb_path, label_format=fmt).labels, labels
            )
        # The same colours stored as an indexed PNG in a shuffled colour order.
        order = np.random.default_rng(int(labels.sum())).permutation(32)
        indexed = Image.fromarray(np.argsort(order).astype(np.uint8)[labels], mode="P")
        indexed.putpalette(C32.colors[order].reshape(-1).tolist())
        p_path = Path(tmp) / "b_L.png"
        indexed.save(p_path)
        decoded = read_label_file(p_path)
        assert decoded.format == "rgb"
        np.testing.assert_array_equal(decoded.labels, labels)


def test_unknown_colours_error_or_void(tmp_path: Path) -> None:
    rgb = C32.colorize(np.full((4, 5), 17, np.uint8))
    rgb[1, 2] = (1, 2, 3)
    path = tmp_path / "x_L.png"
    Image.fromarray(rgb).save(path)
    with pytest.raises(UnknownColorError, match=r"x_L\.png: 1 pixels .*\(1, 2, 3\)"):
        read_label_file(path)
    labels = read_label_file(path, unknown="void").labels
    assert labels[1, 2] == C32.void_id
    assert (labels[labels != C32.void_id] == 17).all()


def test_segnet_index_labels(tmp_path: Path) -> None:
    ids = np.array([[0, 3, 11], [10, 5, 4]], np.uint8)
    Image.fromarray(ids, mode="L").save(tmp_path / "seq_001.png")
    label = read_label_file(tmp_path / "seq_001.png")
    assert label.format == "index"
    assert label.palette is C11
    np.testing.assert_array_equal(label.labels, ids)
    Image.fromarray(np.array([[0, 12]], np.uint8), mode="L").save(tmp_path / "bad.png")
    with pytest.raises(
        InvalidLabelError, match=r"bad\.png holds ids that are not classes of camvid11.*: 12"
    ):
        read_label_file(tmp_path / "bad.png")
    # An index PNG may hold CamVid-32 ids when asked (or when its palette says so).
    Image.fromarray(np.array([[0, 31]], np.uint8), mode="L").save(tmp_path / "c.png")
    assert read_label_file(tmp_path / "c.png", index_palette=C32).labels.tolist() == [[0, 31]]


def test_index_pngs_written_by_segment_carry_their_label_set(tmp_path: Path) -> None:
    labels32 = np.array([[17, 21, 255]], np.uint8)
    save_label_png(tmp_path / "a.png", labels32, C32)
    label = read_label_file(tmp_path / "a.png")
    assert (label.palette, label.format) == (C32, "index")
    np.testing.assert_array_equal(label.labels, labels32)
    save_label_png(tmp_path / "b.png", np.array([[3, 11]], np.uint8), C11)
    assert read_label_file(tmp_path / "b.png").palette is C11
    assert read_label_file(tmp_path / "b.png", label_format="index").palette is C11


def test_format_mismatch_and_unreadable_files(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(InvalidImageError, match=r"rgb\.png: an index label file .*mode RGB"):
        read_label_file(tmp_path / "rgb.png", label_format="index")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(InvalidImageError, match=r"junk\.png: not an image"):
        read_label_file(tmp_path / "junk.png")
    with pytest.raises(InvalidImageError, match="no such file"):
        read_label_file(tmp_path / "missing.png")
    with pytest.raises(ConfigError, match="'auto', 'rgb' or 'index'"):
        read_label_file(tmp_path / "rgb.png", label_format="bmp")  # type: ignore[arg-type]


def test_embedded_palette_detection() -> None:
    assert embedded_palette(C32.to_pil_palette()) is C32
    assert embedded_palette(C11.to_pil_palette()) is C11
    assert embedded_palette(C32.to_pil_palette()[:90]) is None  # truncated table
    assert embedded_palette(None) is None
    assert embedded_palette(list(range(768))) is None


def test_to_label_set() -> None:
    labels = np.array([[17, 10, 30, 255, 31]], np.uint8)
    np.testing.assert_array_equal(to_label_set(labels, C32, C32), labels)
    np.testing.assert_array_equal(to_label_set(labels, C32, C11), get_grouping().remap(labels))
    assert to_label_set(labels, C32, C11).tolist() == [[3, 3, 11, 255, 1]]
    with pytest.raises(ConfigError, match="cannot evaluate camvid11 labels as camvid32"):
        to_label_set(np.zeros((1, 1), np.uint8), C11, C32)
    with pytest.raises(ConfigError, match="unknown grouping 'strict'"):
        to_label_set(labels, C32, C11, grouping="strict")


def test_keys_and_listing(tmp_path: Path) -> None:
    assert ground_truth_key("a/0001TP_006690_L.png") == "0001TP_006690"
    assert ground_truth_key("0001TP_006690.png") == "0001TP_006690"
    assert ground_truth_key("x_Lane.png") == "x_Lane"
    for name in ("b.png", "sub/a.png", ".hidden/c.png", "sub/.d.png.tmp", "e.txt", "f.PNG"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in list_files(tmp_path, {".png"})] == [
        "b.png",
        "f.PNG",
        "sub/a.png",
    ]


def test_pairing_prefers_colour_labels_and_annot_folders() -> None:
    preds = [Path("p/0001TP_1.png"), Path("p/sub/Seq05VD_2.png"), Path("p/lonely.png")]
    gts = [
        Path("camvid/701_StillsRaw_full/0001TP_1.png"),  # the photo
        Path("camvid/LabeledApproved_full/0001TP_1_L.png"),  # its label wins
        Path("segnet/test/Seq05VD_2.png"),  # the photo
        Path("segnet/testannot/Seq05VD_2.png"),  # its label wins
        Path("segnet/testannot/Seq05VD_3.png"),  # no prediction
    ]
    pairs, problems = pair_by_stem(preds, gts)
    assert [(p.key, p.source.name, p.ground_truth.as_posix()) for p in pairs] == [
        ("0001TP_1", "0001TP_1.png", "camvid/LabeledApproved_full/0001TP_1_L.png"),
        ("Seq05VD_2", "Seq05VD_2.png", "segnet/testannot/Seq05VD_2.png"),
    ]
    assert sorted((p.kind, Path(p.path).name) for p in problems) == [
        ("missing_ground_truth", "lonely.png"),
        ("missing_prediction", "Seq05VD_3.png"),
    ]
    assert all(Path(p.path).name in p.message for p in problems)
    _, quiet = pair_by_stem(preds, gts, report_unused_ground_truth=False)
    assert [p.kind for p in quiet] == ["missing_ground_truth"]


def test_pairing_reports_ambiguous_names() -> None:
    pairs, problems = pair_by_stem(
        [Path("a/x.png"), Path("b/x.png"), Path("y.png")],
        [Path("g1/x_L.png"), Path("g1/y_L.png"), Path("g2/y_L.png")],
    )
    assert pairs == []
    kinds = sorted(p.kind for p in problems)
    assert kinds == ["ambiguous", "ambiguous"]
    messages = " ".join(p.message for p in problems)
    assert "a/x.png" in messages
    assert "b/x.png" in messages
    assert "g1/y_L.png" in messages
    assert "g2/y_L.png" in messages
