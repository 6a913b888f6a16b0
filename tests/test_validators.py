"""camvidseg.validators: one validator per rule, one message format per rule."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from camvidseg import ConfigError, Segmenter
from camvidseg import validators as v
from camvidseg.config import SegmentConfig
from camvidseg.testing import NearestColorBackend
from camvidseg.tiling import tile_spans

#: Values of every JSON type and a few Python ones, for "accepts only ..." properties.
anything = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


def _message(validator: v.Validator, value: object, name: str = "x") -> str:
    with pytest.raises(ConfigError) as info:
        validator.check(value, name)
    return str(info.value)


# -- numbers ---------------------------------------------------------------------------------------


@given(
    value=anything,
    low=st.none() | st.integers(-5, 5),
    span=st.none() | st.integers(0, 10),
)
def test_int_range_accepts_exactly_the_integers_in_range(
    value: object, low: int | None, span: int | None
) -> None:
    high = None if span is None else (0 if low is None else low) + span
    validator = v.int_range(low, high)
    is_int = isinstance(value, int) and not isinstance(value, bool)
    expected = (
        is_int
        and (low is None or value >= low)  # type: ignore[operator]
        and (high is None or value <= high)  # type: ignore[operator]
    )
    assert validator.accepts(value) == expected
    if not expected:
        assert _message(validator, value) == f"x must be {validator.expected} (got {value!r})"


@pytest.mark.parametrize(
    ("validator", "expected"),
    [
        (v.int_range(1), "an integer >= 1"),
        (v.int_range(0), "an integer >= 0"),
        (v.int_range(1, 100), "an integer in 1..100"),
        (v.int_range(None, 5), "an integer <= 5"),
        (v.int_range(), "an integer"),
        (v.in_range(0, 1), "a number in [0, 1]"),
        (v.in_range(0, 4.0, low_open=True), "a number in (0, 4]"),
        (v.in_range(0.25, 0.5), "a number in [0.25, 0.5]"),
        (v.ge(0), "a number >= 0"),
        (v.gt(0), "a number > 0"),
        (v.le(2.5), "a number <= 2.5"),
        (v.lt(1), "a number < 1"),
        (v.in_((32, 11)), "32 or 11"),
        (v.in_(("merge",)), "one of merge"),
        (v.in_(("square", "cross", "disk")), "one of square, cross, disk"),
        (v.odd_or_zero(), "0 (off) or an odd integer"),
        (v.instance_of(bool, "true or false"), "true or false"),
        (v.optional(v.int_range(1)), "an integer >= 1 or null"),
    ],
)
def test_expected_texts(validator: v.Validator, expected: str) -> None:
    assert validator.expected == expected


@given(value=anything | st.floats(allow_nan=True, allow_infinity=True), bound=st.integers(-3, 3))
def test_comparisons_match_the_operators(value: object, bound: int) -> None:
    number = v.is_number(value)
    assert number == (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    )
    checks: list[tuple[v.Validator, Callable[[Any], bool]]] = [
        (v.ge(bound), lambda x: x >= bound),
        (v.gt(bound), lambda x: x > bound),
        (v.le(bound), lambda x: x <= bound),
        (v.lt(bound), lambda x: x < bound),
        (v.in_range(bound, bound + 1), lambda x: bound <= x <= bound + 1),
        (v.in_range(bound, bound + 1, low_open=True), lambda x: bound < x <= bound + 1),
    ]
    for validator, holds in checks:
        assert validator.accepts(value) == (number and holds(value))


def test_numbers_are_finite_and_never_bool() -> None:
    for bad in (True, False, math.nan, math.inf, -math.inf, "1", None, [1]):
        assert not v.ge(0).accepts(bad)
        assert not v.in_range(0, 1).accepts(bad)
        assert not v.int_range(0).accepts(bad)
    assert v.int_range(0).accepts(np.int64(3))  # numpy integers are integers
    assert not v.int_range(0).accepts(3.0)  # a float is not, even a whole one
    assert v.in_range(0, 1).accepts(np.float32(0.5))


# -- choices, odd-or-zero, instances, optional -----------------------------------------------------


@given(value=anything)
def test_in_accepts_exactly_its_options(value: object) -> None:
    options = (4, 8)
    accepted = v.in_(options).accepts(value)
    assert accepted == (not isinstance(value, bool) and isinstance(value, int) and value in options)


def test_in_takes_the_current_options_of_a_function() -> None:
    names = ["merge"]
    validator = v.in_(lambda: names)
    assert not validator.accepts("strict")
    names.append("strict")
    assert validator.accepts("strict")
    assert validator.expected == "merge or strict"
    assert not validator.accepts(["merge"])  # unhashable values are simply not options
    assert not v.in_({"a", "b"}).accepts({"a": 1})


@given(value=anything)
def test_odd_or_zero(value: object) -> None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    expected = is_int and (value == 0 or (value > 0 and value % 2 == 1))  # type: ignore[operator]
    assert v.odd_or_zero().accepts(value) == expected


def test_instance_of_and_optional() -> None:
    flag = v.instance_of(bool, "true or false")
    assert flag.accepts(True)
    assert not flag.accepts(1)
    whole = v.instance_of(int, "an int")
    assert not whole.accepts(True)  # a bool is not an int here
    maybe = v.optional(v.int_range(1))
    assert maybe.accepts(None)
    assert maybe.accepts(3)
    assert _message(maybe, 0, "tile") == "tile must be an integer >= 1 or null (got 0)"


def test_an_attrs_validator_names_the_attribute() -> None:
    @attrs.frozen
    class Window:
        size: int = attrs.field(validator=v.odd_or_zero())
        scale: float = attrs.field(default=1.0, validator=v.in_range(0, 4, low_open=True))

    assert Window(3).size == 3
    with pytest.raises(ConfigError, match=r"^size must be 0 \(off\) or an odd integer \(got 4\)$"):
        Window(4)
    with pytest.raises(ConfigError, match=r"^scale must be a number in \(0, 4\] \(got 0\)$"):
        Window(1, 0)


# -- keys and tiles --------------------------------------------------------------------------------


@given(
    keys=st.sets(st.sampled_from(["a", "b", "c", "d"])),
    known=st.lists(st.sampled_from(["a", "b", "c"]), unique=True),
)
def test_check_keys(keys: set[str], known: list[str]) -> None:
    data = dict.fromkeys(keys, 0)
    unknown = sorted(keys - set(known))
    if not unknown:
        v.check_keys(data, known)
        return
    with pytest.raises(ConfigError) as info:
        v.check_keys(data, known, noun="axis(es)", prefix="grid.")
    shown = ", ".join(repr(f"grid.{k}") for k in unknown)
    expected = ", ".join(f"grid.{k}" for k in known)
    assert str(info.value) == f"unknown axis(es) {shown}; expected some of {expected}"


@given(tile=st.integers(-2, 40), overlap=st.integers(-2, 25))
def test_check_tile_overlap(tile: int, overlap: int) -> None:
    valid = tile >= 1 and overlap >= 0 and 2 * overlap <= tile
    if valid:
        v.check_tile_overlap(tile, overlap)
        assert tile_spans(tile * 3, tile, overlap)[-1][1] == tile * 3
        return
    with pytest.raises(ConfigError) as info:
        v.check_tile_overlap(tile, overlap)
    if tile < 1:
        assert str(info.value) == f"tile must be an integer >= 1 (got {tile})"
    elif overlap < 0:
        assert str(info.value) == f"overlap must be an integer >= 0 (got {overlap})"
    else:
        assert str(info.value) == (
            f"overlap must be at most half the tile ({tile // 2}; got {overlap})"
        )


# -- one rule, one wording, wherever it is checked -------------------------------------------------


def _error(build: Any) -> str:
    with pytest.raises(ConfigError) as info:
        build()
    return str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("batch_size", 0), ("max_side", 0), ("tile", -1), ("max_side", "512"), ("tile", True)],
)
def test_config_and_segmenter_word_a_rule_the_same(field: str, value: object) -> None:
    options: dict[str, Any] = {field: value}
    from_config = _error(lambda: SegmentConfig(**options))
    from_segmenter = _error(lambda: Segmenter(NearestColorBackend(), **options))
    assert from_config == from_segmenter
    assert from_config.startswith(f"{field} must be an integer >= 1")


def test_overlap_rule_reads_the_same_everywhere() -> None:
    expected = "overlap must be at most half the tile (16; got 20)"
    assert _error(lambda: SegmentConfig(tile=32, overlap=20)) == expected
    assert _error(lambda: Segmenter(NearestColorBackend(), tile=32, overlap=20)) == expected
    assert _error(lambda: tile_spans(100, 32, 20)) == expected


def test_confidence_and_tta_rules_read_the_same_everywhere() -> None:
    config = _error(lambda: SegmentConfig(min_confidence=1.5))
    segmenter = _error(lambda: Segmenter(NearestColorBackend(), min_confidence=1.5))
    assert config == segmenter == "min_confidence must be a number in [0, 1] or null (got 1.5)"
    bad_tta: Any = {"flip": True}
    assert _error(lambda: SegmentConfig(tta=bad_tta)).startswith("tta must be a TTAConfig")
    assert _error(lambda: Segmenter(NearestColorBackend(), tta=bad_tta)).startswith(
        "tta must be a TTAConfig"
    )
    bad_cleanup: Any = {"majority": 3}
    assert _error(lambda: SegmentConfig(cleanup=bad_cleanup)) == _error(
        lambda: Segmenter(NearestColorBackend(), cleanup=bad_cleanup)
    )
