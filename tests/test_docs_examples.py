"""Every example of README.md and docs/ runs (see tests/docs_examples.py for the directives).

Python blocks run page by page in one namespace, in a temporary folder where ``examples/`` is
the repository's. Where an example loads the published model (the default handle, e.g.
``Segmenter.from_hub()``), this test, and only this test, registers a resolver that opens it as
the fake 33-channel model: the real weights cannot be downloaded here. Shell examples run
``camvidseg`` in-process with ``--model fake:33`` added to the commands that take a model and
name none.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from camvidseg.backends import DEFAULT_HANDLE, Backend, OpenOptions, register_resolver
from camvidseg.backends.resolver import FakeResolver, unregister_resolver
from camvidseg.cli import build_parser, main
from tests.docs_examples import PYTHON, SHELL, CodeBlock, camvidseg_commands, code_blocks

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = {page: code_blocks(page) for page in PAGES}
FAKE_MODEL = "fake:33"


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _python_pages() -> list[Any]:
    return [
        pytest.param(page, id=_rel(page))
        for page, blocks in BLOCKS.items()
        if any(b.language in PYTHON and b.action != "skip" for b in blocks)
    ]


def _shell_blocks(action: str) -> list[Any]:
    return [
        pytest.param(block, id=f"{_rel(block.path)}:{block.line}")
        for blocks in BLOCKS.values()
        for block in blocks
        if block.action == action and (block.language in SHELL or action == "output")
    ]


@pytest.fixture
def in_docs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder like the repository root: ``examples/`` is there, outputs stay here.

    Caches (tune's, TF Hub's) and the home folder point inside it too, and ``$CAMVIDSEG_MODEL``
    is unset, so the examples behave as documented and write nothing outside.
    """
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    for name, folder in (("HOME", "home"), ("XDG_CACHE_HOME", "cache"), ("TFHUB_CACHE_DIR", "hub")):
        monkeypatch.setenv(name, str(tmp_path / folder))
    monkeypatch.delenv("CAMVIDSEG_MODEL", raising=False)
    return tmp_path


class _DefaultIsFake(FakeResolver):
    """Opens the default model handle as ``fake:33``; registered by the docs test only."""

    name = "docs-test-default-model"
    description = f"{DEFAULT_HANDLE} opened as {FAKE_MODEL} (docs test)"

    def is_supported(self, handle: str) -> bool:
        return handle == DEFAULT_HANDLE

    def open(self, handle: str, options: OpenOptions) -> Backend:
        return super().open(FAKE_MODEL, options)


@pytest.fixture
def fake_default_model() -> Iterator[None]:
    """The default model handle opens ``fake:33``, in this test only.

    Through the resolver registry, so every way of loading the default model (``from_hub()``,
    ``SegmentConfig().build_segmenter()``, Beam's handler, ...) gets it. Other handles are
    untouched: an example naming a real model fails unless it is marked skip.
    """
    register_resolver(_DefaultIsFake())
    try:
        yield
    finally:
        unregister_resolver(_DefaultIsFake.name)


def _with_fake_model(argv: list[str]) -> list[str]:
    """``argv`` plus ``--model fake:33`` when its subcommand takes ``--model`` and names none."""
    parser = build_parser()
    for word in argv:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers or word not in subparsers[0].choices:
            break
        parser = subparsers[0].choices[word]
    takes_model = "--model" in parser._option_string_actions
    if takes_model and not any(word == "--model" or word.startswith("--model=") for word in argv):
        return [*argv, "--model", FAKE_MODEL]
    return argv


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(_with_fake_model(argv))
    except SystemExit as exit_:  # --help and argparse errors exit
        code = exit_.code if isinstance(exit_.code, int) else 1
    return code, capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.usefixtures("in_docs_folder", "fake_default_model")
@pytest.mark.parametrize("page", _python_pages())
def test_python_examples_run(page: Path) -> None:
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for block in BLOCKS[page]:
        if block.language not in PYTHON or block.action == "skip":
            continue
        # Pad with blank lines so tracebacks give the line in the Markdown file.
        source = "\n" * block.line + block.code
        exec(compile(source, str(block.path), "exec"), namespace)


