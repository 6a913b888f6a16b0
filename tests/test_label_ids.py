"""One label-id check (camvidseg.palette.check_label_ids), one message, wherever ids are read."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from camvidseg import UNLABELLED, CamVidPalette, Segmentation
from camvidseg.exceptions import InvalidLabelError
from camvidseg.groundtruth import read_label_file
from camvidseg.imageio import save_label_png
from camvidseg.metrics import ConfusionMatrix
from camvidseg.palette import check_label_ids

PALETTES = [CamVidPalette.camvid32(), CamVidPalette.camvid11()]


def expected(what: str, palette: CamVidPalette, ids: list[int]) -> str:
    shown = ", ".join(map(str, ids))
    return (
        f"{what} holds ids that are not classes of {palette.name} "
        f"(0..{len(palette) - 1} or 255): {shown}"
    )


@given(
    st.sampled_from(PALETTES),
    st.lists(st.integers(0, 255), min_size=1, max_size=40),
)
def test_exactly_the_ids_outside_the_palette_are_refused(
    palette: CamVidPalette, values: list[int]
) -> None:
    labels = np.array(values, np.uint8)
    counts = np.bincount(labels, minlength=256)
    bad = sorted({v for v in values if len(palette) <= v < UNLABELLED})
    if not bad:
        check_label_ids(counts, palette, "x")
        return
    with pytest.raises(InvalidLabelError) as info:
        check_label_ids(counts, palette, "x")
    assert str(info.value) == expected("x", palette, bad[:5])


def test_every_reader_and_writer_words_it_the_same(tmp_path: Path) -> None:
    c11 = CamVidPalette.camvid11()
    labels = np.array([[0, 12, 31, 255]], np.uint8)
    message = expected(str(tmp_path / "a.png"), c11, [12, 31])
    with pytest.raises(InvalidLabelError) as saving:
        save_label_png(tmp_path / "a.png", labels, c11)
    assert str(saving.value) == message
    Image.fromarray(labels, mode="L").save(tmp_path / "a.png")
    with pytest.raises(InvalidLabelError) as reading:
        read_label_file(tmp_path / "a.png", label_format="index", index_palette=c11)
    assert str(reading.value) == message
    with pytest.raises(InvalidLabelError) as loading:
        Segmentation.load(tmp_path / "a.png", palette=c11)
    assert str(loading.value).startswith(message + "; pass palette=")
    matrix = ConfusionMatrix(c11)
    with pytest.raises(InvalidLabelError, match=re.escape(expected("prediction", c11, [12, 31]))):
        matrix.update(labels, np.zeros_like(labels))
    with pytest.raises(InvalidLabelError, match=re.escape(expected("ground truth", c11, [12]))):
        matrix.update(np.zeros_like(labels), np.array([[0, 12, 0, 0]], np.uint8))


def test_a_forced_palette_overrides_the_embedded_one(tmp_path: Path) -> None:
    # Saved as CamVid-11 (the palette is embedded); read as CamVid-32 ids when asked to.
    labels = np.array([[0, 11, 255]], np.uint8)
    path = Segmentation(labels, np.ones((1, 3), np.float32), CamVidPalette.camvid11()).save(
        tmp_path / "l.png"
    )
    assert Segmentation.load(path).palette.name == "camvid11"
    forced = Segmentation.load(path, palette=CamVidPalette.camvid32())
    assert forced.palette.name == "camvid32"
    np.testing.assert_array_equal(forced.labels, labels)
