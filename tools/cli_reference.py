"""The command line reference page, written from the argparse parsers themselves.

``render_cli_reference(build_parser())`` walks the parser and every subcommand (nested ones
included) and writes, for each: its usage, description, a table of its arguments per argument
group (with the help text as ``--help`` shows it, defaults expanded) and its examples. The site
build calls it (``tools/mkdocs_hooks.py``), so the page cannot drift from the code.
"""

from __future__ import annotations

import argparse
import html
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["iter_parsers", "render_cli_reference"]

#: Width the usage lines are wrapped at (argparse reads it from $COLUMNS).
WIDTH = 100


@contextmanager
def _columns(width: int) -> Iterator[None]:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def _subparsers(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, one-line help, parser)`` of each subcommand, in the order ``--help`` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, subparser in action._name_parser_map.items():
                if name in helps:  # aliases map to the same parser; list it once
                    yield name, helps[name], subparser


def iter_parsers(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(command line, parser)`` for the parser and every subcommand, depth first.

    Example:
        >>> root = argparse.ArgumentParser(prog="tool")
        >>> sub = root.add_subparsers().add_parser("run", help="run it")
        >>> [name for name, _ in iter_parsers(root)]
        ['tool', 'tool run']
    """
    yield parser.prog, parser
    for _, _, subparser in _subparsers(parser):
        yield from iter_parsers(subparser)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def _cell(text: str) -> str:
    r"""Plain text as one line of a Markdown table cell (Markdown and HTML characters escaped).

    Example:
        >>> print(_cell("only '*.png' | <dir>\n  (default: a_b)"))
        only '\*.png' \| &lt;dir&gt; (default: a\_b)
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(" ".join(text.split()), quote=False))


def _code_cell(text: str) -> str:
    """Text as a code span in a Markdown table cell (code spans take no escapes but ``\\|``)."""
    return "`" + " ".join(text.split()).replace("|", "\\|") + "`"


def _arguments_table(parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    lines: list[str] = []
    for group in parser._action_groups:
        actions = [
            action
            for action in group._group_actions
            if action.help != argparse.SUPPRESS
            and not isinstance(action, argparse._SubParsersAction)
        ]
        if not actions:
            continue
        lines += [f"**{group.title}**", "", "| Argument | Description |", "| --- | --- |"]
        for action in actions:
            invocation = formatter._format_action_invocation(action)
            description = formatter._expand_help(action) if action.help else ""
            lines.append(f"| {_code_cell(invocation)} | {_cell(description)} |")
        lines.append("")
    return lines


def _anchor(command: str) -> str:
    return command.replace(" ", "-")


def _section(command: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    lines = [f"{'#' * level} `{command}` {{#{_anchor(command)}}}", ""]
    if parser.description:
        description = parser.description.strip("\n")
        formatter = parser._get_formatter()
        if isinstance(formatter, argparse.RawDescriptionHelpFormatter):
            lines += ["```text", description, "```", ""]  # laid out by hand: keep it so
        else:
            lines += [html.escape(" ".join(description.split()), quote=False), ""]
    lines += ["```text", parser.format_usage().strip(), "```", ""]
    commands = list(_subparsers(parser))
    if commands:
        lines += ["| Command | What it does |", "| --- | --- |"]
        for name, help_text, _ in commands:
            target = _anchor(f"{command} {name}")
            lines.append(f"| [`{name}`](#{target}) | {_cell(help_text)} |")
        lines.append("")
    lines += _arguments_table(parser)
    if parser.epilog:
        lines += ["```text", parser.epilog.strip("\n"), "```", ""]
    for name, _, subparser in commands:
        lines += _section(f"{command} {name}", subparser, level + 1)
    return lines


def render_cli_reference(parser: argparse.ArgumentParser) -> str:
    """Markdown of the command line reference for ``parser`` and its subcommands."""
    with _columns(WIDTH):
        lines = [
            "# Command line reference",
            "",
            "Generated from the argument parsers (`camvidseg.cli.build_parser()`) each time the "
            "site is built, so it always matches `camvidseg ... --help`.",
            "",
            *_section(parser.prog, parser, 2),
        ]
    return "\n".join(lines).rstrip() + "\n"
