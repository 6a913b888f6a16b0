"""Child Python processes that run the camvidseg under test, not whichever one is installed.

``pytest``'s ``pythonpath`` setting only reaches this process; a child started with
``sys.executable`` would import the installed package (an editable install of another
checkout, or a wheel) unless ``PYTHONPATH`` points at the tree these tests import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import camvidseg

#: The folder holding the ``camvidseg`` package this test session imported.
SRC = Path(camvidseg.__file__).resolve().parents[1]
#: Seconds any child may take: a bound so that a hang fails the test instead of the suite.
CHILD_TIMEOUT = 120.0


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` with :data:`SRC` first on ``PYTHONPATH`` (plus ``extra`` variables)."""
    path = os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "PYTHONPATH": str(SRC) + (os.pathsep + path if path else "")}
    env.update(extra or {})
    return env


def cli_command(*args: str) -> list[str]:
    """``python -m camvidseg ARGS`` with this interpreter."""
    return [sys.executable, "-m", "camvidseg", *args]


def run_python(
    code: str, *, env: Mapping[str, str] | None = None, check: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c CODE`` on the tree under test; text output captured, time bounded."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=cli_env(env),
        capture_output=True,
        text=True,
        check=check,
        timeout=kwargs.pop("timeout", CHILD_TIMEOUT),
        **kwargs,
    )
