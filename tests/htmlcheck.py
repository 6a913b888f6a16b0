"""A small DOM from :mod:`html.parser` and the checks every report test makes on its pages:
well-formed nesting, no script, and every link and source relative and resolving to a file
(and to an element, for a ``#fragment``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
LINK_ATTRIBUTES = {"a": "href", "img": "src", "source": "src", "video": "src", "link": "href"}


@dataclass(eq=False)
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str, cls: str | None = None) -> list[Node]:
        return [
            node
            for node in self.iter()
            if node.tag == tag and (cls is None or cls in node.attrs.get("class", "").split())
        ]

    def find(self, tag: str, cls: str | None = None) -> Node | None:
        found = self.find_all(tag, cls)
        return found[0] if found else None

    def by_id(self, ident: str) -> Node | None:
        return next((n for n in self.iter() if n.attrs.get("id") == ident), None)


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if len(values) != len(attrs):
            self.problems.append(f"<{tag}> repeats an attribute: {attrs}")
        node = Node(tag, values)
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"end tag of void element </{tag}>")
            return
        if len(self.stack) < 2 or self.stack[-1].tag != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1].tag}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(text: str) -> Node:
    """The document; fails on mis-nested or unclosed elements and repeated attributes."""
    builder = _Builder()
    builder.feed(text)
    builder.close()
    assert builder.problems == []
    assert [n.tag for n in builder.stack] == ["#document"], "unclosed elements"
    return builder.root


@dataclass(frozen=True)
class Page:
    path: Path
    root: Node


def report_pages(folder: Path) -> dict[str, Page]:
    """Every page of the report in ``folder``, parsed, by file name."""
    names = [
        "report.html",
        *sorted(
            (p.name for p in folder.glob("report-*.html")),
            key=lambda n: int(re.findall(r"\d+", n)[0]),
        ),
    ]
    return {name: Page(folder / name, parse((folder / name).read_text("utf-8"))) for name in names}


def links(root: Node) -> list[tuple[str, str]]:
    """``(tag, url)`` of every link and source."""
    found = []
    for node in root.iter():
        attribute = LINK_ATTRIBUTES.get(node.tag)
        if attribute is not None and attribute in node.attrs:
            found.append((node.tag, node.attrs[attribute]))
    return found


def check_pages(folder: Path) -> dict[str, Page]:
    """Parse every page and check it: no script, no inline handler, and every URL relative,
    resolving to a file inside ``folder`` (and to an element for a fragment)."""
    pages = report_pages(folder)
    parsed_targets: dict[Path, Node] = {page.path.resolve(): page.root for page in pages.values()}
    for page in pages.values():
        assert page.root.find_all("script") == []
        for node in page.root.iter():
            assert not [a for a in node.attrs if a.startswith("on")], node.attrs
        for tag, url in links(page.root):
            parts = urlsplit(url)
            assert parts.scheme == "", url
            assert parts.netloc == "", url
            assert not url.startswith("/"), url
            assert parts.query == "", url  # a '?' of a file name must be encoded
            if parts.path:
                target = (page.path.parent / unquote(parts.path, errors="strict")).resolve()
                assert target.is_file(), f"{page.path.name}: <{tag}> {url} -> {target} missing"
                assert target.is_relative_to(folder.resolve()), url
            else:
                target = page.path.resolve()
            if parts.fragment:
                root = parsed_targets.get(target)
                assert root is not None, url
                assert root.by_id(unquote(parts.fragment)) is not None, url
    return pages
