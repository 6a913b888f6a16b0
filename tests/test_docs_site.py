"""The documentation site's generated pages: command line reference, API pages, gallery."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from camvidseg.cli import build_parser
from tools.api_reference import api_index_page, api_module_page, discover_modules
from tools.cli_reference import iter_parsers, render_cli_reference

ROOT = Path(__file__).resolve().parents[1]


# -- command line reference -----------------------------------------------------------------


def _documented_actions(
    parser: argparse.ArgumentParser,
) -> list[argparse.Action]:
    return [
        action
        for action in parser._actions
        if action.help != argparse.SUPPRESS and not isinstance(action, argparse._SubParsersAction)
    ]


def test_cli_reference_covers_every_command_and_argument() -> None:
    parser = build_parser()
    page = render_cli_reference(parser)
    commands = [name for name, _ in iter_parsers(parser)]
    # Nested subcommands are reached too.
    assert {"camvidseg", "camvidseg segment", "camvidseg model", "camvidseg model download"} <= set(
        commands
    )
    sections = re.split(r"^#+ `", page, flags=re.MULTILINE)[1:]
    by_command = {section.split("`", 1)[0]: section for section in sections}
    assert sorted(by_command) == sorted(commands)
    for name, subparser in iter_parsers(parser):
        section = by_command[name]
        assert subparser.format_usage().strip().splitlines()[0] in section
        for action in _documented_actions(subparser):
            for option in action.option_strings or [str(action.metavar or action.dest)]:
                assert f"`{option}" in section or f", {option}" in section, (name, option)


def test_cli_reference_expands_defaults_and_escapes_markdown() -> None:
    parser = argparse.ArgumentParser(prog="tool", description="Does *things*.")
    parser.add_argument("--glob", default="*.png", help="files like %(default)s | others")
    page = render_cli_reference(parser)
    assert "| `--glob GLOB` | files like \\*.png \\| others |" in page
    assert "Does \\*things\\*." not in page  # prose descriptions stay prose
    assert "Does *things*." in page


def test_cli_reference_anchors_are_unique_and_linked() -> None:
    page = render_cli_reference(build_parser())
    anchors = re.findall(r"\{#([\w-]+)\}", page)
    assert len(anchors) == len(set(anchors))
    for target in re.findall(r"\]\(#([\w-]+)\)", page):
        assert target in anchors


# -- API reference --------------------------------------------------------------------------


def _public_modules_on_disk() -> set[str]:
    src = ROOT / "src"
    found = set()
    for path in (src / "camvidseg").glob("*"):
        name = path.stem
        if name.startswith("_") or (path.is_file() and path.suffix != ".py"):
            continue
        if path.is_dir() and not (path / "__init__.py").is_file():
            continue
        found.add(f"camvidseg.{name}")
    return found - {"camvidseg.cli"}


def test_every_public_module_gets_an_api_page() -> None:
    modules = discover_modules(ROOT / "src")
    assert {m.name for m in modules} == _public_modules_on_disk()
    pages = [m.page for m in modules]
    assert len(pages) == len(set(pages))
    pipeline = next(m for m in modules if m.name == "camvidseg.pipeline")
    assert "camvidseg.pipeline.manifest" in pipeline.submodules
    assert not [s for s in pipeline.submodules if s.rsplit(".", 1)[1].startswith("_")]


def test_api_pages_hold_the_directives_and_the_index_links_them() -> None:
    modules = discover_modules(ROOT / "src")
    pipeline = next(m for m in modules if m.name == "camvidseg.pipeline")
    page = api_module_page(pipeline)
    assert page.startswith("::: camvidseg.pipeline\n")
    for submodule in pipeline.submodules:
        assert f"::: {submodule}\n" in page
    index = api_index_page(modules)
    for module in modules:
        assert f"[`{module.name}`]({module.page.removeprefix('api/')})" in index


def test_the_hook_puts_every_api_page_in_the_navigation() -> None:
    pytest.importorskip("mkdocs")
    from tools.mkdocs_hooks import API_INDEX, _api_nav

    nav = [{"Home": "index.md"}, {"Reference": [{"API": API_INDEX}, {"CLI": "cli.md"}]}]
    (reference,) = _api_nav(nav)[1].values()
    (api_section,) = reference[0].values()
    pages = [next(iter(entry.values())) for entry in api_section]
    assert pages[0] == API_INDEX
    assert sorted(pages[1:]) == sorted(m.page for m in discover_modules(ROOT / "src"))
    assert reference[1] == {"CLI": "cli.md"}


# -- docstring markup (the griffe extension) ------------------------------------------------


def test_comment_docstrings_and_cross_references_in_a_package() -> None:
    griffe = pytest.importorskip("griffe")
    from tools.griffe_docstrings import DocstringMarkupExtension

    code = '''
    """See :class:`~pkg.mod.Documented`, :class:`pkg.mod.Hidden`, :func:`pkg.mod._private`."""

    #: How many, at most.
    LIMIT = 3
    ANSWER = 42  #: The answer.
    PLAIN = 1


    class Documented:
        """A class.

        Example:
            >>> LIMIT
            3
        """


    class Hidden:
        pass


    def _private():
        """Private."""
    '''
    with griffe.temporary_visited_package(
        "pkg",
        {"__init__.py": '"""Package."""', "mod.py": code},
        extensions=griffe.load_extensions(DocstringMarkupExtension()),
    ) as package:
        module = package["mod"]
        assert module["LIMIT"].docstring.value == "How many, at most."
        assert module["ANSWER"].docstring.value == "The answer."
        assert module["PLAIN"].docstring is None
        text = module.docstring.value
        # Documented public objects become checked links; others stay code.
        assert "[`Documented`][pkg.mod.Documented]" in text
        assert "`pkg.mod.Hidden`" in text
        assert "[pkg.mod.Hidden]" not in text
        assert "`pkg.mod._private`" in text
        assert "[pkg.mod._private]" not in text
        sections = module["Documented"].docstring.parse("google")
        assert [s.kind.value for s in sections] == ["text", "examples"]


def test_objects_of_a_package_module_are_linked_only_when_the_package_exports_them() -> None:
    griffe = pytest.importorskip("griffe")
    from tools.griffe_docstrings import DocstringMarkupExtension

    files = {
        "__init__.py": '"""See :class:`pkg.sub.impl.Exported` and :func:`pkg.sub.impl.helper`."""',
        "sub/__init__.py": (
            '"""Sub."""\nfrom pkg.sub.impl import Exported\n__all__ = ["Exported"]\n'
        ),
        "sub/impl.py": (
            '"""Impl."""\n\nclass Exported:\n    """Shown."""\n\n\n'
            'def helper():\n    """Documented, but not exported."""\n'
        ),
    }
    with griffe.temporary_visited_package(
        "pkg", files, extensions=griffe.load_extensions(DocstringMarkupExtension())
    ) as package:
        text = package.docstring.value
        assert "[`pkg.sub.impl.Exported`][pkg.sub.impl.Exported]" in text
        assert "`pkg.sub.impl.helper`" in text
        assert "[pkg.sub.impl.helper]" not in text


# -- gallery --------------------------------------------------------------------------------


def _referenced_images(page: Path) -> list[str]:
    return re.findall(r"\]\((gallery/[^)]+)\)", page.read_text(encoding="utf-8"))


def test_committed_gallery_references_existing_small_images() -> None:
    page = ROOT / "docs" / "gallery.md"
    images = _referenced_images(page)
    assert len(images) >= 8
    for image in images:
        path = ROOT / "docs" / image
        assert path.is_file(), image
        assert path.stat().st_size < 300_000, image
    text = page.read_text(encoding="utf-8")
    assert "Made with the fake model" in text or "Made with the model `" in text


@pytest.mark.slow
def test_gallery_script_writes_the_page_and_labels_the_fake_model(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "make_gallery.py"
    subprocess.run(
        [sys.executable, str(script), "--docs", str(tmp_path), "--max-side", "160"],
        check=True,
        capture_output=True,
    )
    page = tmp_path / "gallery.md"
    text = page.read_text(encoding="utf-8")
    assert "Made with the fake model" in text
    images = _referenced_images(page)
    photos = sorted(p.stem for p in (ROOT / "examples" / "photos").glob("*.jpg"))
    scenes = sorted(p.stem for p in (ROOT / "examples" / "images").glob("*.jpg"))
    for stem in photos + scenes:
        assert f"gallery/{stem}_panel.jpg" in images
        assert f"gallery/{stem}_confidence.jpg" in images
    assert {"gallery/legend_camvid32.png", "gallery/confusion_camvid11.png"} <= set(images)
    assert sorted(p.name for p in (tmp_path / "gallery").iterdir()) == sorted(
        Path(i).name for i in images
    )
    assert re.search(r"mIoU \d+\.\d%", text)


def test_getting_started_shows_the_readme_commands() -> None:
    from tests.docs_examples import code_blocks

    readme = code_blocks(ROOT / "README.md")[0]
    page = code_blocks(ROOT / "docs" / "getting-started.md")[0]
    assert readme.code.startswith("python3 -m venv .venv")
    assert page.code == readme.code
