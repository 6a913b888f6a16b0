from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from PIL import Image, ImageFont

from camvidseg import (
    CamVidPalette,
    ConfigError,
    InvalidImageError,
    PaletteError,
    Segmentation,
    Segmenter,
)
from camvidseg.backends import NearestColorBackend
from camvidseg.testing import street_scene
from camvidseg.visualize import (
    COLORMAPS,
    MAX_FONT_SIZE,
    MIN_FONT_SIZE,
    PanelLayout,
    colormap,
    confidence_map,
    legend,
    legend_entries,
    panel,
    panel_layout,
    region_labels,
)
from tests.strategies import label_maps

PALETTE = CamVidPalette.camvid32()


def _ones(shape: tuple[int, ...]) -> NDArray[np.float32]:
    return np.ones(shape, np.float32)


def _tile(picture: Image.Image, box: tuple[int, int, int, int]) -> NDArray[np.uint8]:
    return np.asarray(picture.crop(box))


def _colors_in(picture: Image.Image) -> set[tuple[int, int, int]]:
    pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    return {(int(r), int(g), int(b)) for r, g, b in np.unique(pixels, axis=0)}


@pytest.fixture(scope="module")
def street() -> Segmentation:
    image, _ = street_scene(120, 160, seed=4)
    return Segmenter(NearestColorBackend()).segment(image)


# -- panel tiles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.6, 0.25, 1.0])
def test_panel_tiles_are_exactly_image_colorize_and_overlay(
    street: Segmentation, alpha: float
) -> None:
    assert street.image is not None
    picture = panel(street.image, street, alpha=alpha)
    layout = panel_layout(street)
    assert picture.size == layout.size
    assert picture.mode == "RGB"
    np.testing.assert_array_equal(_tile(picture, layout.image_box), street.image)
    np.testing.assert_array_equal(_tile(picture, layout.mask_box), street.colorize())
    np.testing.assert_array_equal(_tile(picture, layout.overlay_box), street.overlay(alpha))


def test_panel_uses_the_given_image_over_the_kept_one(street: Segmentation) -> None:
    other = np.full((*street.shape, 3), 200, np.uint8)
    picture = panel(Image.fromarray(other), street)
    layout = panel_layout(street)
    np.testing.assert_array_equal(_tile(picture, layout.image_box), other)
    np.testing.assert_array_equal(
        _tile(picture, layout.overlay_box), street.overlay(0.6, image=other)
    )


def test_panel_tiles_do_not_overlap_and_legend_fits_under_them(street: Segmentation) -> None:
    layout = panel_layout(street)
    boxes = [layout.image_box, layout.mask_box, layout.overlay_box]
    for left, right in itertools.pairwise(boxes):
        assert left[2] < right[0]
        assert left[1] == right[1]
    assert layout.legend_box is not None
    assert layout.legend_box[1] > layout.image_box[3]
    assert layout.legend_box[2] <= layout.overlay_box[2]  # wrapped into the tiles' width
    assert layout.legend_box[3] < layout.size[1]
    width, height = layout.size
    assert all(b[0] >= 0 and b[2] <= width and b[3] <= height for b in [*boxes, layout.legend_box])


def test_panel_without_legend(street: Segmentation) -> None:
    layout = panel_layout(street, legend=False)
    assert layout.legend_box is None
    picture = panel(None, street, legend=False)
    assert picture.size == layout.size
    assert layout.size[1] == street.shape[0] + 2 * (layout.image_box[1])


def test_panel_legend_shows_every_present_colour(street: Segmentation) -> None:
    picture = panel(None, street)
    layout = panel_layout(street)
    assert layout.legend_box is not None
    colours = _colors_in(picture.crop(layout.legend_box))
    for entry in legend_entries(street):
        assert entry.color in colours, entry.name


def test_tiny_image_is_enlarged_by_whole_factor() -> None:
    seg = Segmentation(
        np.array([[17]], np.uint8), _ones((1, 1)), image=np.array([[[1, 2, 3]]], np.uint8)
    )
    layout = panel_layout(seg)
    assert layout.scale == 64
    assert layout.font_size == MIN_FONT_SIZE
    picture = panel(None, seg)
    assert picture.size == layout.size
    assert picture.size == (216, 97)
    np.testing.assert_array_equal(
        _tile(picture, layout.mask_box), np.full((64, 64, 3), [128, 64, 128], np.uint8)
    )
    np.testing.assert_array_equal(
        _tile(picture, layout.overlay_box), np.full((64, 64, 3), seg.overlay(0.6)[0, 0])
    )
    # The legend is never squeezed below a readable size.
    assert layout.legend_box is not None
    assert layout.legend_box[3] - layout.legend_box[1] >= MIN_FONT_SIZE


