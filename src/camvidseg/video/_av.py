"""The one place that checks PyAV is installed (every ``import av`` follows a call to it)."""

from __future__ import annotations

from fractions import Fraction
from typing import Protocol

from camvidseg.exceptions import VideoError

__all__ = ["exact", "require_av"]


class _Rational(Protocol):
    @property
    def numerator(self) -> int: ...

    @property
    def denominator(self) -> int: ...


INSTALL_HINT = "install the video extra: pip install 'camvidseg[video]'"


def require_av() -> None:
    """Raise :class:`VideoError` with the install command unless PyAV can be imported."""
    try:
        import av  # noqa: F401
    except ImportError as exc:
        raise VideoError(f"reading and writing video needs PyAV ({INSTALL_HINT})") from exc


def exact(value: _Rational | None) -> Fraction | None:
    """A PyAV rational (``Fraction`` up to PyAV 18, ``AVRational`` after) as a ``Fraction``;
    ``None`` for an unset (``None`` or zero) one."""
    if value is None or not value.numerator or not value.denominator:
        return None
    return Fraction(int(value.numerator), int(value.denominator))
