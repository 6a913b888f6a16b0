"""mkdocs hooks: pages generated from the code each time the site is built.

- ``cli.md``: the command line reference, from ``camvidseg.cli.build_parser()``.
- ``api/index.md`` and one ``api/<module>.md`` per public module (mkdocstrings directives),
  inserted in the navigation in place of the ``api/index.md`` entry.

The repository's own ``src`` comes first on ``sys.path``, so the site documents the checkout
being built even where another copy of camvidseg is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from mkdocs.config.defaults import MkDocsConfig  # noqa: E402
from mkdocs.structure.files import File, Files  # noqa: E402

from tools.api_reference import (  # noqa: E402
    api_index_page,
    api_module_page,
    discover_modules,
)
from tools.cli_reference import render_cli_reference  # noqa: E402

API_INDEX = "api/index.md"
CLI_PAGE = "cli.md"


def _api_nav(nav: list[Any]) -> list[Any]:
    """``nav`` with the ``api/index.md`` entry replaced by a section of every module page."""
    section: list[Any] = [{"Overview": API_INDEX}]
    section += [{module.short_name: module.page} for module in discover_modules(ROOT / "src")]
    result: list[Any] = []
    for item in nav:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if value == API_INDEX:
                item = {title: section}
            elif isinstance(value, list):
                item = {title: _api_nav(value)}
        result.append(item)
    return result


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    if config.nav is not None:
        config.nav = _api_nav(config.nav)
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    import camvidseg.cli

    modules = discover_modules(ROOT / "src")
    pages = {CLI_PAGE: render_cli_reference(camvidseg.cli.build_parser())}
    pages[API_INDEX] = api_index_page(modules)
    pages.update((module.page, api_module_page(module)) for module in modules)
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    return files
