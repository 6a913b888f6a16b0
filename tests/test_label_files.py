"""Segmentation.save / Segmentation.load: indexed PNG label maps with the palette embedded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from PIL import Image

from camvidseg import UNLABELLED, CamVidPalette, InvalidImageError, Segmentation
from camvidseg.imageio import read_label_png
from tests.strategies import label_maps

PALETTES = {"camvid32": CamVidPalette.camvid32(), "camvid11": CamVidPalette.camvid11()}


def _seg(labels: NDArray[np.uint8], palette: CamVidPalette) -> Segmentation:
    return Segmentation(labels, np.ones(labels.shape, np.float32), palette)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(PALETTES)), data=st.data())
def test_round_trip_is_exact_and_palette_recognised(
    tmp_path: Path, name: str, data: st.DataObject
) -> None:
    palette = PALETTES[name]
    labels = data.draw(label_maps(num_classes=len(palette)))
    labels[0, 0] = UNLABELLED  # unlabelled pixels survive too
    path = _seg(labels, palette).save(tmp_path / f"{name}.png")
    loaded = Segmentation.load(path)
    np.testing.assert_array_equal(loaded.labels, labels)
    assert loaded.labels.dtype == np.uint8
    assert loaded.palette is palette
    assert loaded.source == path
    np.testing.assert_array_equal(loaded.colorize(), palette.colorize(labels))


@pytest.mark.parametrize("name", sorted(PALETTES))
def test_file_embeds_the_palette(tmp_path: Path, name: str) -> None:
    palette = PALETTES[name]
    labels = np.arange(len(palette), dtype=np.uint8)[None, :]
    path = _seg(labels, palette).save(tmp_path / "l.png")
    with Image.open(path) as image:
        assert image.mode == "P"
        # Any viewer shows the class colours.
        np.testing.assert_array_equal(np.asarray(image.convert("RGB"))[0], palette.colors)
    _, colors = read_label_png(path)
    assert colors is not None
    np.testing.assert_array_equal(colors[: len(palette)], palette.colors)


@pytest.mark.parametrize(("name", "bad"), [("camvid32", 32), ("camvid32", 254), ("camvid11", 12)])
def test_save_refuses_ids_the_palette_lacks(tmp_path: Path, name: str, bad: int) -> None:
    palette = PALETTES[name]
    labels = np.array([[0, bad]], np.uint8)
    with pytest.raises(
        InvalidImageError, match=rf"l\.png holds ids that are not classes of {name} .*: {bad}$"
    ):
        _seg(labels, palette).save(tmp_path / "l.png")
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file left


def test_load_refuses_ids_the_palette_lacks(tmp_path: Path) -> None:
    path = _seg(np.array([[0, 20]], np.uint8), PALETTES["camvid32"]).save(tmp_path / "l.png")
    with pytest.raises(
        InvalidImageError, match=r"l\.png holds ids that are not classes of camvid11 .*: 20;"
    ):
        Segmentation.load(path, palette=CamVidPalette.camvid11())


def test_grayscale_png_defaults_to_camvid32_or_given_palette(tmp_path: Path) -> None:
    labels = np.array([[0, 11, 3]], np.uint8)
    Image.fromarray(labels, mode="L").save(tmp_path / "annot.png")
    assert read_label_png(tmp_path / "annot.png")[1] is None
    assert Segmentation.load(tmp_path / "annot.png").palette.name == "camvid32"
    segnet = Segmentation.load(tmp_path / "annot.png", palette=CamVidPalette.camvid11())
    assert segnet.palette.name == "camvid11"
    np.testing.assert_array_equal(segnet.labels, labels)
    Image.fromarray(np.array([[40]], np.uint8), mode="L").save(tmp_path / "big.png")
    with pytest.raises(InvalidImageError, match=r"big\.png holds ids .*: 40;"):
        Segmentation.load(tmp_path / "big.png")


def test_unknown_embedded_palette_falls_back_to_camvid32(tmp_path: Path) -> None:
    image = Image.fromarray(np.array([[1, 2]], np.uint8), mode="P")
    image.putpalette([7, 7, 7] * 256)
    image.save(tmp_path / "custom.png")
    loaded = Segmentation.load(tmp_path / "custom.png")
    assert loaded.palette.name == "camvid32"
    assert loaded.labels.tolist() == [[1, 2]]


def test_load_keeps_the_image_and_rejects_non_index_files(tmp_path: Path) -> None:
    labels = np.array([[17, 21]], np.uint8)
    path = _seg(labels, PALETTES["camvid32"]).save(tmp_path / "l.png")
    loaded = Segmentation.load(path, image=np.zeros((1, 2, 3), np.uint8))
    assert loaded.overlay(1.0).tolist() == [[[128, 64, 128], [128, 128, 128]]]
    assert (loaded.confidence == 1).all()
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(InvalidImageError, match="indexed or grayscale"):
        Segmentation.load(tmp_path / "rgb.png")
    with pytest.raises(InvalidImageError, match="no such file"):
        Segmentation.load(tmp_path / "missing.png")