def test_small_image_scale_keeps_exact_pixels() -> None:
    labels = np.array([[17, 21, 255], [4, 4, 17]], np.uint8)
    image = np.arange(18, dtype=np.uint8).reshape(2, 3, 3) * 10
    seg = Segmentation(labels, _ones(labels.shape), image=image)
    layout = panel_layout(seg, min_tile_side=10)
    assert layout.scale == 4
    picture = panel(None, seg, min_tile_side=10)
    big = np.repeat(np.repeat(seg.colorize(), 4, axis=0), 4, axis=1)
    np.testing.assert_array_equal(_tile(picture, layout.mask_box), big)
    assert panel_layout(seg, min_tile_side=1).scale == 1


def test_large_image_panel_size_and_bounded_font() -> None:
    labels = np.zeros((3000, 4000), np.uint8)
    labels[1500:] = 17
    image = np.zeros((3000, 4000, 3), np.uint8)
    seg = Segmentation(labels, _ones(labels.shape))
    layout = panel_layout(seg)
    assert layout.scale == 1
    assert MIN_FONT_SIZE < layout.font_size <= MAX_FONT_SIZE
    assert layout.font_size >= 100  # readable when a 12000-pixel-wide panel is shown on a screen
    picture = panel(image, seg)
    assert picture.size == layout.size
    assert 3 * 4000 < picture.size[0] < 3 * 4000 + 400
    assert 3000 < picture.size[1] < 3000 + 1000
    mask = layout.mask_box
    assert picture.getpixel((mask[0], mask[1])) == (64, 128, 64)  # Animal, id 0
    assert picture.getpixel((mask[2] - 1, mask[3] - 1)) == (128, 64, 128)  # Road


@pytest.mark.parametrize(
    ("height", "width"), [(1, 1), (10, 2000), (360, 480), (720, 960), (3000, 4000), (9000, 9000)]
)
def test_font_size_scales_with_the_panel_within_bounds(height: int, width: int) -> None:
    seg = Segmentation(np.zeros((height, width), np.uint8), _ones((height, width)))
    size = panel_layout(seg, legend=False).font_size
    assert MIN_FONT_SIZE <= size <= MAX_FONT_SIZE
    if (height, width) == (720, 960):
        assert (
            size
            == 2
            * panel_layout(
                Segmentation(np.zeros((360, 480), np.uint8), _ones((360, 480))), legend=False
            ).font_size
        )
    if height * width >= 9000 * 9000:
        assert size == MAX_FONT_SIZE
    assert panel_layout(seg, legend=False, font_size=3).font_size == MIN_FONT_SIZE


def test_legend_wraps_into_rows_when_narrow() -> None:
    labels = np.arange(32, dtype=np.uint8).reshape(4, 8).repeat(20, 0).repeat(20, 1)
    seg = Segmentation(labels, _ones(labels.shape))
    layout = panel_layout(seg)
    assert layout.legend_box is not None
    legend_w = layout.legend_box[2] - layout.legend_box[0]
    legend_h = layout.legend_box[3] - layout.legend_box[1]
    assert legend_w <= layout.overlay_box[2] - layout.image_box[0]
    # 32 classes in more than one column, so fewer than 32 lines.
    assert legend_h < 32 * layout.font_size


def test_panel_errors(street: Segmentation) -> None:
    bare = Segmentation(street.labels, street.confidence)
    with pytest.raises(InvalidImageError, match="kept no image"):
        panel(None, bare)
    with pytest.raises(InvalidImageError, match="does not match"):
        panel(np.zeros((5, 5, 3), np.uint8), street)
    with pytest.raises(ValueError, match="alpha"):
        panel(None, street, alpha=1.5)
    with pytest.raises(ConfigError, match="min_tile_side"):
        panel_layout(street, min_tile_side=0)


# -- legend entries -------------------------------------------------------------------------------


@given(label_maps())
def test_legend_entries_are_exactly_the_present_classes_by_area(
    labels: NDArray[np.uint8],
) -> None:
    seg = Segmentation(labels, _ones(labels.shape))
    entries = legend_entries(seg)
    ids, counts = np.unique(labels, return_counts=True)
    assert {e.class_id for e in entries} == {int(i) for i in ids}
    assert len(entries) == len(ids)
    expected = sorted(zip(ids.tolist(), counts.tolist(), strict=True), key=lambda p: (-p[1], p[0]))
    assert [e.class_id for e in entries] == [i for i, _ in expected]
    for entry, (_, count) in zip(entries, expected, strict=True):
        assert entry.area == pytest.approx(count / labels.size)
        assert entry.name == PALETTE.names[entry.class_id]
        assert entry.color == PALETTE.color_of(entry.class_id)
    assert sum(e.area or 0 for e in entries) == pytest.approx(1.0)


