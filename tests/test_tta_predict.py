"""Test-time augmentation over a ``predict`` callback (camvidseg.tta), without a Segmenter."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from camvidseg._types import ImageArray, Scores
from camvidseg.exceptions import BackendError, ConfigError
from camvidseg.imageio import resize_image
from camvidseg.postprocess import resize_scores
from camvidseg.tta import TTAConfig, predict_with_tta, view_size

images_strategy = st.lists(
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 20), st.just(3))),
    min_size=1,
    max_size=3,
)


class Recording:
    """Wraps a per-image score function; records the shapes of every call."""

    def __init__(self, score: Callable[[ImageArray], Scores]) -> None:
        self.score = score
        self.calls: list[list[tuple[int, ...]]] = []

    def __call__(self, images: Sequence[ImageArray]) -> list[Scores]:
        self.calls.append([image.shape for image in images])
        return [self.score(image) for image in images]


def pixel_local(image: ImageArray) -> Scores:
    rgb = image.astype(np.float32) / np.float32(255.0)
    return np.concatenate([rgb, 1 - rgb[..., :1]], axis=-1)


def left_to_right(image: ImageArray) -> Scores:
    """Scores = horizontal position in the input plus the red channel: not flip-symmetric."""
    h, w = image.shape[:2]
    x = np.broadcast_to((np.arange(w, dtype=np.float32) + 0.5) / w, (h, w))
    return np.stack([x, image[..., 0].astype(np.float32) / 255], axis=-1)


def nearest_resize(image: ImageArray, size: tuple[int, int]) -> ImageArray:
    rows = np.arange(size[0]) * image.shape[0] // size[0]
    cols = np.arange(size[1]) * image.shape[1] // size[1]
    resized: ImageArray = image[rows][:, cols]
    return resized


@given(images_strategy, st.booleans())
def test_flip_of_a_pixel_local_predict_changes_nothing(
    images: list[ImageArray], flip: bool
) -> None:
    predict = Recording(pixel_local)
    got = predict_with_tta(images, predict, TTAConfig(flip=flip))
    for image, scores in zip(images, got, strict=True):
        assert scores.dtype == np.float32
        np.testing.assert_array_equal(scores, pixel_local(image))
    # One call per view, holding every image.
    assert predict.calls == [[image.shape for image in images]] * (2 if flip else 1)


@given(images_strategy)
def test_flip_averages_the_scores_with_the_mirrored_view(images: list[ImageArray]) -> None:
    got = predict_with_tta(images, Recording(left_to_right), TTAConfig(flip=True))
    plain = predict_with_tta(images, Recording(left_to_right), None)
    for image, scores, unflipped in zip(images, got, plain, strict=True):
        mirrored = left_to_right(image[:, ::-1])[:, ::-1]
        np.testing.assert_allclose(scores, (unflipped + mirrored) / 2, rtol=1e-6, atol=1e-7)
        # Position scores average to 0.5 everywhere; the red channel is flip-invariant.
        np.testing.assert_allclose(scores[..., 0], 0.5, atol=1e-6)
        np.testing.assert_allclose(scores[..., 1], unflipped[..., 1], atol=1e-7)


@given(
    images_strategy,
    st.lists(st.sampled_from([0.5, 0.75, 1.0, 1.5, 2.0]), min_size=1, max_size=3, unique=True),
    st.one_of(st.none(), st.integers(1, 15)),
)
def test_scales_average_the_resized_views_at_the_image_size(
    images: list[ImageArray], scales: list[float], max_side: int | None
) -> None:
    config = TTAConfig(scales=scales)
    got = predict_with_tta(
        images, Recording(pixel_local), config, max_side=max_side, resize=nearest_resize
    )
    for image, scores in zip(images, got, strict=True):
        views = []
        for scale in scales:
            size = view_size(image.shape, scale, max_side)
            view = pixel_local(nearest_resize(image, size))
            views.append(resize_scores(view, image.shape[:2]).astype(np.float64))
        assert scores.shape == (*image.shape[:2], 4)
        np.testing.assert_allclose(scores, np.mean(views, axis=0), rtol=1e-5, atol=1e-6)


def test_the_segmenter_resize_is_the_pillow_one() -> None:
    image = np.random.default_rng(1).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    got = predict_with_tta(
        [image], pixel_local_batch, TTAConfig(scales=(0.5,)), resize=resize_image
    )
    expected = resize_scores(pixel_local(resize_image(image, (3, 5))), (6, 10))
    np.testing.assert_array_equal(got[0], expected)


def pixel_local_batch(images: Sequence[ImageArray]) -> list[Scores]:
    return [pixel_local(image) for image in images]


def test_a_view_that_resizes_needs_resize() -> None:
    image = np.zeros((4, 6, 3), np.uint8)
    with pytest.raises(ConfigError, match="pass resize="):
        predict_with_tta([image], pixel_local_batch, TTAConfig(scales=(0.5,)))
    with pytest.raises(ConfigError, match="pass resize="):
        predict_with_tta([image], pixel_local_batch, None, max_side=3)
    # No resize needed: max_side above the image, scale 1.
    assert predict_with_tta([image], pixel_local_batch, None, max_side=6)[0].shape == (4, 6, 4)


def test_a_predict_breaking_the_contract_is_a_backend_error() -> None:
    images = [np.zeros((4, 6, 3), np.uint8)] * 2
    with pytest.raises(BackendError, match="returned 1 score arrays for 2 images"):
        predict_with_tta(images, lambda views: pixel_local_batch(views[:1]), None)
    with pytest.raises(BackendError, match=r"at the image's size \(4, 6\)"):
        predict_with_tta(images, lambda views: [s[1:] for s in pixel_local_batch(views)], None)


def test_no_images_no_calls() -> None:
    predict = Recording(pixel_local)
    assert predict_with_tta([], predict, TTAConfig(flip=True)) == []
    assert predict.calls == [[], []]


@given(
    st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
    st.floats(0.05, 4.0),
    st.one_of(st.none(), st.integers(1, 4000)),
)
def test_view_size_limits_then_scales(
    shape: tuple[int, int], scale: float, max_side: int | None
) -> None:
    height, width = view_size(shape, scale, max_side)
    assert height >= 1
    assert width >= 1
    limit = max(shape) if max_side is None else min(max(shape), max_side)
    # One combined factor, rounded once per side.
    assert max(height, width) <= max(1, round(limit * scale)) + 1
    if scale == 1.0 and (max_side is None or max(shape) <= max_side):
        assert (height, width) == shape
