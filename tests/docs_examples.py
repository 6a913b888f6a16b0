"""Find the code blocks of Markdown pages, and what the docs test does with each.

A fenced block (```` ```python ````, ```` ```bash ````, ...) may be preceded by one directive,
an HTML comment on the line just above its fence (invisible on GitHub and on the site):

- ``<!-- docs-test: skip REASON -->``: the block is not run; the reason is required (e.g. "needs
  the CamVid data set", "downloads the model").
- ``<!-- docs-test: run -->``: a shell block whose ``camvidseg ...`` commands run (other
  commands on its lines, such as ``pip install``, do not).
- ``<!-- docs-test: output -->``: a ``text`` block that starts with ``$ camvidseg ...``; the
  command runs and must print the rest of the block.

Every Python block without ``skip`` runs, the blocks of one page in order in one namespace. A
shell block that contains ``camvidseg`` commands needs ``run`` or ``skip``, so nothing is left
unchecked by accident.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import attrs

__all__ = ["CodeBlock", "camvidseg_commands", "code_blocks"]

PYTHON = frozenset({"python", "py"})
SHELL = frozenset({"bash", "sh", "shell", "console"})
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[ \t]*(?P<info>[^\s`]*)[^`]*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<action>\w+)(?P<reason>.*?)\s*-->\s*$")
_ACTIONS = frozenset({"skip", "run", "output"})


@attrs.frozen
class CodeBlock:
    """A fenced code block of a Markdown file."""

    path: Path
    line: int
    """Line of the opening fence (1-based)."""
    language: str
    code: str
    """The content, with the fence's indentation removed."""
    action: str | None = None
    """``skip``, ``run``, ``output`` or ``None`` (no directive)."""
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def code_blocks(path: Path) -> list[CodeBlock]:
    """The fenced blocks of a Markdown file, with their directives.

    Raises:
        ValueError: an unknown directive, a ``skip`` without reason, or an unclosed fence.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        end = index + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{index + 1}: code block is never closed")
        body = [line.removeprefix(indent) for line in lines[index + 1 : end]]
        action, reason = _directive(path, lines, index)
        blocks.append(
            CodeBlock(
                path, index + 1, opening["info"].lower(), "\n".join(body) + "\n", action, reason
            )
        )
        index = end + 1
    return blocks


def _directive(path: Path, lines: list[str], fence_index: int) -> tuple[str | None, str]:
    if fence_index == 0:
        return None, ""
    match = _DIRECTIVE.match(lines[fence_index - 1])
    if not match:
        return None, ""
    action, reason = match["action"], match["reason"].strip().lstrip(":").strip()
    if action not in _ACTIONS:
        raise ValueError(f"{path}:{fence_index}: unknown docs-test directive {action!r}")
    if action == "skip" and not reason:
        raise ValueError(f"{path}:{fence_index}: 'docs-test: skip' needs a reason")
    return action, reason


def camvidseg_commands(code: str) -> list[list[str]]:
    """The ``camvidseg`` commands of a shell block, as argument lists (without ``camvidseg``).

    Prompts (``$``), comments, continued lines, ``.venv/bin/`` and commands chained with ``&&``
    are understood.

    Example:
        >>> camvidseg_commands("$ camvidseg segment in/ -o out/   # three images\\n")
        [['segment', 'in/', '-o', 'out/']]
        >>> camvidseg_commands("pip install . && .venv/bin/camvidseg --help\\nnox -s lint\\n")
        [['--help']]
        >>> camvidseg_commands("camvidseg tune a/ b/ \\\\\\n    --top 3  # best three\\n")
        [['tune', 'a/', 'b/', '--top', '3']]
    """
    commands = []
    for line in code.replace("\\\n", " ").splitlines():  # join continued lines
        for part in line.split("&&"):
            words = shlex.split(part.strip().removeprefix("$ "), comments=True)
            if words and words[0].removeprefix(".venv/bin/") == "camvidseg":
                commands.append(words[1:])
    return commands
