from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from camvidseg import ConfigError, InvalidImageError
from camvidseg.uncertainty import (
    apply_min_confidence,
    confidence_from_scores,
    entropy,
    margin,
    max_probability,
)
from tests.strategies import label_maps, probability_scores

channels = st.sampled_from([1, 2, 3, 12, 32, 33])


@st.composite
def continuous_scores(draw: st.DrawFn, channels: int) -> NDArray[np.float32]:
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 6)), channels)
    raw = draw(hnp.arrays(np.float32, shape, elements=st.floats(0, 1, width=32)))
    raw[..., 0] += np.float32(1e-3)
    scores: NDArray[np.float32] = (raw / raw.sum(axis=-1, keepdims=True)).astype(np.float32)
    return scores


@st.composite
def scores_any_channels(draw: st.DrawFn, minimum: int = 1) -> NDArray[np.float32]:
    """Probabilities with many ties (from a small value set) or continuous values."""
    count = draw(channels.filter(lambda c: c >= minimum))
    return draw(st.one_of(probability_scores(channels=count), continuous_scores(count)))


# -- slow, obvious references: one pixel at a time ---------------------------------------------


def slow_max(scores: NDArray[np.float32]) -> NDArray[np.float32]:
    out = np.zeros(scores.shape[:-1], np.float32)
    for index in np.ndindex(*scores.shape[:-1]):
        out[index] = max(scores[index].tolist())
    return out


def slow_margin(scores: NDArray[np.float32]) -> NDArray[np.float32]:
    out = np.zeros(scores.shape[:-1], np.float32)
    for index in np.ndindex(*scores.shape[:-1]):
        ordered = sorted(scores[index].astype(np.float32))
        out[index] = ordered[-1] - ordered[-2]  # float32 arithmetic, like the library
    return out


def slow_entropy(scores: NDArray[np.float32], normalize: bool) -> NDArray[np.float32]:
    out = np.zeros(scores.shape[:-1], np.float32)
    count = scores.shape[-1]
    for index in np.ndindex(*scores.shape[:-1]):
        values = scores[index].astype(np.float64)
        logs = np.log(values, out=np.zeros_like(values), where=values > 0)
        total = 0.0
        for p, log_p in zip(values.tolist(), logs.tolist(), strict=True):
            if p > 0:
                total -= p * log_p
        if normalize and count > 1:
            total /= float(np.log(np.float64(count)))
        out[index] = total
    return out


def slow_min_confidence(
    labels: NDArray[np.uint8], confidence: NDArray[np.float32], threshold: float, unlabelled: int
) -> NDArray[np.uint8]:
    out: NDArray[np.uint8] = labels.copy()
    for index in np.ndindex(*labels.shape):
        if confidence[index] < threshold:
            out[index] = unlabelled
    return out


# -- properties -------------------------------------------------------------------------------


@given(scores_any_channels())
def test_max_probability_equals_reference(scores: NDArray[np.float32]) -> None:
    result = max_probability(scores)
    assert result.dtype == np.float32
    assert result.shape == scores.shape[:-1]
    np.testing.assert_array_equal(result, slow_max(scores))


@given(scores_any_channels(minimum=2))
def test_margin_equals_reference(scores: NDArray[np.float32]) -> None:
    result = margin(scores)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, slow_margin(scores))
    assert (result >= 0).all()
    assert (result <= max_probability(scores)).all()


@given(scores_any_channels(), st.booleans())
def test_entropy_equals_reference(scores: NDArray[np.float32], normalize: bool) -> None:
    result = entropy(scores, normalize=normalize)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, slow_entropy(scores, normalize))
    upper = 1.0 if normalize else math.log(scores.shape[-1])
    assert (result >= 0).all()
    assert (result <= upper + 1e-6).all()


