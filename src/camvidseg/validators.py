"""One validator per rule, one message format per rule (after attrs' ``attr/validators.py``).

Every validator is a small frozen value that works three ways:

* as an attrs field validator: ``attrs.field(validator=int_range(1))``;
* as a plain check with a name: ``int_range(1).check(value, "tile")``;
* as a predicate: ``int_range(1).accepts(value)``.

A failed check raises :class:`~camvidseg.exceptions.ConfigError` worded
``"<name> must be <expected> (got <value>)"``, where ``<expected>`` is the validator's own
description (``"an integer >= 1"``, ``"32 or 11"``, ``"0 (off) or an odd integer"``, ...), so one
rule reads the same wherever it is checked: config files, tune's search grids, the Segmenter,
the tiling maths. Unknown keys of a JSON object are refused by :func:`check_keys`, with one
wording.

``bool`` is never a number here (JSON ``true`` is not ``1``), and numbers must be finite.

Example:
    >>> int_range(1).check(0, "batch_size")
    Traceback (most recent call last):
    ...
    camvidseg.exceptions.ConfigError: batch_size must be an integer >= 1 (got 0)
    >>> optional(in_((32, 11))).expected
    '32 or 11 or null'
    >>> odd_or_zero().accepts(4), odd_or_zero().accepts(5)
    (False, True)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeGuard

import attrs

from camvidseg.exceptions import ConfigError

__all__ = [
    "Validator",
    "check_keys",
    "check_tile_overlap",
    "ge",
    "gt",
    "in_",
    "in_range",
    "instance_of",
    "int_range",
    "is_integer",
    "is_number",
    "le",
    "lt",
    "odd_or_zero",
    "optional",
]


def is_integer(value: object) -> TypeGuard[int]:
    """Whether ``value`` is a whole number (Python or numpy integer), not a bool.

    Example:
        >>> is_integer(3), is_integer(True), is_integer(3.0)
        (True, False, False)
    """
    if isinstance(value, bool):
        return False
    return isinstance(value, numbers.Integral)


def is_number(value: object) -> TypeGuard[float]:
    """Whether ``value`` is a finite real number, not a bool.

    Example:
        >>> is_number(0.5), is_number(float("nan")), is_number(False)
        (True, False, False)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(float(value))


class Validator:
    """Base of the validators: subclasses define :attr:`expected` and :meth:`accepts`."""

    @property
    def expected(self) -> str:
        """What a valid value is, e.g. ``"an integer >= 1"``."""
        raise NotImplementedError

    def accepts(self, value: object) -> bool:
        """Whether ``value`` passes."""
        raise NotImplementedError

    def check(self, value: object, name: str) -> None:
        """Raise :class:`ConfigError` ``"<name> must be <expected> (got <value>)"`` unless
        :meth:`accepts`."""
        if not self.accepts(value):
            raise ConfigError(f"{name} must be {self.expected} (got {value!r})")

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        """The attrs validator interface: check ``value`` under the attribute's name."""
        del instance
        self.check(value, attribute.name)


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@attrs.frozen
class _NumberValidator(Validator):
    """A number (or integer) within bounds; each bound may be absent, open or closed."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    @property
    def expected(self) -> str:
        kind = "an integer" if self.integer else "a number"
        low, high = self.low, self.high
        if low is not None and high is not None:
            if self.integer and not self.low_open and not self.high_open:
                return f"{kind} in {_bound(low)}..{_bound(high)}"
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            return f"{kind} in {left}{_bound(low)}, {_bound(high)}{right}"
        if low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {_bound(low)}"
        if high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {_bound(high)}"
        return kind

    def accepts(self, value: object) -> bool:
        if not is_number(value) or (self.integer and not is_integer(value)):
            return False
        number = float(value)
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            return False
        return self.high is None or (number < self.high if self.high_open else number <= self.high)


def int_range(minimum: int | None = None, maximum: int | None = None) -> Validator:
    """An integer with ``minimum <= value <= maximum`` (either bound optional).

    Example:
        >>> int_range(0).expected, int_range(1, 100).expected
        ('an integer >= 0', 'an integer in 1..100')
    """
    return _NumberValidator(minimum, maximum, integer=True)


def in_range(low: float, high: float, *, low_open: bool = False) -> Validator:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_open``).

    Example:
        >>> in_range(0, 1).expected, in_range(0, 4, low_open=True).expected
        ('a number in [0, 1]', 'a number in (0, 4]')
    """
    return _NumberValidator(low, high, low_open=low_open)


def ge(bound: float) -> Validator:
    """A finite number ``>= bound``."""
    return _NumberValidator(low=bound)


def gt(bound: float) -> Validator:
    """A finite number ``> bound``.

    Example:
        >>> gt(0).check(0.0, "timeout")
        Traceback (most recent call last):
        ...
        camvidseg.exceptions.ConfigError: timeout must be a number > 0 (got 0.0)
    """
    return _NumberValidator(low=bound, low_open=True)


def le(bound: float) -> Validator:
    """A finite number ``<= bound``."""
    return _NumberValidator(high=bound)


def lt(bound: float) -> Validator:
    """A finite number ``< bound``."""
    return _NumberValidator(high=bound, high_open=True)


