"""Beam's log lines that say nothing to a camvidseg user, and a filter that drops them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["NOISE", "quiet_beam_noise"]

#: Starts of warnings Beam logs on the root logger whatever the pipeline: on import when its
#: optional GCP clients are absent, and on every model load when ``torch`` is absent (its
#: RunInference then cannot read the process's memory use, a figure camvidseg does not use).
NOISE: tuple[str, ...] = (
    "apitools not found",
    "Resource module is not available for current platform",
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(NOISE)


@contextlib.contextmanager
def quiet_beam_noise(*, runner_errors: bool = False) -> Iterator[None]:
    """Drop :data:`NOISE` from the root logger while the block runs.

    Args:
        runner_errors: Also silence the runners' own error logs (a failing step's traceback),
            for a caller that reports the exception the pipeline raises itself.
    """
    noise = _DropNoise()
    root = logging.getLogger()
    runners = logging.getLogger("apache_beam.runners")
    level = runners.level
    root.addFilter(noise)
    if runner_errors:
        runners.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.removeFilter(noise)
        runners.setLevel(level)
