"""The one place that checks PyAV is installed (every ``import av`` follows a call to it)."""

from __future__ import annotations

from camvidseg.exceptions import VideoError

__all__ = ["require_av"]

INSTALL_HINT = "install the video extra: pip install 'camvidseg[video]'"


def require_av() -> None:
    """Raise :class:`VideoError` with the install command unless PyAV can be imported."""
    try:
        import av  # noqa: F401
    except ImportError as exc:
        raise VideoError(f"reading and writing video needs PyAV ({INSTALL_HINT})") from exc
