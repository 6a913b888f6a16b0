"""The API reference pages: one page per public module of camvidseg, found in the source tree.

Modules are found on disk (nothing is imported), so a module added to ``src/camvidseg`` gets its
page, and its entry in the navigation, the next time the site is built. Names starting with an
underscore are private and ``camvidseg.cli`` is documented by the command line reference.
A package's page shows its public names (``__all__``) and then each of its modules' docstrings.
"""

from __future__ import annotations

import ast
from pathlib import Path

import attrs

__all__ = ["ApiModule", "api_index_page", "api_module_page", "discover_modules"]

#: Modules documented elsewhere (the command line has its own reference page).
EXCLUDED = frozenset({"camvidseg.cli"})


@attrs.frozen
class ApiModule:
    """A public module or package of camvidseg."""

    name: str
    """Dotted name, e.g. ``camvidseg.pipeline``."""
    path: Path
    """Its source file (``__init__.py`` for a package)."""
    submodules: tuple[str, ...] = ()
    """Public modules of a package, dotted names in alphabetical order."""

    @property
    def page(self) -> str:
        """Site path of its page, e.g. ``api/pipeline.md``."""
        return "api/" + "/".join(self.name.split(".")[1:]) + ".md"

    @property
    def short_name(self) -> str:
        return self.name.removeprefix("camvidseg.")

    def summary(self) -> str:
        """First line of the module docstring (empty when it has none)."""
        return docstring_summary(self.path)


def docstring_summary(path: Path) -> str:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    return docstring.strip().splitlines()[0] if docstring else ""


def _is_public(name: str) -> bool:
    return not name.startswith("_")


def _public_children(folder: Path, package: str) -> list[tuple[str, Path, bool]]:
    """``(dotted name, source, is package)`` of the public modules directly in ``folder``."""
    children = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and (entry / "__init__.py").is_file() and _is_public(entry.name):
            children.append((f"{package}.{entry.name}", entry / "__init__.py", True))
        elif entry.suffix == ".py" and _is_public(entry.stem):
            children.append((f"{package}.{entry.stem}", entry, False))
    return children


def discover_modules(src: Path, package: str = "camvidseg") -> list[ApiModule]:
    """The public top-level modules and packages of ``package`` under ``src``, by name.

    Example:
        >>> modules = discover_modules(Path("src"))
        >>> [m.name for m in modules if m.name.endswith(("pipeline", "palette"))]
        ['camvidseg.palette', 'camvidseg.pipeline']
        >>> "camvidseg.cli" in [m.name for m in modules]
        False
    """
    found = []
    for name, path, is_package in _public_children(src / package, package):
        if name in EXCLUDED:
            continue
        submodules: tuple[str, ...] = ()
        if is_package:
            submodules = tuple(child for child, _, _ in _public_children(path.parent, name))
        found.append(ApiModule(name, path, submodules))
    return found


def api_module_page(module: ApiModule) -> str:
    """Markdown of a module's page (mkdocstrings directives)."""
    lines = [f"::: {module.name}", "    options:", "      heading_level: 1", ""]
    if module.submodules:
        lines += [
            "## Modules of the package",
            "",
            f"The names above are imported from `{module.name}`; they are defined in these "
            "modules.",
            "",
        ]
        for submodule in module.submodules:
            lines += [
                f"::: {submodule}",
                "    options:",
                "      heading_level: 3",
                "      members: false",
                "",
            ]
    return "\n".join(lines)


def api_index_page(modules: list[ApiModule]) -> str:
    """Markdown of the reference's first page: the package docstring and a table of modules."""
    lines = [
        "# API reference",
        "",
        "Generated from the source code when the site is built: every public module has a "
        "page, with the signatures of its classes (the `__init__` of attrs classes "
        "included) and functions. The command line is described in the "
        "[command line reference](../cli.md).",
        "",
        "::: camvidseg",
        "    options:",
        "      show_root_heading: false",
        "      members: false",
        "",
        "| Module | What it holds |",
        "| --- | --- |",
    ]
    for module in modules:
        link = module.page.removeprefix("api/")
        lines.append(f"| [`{module.name}`]({link}) | {module.summary()} |")
    lines.append("")
    return "\n".join(lines)
