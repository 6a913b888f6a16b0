"""Ctrl-C handling shared by the long-running front-ends (pipeline, video)."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

__all__ = ["sigint_deferred"]

log = logging.getLogger("camvidseg")


@contextlib.contextmanager
def sigint_deferred(activity: str) -> Iterator[None]:
    """Ignore Ctrl-C while ``activity`` finishes (e.g. the last outputs and the manifest are
    saved), logging ``"still <activity>; it takes a moment"`` instead. Main thread only:
    elsewhere signal handlers cannot be set, and the block runs as it is.

    Example:
        >>> with sigint_deferred("saving the manifest"):
        ...     signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        True
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, frame: object) -> None:
        log.warning("still %s; it takes a moment", activity)

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
