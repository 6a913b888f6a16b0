"""HTML pieces of the report: escaping, relative links, the page shell, tables and swatches.

Every text that comes from a manifest or a file name goes through :func:`text` (HTML-escaped,
quotes included) and every link through :func:`href` (each path segment percent-encoded), so a
file named ``"><script>alert(1)</script>#?%.png`` is shown as written and links to itself.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from camvidseg.report.sources import fallback_color

__all__ = [
    "STYLE",
    "ClassStyles",
    "attr",
    "color_hex",
    "href",
    "number",
    "page",
    "percent",
    "safe_relpath",
    "text",
]


def text(value: object) -> str:
    """``value`` as HTML text or attribute value (``& < > " '`` escaped).

    Example:
        >>> text('a"<b>&\\'')
        'a&quot;&lt;b&gt;&amp;&#x27;'
    """
    return html.escape(str(value), quote=True)


def attr(name: str, value: object) -> str:
    """`` name="value"`` with the value escaped."""
    return f' {name}="{text(value)}"'


def safe_relpath(relpath: str) -> PurePosixPath | None:
    """``relpath`` (a ``/``-separated path from a manifest) when it stays inside the folder:
    relative, no ``..``, no empty or ``.`` segments, no backslash or NUL; else ``None``.

    Example:
        >>> safe_relpath("overlay/a b.jpg"), safe_relpath("../x.png"), safe_relpath("/etc/x")
        (PurePosixPath('overlay/a b.jpg'), None, None)
    """
    if not relpath or "\\" in relpath or "\0" in relpath or relpath.startswith("/"):
        return None
    parts = relpath.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    if ":" in parts[0]:  # "C:..." or "scheme:..." would not be read as a relative path
        return None
    return PurePosixPath(relpath)


def href(relpath: str | PurePosixPath) -> str:
    """A relative URL to ``relpath``: each segment percent-encoded (UTF-8), ``/`` kept.

    Example:
        >>> href("overlay/a b#1?%.jpg")
        'overlay/a%20b%231%3F%25.jpg'
        >>> href("panel/caf\\u00e9.png")
        'panel/caf%C3%A9.png'
    """
    parts = str(relpath).split("/")
    return "/".join(quote(part, safe="", errors="surrogateescape") for part in parts)


def percent(fraction: float | None, digits: int = 1) -> str:
    """``0.2561`` -> ``"25.6%"``; tiny non-zero values show as ``"<0.1%"``; ``None`` -> n/a.

    Example:
        >>> percent(0.2561), percent(0.00001), percent(0.0), percent(None)
        ('25.6%', '<0.1%', '0.0%', 'n/a')
    """
    if fraction is None or not math.isfinite(fraction):
        return "n/a"
    smallest = 10.0**-digits
    if 0 < fraction * 100 < smallest:
        return f"<{smallest:.{digits}f}%"
    return f"{fraction * 100:.{digits}f}%"


def number(value: float | int | None, digits: int = 3) -> str:
    """A number for people: integers with thin separators, floats to ``digits`` places."""
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    return f"{value:.{digits}f}"


def color_hex(rgb: Sequence[int]) -> str:
    """``(128, 64, 128)`` -> ``"#804080"``."""
    return "#{:02x}{:02x}{:02x}".format(*(max(0, min(255, int(c))) for c in rgb[:3]))


def json_value(value: Any) -> str:
    """A compact JSON rendering of an option's value (strings without quotes)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def key_value_table(rows: Iterable[tuple[str, Any]], css: str = "kv") -> str:
    """A two-column table; values are rendered as JSON where not text."""
    body = "".join(
        f"<tr><th>{text(key)}</th><td>{text(json_value(value))}</td></tr>" for key, value in rows
    )
    return f'<table class="{css}">{body}</table>' if body else ""


def stat_cards(cards: Iterable[tuple[str, str, str]]) -> str:
    """Big numbers: ``(label, value, css class)``."""
    items = "".join(
        f'<div class="stat {text(css)}"><div class="v">{text(value)}</div>'
        f'<div class="k">{text(label)}</div></div>'
        for label, value, css in cards
    )
    return f'<div class="stats">{items}</div>'


class ClassStyles:
    """Class name -> its colour and HTML label, worked out once per class (a report of
    10,000 images shows each class thousands of times).

    Classes no palette names get a stable colour from their name.

    Example:
        >>> styles = ClassStyles({"Road": (128, 64, 128)})
        >>> styles.color("Road"), styles.label("<b>").endswith("&lt;b&gt;")
        ('#804080', True)
    """

    def __init__(self, colors: Mapping[str, tuple[int, int, int]]) -> None:
        self._colors = dict(colors)
        self._hex: dict[str, str] = {}
        self._labels: dict[str, str] = {}
        self._names: dict[str, str] = {}

    def color(self, name: str) -> str:
        """``"#rrggbb"`` of the class."""
        found = self._hex.get(name)
        if found is None:
            found = color_hex(self._colors.get(name) or fallback_color(name))
            self._hex[name] = found
        return found

    def name(self, name: str) -> str:
        """The class name, HTML-escaped."""
        found = self._names.get(name)
        if found is None:
            found = self._names[name] = text(name)
        return found

    def label(self, name: str) -> str:
        """A swatch of the class's colour, then its name."""
        found = self._labels.get(name)
        if found is None:
            found = f'<span class="sw" style="background:{self.color(name)}"></span>'
            found = self._labels[name] = found + self.name(name)
        return found


def area_bar(areas: Mapping[str, float], styles: ClassStyles) -> str:
    """A stacked bar of class areas (largest first); each part's title names the class."""
    parts = [
        f'<span style="width:{min(fraction, 1.0) * 100:.3f}%;background:{styles.color(name)}"'
        f' title="{styles.name(name)} {percent(fraction)}"></span>'
        for name, fraction in sorted(areas.items(), key=lambda item: -item[1])
        if fraction > 0
    ]
    return f'<div class="bar">{"".join(parts)}</div>'


STYLE = """
:root{--fg:#1d232b;--muted:#5d6774;--bg:#f6f7f9;--card:#fff;--line:#dde1e6;--accent:#2f6feb;
--ok:#1f883d;--warn:#9a6700;--err:#cf222e}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ee;--muted:#9aa4b1;--bg:#14171c;
--card:#1d2128;--line:#323944;--accent:#6ea3ff;--ok:#4ac26b;--warn:#d4a72c;--err:#ff6a69}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
header{padding:18px 28px;background:var(--card);border-bottom:1px solid var(--line)}
header h1{margin:0;font-size:20px}header .sub{color:var(--muted);word-break:break-all}
main{padding:8px 28px 40px;max-width:1600px}
h2{font-size:17px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 8px}
a{color:var(--accent)}
.stats{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.stat{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 14px;
min-width:110px}.stat .v{font-size:20px;font-weight:600}.stat .k{color:var(--muted);font-size:12px}
.stat.ok .v{color:var(--ok)}.stat.err .v{color:var(--err)}.stat.warn .v{color:var(--warn)}
table{border-collapse:collapse;background:var(--card);margin:6px 0}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{font-weight:500;color:var(--muted);white-space:nowrap}
table.kv td{word-break:break-word;max-width:900px}
.cols{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;
vertical-align:-1px;border:1px solid rgba(0,0,0,.25)}
.meter{display:inline-block;height:9px;background:var(--accent);border-radius:2px;
vertical-align:middle;margin-right:6px;min-width:1px}
.errors td{word-break:break-word;max-width:760px}
.errors td.in{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.cm td{font-size:11px;text-align:right;padding:2px 4px;min-width:40px}
.cm th{font-size:11px;font-weight:500;white-space:nowrap}
.cm th.col{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left;padding:6px 2px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:12px}
.card{margin:0;background:var(--card);border:1px solid var(--line);border-radius:8px;
overflow:hidden;display:flex;flex-direction:column}
.card .th{display:flex;align-items:center;justify-content:center;background:#0b0d10;
height:190px}.card .th a{display:block;width:100%;height:100%}
.card .th img{width:100%;height:100%;object-fit:contain;display:block}
.card .none{color:#8b949e;font-size:12px;padding:8px;text-align:center}
.card figcaption{padding:7px 9px;display:flex;flex-direction:column;gap:4px}
.card .name{font-weight:600;word-break:break-all}
.card .meta{color:var(--muted);font-size:12px}
.card .links a{margin-right:8px;font-size:12px}
.card.error{border-color:var(--err)}.card .msg{color:var(--err);font-size:12px;
word-break:break-word;max-height:6em;overflow:auto}
.badge{display:inline-block;font-size:11px;padding:0 6px;border-radius:9px;color:#fff;
background:var(--muted);vertical-align:1px;margin-left:4px;font-weight:500}
.badge.ok{background:var(--ok)}.badge.skipped{background:var(--warn)}
.badge.error,.badge.interrupted{background:var(--err)}
.bar{display:flex;height:10px;border-radius:3px;overflow:hidden;background:var(--line)}
.bar span{display:block;height:100%}
details summary{cursor:pointer;color:var(--muted);font-size:12px}
details table{font-size:12px}
nav.pages{margin:14px 0;display:flex;flex-wrap:wrap;gap:4px;align-items:center}
nav.pages a,nav.pages span{padding:2px 9px;border:1px solid var(--line);border-radius:5px;
background:var(--card);text-decoration:none}nav.pages span.cur{background:var(--accent);
color:#fff;border-color:var(--accent)}nav.pages span.gap{border:0;background:none}
.video{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px;
margin:10px 0}.video video{width:min(100%,720px);display:block;margin:8px 0;background:#000}
.video img.chart{max-width:100%;display:block;margin:8px 0;border:1px solid var(--line)}
.muted{color:var(--muted)}
nav.toc{margin:14px 0 0;display:flex;flex-wrap:wrap;gap:6px 16px}
"""

_CSP = (
    "default-src 'none'; img-src 'self' file:; media-src 'self' file:; "
    "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)


def page(title: str, subtitle: str, body: str) -> str:
    """A whole HTML document (no scripts; styles inline; nothing fetched from a network)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="generator" content="camvidseg report">\n'
        f"<title>{text(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{text(title)}</h1>"
        f'<div class="sub">{text(subtitle)}</div></header>\n'
        f"<main>\n{body}\n</main>\n</body></html>\n"
    )