@pytest.mark.slow
@pytest.mark.usefixtures("in_docs_folder")
@pytest.mark.parametrize("block", _shell_blocks("run"))
def test_shell_examples_run(block: CodeBlock, capsys: pytest.CaptureFixture[str]) -> None:
    commands = camvidseg_commands(block.code)
    assert commands, f"{block.where}: 'docs-test: run' on a block without camvidseg commands"
    for argv in commands:
        code, _ = _run_cli(argv, capsys)
        assert code == 0, f"{block.where}: camvidseg {' '.join(argv)} exited with {code}"


@pytest.mark.slow
@pytest.mark.usefixtures("in_docs_folder")
@pytest.mark.parametrize("block", _shell_blocks("output"))
def test_shown_output_is_what_the_command_prints(
    block: CodeBlock, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _, expected = block.code.partition("\n")
    assert first.startswith("$ camvidseg "), f"{block.where}: an output block starts with '$ '"
    (argv,) = camvidseg_commands(first)
    _, printed = _run_cli(argv, capsys)
    assert [line.rstrip() for line in printed.splitlines()] == [
        line.rstrip() for line in expected.splitlines()
    ], f"{block.where}: the output shown differs from what the command prints"


def _unchecked_shell_blocks() -> Iterator[str]:
    for blocks in BLOCKS.values():
        for block in blocks:
            if block.language in SHELL and block.action is None and camvidseg_commands(block.code):
                yield block.where


def test_every_camvidseg_shell_example_is_run_or_skipped_with_a_reason() -> None:
    assert list(_unchecked_shell_blocks()) == []


def test_the_examples_are_found() -> None:
    # The checks above must have something to check: README and docs hold Python examples
    # and runnable commands.
    assert len(_python_pages()) >= 3
    assert len(_shell_blocks("run")) >= 3
    readme_python = [b for b in BLOCKS[ROOT / "README.md"] if b.language in PYTHON]
    assert readme_python
    assert all(b.action != "skip" or b.reason for b in readme_python)


# -- the collector itself -------------------------------------------------------------------


def test_code_blocks_reads_fences_directives_and_indentation(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text\n\n```python\nx = 1\n```\n\n<!-- docs-test: skip: needs the CamVid data -->\n"
        "```bash\ncamvidseg evaluate a b\n```\n\n- item\n\n  <!-- docs-test: run -->\n"
        "  ```bash\n  camvidseg --help\n  ```\n",
        encoding="utf-8",
    )
    blocks = code_blocks(page)
    assert [(b.line, b.language, b.code, b.action, b.reason) for b in blocks] == [
        (3, "python", "x = 1\n", None, ""),
        (8, "bash", "camvidseg evaluate a b\n", "skip", "needs the CamVid data"),
        (15, "bash", "camvidseg --help\n", "run", ""),
    ]


@pytest.mark.parametrize(
    ("directive", "message"),
    [
        ("<!-- docs-test: skip -->", "needs a reason"),
        ("<!-- docs-test: ignore -->", "unknown docs-test directive"),
    ],
)
def test_bad_directives_are_errors(tmp_path: Path, directive: str, message: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"{directive}\n```python\npass\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        code_blocks(page)


def test_an_unclosed_fence_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\npass\n", encoding="utf-8")
    with pytest.raises(ValueError, match="never closed"):
        code_blocks(page)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["segment", "in/", "-o", "out/"], ["segment", "in/", "-o", "out/", "--model", "fake:33"]),
        (["segment", "in/", "--model", "fake:noisy"], ["segment", "in/", "--model", "fake:noisy"]),
        (["tune", "a", "b", "--model=fake:32"], ["tune", "a", "b", "--model=fake:32"]),
        (["evaluate", "out/", "gt/"], ["evaluate", "out/", "gt/"]),  # evaluate runs no model
        (["--help"], ["--help"]),
    ],
)
def test_fake_model_is_added_only_where_a_model_is_taken(
    argv: list[str], expected: list[str]
) -> None:
    assert _with_fake_model(argv) == expected