@given(
    label_maps(),
    st.floats(0, 1, width=32),
    st.sampled_from([255, 30, 11]),
    st.integers(0, 2**32 - 1),
)
def test_apply_min_confidence_equals_reference(
    labels: NDArray[np.uint8], threshold: float, unlabelled: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    confidence = rng.choice(np.array([0.0, 0.25, threshold, 0.5, 1.0], np.float32), labels.shape)
    before = labels.copy()
    result = apply_min_confidence(labels, confidence, threshold, unlabelled)
    np.testing.assert_array_equal(
        result, slow_min_confidence(labels, confidence, threshold, unlabelled)
    )
    np.testing.assert_array_equal(labels, before)  # input untouched
    assert result.dtype == np.uint8


@given(hnp.arrays(np.float32, (3, 4, 5), elements=st.floats(0, 1, width=32)))
def test_confidence_from_scores_methods_are_in_unit_range(raw: NDArray[np.float32]) -> None:
    raw[..., 0] += 1e-3
    scores = (raw / raw.sum(axis=-1, keepdims=True)).astype(np.float32)
    for method in ("max", "margin", "entropy"):
        result = confidence_from_scores(scores, method)
        assert result.dtype == np.float32
        assert result.shape == (3, 4)
        assert (result >= 0).all()
        assert (result <= 1).all()
    np.testing.assert_array_equal(confidence_from_scores(scores, "max"), max_probability(scores))
    np.testing.assert_array_equal(confidence_from_scores(scores, "margin"), margin(scores))


def test_known_values() -> None:
    certain = np.array([0.0, 1.0, 0.0, 0.0], np.float32)
    uniform = np.full(4, 0.25, np.float32)
    two_way = np.array([0.5, 0.5, 0.0, 0.0], np.float32)
    scores = np.stack([certain, uniform, two_way])[None]
    np.testing.assert_array_equal(max_probability(scores), [[1.0, 0.25, 0.5]])
    np.testing.assert_array_equal(margin(scores), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(entropy(scores), [[0.0, math.log(4), math.log(2)]], rtol=1e-6)
    np.testing.assert_allclose(entropy(scores, normalize=True), [[0.0, 1.0, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(
        confidence_from_scores(scores, "entropy"), [[1.0, 0.0, 0.5]], atol=1e-6
    )


def test_non_contiguous_and_float64_inputs() -> None:
    rng = np.random.default_rng(0)
    raw = rng.random((6, 5, 8))
    scores = raw / raw.sum(axis=-1, keepdims=True)
    view = scores[::2, ::-1]  # float64, not contiguous
    np.testing.assert_array_equal(entropy(view), slow_entropy(np.ascontiguousarray(view), False))
    np.testing.assert_array_equal(max_probability(view), view.max(axis=-1).astype(np.float32))


def test_errors_name_what_was_expected() -> None:
    with pytest.raises(InvalidImageError, match="at least 2 channel"):
        margin(np.ones((2, 2, 1), np.float32))
    with pytest.raises(InvalidImageError, match="float array"):
        max_probability(np.ones((2, 2, 3), np.uint8))
    with pytest.raises(InvalidImageError, match="non-negative"):
        entropy(np.array([[0.5, -0.1]], np.float32))
    with pytest.raises(ConfigError, match="'max', 'margin' or 'entropy'"):
        confidence_from_scores(np.ones((1, 2), np.float32), "median")  # type: ignore[arg-type]
    labels = np.zeros((2, 2), np.uint8)
    with pytest.raises(InvalidImageError, match=r"labels' shape \(2, 2\)"):
        apply_min_confidence(labels, np.zeros((2, 3), np.float32), 0.5)
    with pytest.raises(InvalidImageError, match="uint8"):
        apply_min_confidence(labels.astype(np.int32), np.zeros((2, 2), np.float32), 0.5)
    with pytest.raises(ConfigError, match="finite"):
        apply_min_confidence(labels, np.zeros((2, 2), np.float32), float("nan"))
    with pytest.raises(ConfigError, match=r"0\.\.255"):
        apply_min_confidence(labels, np.zeros((2, 2), np.float32), 0.5, unlabelled=256)
