"""A griffe extension that renders camvidseg's Sphinx-flavoured Google docstrings as Markdown.

camvidseg's docstrings follow the Google style as Napoleon reads it: doctests under
``Example:`` (singular, an alias of ``Examples:`` there) and cross-references written as Sphinx
roles (``:class:`~camvidseg.Segmenter```). griffe's Google parser only knows ``Examples:``
(``Example:`` becomes an admonition of Markdown text, so doctests render as nested block quotes
and their output, ``[[0, 1], ...]``, reads as broken reference links), and Markdown shows roles
literally; attributes are documented with Sphinx's ``#:`` comments, which griffe does not read.
Before griffe parses a docstring this extension

- gives an attribute without docstring the text of its ``#:`` comment (the lines right above
  it, or one after it on the same line), as Sphinx autodoc does;
- renames an ``Example:`` heading followed by a doctest (``>>>``) to ``Examples:``, so the
  doctests render as Python code blocks (prose ``Example:`` sections stay admonitions);
- turns a role whose target is a dotted ``camvidseg.`` path that the API reference shows
  (see :func:`_shown`) into
  an autorefs cross-reference to that canonical path
  (``[`Segmenter`][camvidseg.segmenter.Segmenter]``), which ``mkdocs build --strict`` checks;
  any other role (a name relative to its module, a private module, the standard library)
  becomes a code span.

The source docstrings are not changed, so ``help()`` and Sphinx-style readers see them as
written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from griffe import Alias, Attribute, Docstring, Extension, Module, Object

__all__ = [
    "DocstringMarkupExtension",
    "comment_docstring",
    "documented_resolver",
    "to_markdown",
]

_EXAMPLE_HEADING = re.compile(
    r"^(?P<indent>[ \t]*)Example:[ \t]*\n(?=(?:[ \t]*\n)*[ \t]+>>>)", re.MULTILINE
)
_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|data|const|mod|attr|exc|obj):`(?P<tilde>~?)(?P<target>[^`<>]+)`"
)


#: Where a cross-reference may point: a documented object's canonical path, or None.
Resolver = Callable[[str], "str | None"]


def _no_links(target: str) -> None:
    return None


def to_markdown(docstring: str, resolve: Resolver = _no_links) -> str:
    """``docstring`` with doctest ``Example:`` headings and Sphinx roles made Markdown-ready.

    Example:
        >>> to_markdown("Add.\\n\\nExample:\\n    >>> 1 + 1\\n    2\\n")
        'Add.\\n\\nExamples:\\n    >>> 1 + 1\\n    2\\n'
        >>> to_markdown("Example:\\n    prose, not a doctest\\n")
        'Example:\\n    prose, not a doctest\\n'
        >>> resolve = {"camvidseg.Segmenter": "camvidseg.segmenter.Segmenter"}.get
        >>> to_markdown("See :class:`~camvidseg.Segmenter` and :func:`os.replace`.", resolve)
        'See [`Segmenter`][camvidseg.segmenter.Segmenter] and `os.replace`.'
    """

    def role(match: re.Match[str]) -> str:
        target = match["target"].strip()
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        canonical = resolve(target)
        return f"`{shown}`" if canonical is None else f"[`{shown}`][{canonical}]"

    return _ROLE.sub(role, _EXAMPLE_HEADING.sub(r"\g<indent>Examples:\n", docstring))


def _shown(obj: Object, package: Module) -> bool:
    """Whether the API pages render ``obj`` (see ``tools/api_reference.py``).

    Every public module and each module of a public package gets a heading; the objects of a
    top-level module are shown with their public members; the objects of a package's modules
    only through the package's public names (``__all__``). mkdocstrings leaves out objects
    without a docstring.
    """
    parts = obj.path.split(".")
    if any(part.startswith("_") for part in parts) or parts[:2] == [package.name, "cli"]:
        return False
    if obj.docstring is None:
        return False
    if isinstance(obj, Module):
        return len(parts) <= 3
    module = obj.module
    outer: Object = obj  # the module-level object obj is, or is a member of
    while outer.parent is not None and outer.parent is not module:
        if not outer.is_public:
            return False
        outer = outer.parent
    if not outer.is_public:
        return False
    if len(module.path.split(".")) == 2:  # a top-level module's page shows it
        return True
    top = package.modules_collection.get_member(".".join(parts[:2]))
    exported = top.members.get(outer.name)
    return isinstance(exported, Alias) and exported.target_path == outer.path and exported.is_public


def documented_resolver(package: Module) -> Resolver:
    """Canonical path of a ``camvidseg.`` target the API reference shows, else ``None``."""

    def resolve(target: str) -> str | None:
        if not target.startswith(f"{package.name}."):
            return None
        try:
            found: Object | Alias = package.modules_collection.get_member(target)
            if isinstance(found, Alias):
                found = found.final_target
            shown = isinstance(found, Object) and _shown(found, package)
        except Exception:  # unknown name, or an alias griffe cannot follow
            return None
        return found.path if shown else None

    return resolve


def comment_docstring(lines: list[str], lineno: int) -> str | None:
    """The ``#:`` documentation of the statement on line ``lineno`` (1-based) of ``lines``.

    Example:
        >>> source = ["x = 1", "#: The answer,", "#: as a number.", "ANSWER = 42", "Y = 2  #: Two."]
        >>> comment_docstring(source, 4), comment_docstring(source, 5), comment_docstring(source, 1)
        ('The answer,\\nas a number.', 'Two.', None)
    """
    _, marker, trailing = lines[lineno - 1].partition("#:")
    if marker:
        return trailing.strip() or None
    above: list[str] = []
    index = lineno - 2
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        above.insert(0, lines[index].lstrip()[2:].removeprefix(" ").rstrip())
        index -= 1
    return "\n".join(above) if above else None


def _walk(obj: Object, seen: set[int] | None = None) -> Iterator[Object]:
    """``obj`` and its members, recursively (aliases are documented where they are defined)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    yield obj
    for member in list(obj.members.values()):
        if isinstance(member, Object):
            yield from _walk(member, seen)


def _add_comment_docstring(attribute: Attribute) -> None:
    if attribute.docstring is not None or attribute.lineno is None:
        return
    try:
        lines = attribute.lines_collection[attribute.filepath]  # type: ignore[index]
    except (KeyError, TypeError):  # no source (an inspected object)
        return
    text = comment_docstring(lines, attribute.lineno)
    if text is not None:
        attribute.docstring = Docstring(text, lineno=attribute.lineno, parent=attribute)


class DocstringMarkupExtension(Extension):
    """Applies :func:`to_markdown` to every docstring of a loaded package."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        """Hook called by griffe once a package is loaded."""
        objects = list(_walk(pkg))
        for obj in objects:
            if isinstance(obj, Attribute):
                _add_comment_docstring(obj)
        resolve = documented_resolver(pkg)  # after the pass above: it looks at docstrings
        for obj in objects:
            if obj.docstring is not None:
                obj.docstring.value = to_markdown(obj.docstring.value, resolve)
