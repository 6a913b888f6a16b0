from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camvidseg import CamVidPalette, InvalidImageError
from camvidseg.imageio import (
    atomic_write,
    load_label_png,
    open_image,
    save_image,
    save_label_png,
    to_rgb_array,
)

RGB = np.array([[[10, 20, 30], [200, 100, 50]]], np.uint8)


def test_modes_convert_to_rgb(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 128]], np.uint8), mode="L").save(tmp_path / "l.png")
    assert open_image(tmp_path / "l.png").array.tolist() == [[[0, 0, 0], [128, 128, 128]]]
    rgba = np.dstack([RGB, np.array([[0, 255]], np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    loaded = open_image(tmp_path / "rgba.png")
    assert loaded.mode == "RGBA"
    assert loaded.array.tolist() == RGB.tolist()
    Image.fromarray(RGB).convert("CMYK").save(tmp_path / "cmyk.jpg")
    assert open_image(tmp_path / "cmyk.jpg").array.shape == (1, 2, 3)


def test_16_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 100, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "i16.png")
    loaded = open_image(tmp_path / "i16.png")
    assert loaded.mode.startswith("I")
    assert loaded.array[..., 0].tolist() == [[0, 100, 255]]


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putdata([0, 1])
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    assert open_image(tmp_path / "p.png").array.tolist() == [[[255, 0, 0], [0, 255, 0]]]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.fromarray(np.zeros((2, 4, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    image.save(tmp_path / "o.jpg", exif=exif.tobytes())
    loaded = open_image(tmp_path / "o.jpg")
    assert loaded.array.shape == (4, 2, 3)
    assert loaded.exif_transposed
    assert loaded.size == (2, 4)


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (2, 2), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    loaded = open_image(tmp_path / "a.gif")
    assert loaded.frames == 2
    assert loaded.array[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"not an image at all", "not an image"),
     (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "cannot decode|a PNG file Pillow cannot decode")],
)  # fmt: skip
def test_bad_files_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InvalidImageError, match=rf"bad\.png: ({message})"):
        open_image(path)


def test_truncated_file(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        buffer, format="PNG"
    )
    (tmp_path / "t.png").write_bytes(buffer.getvalue()[:200])
    with pytest.raises(InvalidImageError, match=r"t\.png: cannot decode"):
        open_image(tmp_path / "t.png")


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="no such file"):
        open_image(tmp_path / "nope.png")
    with pytest.raises(InvalidImageError, match="is a directory"):
        open_image(tmp_path)


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (20, 20)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(InvalidImageError, match="decompression bomb"):
        open_image(tmp_path / "big.png")


def test_to_rgb_array_validation() -> None:
    with pytest.raises(InvalidImageError, match=r"HxWx3 uint8 \(got shape \(2, 2, 4\)"):
        to_rgb_array(np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(InvalidImageError, match="dtype float64"):
        to_rgb_array(np.zeros((2, 2, 3)))  # type: ignore[arg-type]
    with pytest.raises(InvalidImageError, match="empty"):
        to_rgb_array(np.zeros((0, 2, 3), np.uint8))
    with pytest.raises(InvalidImageError, match="got int"):
        to_rgb_array(5)  # type: ignore[arg-type]
    assert to_rgb_array(Image.fromarray(RGB)).tolist() == RGB.tolist()


def test_label_png_round_trip_with_palette(tmp_path: Path) -> None:
    labels = np.array([[0, 17, 31], [30, 255, 21]], np.uint8)
    path = save_label_png(tmp_path / "sub" / "l.png", labels, CamVidPalette.camvid32())
    with Image.open(path) as image:
        assert image.mode == "P"
        assert image.convert("RGB").getpixel((1, 0)) == (128, 64, 128)
    np.testing.assert_array_equal(load_label_png(path), labels)
    assert list(path.parent.iterdir()) == [path]  # no temp files left


def test_label_png_refuses_unknown_ids(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidImageError, match=r"l\.png holds ids that are not classes of camvid11"
    ):
        save_label_png(tmp_path / "l.png", np.array([[12]], np.uint8), CamVidPalette.camvid11())
    assert not (tmp_path / "l.png").exists()


def test_load_label_png_rejects_rgb(tmp_path: Path) -> None:
    Image.fromarray(RGB).save(tmp_path / "rgb.png")
    with pytest.raises(InvalidImageError, match="mode RGB"):
        load_label_png(tmp_path / "rgb.png")


def test_atomic_write_leaves_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def write_then_fail() -> None:
        with atomic_write(target) as handle:
            handle.write(b"partial")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_save_image_formats(tmp_path: Path) -> None:
    save_image(tmp_path / "a.png", RGB)
    assert open_image(tmp_path / "a.png").array.tolist() == RGB.tolist()
    save_image(tmp_path / "a.jpg", RGB)
    assert open_image(tmp_path / "a.jpg").array.shape == (1, 2, 3)
    with pytest.raises(InvalidImageError, match="format"):
        save_image(tmp_path / "a.xyz", RGB)


def test_plain_image_is_not_reported_as_transposed(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(tmp_path / "plain.png")
    loaded = open_image(tmp_path / "plain.png")
    assert not loaded.exif_transposed
    assert not loaded.transparency


def test_pixel_limit_and_non_regular_files_are_refused(tmp_path: Path) -> None:
    Image.new("RGB", (20, 10)).save(tmp_path / "wide.png")
    assert open_image(tmp_path / "wide.png", max_pixels=200).size == (20, 10)
    with pytest.raises(InvalidImageError, match=r"wide\.png: image too large: 20x10 = 200"):
        open_image(tmp_path / "wide.png", max_pixels=199)
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(InvalidImageError, match=r"pipe\.png: is not a regular file"):
        open_image(tmp_path / "pipe.png")
