"""Segmenter(cleanup=...): cleanup on the output label set, then the confidence threshold."""

from __future__ import annotations

import numpy as np
import pytest

from camvidseg import CamVidPalette, CleanupConfig, ConfigError, Segmentation, Segmenter
from camvidseg.testing import SpeckleNoiseBackend, street_scene


def test_cleanup_runs_on_labels_then_min_confidence() -> None:
    image, truth = street_scene(60, 80, seed=5)
    cleanup = CleanupConfig(majority=3, min_region=4)
    plain = Segmenter(SpeckleNoiseBackend()).segment(image)
    cleaned = Segmenter(SpeckleNoiseBackend(), cleanup=cleanup).segment(image)
    np.testing.assert_array_equal(cleaned.labels, cleanup.apply(plain.labels))
    np.testing.assert_array_equal(cleaned.confidence, plain.confidence)  # unchanged
    assert (cleaned.labels != truth).sum() < (plain.labels != truth).sum() / 3

    threshold = float(np.quantile(plain.confidence, 0.2))
    both = Segmenter(SpeckleNoiseBackend(), cleanup=cleanup, min_confidence=threshold)
    labels = both.segment(image).labels
    expected = cleanup.apply(plain.labels)
    expected[plain.confidence < threshold] = 255  # abstentions are never cleaned away
    np.testing.assert_array_equal(labels, expected)
    assert (labels == 255).any()


def test_cleanup_sees_the_output_label_set() -> None:
    image, _ = street_scene(60, 80, seed=6)
    c11 = CamVidPalette.camvid11()
    # Region removal limited to Road (id 3 in CamVid-11): lane markings are Road there already.
    cleanup = CleanupConfig(min_region=30, classes=[c11.id_of("Road")])
    plain = Segmenter(SpeckleNoiseBackend(), palette=c11).segment(image)
    cleaned = Segmenter(SpeckleNoiseBackend(), palette=c11, cleanup=cleanup).segment(image)
    np.testing.assert_array_equal(cleaned.labels, cleanup.apply(plain.labels))
    assert cleaned.palette == c11


def test_with_cleanup_and_validation() -> None:
    labels = np.array([[17, 17, 17], [17, 5, 17], [17, 17, 17]], np.uint8)
    seg = Segmentation(labels, np.ones((3, 3), np.float32))
    assert seg.with_cleanup(CleanupConfig()) is seg
    assert seg.with_cleanup(CleanupConfig(min_region=2)).class_counts() == {"Road": 9}
    with pytest.raises(ConfigError, match="cleanup must be a CleanupConfig"):
        Segmenter(SpeckleNoiseBackend(), cleanup={"majority": 3})  # type: ignore[arg-type]
