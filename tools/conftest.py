"""Collect the docs tools' doctests only where their dependencies (the docs extra) are installed."""

from __future__ import annotations

import importlib.util

collect_ignore: list[str] = []
if importlib.util.find_spec("griffe") is None:
    collect_ignore += ["griffe_attrs.py", "griffe_docstrings.py"]
if importlib.util.find_spec("mkdocs") is None:
    collect_ignore += ["mkdocs_hooks.py"]