def test_unlabelled_pixels_in_legend_and_mask() -> None:
    labels = np.array([[255, 255, 255, 17]], np.uint8)
    image = np.full((1, 4, 3), 90, np.uint8)
    seg = Segmentation(labels, _ones(labels.shape), image=image)
    entries = legend_entries(seg)
    assert [(e.class_id, e.name, e.color, e.area) for e in entries] == [
        (255, "unlabelled", (0, 0, 0), 0.75),
        (17, "Road", (128, 64, 128), 0.25),
    ]
    picture = panel(None, seg, min_tile_side=1)
    layout = panel_layout(seg, min_tile_side=1)
    assert _tile(picture, layout.mask_box).tolist() == seg.colorize().tolist()
    assert _tile(picture, layout.mask_box)[0, 0].tolist() == [0, 0, 0]


def test_camvid11_legend_uses_its_palette() -> None:
    labels = np.array([[3, 3, 11]], np.uint8)
    seg = Segmentation(labels, _ones(labels.shape), CamVidPalette.camvid11())
    assert [(e.name, e.color) for e in legend_entries(seg)] == [
        ("Road", (128, 64, 128)),
        ("Void", (0, 0, 0)),
    ]


def test_area_text() -> None:
    labels = np.zeros((1, 4000), np.uint8)
    labels[0, 0] = 17
    texts = {e.name: e.area_text for e in legend_entries(Segmentation(labels, _ones((1, 4000))))}
    assert texts == {"Animal": "100.0 %", "Road": "<0.1 %"}


# -- legend() -------------------------------------------------------------------------------------


def test_legend_image_by_names_and_ids() -> None:
    one_column = legend(PALETTE, ["Road", 21, 255], [0.5, 0.25, 0.25])
    assert one_column.mode == "RGB"
    assert one_column.height > legend(PALETTE, ["Road"]).height + 2 * 16  # three rows
    colours = _colors_in(one_column)
    assert {(128, 64, 128), (128, 128, 128), (0, 0, 0)} <= colours
    assert (64, 128, 64) not in colours  # Animal was not asked for
    row = legend(PALETTE, ["Road", 21, 255], columns=3)
    assert row.width > one_column.width
    assert row.height < one_column.height
    wrapped = legend(PALETTE, range(32), max_width=600, font_size=16)
    assert wrapped.width <= 600
    assert legend(PALETTE, ["Road"], font_size=40).height > legend(PALETTE, ["Road"]).height


def test_legend_errors() -> None:
    with pytest.raises(ConfigError, match="at least one class"):
        legend(PALETTE, [])
    with pytest.raises(ConfigError, match="2 areas for 1 classes"):
        legend(PALETTE, ["Road"], [0.5, 0.5])
    with pytest.raises(ConfigError, match="fractions"):
        legend(PALETTE, ["Road"], [50.0])
    with pytest.raises(PaletteError, match="no class named 'Roads'"):
        legend(PALETTE, ["Roads"])
    with pytest.raises(PaletteError, match="class id 40"):
        legend(PALETTE, [40])
    with pytest.raises(ConfigError, match="columns"):
        legend(PALETTE, ["Road"], columns=0)


def test_bitmap_font_fallback_still_scales(monkeypatch: pytest.MonkeyPatch) -> None:
    from camvidseg.visualize import _text

    monkeypatch.setattr(_text, "load_font", lambda size: ImageFont.load_default_imagefont())
    small = legend(PALETTE, ["Road"], font_size=12)
    large = legend(PALETTE, ["Road"], font_size=48)
    assert large.height >= 3 * small.height
    labels = np.full((40, 60), 17, np.uint8)
    seg = Segmentation(labels, _ones(labels.shape), image=np.zeros((40, 60, 3), np.uint8))
    picture = panel(None, seg, labels_on_regions=True, min_tile_side=1)
    layout = panel_layout(seg, min_tile_side=1)
    overlay_tile = _tile(picture, layout.overlay_box)
    assert (overlay_tile == 255).all(axis=-1).any()  # the white region name was drawn


# -- region labels --------------------------------------------------------------------------------


