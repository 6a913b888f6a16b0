"""Test-time augmentation: TTAConfig and score averaging in the Segmenter."""

from __future__ import annotations

import json
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from PIL import Image

from camvidseg import ConfigError, Segmenter
from camvidseg._types import Scores
from camvidseg.backends.base import check_batch
from camvidseg.postprocess import CONFIDENCE_RTOL, resize_scores
from camvidseg.testing import NearestColorBackend, street_scene
from camvidseg.tta import TTAConfig


def random_image(height: int, width: int, seed: int = 0) -> NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# -- TTAConfig -------------------------------------------------------------------------------------


@given(st.booleans(), st.lists(st.floats(0.1, 4.0), min_size=1, max_size=4, unique=True))
def test_config_round_trips_through_json(flip: bool, scales: list[float]) -> None:
    config = TTAConfig(flip=flip, scales=scales)
    assert config.scales == tuple(scales)
    assert TTAConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert len(config.views()) == len(scales) * (2 if flip else 1)
    assert config.is_identity == (not flip and scales == [1.0])


def test_views_order() -> None:
    assert TTAConfig(scales=(1.0, 0.5)).views() == ((1.0, False), (0.5, False))
    assert TTAConfig(flip=True).views() == ((1.0, False), (1.0, True))
    assert TTAConfig(scales=2).scales == (2.0,)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scales": []}, "must not be empty"),
        ({"scales": [0.0]}, "every scale must be a number in"),
        ({"scales": [5]}, "every scale must be a number in"),
        ({"scales": [float("nan")]}, "every scale must be a number in"),
        ({"scales": [1, 1.0]}, "distinct"),
        ({"scales": ["1"]}, "every scale must be a number"),
        ({"scales": "1"}, "list of numbers"),
        ({"flip": "yes"}, "flip must be true or false"),
        ({"flips": True}, "unknown TTA option"),
    ],
)
def test_config_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TTAConfig.from_dict(data)


def test_segmenter_refuses_other_tta_values() -> None:
    with pytest.raises(ConfigError, match="tta must be a TTAConfig"):
        Segmenter(NearestColorBackend(), tta=("flip",))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must be a mapping"):
        TTAConfig.from_dict(["flip"])  # type: ignore[arg-type]


# -- averaging in the Segmenter --------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"tile": 24, "overlap": 6}, {"batch_size": 3}])
@pytest.mark.parametrize("channels", [33, 32])
def test_flip_tta_equals_no_tta_for_a_pixel_local_model(
    options: dict[str, Any], channels: int
) -> None:
    # The fake is pixel-local, so the flipped view flipped back is the same scores exactly,
    # and the running mean of equal views is exact.
    images = [random_image(37, 53, seed=1), random_image(20, 31, seed=2)]
    plain = Segmenter(NearestColorBackend(channels=channels))
    tta = Segmenter(NearestColorBackend(channels=channels), tta=TTAConfig(flip=True), **options)
    for want, got in zip(
        plain.segment_batch(images, return_scores=True),
        tta.segment_batch(images, return_scores=True),
        strict=True,
    ):
        np.testing.assert_array_equal(got.labels, want.labels)
        # Confidence is a blocked BLAS sum: exact up to CONFIDENCE_RTOL when blocking differs.
        np.testing.assert_allclose(got.confidence, want.confidence, rtol=CONFIDENCE_RTOL, atol=0)
        assert got.scores is not None
        assert want.scores is not None
        np.testing.assert_array_equal(got.scores, want.scores)


def test_identity_tta_calls_the_model_once_per_image() -> None:
    backend = NearestColorBackend()
    Segmenter(backend, tta=TTAConfig()).segment(random_image(9, 9))
    assert backend.calls == 1
    flipped = NearestColorBackend()
    Segmenter(flipped, tta=TTAConfig(flip=True, scales=(0.5, 1.0))).segment(random_image(9, 9))
    assert flipped.calls == 4


def fake_scores(image: NDArray[np.uint8]) -> Scores:
    batch = image[None].astype(np.float32) / np.float32(255.0)
    scores: Scores = NearestColorBackend().predict(batch)[0]
    return scores


