"""camvidseg.beam without running a pipeline: naming, the model handler, the combiner, records."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("apache_beam")

from apache_beam.internal import cloudpickle_pickler

from camvidseg.beam import (
    ConfusionMatrixCombineFn,
    DeadLetter,
    Segmented,
    SegmenterModelHandler,
    glob_base,
    mirrored_name,
)
from camvidseg.beam.files import WILDCARDS, is_image_name
from camvidseg.beam.handler import element_bytes, open_segmenter
from camvidseg.beam.manifest import output_options
from camvidseg.beam.records import KeyedImage
from camvidseg.cleanup import CleanupConfig
from camvidseg.config import SegmentConfig
from camvidseg.exceptions import ConfigError
from camvidseg.imageio import LoadedImage
from camvidseg.metrics import ConfusionMatrix, EvaluationProblem
from camvidseg.palette import CamVidPalette
from camvidseg.pipeline import RunOptions
from camvidseg.pipeline.resume import check_previous
from camvidseg.segmenter import Segmentation, Segmenter
from camvidseg.testing import NearestColorBackend, street_scene

pytestmark = pytest.mark.beam

# -- naming ------------------------------------------------------------------------------------

path_part = st.text(alphabet="abcXYZ019_-. ", min_size=1, max_size=6).filter(
    lambda p: p not in (".", "..")
)
wildcard_tail = st.sampled_from(["*.png", "**/*.jpg", "x?.png", "[ab].png", "{a,b}.png", "a.png"])


@given(
    parts=st.lists(path_part, max_size=4),
    tail=wildcard_tail,
    scheme=st.sampled_from(["", "gs://b/", "/"]),
)
def test_glob_base_is_the_folder_prefix_before_the_first_wildcard(
    parts: list[str], tail: str, scheme: str
) -> None:
    pattern = scheme + "".join(p + "/" for p in parts) + tail
    base = glob_base(pattern)
    assert pattern.startswith(base)
    assert base == "" or base.endswith("/")
    assert not any(c in base for c in WILDCARDS)
    # Nothing after the base but the last part holds a folder separator before a wildcard.
    rest = pattern[len(base) :]
    first_wildcard = min(
        (i for i in (rest.find(c) for c in WILDCARDS) if i >= 0), default=len(rest)
    )
    assert "/" not in rest[:first_wildcard]


def test_glob_base_examples() -> None:
    assert glob_base("data/in/**/*.jpg") == "data/in/"
    assert glob_base("s3://bucket/a/b*/c.png") == "s3://bucket/a/"
    assert glob_base("one.png") == ""


def test_mirrored_names_keep_the_relative_folders_and_refuse_ways_out() -> None:
    assert mirrored_name("gs://b/in/cam1/x.jpg", "gs://b/in/") == PurePosixPath("cam1/x")
    assert mirrored_name("x.png", "") == PurePosixPath("x")
    with pytest.raises(ConfigError, match="unsafe part"):
        mirrored_name("in/a/../../x.png", "in/")
    with pytest.raises(ConfigError, match="not under"):
        mirrored_name("other/x.png", "in/")


@pytest.mark.parametrize(
    ("relative", "taken"),
    [
        ("a/b.png", True),
        ("b.JPEG", True),
        ("b.txt", False),
        (".hidden/a.png", False),
        ("a/.x.png.abcd1234.tmp", False),
        ("noext", False),
    ],
)
def test_only_visible_image_files_are_inputs(relative: str, taken: bool) -> None:
    assert is_image_name(PurePosixPath(relative)) is taken


# -- the model handler -------------------------------------------------------------------------


def handler(**options: Any) -> SegmenterModelHandler:
    return SegmenterModelHandler(SegmentConfig(model="fake:33", classes=11), **options)


def test_handler_round_trips_through_pickle_and_cloudpickle() -> None:
    original = handler(max_batch_size=5, min_batch_size=2, model_copies=2, cache_dir="/c")
    for dumps, loads in (
        (pickle.dumps, pickle.loads),
        (cloudpickle_pickler.dumps, cloudpickle_pickler.loads),
    ):
        copy = loads(dumps(original))
        assert isinstance(copy, SegmenterModelHandler)
        assert copy.config == original.config
        assert copy.config.classes == 11
        assert dict(copy.batch_elements_kwargs()) == {"min_batch_size": 2, "max_batch_size": 5}
        assert copy.share_model_across_processes() is True
        assert copy.model_copies() == 2
        assert repr(copy) == repr(original)


def test_handler_holds_plain_settings_only() -> None:
    state = vars(handler(max_batch_bytes=1000))
    allowed = (str, int, float, bool, type(None), dict, list, tuple)
    for key, value in state.items():
        if key == "_batching_kwargs":  # element_size_fn is a module-level function
            assert value["element_size_fn"] is element_bytes
            continue
        assert isinstance(value, allowed), key


def test_handler_sharing_and_batching_options() -> None:
    default = handler()
    assert default.share_model_across_processes() is False
    assert default.model_copies() == 1
    assert dict(default.batch_elements_kwargs()) == {"min_batch_size": 1, "max_batch_size": 8}
    assert handler(large_model=True).share_model_across_processes() is True
    weighed = dict(handler(max_batch_bytes=4096).batch_elements_kwargs())
    assert weighed["max_batch_weight"] == 4096
    assert weighed["element_size_fn"](("a", np.zeros((4, 4, 3), np.uint8))) == 48 + 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size must be an integer >= 1"),
        ({"min_batch_size": 4, "max_batch_size": 2}, "must not exceed"),
        ({"model_copies": 0}, "model_copies"),
    ],
)
def test_handler_refuses_bad_batch_settings(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        handler(**options)


def test_handler_refuses_a_bad_config_on_the_driver() -> None:
    with pytest.raises(ConfigError, match=r"majority must be 0 \(off\) or an odd integer"):
        SegmenterModelHandler({"cleanup": {"majority": "3"}})
    with pytest.raises(ConfigError, match="inference_args"):
        handler().validate_inference_args({"x": 1})


def test_num_bytes_come_from_the_arrays() -> None:
    batch: list[KeyedImage] = [
        ("a", np.zeros((10, 20, 3), np.uint8)),
        ("bb", LoadedImage(np.zeros((2, 2, 3), np.uint8))),
    ]
    assert handler().get_num_bytes(batch) == 600 + 1 + 12 + 2


class _Model:
    """A SegmenterModel stand-in that records its calls and fails on images of one shape."""

    def __init__(self, fail_shape: tuple[int, ...] | None = None) -> None:
        self.inner = handler().load_model()
        self.calls: list[list[tuple[int, ...]]] = []
        self.fail_shape = fail_shape

    def segment(self, images: Sequence[np.ndarray[Any, Any]]) -> list[Segmentation]:
        self.calls.append([image.shape for image in images])
        if any(image.shape == self.fail_shape for image in images):
            raise RuntimeError("the model cannot take this image")
        return self.inner.segment(images)


def _scenes() -> list[tuple[str, Any]]:
    return [
        ("in/a.png", street_scene(24, 32, seed=1)[0]),
        ("in/b.png", LoadedImage(street_scene(30, 20, seed=2)[0], mode="L")),
        ("in/c.png", street_scene(24, 32, seed=3)[0]),
    ]


def test_mixed_sizes_are_segmented_as_the_segmenter_does() -> None:
    batch = _scenes()
    model = _Model()
    outcomes = list(handler().run_inference(batch, model))  # type: ignore[arg-type]
    reference = Segmenter(NearestColorBackend(), palette=CamVidPalette.camvid11())
    assert [type(o) for o in outcomes] == [Segmented] * 3
    for (uri, image), outcome in zip(batch, outcomes, strict=True):
        assert isinstance(outcome, Segmented)
        array = image.array if isinstance(image, LoadedImage) else image
        expected = reference.segment(array)
        assert outcome.uri == uri
        np.testing.assert_array_equal(outcome.segmentation.labels, expected.labels)
        assert outcome.segmentation.palette.name == "camvid11"
        assert outcome.segmentation.image is array  # kept for overlays and panels
        assert outcome.model_seconds >= 0
    assert isinstance(outcomes[1], Segmented)
    assert outcomes[1].image.mode == "L"
    assert model.calls == [[(24, 32, 3), (30, 20, 3), (24, 32, 3)]]  # one call for the batch


def test_a_failing_image_is_one_dead_letter_and_its_batch_mates_finish() -> None:
    batch = _scenes()
    model = _Model(fail_shape=(30, 20, 3))
    outcomes = list(handler().run_inference(batch, model))  # type: ignore[arg-type]
    assert [type(o).__name__ for o in outcomes] == ["Segmented", "DeadLetter", "Segmented"]
    assert outcomes[1] == DeadLetter(
        "in/b.png", "inference", "in/b.png: RuntimeError: the model cannot take this image"
    )
    assert len(model.calls) == 4  # the batch, then each image alone


def test_elements_that_are_not_images_are_dead_letters_before_the_model() -> None:
    batch: list[Any] = [
        ("in/a.png", street_scene(8, 8)[0]),
        ("in/float.png", np.zeros((4, 4, 3), np.float32)),
        ("in/flat.png", np.zeros((4, 4, 2), np.uint8)),
        "not-a-pair",
    ]
    model = _Model()
    outcomes = list(handler().run_inference(batch, model))  # type: ignore[arg-type]
    assert isinstance(outcomes[0], Segmented)
    assert [o.stage for o in outcomes[1:] if isinstance(o, DeadLetter)] == ["validate"] * 3
    assert isinstance(outcomes[1], DeadLetter)
    assert "dtype float32" in outcomes[1].error
    assert isinstance(outcomes[3], DeadLetter)
    assert outcomes[3].uri == "'not-a-pair'"
    assert model.calls == [[(8, 8, 3)]]


def test_load_model_builds_the_config_s_segmenter_without_images() -> None:
    config = SegmentConfig(model="fake:32?latency=0", classes=11, cleanup=CleanupConfig(majority=3))
    model = SegmenterModelHandler(config).load_model()
    segmenter = model.segmenter
    assert segmenter.palette.name == "camvid11"
    assert segmenter.cleanup == CleanupConfig(majority=3)
    assert segmenter.keep_image is False
    with pytest.raises(ConfigError, match="fake model"):
        open_segmenter(SegmentConfig(model="fake:99"))
    with pytest.raises(ConfigError, match="latency"):
        open_segmenter(SegmentConfig(model="fake:33?latency=-1"))


# -- records, combining, manifest rules --------------------------------------------------------


def test_dead_letters_round_trip_and_name_their_stage() -> None:
    record = DeadLetter("gs://b/x.png", "read", "gs://b/x.png: 404")
    assert DeadLetter.from_json(record.to_json()) == record
    with pytest.raises(ValueError, match="stage"):
        DeadLetter("x", "nowhere", "e")


def test_combine_fn_sums_matrices_and_keeps_problems_in_order() -> None:
    fn = ConfusionMatrixCombineFn(32)
    palette = CamVidPalette.camvid32()
    rng = np.random.default_rng(0)
    matrices = []
    for _ in range(5):
        matrix = ConfusionMatrix(palette)
        matrix.update(
            rng.integers(0, 32, (3, 4), dtype=np.uint8), rng.integers(0, 32, (3, 4), dtype=np.uint8)
        )
        matrices.append(matrix)
    problem = EvaluationProblem("missing_ground_truth", "b.png", "b.png: no ground truth")
    left = fn.add_input(fn.add_input(fn.create_accumulator(), matrices[0]), problem)
    right = fn.create_accumulator()
    for matrix in matrices[1:]:
        right = fn.add_input(right, matrix)
    result = fn.extract_output(fn.merge_accumulators([left, right]))
    expected = ConfusionMatrix.merge_all(matrices).compute([problem])
    assert result.confusion.equals(expected.confusion)
    assert result.num_images == 5
    assert result.miou == expected.miou
    assert result.problems == (problem,)
    empty = fn.extract_output(fn.create_accumulator())
    assert empty.num_images == 0
    assert empty.miou is None


def test_output_options_are_segment_s_and_a_change_is_refused() -> None:
    config = SegmentConfig(model="m", classes=11, cleanup=CleanupConfig(min_region=5))
    options = RunOptions(outputs=("labels", "overlay"))
    wanted = output_options(config, options, "m")
    assert wanted["labels"]["grouping"] == "merge"
    assert wanted["labels"]["cleanup"]["min_region"] == 5
    assert wanted["overlay"]["jpeg_quality"] == 92
    head = {"output_options": {**wanted, "panel": {"legend": True}}}
    recorded = check_previous(head, wanted, output="out", overwrite=False)
    assert recorded["panel"] == {"legend": True}  # files of kinds not written stay recorded
    other = output_options(SegmentConfig(model="m2", classes=11), options, "m2")
    with pytest.raises(ConfigError, match=r"model 'm' -> 'm2'.*--overwrite"):
        check_previous(head, other, output="out", overwrite=False)
    assert check_previous(head, other, output="out", overwrite=True)["labels"]["model"] == "m2"
    assert check_previous(None, other, output="out", overwrite=False) == other
