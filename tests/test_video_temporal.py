"""camvidseg.video's pure parts: smoothing, scene cuts, flicker, frame ranges, area timeline.

None of these need PyAV.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from camvidseg.exceptions import ConfigError
from camvidseg.video import (
    AreaTimeline,
    EmaSmoother,
    FlickerMeter,
    Frame,
    FrameRange,
    SceneCutDetector,
    TemporalSmoothing,
    area_fractions,
    frame_difference,
    label_change_fraction,
    parse_rate,
)
from camvidseg.video.testing import moving_shapes
from tests.strategies import label_maps, probability_scores

alphas = st.floats(min_value=0.0, max_value=0.99, allow_nan=False)


@st.composite
def score_sequences(draw: st.DrawFn) -> list[NDArray[np.float32]]:
    first = draw(probability_scores(channels=4))
    count = draw(st.integers(1, 5))
    rest = [
        draw(hnp.arrays(np.float32, first.shape, elements=st.floats(0, 1, width=32)))
        for _ in range(count)
    ]
    return [first, *rest]


# -- EMA -------------------------------------------------------------------------------------------


@given(score_sequences(), alphas)
def test_ema_equals_the_recursion_written_out(
    sequence: list[NDArray[np.float32]], alpha: float
) -> None:
    ema = EmaSmoother(alpha)
    expected = sequence[0].astype(np.float64)
    np.testing.assert_array_equal(ema.update(sequence[0]), sequence[0])
    for scores in sequence[1:]:
        expected = alpha * expected + (1 - alpha) * scores.astype(np.float64)
        got = ema.update(scores)
        assert got.dtype == np.float32
        assert got.shape == scores.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@given(score_sequences(), alphas)
def test_ema_stays_between_the_smallest_and_largest_input(
    sequence: list[NDArray[np.float32]], alpha: float
) -> None:
    ema = EmaSmoother(alpha)
    low = np.minimum.reduce(sequence)
    high = np.maximum.reduce(sequence)
    for scores in sequence:
        out = ema.update(scores)
    assert np.all(out >= low - 1e-6)
    assert np.all(out <= high + 1e-6)


@given(score_sequences())
def test_ema_with_alpha_zero_is_the_last_frame(sequence: list[NDArray[np.float32]]) -> None:
    ema = EmaSmoother(0.0)
    for scores in sequence:
        out = ema.update(scores)
    np.testing.assert_array_equal(out, sequence[-1])


def test_ema_does_not_modify_its_input_and_restarts_after_reset() -> None:
    ema = EmaSmoother(0.5)
    first = np.array([[[1.0, 0.0]]], np.float32)
    second = np.array([[[0.0, 1.0]]], np.float32)
    ema.update(first)
    ema.update(second)
    assert first.tolist() == [[[1.0, 0.0]]]
    assert second.tolist() == [[[0.0, 1.0]]]
    ema.reset()
    assert ema.update(second).tolist() == [[[0.0, 1.0]]]
    # A new frame size starts a new average rather than failing.
    assert ema.update(np.ones((2, 1, 2), np.float32)).shape == (2, 1, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "median"}, r"^mode must be none or ema \(got 'median'\)$"),
        ({"alpha": 1.0}, r"^alpha must be a number < 1 \(got 1\.0\)$"),
        ({"alpha": -0.1}, r"^alpha must be a number >= 0 \(got -0\.1\)$"),
        ({"cut_threshold": 0.0}, r"^cut_threshold must be a number in \(0, 1\] \(got 0\.0\)$"),
        ({"alpha": math.nan}, r"^alpha must be a number >= 0 \(got nan\)$"),
    ],
)
def test_temporal_smoothing_refuses_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TemporalSmoothing(**kwargs)  # type: ignore[arg-type]


def test_temporal_smoothing_parse() -> None:
    assert TemporalSmoothing.parse(None) == TemporalSmoothing()
    assert TemporalSmoothing.parse("ema").mode == "ema"
    custom = TemporalSmoothing("ema", 0.8)
    assert TemporalSmoothing.parse(custom) is custom
    with pytest.raises(ConfigError, match=r"^temporal must be none or ema \(got 'flow'\)$"):
        TemporalSmoothing.parse("flow")


# -- scene cuts and flicker ------------------------------------------------------------------------


def test_scene_cuts_are_found_exactly_where_the_scene_changes() -> None:
    detector = SceneCutDetector()
    cuts = [detector.is_cut(image) for image, _ in moving_shapes(20, 48, 64, cut_at=12)]
    assert [i for i, cut in enumerate(cuts) if cut] == [0, 12]
    assert detector.cuts == 1  # the first frame starts the video, it is not counted


@given(st.integers(1, 40), st.integers(1, 40))
def test_frame_difference_is_zero_on_itself_symmetric_and_bounded(height: int, width: int) -> None:
    rng = np.random.default_rng(height * 100 + width)
    a = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    assert frame_difference(a, a) == 0.0
    assert frame_difference(a, b) == pytest.approx(frame_difference(b, a))
    assert 0.0 <= frame_difference(a, b) <= 1.0
    assert frame_difference(a, b[:, :-1] if width > 1 else b[:-1]) == 1.0


@given(label_maps(), st.data())
def test_label_change_fraction_counts_changed_pixels(
    labels: NDArray[np.uint8], data: st.DataObject
) -> None:
    other = data.draw(hnp.arrays(np.uint8, labels.shape, elements=st.integers(0, 31)))
    fraction = label_change_fraction(labels, other)
    assert fraction == pytest.approx(np.mean(labels != other))
    assert fraction == label_change_fraction(other, labels)
    assert label_change_fraction(labels, labels) == 0.0


def test_label_change_fraction_refuses_different_shapes() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        label_change_fraction(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))


def test_flicker_meter_leaves_out_pairs_across_a_cut() -> None:
    meter = FlickerMeter()
    assert meter.value is None
    meter.add(np.zeros((2, 2), np.uint8))
    meter.add(np.array([[0, 0], [0, 1]], np.uint8))  # 1/4 changed
    meter.add(np.ones((2, 2), np.uint8), cut=True)  # a new shot: not counted
    meter.add(np.ones((2, 2), np.uint8))  # nothing changed
    assert meter.pairs == 2
    assert meter.value == pytest.approx(0.125)


# -- frame ranges ----------------------------------------------------------------------------------


def _frames(count: int, rate: Fraction) -> list[Frame]:
    image = np.zeros((1, 1, 3), np.uint8)
    return [Frame(image, i, i / rate) for i in range(count)]


@given(
    total=st.integers(0, 60),
    rate=st.sampled_from(
        [Fraction(30000, 1001), Fraction(25), Fraction(24000, 1001), Fraction(7), Fraction(10)]
    ),
    start=st.sampled_from([0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 1.3]),
    length=st.sampled_from([None, 0.2, 0.75, 3.0]),
    every=st.integers(1, 5),
    max_frames=st.sampled_from([None, 1, 3, 10]),
)
def test_frame_range_expected_matches_what_select_takes(
    total: int,
    rate: Fraction,
    start: float,
    length: float | None,
    every: int,
    max_frames: int | None,
) -> None:
    end = None if length is None else start + length
    frame_range = FrameRange(start=start, end=end, every=every, max_frames=max_frames)
    taken = list(frame_range.select(_frames(total, rate)))
    assert frame_range.expected(total, rate) == len(taken)
    low, high = Fraction(repr(start)), None if end is None else Fraction(repr(end))
    assert all(low <= f.time and (high is None or f.time < high) for f in taken)
    assert [b.index - a.index for a, b in itertools.pairwise(taken)] == [every] * (len(taken) - 1)


def test_a_frame_exactly_at_start_is_taken_and_one_exactly_at_end_is_not() -> None:
    # 0.3 as a float is just below 3/10 and 0.7 just above 7/10: the range means the decimals.
    frames = _frames(10, Fraction(10))
    assert [f.index for f in FrameRange(start=0.3, end=0.7).select(frames)] == [3, 4, 5, 6]
    assert FrameRange(start=0.3, end=0.7).expected(10, Fraction(10)) == 4


def test_frame_range_stops_reading_at_the_end() -> None:
    read: list[int] = []

    def frames() -> Iterator[Frame]:
        for frame in _frames(100, Fraction(10)):
            read.append(frame.index)
            yield frame

    taken = list(FrameRange(end=1.0).select(frames()))
    assert len(taken) == 10
    assert read == list(range(11))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": -1.0}, r"^start must be a number >= 0 \(got -1\.0\)$"),
        ({"start": 2.0, "end": 1.0}, r"^end must be a number > 2 \(got 1\.0\)$"),
        ({"every": 0}, r"^every must be an integer >= 1 \(got 0\)$"),
        ({"max_frames": 0}, r"^max_frames must be an integer >= 1 or null \(got 0\)$"),
    ],
)
def test_frame_range_refuses_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FrameRange(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "rate"),
    [("30000/1001", Fraction(30000, 1001)), ("25", Fraction(25)), ("29.97", Fraction(2997, 100))],
)
def test_parse_rate_is_exact(text: str, rate: Fraction) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["0", "-25", "abc", "1/0", ""])
def test_parse_rate_refuses_non_rates(text: str) -> None:
    with pytest.raises(ConfigError, match="frame rate"):
        parse_rate(text)


# -- areas -----------------------------------------------------------------------------------------


@given(label_maps(num_classes=12), st.booleans())
def test_area_fractions_sum_to_one_and_count_unlabelled(
    labels: NDArray[np.uint8], abstain: bool
) -> None:
    if abstain:
        labels = labels.copy()
        labels[0, 0] = 255
    fractions = area_fractions(labels, 12)
    assert fractions.shape == (13,)
    assert fractions.sum() == pytest.approx(1.0)
    assert fractions[12] == pytest.approx(np.mean(labels == 255))
    for class_id in range(12):
        assert fractions[class_id] == pytest.approx(np.mean(labels == class_id))


@given(st.lists(st.floats(0, 1), min_size=1, max_size=80), st.integers(1, 8))
def test_area_timeline_bins_are_exact_means_of_equal_runs(values: list[float], points: int) -> None:
    timeline = AreaTimeline(1, max_points=points)
    for i, value in enumerate(values):
        timeline.add(np.array([value]), time=float(i))
    span = timeline.frames_per_point
    capacity = points + points % 2 if points > 1 else 2
    means = timeline.means()[:, 0]
    assert len(means) <= capacity
    expected = [np.mean(values[i : i + span]) for i in range(0, len(values), span)]
    np.testing.assert_allclose(means, expected)
    np.testing.assert_array_equal(timeline.times(), np.arange(0, len(values), span, dtype=float))
    assert timeline.frames == len(values)