def test_region_labels_sit_inside_their_regions(street: Segmentation) -> None:
    regions = region_labels(street, min_area=0.02)
    assert regions
    assert [r.area for r in regions] == sorted((r.area for r in regions), reverse=True)
    names = {r.name for r in regions}
    assert {"Road", "Sky", "Sidewalk"} <= names
    for region in regions:
        x, y = region.xy
        assert street.labels[int(y), int(x)] == region.class_id, region
        assert region.area >= 0.02
    assert len(region_labels(street, min_area=0.2)) < len(regions)


def test_region_label_of_a_ring_is_on_the_ring() -> None:
    labels = np.full((60, 60), 21, np.uint8)
    labels[10:50, 10:50] = 17
    labels[20:40, 20:40] = 21  # a sky hole in a road ring; its centroid is in the hole
    seg = Segmentation(labels, _ones(labels.shape))
    road = [r for r in region_labels(seg) if r.name == "Road"]
    assert len(road) == 1
    x, y = road[0].xy
    assert labels[int(y), int(x)] == 17
    # Two separate sky regions (outside and the hole), each labelled.
    assert sum(r.name == "Sky" for r in region_labels(seg)) == 2


def test_region_labels_skip_unlabelled_and_small_regions() -> None:
    labels = np.full((20, 20), 255, np.uint8)
    labels[:2, :2] = 17
    regions = region_labels(Segmentation(labels, _ones(labels.shape)), min_area=0.05)
    assert regions == ()


def test_labels_on_regions_only_touch_the_overlay_tile(street: Segmentation) -> None:
    plain = panel(None, street)
    labelled = panel(None, street, labels_on_regions=True)
    layout = panel_layout(street)
    np.testing.assert_array_equal(_tile(labelled, layout.mask_box), _tile(plain, layout.mask_box))
    np.testing.assert_array_equal(_tile(labelled, layout.image_box), _tile(plain, layout.image_box))
    changed = (_tile(labelled, layout.overlay_box) != _tile(plain, layout.overlay_box)).any(-1)
    assert 0 < changed.mean() < 0.2
    assert layout.legend_box is not None
    np.testing.assert_array_equal(
        _tile(labelled, layout.legend_box), _tile(plain, layout.legend_box)
    )


# -- confidence -----------------------------------------------------------------------------------


def test_confidence_map_values() -> None:
    conf = np.array([[0.0, 0.5, 1.0], [np.nan, -1.0, 2.0]], np.float32)
    picture = confidence_map(conf)
    assert picture.size == (3, 2)
    table = colormap("viridis")
    expected = table[[[0, 128, 255], [0, 0, 255]]]
    np.testing.assert_array_equal(np.asarray(picture), expected)
    seg = Segmentation(np.zeros((2, 3), np.uint8), np.nan_to_num(conf).clip(0, 1))
    np.testing.assert_array_equal(np.asarray(confidence_map(seg)), expected)
    assert np.asarray(confidence_map(conf, "gray"))[0].tolist() == [
        [0, 0, 0],
        [128, 128, 128],
        [255, 255, 255],
    ]


@pytest.mark.parametrize("name", sorted(COLORMAPS))
def test_colormaps_brighten_monotonically(name: str) -> None:
    table = colormap(name).astype(np.float64)
    assert table.shape == (256, 3)
    luma = table @ np.array([0.2126, 0.7152, 0.0722])
    assert (np.diff(luma) >= -0.75).all()  # rounding to uint8 may wobble by under a level
    assert luma[-1] - luma[0] > 150
    assert tuple(colormap(name)[0]) == COLORMAPS[name][0]
    assert tuple(colormap(name)[-1]) == COLORMAPS[name][-1]


def test_confidence_map_errors() -> None:
    with pytest.raises(ConfigError, match="unknown colour map 'jet'"):
        confidence_map(np.zeros((2, 2), np.float32), "jet")
    with pytest.raises(InvalidImageError, match="HxW float"):
        confidence_map(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(InvalidImageError, match="HxW float"):
        confidence_map(np.zeros((2, 2), np.uint8))


@given(st.integers(1, 50), st.integers(1, 50))
def test_panel_layout_always_fits(height: int, width: int) -> None:
    seg = Segmentation(np.zeros((height, width), np.uint8), _ones((height, width)))
    layout = panel_layout(seg)
    assert isinstance(layout, PanelLayout)
    tile_w = layout.mask_box[2] - layout.mask_box[0]
    tile_h = layout.mask_box[3] - layout.mask_box[1]
    assert (tile_w, tile_h) == (width * layout.scale, height * layout.scale)
    assert max(tile_w, tile_h) >= 64
    assert layout.legend_box is not None
    assert layout.legend_box[2] <= layout.size[0]
    assert layout.overlay_box[2] <= layout.size[0]