def _choice_text(options: Iterable[object]) -> str:
    shown = [str(option) for option in options]
    if len(shown) == 2:
        return f"{shown[0]} or {shown[1]}"
    return f"one of {', '.join(shown)}"


@attrs.frozen
class _InValidator(Validator):
    """One of some options (a collection, or a function returning the current ones)."""

    options: Collection[object] | Callable[[], Collection[object]]

    def _current(self) -> Collection[object]:
        options = self.options
        return options() if callable(options) else options

    @property
    def expected(self) -> str:
        return _choice_text(self._current())

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool) and not any(isinstance(o, bool) for o in self._current()):
            return False  # True == 1, but JSON true is not the option 1
        try:
            return value in self._current()
        except TypeError:  # an unhashable value tested against a set
            return False


def in_(options: Collection[object] | Callable[[], Collection[object]]) -> Validator:
    """One of ``options``: ``"32 or 11"`` for two, ``"one of a, b, c"`` otherwise.

    ``options`` may be a function returning the current choices (e.g. registered names).

    Example:
        >>> in_(("square", "cross", "disk")).expected, in_((4, 8)).accepts(True)
        ('one of square, cross, disk', False)
    """
    return _InValidator(options)


@attrs.frozen
class _OddOrZeroValidator(Validator):
    """0 (a step switched off) or an odd integer (a window with a centre pixel)."""

    @property
    def expected(self) -> str:
        return "0 (off) or an odd integer"

    def accepts(self, value: object) -> bool:
        return is_integer(value) and (value == 0 or (value > 0 and value % 2 == 1))


def odd_or_zero() -> Validator:
    """0 (off) or an odd integer >= 1, e.g. a majority-filter window.

    Example:
        >>> [v for v in range(6) if odd_or_zero().accepts(v)]
        [0, 1, 3, 5]
    """
    return _ODD_OR_ZERO


_ODD_OR_ZERO = _OddOrZeroValidator()


@attrs.frozen
class _InstanceOfValidator(Validator):
    """An instance of ``kind`` (never a bool unless ``kind`` is bool), described in words."""

    kind: type | tuple[type, ...]
    description: str

    @property
    def expected(self) -> str:
        return self.description

    def accepts(self, value: object) -> bool:
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if isinstance(value, bool) and bool not in kinds:
            return False
        return isinstance(value, self.kind)


def instance_of(kind: type | tuple[type, ...], description: str) -> Validator:
    """An instance of ``kind``; ``description`` says it in words (``"true or false"``).

    Example:
        >>> instance_of(bool, "true or false").check("no", "drop_void")
        Traceback (most recent call last):
        ...
        camvidseg.exceptions.ConfigError: drop_void must be true or false (got 'no')
    """
    return _InstanceOfValidator(kind, description)


@attrs.frozen
class _OptionalValidator(Validator):
    """``None`` or what ``inner`` accepts."""

    inner: Validator

    @property
    def expected(self) -> str:
        return f"{self.inner.expected} or null"

    def accepts(self, value: object) -> bool:
        return value is None or self.inner.accepts(value)


def optional(inner: Validator) -> Validator:
    """``None`` (JSON ``null``), or a value ``inner`` accepts.

    Example:
        >>> optional(int_range(1)).expected
        'an integer >= 1 or null'
    """
    return _OptionalValidator(inner)


def check_keys(
    data: Mapping[str, Any], known: Iterable[str], *, noun: str = "key(s)", prefix: str = ""
) -> None:
    """Refuse keys of ``data`` that are not in ``known``.

    Args:
        data: A parsed JSON object.
        known: The keys allowed, in the order the message lists them.
        noun: What a key is called, plural form included (``"search axis(es)"``).
        prefix: Path of ``data`` in a larger object (``"cleanup."``), put before each key.

    Raises:
        ConfigError: ``"unknown <noun> '<key>', ...; expected some of <known>"``.

    Example:
        >>> check_keys({"maxside": 3}, ["max_side", "tile"])
        Traceback (most recent call last):
        ...
        camvidseg.exceptions.ConfigError: unknown key(s) 'maxside'; expected some of max_side, tile
    """
    allowed = list(known)
    unknown = sorted(str(key) for key in set(data) - set(allowed))
    if unknown:
        shown = ", ".join(repr(prefix + key) for key in unknown)
        raise ConfigError(
            f"unknown {noun} {shown}; expected some of {', '.join(prefix + k for k in allowed)}"
        )


def check_tile_overlap(tile: int, overlap: int) -> None:
    """Check a tile side and the overlap of neighbouring tiles (at most half the tile).

    Raises:
        ConfigError: for a tile that is not an integer >= 1, an overlap that is not an integer
            >= 0, or an overlap over half the tile.

    Example:
        >>> check_tile_overlap(100, 64)
        Traceback (most recent call last):
        ...
        camvidseg.exceptions.ConfigError: overlap must be at most half the tile (50; got 64)
    """
    _POSITIVE.check(tile, "tile")
    _NON_NEGATIVE.check(overlap, "overlap")
    if 2 * overlap > tile:
        raise ConfigError(f"overlap must be at most half the tile ({tile // 2}; got {overlap})")


_POSITIVE = int_range(1)
_NON_NEGATIVE = int_range(0)