def pil_resize(image: NDArray[np.uint8], height: int, width: int) -> NDArray[np.uint8]:
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def test_multiscale_average_equals_a_hand_computed_average() -> None:
    image = random_image(6, 10, seed=3)
    at_1 = fake_scores(image)
    at_half = resize_scores(fake_scores(pil_resize(image, 3, 5)), (6, 10))
    at_1_5 = resize_scores(fake_scores(pil_resize(image, 9, 15)), (6, 10))
    expected = (at_1.astype(np.float64) + at_half + at_1_5) / 3
    segmenter = Segmenter(NearestColorBackend(), tta=TTAConfig(scales=(1.0, 0.5, 1.5)))
    got = segmenter.predict_scores([image])[0]
    assert got.shape == (6, 10, 33)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(got, at_1, atol=1e-3)  # the other scales really contributed


def test_scales_apply_after_max_side() -> None:
    image = random_image(40, 60, seed=4)
    segmenter = Segmenter(NearestColorBackend(), max_side=30, tta=TTAConfig(scales=(0.5,)))
    # max_side brings 40x60 to 20x30; scale 0.5 then gives 10x15.
    expected = resize_scores(fake_scores(pil_resize(image, 10, 15)), (40, 60))
    np.testing.assert_allclose(segmenter.predict_scores([image])[0], expected, rtol=1e-6)


@attrs.define
class LeftRightBackend:
    """Class scores that depend on the horizontal position in the input: not flip-symmetric."""

    calls: int = 0

    @property
    def name(self) -> str:
        return "left-right"

    @property
    def input_multiple(self) -> int:
        return 1

    def predict(self, batch: NDArray[np.float32]) -> Scores:
        check_batch(batch)
        self.calls += 1
        b, h, w, _ = batch.shape
        u = (np.arange(w, dtype=np.float32) + 0.5) / w  # 0 at the left, 1 at the right
        scores = np.full((b, h, w, 33), 0.01, np.float32)
        scores[..., 18] = 0.5 + u  # Road grows to the right
        scores[..., 22] = 1.5 - u  # Sky grows to the left
        probs: Scores = scores / scores.sum(-1, keepdims=True)
        return probs


def test_flip_averaging_happens_for_a_flip_sensitive_model() -> None:
    image = random_image(4, 8)
    plain = Segmenter(LeftRightBackend()).segment(image, return_scores=True)
    averaged = Segmenter(LeftRightBackend(), tta=TTAConfig(flip=True)).segment(
        image, return_scores=True
    )
    assert plain.scores is not None
    assert averaged.scores is not None
    # Without TTA: Sky on the left half, Road on the right half.
    assert plain.labels[0].tolist() == [21] * 4 + [17] * 4
    # Averaged with the mirror image, Road and Sky score 1.0 + 0.5 everywhere: a tie, first wins.
    np.testing.assert_allclose(averaged.scores[..., 17], averaged.scores[..., 21], rtol=1e-6)
    expected = (plain.scores + plain.scores[:, ::-1]) / 2
    np.testing.assert_allclose(averaged.scores, expected, rtol=1e-6)


def _away_from_boundaries(labels: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Pixels whose 3x3 neighbourhood holds a single class."""
    padded = np.pad(labels, 1, mode="edge")
    height, width = labels.shape
    same = np.ones(labels.shape, dtype=bool)
    for dy in range(3):
        for dx in range(3):
            same &= padded[dy : dy + height, dx : dx + width] == labels
    return same


def test_tta_with_tiling_is_exact_away_from_class_boundaries() -> None:
    image, truth = street_scene(90, 130, seed=6)
    segmenter = Segmenter(
        NearestColorBackend(), tile=40, overlap=10, tta=TTAConfig(flip=True, scales=(1.0, 0.75))
    )
    seg = segmenter.segment(image)
    # Scale 0.75 blurs class boundaries a little (a pixel there may go either way); one pixel
    # away from any boundary every label is exact.
    interior = _away_from_boundaries(truth)
    assert interior.mean() > 0.75  # most of the scene is tested
    np.testing.assert_array_equal(seg.labels[interior], truth[interior])
