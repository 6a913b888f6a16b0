"""Every fast path equals its obvious reference (tests/reference.py) exactly.

Confidence is the one exception, and only through the order of a float32 sum: it must agree within
``CONFIDENCE_RTOL`` (the bound derived in camvidseg.postprocess); labels and the unnormalised
maximum must be bit-for-bit equal.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from camvidseg import UnknownColorError, postprocess
from camvidseg.palette import CamVidPalette, rgb_keys
from camvidseg.postprocess import (
    CONFIDENCE_RTOL,
    ChannelLayout,
    ColorLookup,
    blend_table,
    colorize,
    labels_and_confidence,
    overlay,
)
from tests.reference import (
    colorize_reference,
    decode_reference,
    labels_and_confidence_reference,
    overlay_reference,
)
from tests.strategies import rgb_images

LAYOUTS = {
    "background33": ChannelLayout.detect(33),
    "void32": ChannelLayout.detect(32),
    "void32-drop": ChannelLayout.detect(32, drop_void=True),
}


@st.composite
def tied_scores(draw: st.DrawFn, channels: int) -> NDArray[np.float32]:
    """``(B?, H, W, C)`` scores from a tiny value set: ties everywhere, channel 0 often winning
    or tied, some all-zero pixels, negative values and -0.0, odd shapes down to 1x1."""
    lead = draw(st.sampled_from([(), (1,), (2,)]))
    shape = (*lead, draw(st.integers(1, 9)), draw(st.integers(1, 9)), channels)
    values = st.sampled_from([0.0, -0.0, 0.125, 0.25, 0.5, 0.5, 1.0, -0.25])
    raw = draw(hnp.arrays(np.float32, shape, elements=values))
    if draw(st.booleans()):
        # Probabilities: non-negative, so CONFIDENCE_RTOL bounds any summation order. (Sums of
        # the raw dyadic values above are exact in any order, negative or not.)
        raw = np.abs(raw)
        raw /= np.maximum(raw.sum(axis=-1, keepdims=True), np.float32(1e-6))
    return raw


def assert_same_labels_and_confidence(
    scores: NDArray[np.float32], layout: ChannelLayout, renormalize: bool = True
) -> None:
    labels, conf = labels_and_confidence(scores, layout, renormalize=renormalize)
    ref_labels, ref_conf = labels_and_confidence_reference(scores, layout, renormalize=renormalize)
    assert labels.dtype == np.uint8
    assert conf.dtype == np.float32
    assert labels.shape == conf.shape == scores.shape[:-1]
    np.testing.assert_array_equal(labels, ref_labels)
    if renormalize:
        np.testing.assert_allclose(conf, ref_conf, rtol=CONFIDENCE_RTOL, atol=0)
        np.testing.assert_array_equal(conf == 0, ref_conf == 0)
    else:
        np.testing.assert_array_equal(conf, ref_conf)


@given(
    st.sampled_from(sorted(LAYOUTS)).flatmap(
        lambda name: st.tuples(st.just(name), tied_scores(LAYOUTS[name].num_channels))
    ),
    st.booleans(),
    st.sampled_from([1, 2, 7, 4096]),
)
def test_labels_and_confidence_equals_reference(
    case: tuple[str, NDArray[np.float32]], renormalize: bool, block: int
) -> None:
    name, scores = case
    with mock.patch.object(postprocess, "_BLOCK_PIXELS", block):
        assert_same_labels_and_confidence(scores, LAYOUTS[name], renormalize)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_labels_and_confidence_on_a_frame_of_many_blocks(name: str) -> None:
    layout = LAYOUTS[name]
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(2, 61, 83, layout.num_channels)).astype(np.float32)
    scores = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    scores[0, :5, :5] = 0.25  # ties across all channels, channel 0 included
    scores[0, 5, :] = 0.0  # zero-sum pixels
    scores[1, :, :7, 0] = 1.0  # channel 0 wins outright
    assert_same_labels_and_confidence(scores.astype(np.float32), layout)


def test_labels_tie_rule_first_maximum_in_channel_order() -> None:
    scores = np.zeros((1, 4, 33), np.float32)
    scores[0, 0, [3, 9]] = 0.5  # tie between ids 2 and 8
    scores[0, 1, [0, 5]] = 0.5  # background ties id 4: background is dropped
    scores[0, 2, [32, 1]] = 0.5  # ids 31 and 0
    scores[0, 3, :] = 1 / 33  # all equal
    labels, conf = labels_and_confidence(scores, LAYOUTS["background33"])
    assert labels.tolist() == [[2, 4, 0, 0]]
    assert conf[0, :3].tolist() == [0.5, 1.0, 0.5]


def test_labels_and_confidence_non_contiguous_input() -> None:
    rng = np.random.default_rng(1)
    base = rng.random((9, 14, 33), dtype=np.float32)
    view = base[:, ::2]
    assert not view.flags.c_contiguous
    assert_same_labels_and_confidence(view, LAYOUTS["background33"])


def test_labels_and_confidence_empty() -> None:
    labels, conf = labels_and_confidence(np.zeros((0, 5, 33), np.float32), LAYOUTS["background33"])
    assert labels.shape == conf.shape == (0, 5)


@st.composite
def color_tables(draw: st.DrawFn) -> NDArray[np.uint8]:
    n = draw(st.integers(1, 256))
    return draw(hnp.arrays(np.uint8, (n, 3)))


@st.composite
def any_label_maps(draw: st.DrawFn) -> NDArray[np.uint8]:
    shape = (draw(st.integers(1, 13)), draw(st.integers(1, 13)))
    labels = draw(hnp.arrays(np.uint8, shape))
    if draw(st.booleans()) and shape[1] > 1:
        return labels[:, ::2]  # non-contiguous
    return labels


@given(any_label_maps(), color_tables(), st.sampled_from([0, 1, 4096]))
def test_colorize_equals_reference(
    labels: NDArray[np.uint8], colors: NDArray[np.uint8], threshold: int
) -> None:
    with mock.patch.object(ColorLookup, "PAIR_THRESHOLD", threshold):
        got = colorize(labels, colors)
    assert got.dtype == np.uint8
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, colorize_reference(labels, colors))


def test_colorize_pairs_cover_every_pair_of_ids() -> None:
    colors = np.random.default_rng(2).integers(0, 256, (200, 3), dtype=np.uint8)
    a, b = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    labels = np.stack([a, b], -1).reshape(256, 512).astype(np.uint8)
    lookup = ColorLookup(colors)
    np.testing.assert_array_equal(lookup.colorize(labels), colorize_reference(labels, colors))
    # Odd size: the last pixel takes the single-colour path.
    odd = labels.reshape(-1)[:12345].reshape(3, 4115)
    np.testing.assert_array_equal(lookup.colorize(odd), colorize_reference(odd, colors))


@given(any_label_maps())
def test_palette_colorize_equals_reference(labels: NDArray[np.uint8]) -> None:
    for palette in (CamVidPalette.camvid32(), CamVidPalette.camvid11()):
        np.testing.assert_array_equal(
            palette.colorize(labels), colorize_reference(labels, palette.colors)
        )


alphas = st.one_of(
    st.sampled_from([0.0, 1.0, 0.5, 0.6, 0.25, 1 / 3, 5e-324, 1 - 2**-53]),
    st.floats(0.0, 1.0, allow_nan=False),
)


@given(rgb_images(), st.data(), alphas)
def test_overlay_equals_reference(
    image: NDArray[np.uint8], data: st.DataObject, alpha: float
) -> None:
    mask = data.draw(hnp.arrays(np.uint8, image.shape))
    got = overlay(image, mask, alpha)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, overlay_reference(image, mask, alpha))


@pytest.mark.parametrize("alpha", [0.0, 1.0, 0.5, 0.6, 0.3, 0.7, 0.1, 0.9, 1 / 3, 0.123456789])
def test_overlay_exhaustive_over_all_byte_pairs(alpha: float) -> None:
    i, m = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    image = np.repeat(i.astype(np.uint8)[..., None], 3, -1)
    mask = np.repeat(m.astype(np.uint8)[..., None], 3, -1)
    got = overlay(image, mask, alpha)
    np.testing.assert_array_equal(got, overlay_reference(image, mask, alpha))
    assert blend_table(alpha).reshape(256, 256).tolist() == got[..., 0].tolist()


def test_overlay_alpha_ends_are_exact() -> None:
    rng = np.random.default_rng(3)
    image, mask = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(overlay(image, mask, 0.0), image)
    np.testing.assert_array_equal(overlay(image, mask, 1.0), mask)
    assert not np.shares_memory(overlay(image, mask, 0.0), image)


@given(rgb_images())
def test_rgb_keys_equal_obvious_packing(rgb: NDArray[np.uint8]) -> None:
    as32 = rgb.astype(np.uint32)
    expected = as32[..., 0] | (as32[..., 1] << 8) | (as32[..., 2] << 16)
    np.testing.assert_array_equal(rgb_keys(rgb), expected.reshape(-1))
    np.testing.assert_array_equal(rgb_keys(rgb[:, ::-1]), expected[:, ::-1].reshape(-1))


@st.composite
def label_images(draw: st.DrawFn, palette: CamVidPalette) -> NDArray[np.uint8]:
    """RGB label images: mostly palette colours, some arbitrary colours, odd shapes."""
    shape = (draw(st.integers(1, 11)), draw(st.integers(1, 11)))
    ids = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, len(palette) - 1)))
    noise = draw(hnp.arrays(np.uint8, (*shape, 3)))
    unknown = draw(hnp.arrays(np.bool_, shape)) & draw(st.booleans())
    rgb: NDArray[np.uint8] = np.where(unknown[..., None], noise, palette.colors[ids])
    return rgb


@given(st.data(), st.sampled_from(["camvid32", "camvid11"]))
def test_decode_equals_reference(data: st.DataObject, name: str) -> None:
    palette = CamVidPalette.by_name(name)
    rgb = data.draw(label_images(palette))
    expected, known = decode_reference(rgb, palette.colors, 255)
    assert palette.void_id is not None
    np.testing.assert_array_equal(palette.decode(rgb, unknown="unlabelled"), expected)
    np.testing.assert_array_equal(
        palette.decode(rgb, unknown="void"), np.where(known, expected, palette.void_id)
    )
    if known.all():
        np.testing.assert_array_equal(palette.decode(rgb), expected)
    else:
        with pytest.raises(UnknownColorError, match=f"{int((~known).sum())} pixels have colours"):
            palette.decode(rgb)


def test_decode_repeated_colour_gives_first_id_and_non_contiguous_input() -> None:
    palette = CamVidPalette.from_classes(
        "dup", [("a", (1, 2, 3)), ("b", (4, 5, 6)), ("c", (1, 2, 3))]
    )
    rgb = np.array([[[1, 2, 3], [9, 9, 9], [4, 5, 6], [1, 2, 3]]], np.uint8)
    expected, _ = decode_reference(rgb, palette.colors, 255)
    assert expected.tolist() == [[0, 255, 1, 0]]
    np.testing.assert_array_equal(palette.decode(rgb, unknown="unlabelled"), expected)
    np.testing.assert_array_equal(
        palette.decode(rgb[:, ::2], unknown="unlabelled"), expected[:, ::2]
    )
    assert palette.decode_table() is palette.decode_table()
    assert palette.decode_table().shape == (1 << 24,)
