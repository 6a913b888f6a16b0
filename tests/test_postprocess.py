from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from camvidseg import BackendError, InvalidImageError
from camvidseg.postprocess import (
    CONFIDENCE_RTOL,
    ChannelLayout,
    argmax,
    colorize,
    confidence,
    labels_and_confidence,
    overlay,
    remove_background,
    resize_scores,
    to_class_scores,
)
from tests.strategies import label_maps, probability_scores, rgb_images


@given(probability_scores())
def test_argmax_equals_numpy_including_ties(scores: NDArray[np.float32]) -> None:
    result = argmax(scores)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, np.argmax(scores, axis=-1))


def test_argmax_tie_goes_to_first() -> None:
    assert argmax(np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]], np.float32)).tolist() == [0, 1]


def test_argmax_refuses_more_than_256_channels() -> None:
    with pytest.raises(BackendError, match="at most 256"):
        argmax(np.zeros((1, 257), np.float32))


def test_remove_background_is_a_view() -> None:
    scores = np.arange(2 * 33, dtype=np.float32).reshape(2, 33)
    kept = remove_background(scores)
    assert kept.shape == (2, 32)
    assert np.shares_memory(kept, scores)
    assert kept[0, 0] == 1.0
    with pytest.raises(BackendError, match="cannot remove"):
        remove_background(np.zeros((3, 1), np.float32))


@given(probability_scores())
def test_confidence_is_renormalised_max(scores: NDArray[np.float32]) -> None:
    kept = remove_background(scores).astype(np.float64)
    expected = kept.max(-1) / np.where(kept.sum(-1) > 0, kept.sum(-1), 1)
    got = confidence(remove_background(scores))
    assert got.dtype == np.float32
    assert ((got >= 0) & (got <= 1)).all()
    np.testing.assert_allclose(got, expected * (kept.sum(-1) > 0), rtol=1e-5, atol=1e-7)


def test_confidence_zero_sum_is_zero_and_plain_max() -> None:
    scores = np.array([[0.0, 0.0], [0.2, 0.2]], np.float32)
    assert confidence(scores).tolist() == [0.0, 0.5]
    assert confidence(scores, renormalize=False).tolist() == pytest.approx([0.0, 0.2])


def test_layout_detect() -> None:
    l33 = ChannelLayout.detect(33)
    assert l33.drop_first
    assert l33.channel_ids.tolist() == list(range(32))
    l32 = ChannelLayout.detect(32)
    assert not l32.drop_first
    assert l32.channel_ids.tolist() == [30, *range(30), 31]
    drop = ChannelLayout.detect(32, drop_void=True)
    assert drop.drop_first
    assert 30 not in drop.channel_ids.tolist()
    assert len(drop.channel_ids) == 31
    for bad in (1, 24, 31, 34):
        with pytest.raises(BackendError, match=f"returned {bad} channels"):
            ChannelLayout.detect(bad)


@given(probability_scores(33))
def test_labels_and_confidence_33(scores: NDArray[np.float32]) -> None:
    labels, conf = labels_and_confidence(scores, ChannelLayout.detect(33))
    np.testing.assert_array_equal(labels, np.argmax(scores[..., 1:], -1))
    # Equal up to the summation order of the renormalising sum (see CONFIDENCE_RTOL).
    np.testing.assert_allclose(conf, confidence(scores[..., 1:]), rtol=CONFIDENCE_RTOL, atol=0)


@given(probability_scores(32))
def test_labels_32_layout_maps_channel0_to_void(scores: NDArray[np.float32]) -> None:
    labels, _ = labels_and_confidence(scores, ChannelLayout.detect(32))
    channel = np.argmax(scores, -1)
    expected = np.where(channel == 0, 30, np.where(channel <= 30, channel - 1, channel))
    np.testing.assert_array_equal(labels, expected)


def test_layout_check_rejects_wrong_channels() -> None:
    with pytest.raises(BackendError, match="do not match layout 'background33'"):
        labels_and_confidence(np.zeros((2, 2, 32), np.float32), ChannelLayout.detect(33))


@given(probability_scores(32))
def test_to_class_scores_32(scores: NDArray[np.float32]) -> None:
    by_id = to_class_scores(scores, ChannelLayout.detect(32))
    assert by_id.shape == (*scores.shape[:-1], 32)
    np.testing.assert_allclose(by_id[..., 30], scores[..., 0], rtol=1e-5)
    np.testing.assert_allclose(by_id[..., 31], scores[..., 31], rtol=1e-5)
    np.testing.assert_allclose(by_id.sum(-1), 1.0, rtol=1e-5)


@given(probability_scores(33))
def test_to_class_scores_33_renormalises(scores: NDArray[np.float32]) -> None:
    by_id = to_class_scores(scores, ChannelLayout.detect(33))
    kept = scores[..., 1:]
    np.testing.assert_allclose(by_id, kept / kept.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)


@given(label_maps())
def test_colorize_matches_table_lookup(labels: NDArray[np.uint8]) -> None:
    colors = np.arange(32 * 3, dtype=np.uint8).reshape(32, 3)
    np.testing.assert_array_equal(colorize(labels, colors), colors[labels])


def test_colorize_rejects_bad_inputs() -> None:
    with pytest.raises(InvalidImageError, match="labels must be uint8"):
        colorize(np.zeros((2, 2), np.int64), np.zeros((3, 3), np.uint8))
    with pytest.raises(InvalidImageError, match="colors must be"):
        colorize(np.zeros((2, 2), np.uint8), np.zeros((3, 4), np.uint8))


@given(rgb_images(), st.floats(0, 1))
def test_overlay_is_the_rounded_blend_within_bounds(image: NDArray[np.uint8], alpha: float) -> None:
    mask = image[::-1, ::-1].copy()
    out = overlay(image, mask, alpha)
    expected = np.rint((1 - alpha) * image.astype(np.float64) + alpha * mask.astype(np.float64))
    np.testing.assert_array_equal(out, expected.astype(np.uint8))
    assert (out >= np.minimum(image, mask)).all()
    assert (out <= np.maximum(image, mask)).all()


@given(rgb_images())
def test_overlay_extremes_are_exact(image: NDArray[np.uint8]) -> None:
    mask = 255 - image
    np.testing.assert_array_equal(overlay(image, mask, 0.0), image)
    np.testing.assert_array_equal(overlay(image, mask, 1.0), mask)


def test_overlay_errors() -> None:
    img = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="alpha must be in"):
        overlay(img, img, 1.5)
    with pytest.raises(InvalidImageError, match="one shape"):
        overlay(img, np.zeros((2, 3, 3), np.uint8), 0.5)


def test_resize_scores_identity_and_values() -> None:
    s = np.random.default_rng(0).random((3, 4, 2)).astype(np.float32)
    assert resize_scores(s, (3, 4)) is s
    up = resize_scores(np.array([[[0.0], [1.0]]], np.float32), (2, 4))
    assert up[..., 0].tolist() == [[0.0, 0.25, 0.75, 1.0]] * 2
    down = resize_scores(np.arange(4, dtype=np.float32).reshape(1, 4, 1), (1, 2))
    assert down[..., 0].tolist() == [[0.5, 2.5]]
    with pytest.raises(BackendError, match=r"\(H, W, C\)"):
        resize_scores(np.zeros((2, 2), np.float32), (4, 4))
