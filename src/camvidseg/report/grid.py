"""The thumbnail grid: one card per input (thumbnail, name, status, class areas, links), and
the page navigation of a report split into pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from camvidseg.report.render import (
    ClassStyles,
    area_bar,
    attr,
    href,
    percent,
    safe_relpath,
    text,
)
from camvidseg.report.sources import Entry
from camvidseg.report.thumbs import Thumbnail, ThumbnailMaker

__all__ = ["CLICK_TO", "THUMBNAIL_FROM", "Card", "card_html", "page_name", "pages_nav", "prepare"]

#: Output kinds a thumbnail is made from, in order of preference (the first that exists).
THUMBNAIL_FROM = ("overlay", "color", "labels", "panel", "confidence")
#: Output kinds a thumbnail links to, in order of preference: the panel (image | mask |
#: overlay with a legend), else the most complete view that exists.
CLICK_TO = ("panel", "overlay", "color", "labels", "confidence")
_KIND_ORDER = ("labels", "color", "overlay", "panel", "confidence")
#: Classes listed in a card's area table (the bar shows them all).
_CARD_CLASSES = 12
_MESSAGE_CHARS = 400
_DOT = " \u00b7 "


@attrs.frozen
class Card:
    """What a card shows of one entry: the outputs found on disk and the thumbnail."""

    entry: Entry
    outputs: tuple[tuple[str, str], ...]
    thumbnail: Thumbnail | None


def page_name(number: int) -> str:
    """``report.html`` for page 1, ``report-N.html`` after it."""
    return "report.html" if number == 1 else f"report-{number}.html"


def _kind_rank(kind: str) -> tuple[int, str]:
    return (_KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER), kind)


def prepare(entry: Entry, folder: Path, maker: ThumbnailMaker) -> Card:
    """The outputs of ``entry`` that exist inside ``folder``, and its thumbnail (made or
    reused)."""
    found: list[tuple[str, str]] = []
    for kind, relpath in entry.outputs.items():
        safe = safe_relpath(relpath)
        if safe is not None and (folder / safe).is_file():
            found.append((kind, safe.as_posix()))
    found.sort(key=lambda item: _kind_rank(item[0]))
    by_kind = dict(found)
    thumbnail = None
    for kind in THUMBNAIL_FROM:
        if kind in by_kind:
            thumbnail = maker.make(folder / by_kind[kind], by_kind[kind])
            if thumbnail is not None:
                break
    return Card(entry, tuple(found), thumbnail)


def _areas_table(areas: Mapping[str, float], styles: ClassStyles) -> str:
    ranked = sorted(areas.items(), key=lambda item: -item[1])
    rows = "".join(
        f'<tr><td>{styles.label(name)}</td><td class="n">{percent(fraction)}</td></tr>'
        for name, fraction in ranked[:_CARD_CLASSES]
    )
    more = len(ranked) - _CARD_CLASSES
    if more > 0:
        rest = sum(fraction for _, fraction in ranked[_CARD_CLASSES:])
        rows += f'<tr><td class="muted">{more} more</td><td class="n">{percent(rest)}</td></tr>'
    return f"<details><summary>class areas</summary><table>{rows}</table></details>"


def card_html(
    card: Card,
    styles: ClassStyles,
    *,
    error_link: str | None = None,
    stage: str | None = None,
) -> str:
    """One ``<figure>`` of the grid (``id="e-INDEX"``, so the errors table can link to it)."""
    entry = card.entry
    by_kind = dict(card.outputs)
    target = next((by_kind[kind] for kind in CLICK_TO if kind in by_kind), None)
    if target is None and card.outputs:
        target = card.outputs[0][1]
    if card.thumbnail is not None:
        thumb = card.thumbnail
        picture = (
            f'<img src="{href(thumb.relpath)}" width="{thumb.width}" height="{thumb.height}"'
            f' loading="lazy" decoding="async"{attr("alt", entry.name)}>'
        )
    else:
        label = "failed" if entry.status == "error" else "no image output"
        picture = f'<span class="none">{label}</span>'
    if target is not None:
        picture = f'<a href="{href(target)}">{picture}</a>'
    meta = []
    if entry.size is not None:
        meta.append(f"{entry.size[0]}\u00d7{entry.size[1]}")
    meta.extend(entry.notes)
    parts = [
        f'<span class="name"{attr("title", entry.input)}>{text(entry.name)}</span>',
        f'<span class="meta"><span class="badge {text(entry.status)}">{text(entry.status)}'
        f"</span> {text(_DOT.join(meta))}</span>",
    ]
    if entry.error is not None:
        message = entry.error
        if len(message) > _MESSAGE_CHARS:
            message = message[:_MESSAGE_CHARS] + "\u2026"
        where = f"[{stage}] " if stage else ""
        parts.append(f'<div class="msg"{attr("title", entry.error)}>{text(where + message)}</div>')
        if error_link is not None:
            parts.append(f'<div class="links"><a href="{error_link}">in the errors table</a></div>')
    if entry.class_areas:
        parts.append(area_bar(entry.class_areas, styles))
        parts.append(_areas_table(entry.class_areas, styles))
    if card.outputs:
        links = " ".join(f'<a href="{href(path)}">{text(kind)}</a>' for kind, path in card.outputs)
        parts.append(f'<div class="links">{links}</div>')
    status = text(entry.status)
    return (
        f'<figure class="card {status}" id="e-{entry.index}"><div class="th">{picture}</div>'
        f"<figcaption>{''.join(parts)}</figcaption></figure>"
    )


def pages_nav(current: int, pages: int, window: int = 3) -> str:
    """Links to the other pages: first, last, and ``window`` on each side of ``current``."""
    if pages <= 1:
        return ""
    shown = sorted({1, pages, *range(max(1, current - window), min(pages, current + window) + 1)})
    items: list[str] = []
    if current > 1:
        items.append(f'<a href="{page_name(current - 1)}" rel="prev">\u2039 previous</a>')
    previous = 0
    for number in shown:
        if number - previous > 1:
            items.append('<span class="gap">\u2026</span>')
        if number == current:
            items.append(f'<span class="cur">{number}</span>')
        else:
            items.append(f'<a href="{page_name(number)}">{number}</a>')
        previous = number
    if current < pages:
        items.append(f'<a href="{page_name(current + 1)}" rel="next">next \u203a</a>')
    return f'<nav class="pages">page {"".join(items)}</nav>'


def grid_html(cards: Sequence[str]) -> str:
    """The cards in a responsive grid."""
    return f'<div class="grid">\n{chr(10).join(cards)}\n</div>'
