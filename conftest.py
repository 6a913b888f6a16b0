"""Collection rules for the whole repository (``tests/conftest.py`` holds the fixtures).

The doctests under ``src/`` import every module; ``camvidseg.beam`` needs Apache Beam (the
``beam`` extra), so without it that package is not collected, as its tests are skipped.
"""

from __future__ import annotations

import importlib.util


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


collect_ignore = [] if _installed("apache_beam") else ["src/camvidseg/beam"]
