"""camvidseg.beam's transforms in a DirectRunner pipeline (TestPipeline, assert_that).

One pipeline carries every assertion (Beam's start-up is slow): reading with dead letters, the
model handler on the fake SavedModel (the TF Hub path) and on a model shared across processes,
and the evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("apache_beam")

import apache_beam as beam
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import BeamAssertException, assert_that

from camvidseg.beam import DeadLetter, Evaluate, ReadImages, Segment, SegmenterModelHandler
from camvidseg.config import SegmentConfig
from camvidseg.evaluation import evaluate_segmenter
from camvidseg.metrics import EvaluationResult
from camvidseg.palette import CamVidPalette
from camvidseg.segmenter import Segmenter
from camvidseg.testing import street_scene

pytestmark = [pytest.mark.beam, pytest.mark.slow]

#: The largest image ReadImages accepts in these tests (the 64x64 one is refused).
MAX_PIXELS = 3000


def write_inputs(root: Path) -> tuple[Path, Path, dict[str, str]]:
    """Good scenes of two sizes (one in a sub-folder), their ground truth, and three bad files
    (corrupt, truncated, too large); returns the folders and the bad files' expected stages."""
    images, truth = root / "in", root / "gt"
    (images / "sub").mkdir(parents=True)
    truth.mkdir()
    palette = CamVidPalette.camvid32()
    for name, (height, width, seed) in {
        "a.png": (24, 32, 1),
        "b.png": (24, 32, 2),
        "sub/c.png": (30, 20, 3),
        "d.jpg": (24, 32, 4),
    }.items():
        image, labels = street_scene(height, width, seed=seed)
        Image.fromarray(image).save(images / name, quality=100)
        stem = Path(name).stem
        Image.fromarray(palette.colorize(labels)).save(truth / f"{stem}_L.png")
    (images / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is no image")
    whole = images / "whole.png"
    Image.fromarray(street_scene(24, 32, seed=5)[0]).save(whole)
    data = whole.read_bytes()
    (images / "truncated.png").write_bytes(data[: len(data) // 2])
    whole.unlink()
    Image.fromarray(street_scene(64, 64, seed=6)[0]).save(images / "large.png")
    (images / "notes.txt").write_text("not an input")
    bad = {"corrupt.png": "decode", "truncated.png": "decode", "large.png": "decode"}
    return images, truth, {str(images / name): stage for name, stage in bad.items()}


def matches(check: Callable[[list[Any]], None]) -> Callable[[list[Any]], None]:
    """An assert_that matcher from a function that raises AssertionError."""

    def matcher(actual: list[Any]) -> None:
        try:
            check(actual)
        except AssertionError as exc:
            raise BeamAssertException(str(exc)) from exc

    return matcher


def same_labels(expected: Mapping[str, np.ndarray[Any, Any]]) -> Callable[[list[Any]], None]:
    def check(actual: list[Any]) -> None:
        got = {item.uri: item.segmentation.labels for item in actual}
        assert sorted(got) == sorted(expected), (sorted(got), sorted(expected))
        for uri, labels in expected.items():
            assert np.array_equal(got[uri], labels), f"labels of {uri} differ"

    return matches(check)


def one_dead_letter_each(expected: Mapping[str, str]) -> Callable[[list[Any]], None]:
    def check(actual: list[Any]) -> None:
        assert all(isinstance(record, DeadLetter) for record in actual)
        assert sorted((r.uri, r.stage) for r in actual) == sorted(expected.items())
        for record in actual:
            assert record.error.startswith(record.uri + ": "), record.error

    return matches(check)


def equal_result(expected: EvaluationResult) -> Callable[[list[Any]], None]:
    def check(actual: list[Any]) -> None:
        assert len(actual) == 1
        result = actual[0]
        assert result.confusion.equals(expected.confusion)
        assert result.miou == expected.miou
        assert result.num_images == expected.num_images

    return matches(check)


@pytest.mark.tf
def test_read_segment_and_evaluate_in_one_pipeline(tmp_path: Path, fake_savedmodel: Path) -> None:
    images, truth, bad = write_inputs(tmp_path)
    good = sorted(p for p in images.rglob("*") if p.suffix in (".png", ".jpg"))
    good = [p for p in good if str(p) not in bad]
    reference = Segmenter.from_hub(fake_savedmodel)
    expected = {str(p): reference.segment(p).labels for p in good}
    expected_result = evaluate_segmenter(reference, good, truth)
    tf_handler = SegmenterModelHandler(SegmentConfig(model=str(fake_savedmodel)), max_batch_size=3)
    shared = SegmenterModelHandler(SegmentConfig(model="fake:33"), max_batch_size=2, model_copies=2)
    fake_reference = Segmenter(shared.load_model().segmenter.backend)
    expected_fake = {str(p): fake_reference.segment(p).labels for p in good}

    with test_pipeline.TestPipeline() as pipeline:
        decoded, unreadable = pipeline | ReadImages(f"{images}/**", max_pixels=MAX_PIXELS)
        segmented, failed = decoded | "HubModel" >> Segment(tf_handler)
        shared_segmented, shared_failed = decoded | "SharedModel" >> Segment(shared)
        scores = (
            segmented
            | beam.Map(lambda item: (item.uri, item.segmentation.labels))
            | Evaluate(str(truth))
        )
        assert_that(unreadable, one_dead_letter_each(bad), label="OneDeadLetterPerBadFile")
        assert_that(segmented, same_labels(expected), label="HubModelLabels")
        assert_that(failed, matches(lambda actual: _empty(actual)), label="NoModelFailures")
        assert_that(shared_segmented, same_labels(expected_fake), label="SharedModelLabels")
        assert_that(shared_failed, matches(_empty), label="NoSharedModelFailures")
        assert_that(scores, equal_result(expected_result), label="EvaluationEqualsLibrary")


def _empty(actual: list[Any]) -> None:
    assert actual == [], actual
