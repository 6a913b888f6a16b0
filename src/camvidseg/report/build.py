"""``write_report``: read a run's manifests and write ``report.html`` (and its pages)."""

from __future__ import annotations

import concurrent.futures
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

import attrs

from camvidseg.exceptions import ConfigError
from camvidseg.imageio import atomic_write
from camvidseg.report.grid import card_html, grid_html, page_name, pages_nav, prepare
from camvidseg.report.render import ClassStyles, page, text
from camvidseg.report.sections import (
    areas_section,
    errors_section,
    evaluation_section,
    summary_section,
)
from camvidseg.report.sources import (
    ERRORS_NAME,
    MANIFEST_NAME,
    DeadLetter,
    Entry,
    RunTotals,
    class_colors,
    iter_entries,
    read_dead_letters,
    read_head,
    read_video_manifest,
    scan_entries,
)
from camvidseg.report.thumbs import THUMBS_FOLDER, ThumbnailMaker
from camvidseg.report.video import video_section

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_THUMBNAIL_SIZE",
    "REPORT_NAME",
    "ReportResult",
    "report_folder",
    "write_report",
]

#: The report's first page, in the folder it describes.
REPORT_NAME = "report.html"
#: Inputs per page of the thumbnail grid.
DEFAULT_PAGE_SIZE = 200
#: Longest side of a thumbnail, in pixels.
DEFAULT_THUMBNAIL_SIZE = 240
_PAGE_FILE = re.compile(r"report-([0-9]+)\.html")


@attrs.frozen
class ReportResult:
    """What :func:`write_report` wrote.

    Attributes:
        path: ``FOLDER/report.html``.
        pages: Every page written, ``report.html`` first.
        entries: Inputs in the manifest (0 without one).
        errors: Failed inputs listed (error entries and unlisted dead letters).
        videos: Video manifests described.
        thumbnails_made: Thumbnails written this time.
        thumbnails_reused: Thumbnails an earlier report left that were still up to date.
    """

    path: Path
    pages: tuple[Path, ...]
    entries: int
    errors: int
    videos: int
    thumbnails_made: int
    thumbnails_reused: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "report": str(self.path),
            "pages": [str(p) for p in self.pages],
            "entries": self.entries,
            "errors": self.errors,
            "videos": self.videos,
            "thumbnails_made": self.thumbnails_made,
            "thumbnails_reused": self.thumbnails_reused,
        }


def report_folder(path: str | os.PathLike[str]) -> Path:
    """The folder a report of ``path`` goes in: ``path`` itself when it is a folder; the folder
    of a ``camvidseg video`` output when ``path`` is that video or its ``OUTPUT.json``.

    Raises:
        ConfigError: ``path`` does not exist, or is a file that is neither.
    """
    path = Path(path)
    if path.is_dir():
        return path
    if not path.exists():
        raise ConfigError(f"{path}: no such folder")
    for candidate in (path, path.with_name(path.name + ".json")):
        if read_video_manifest(candidate) is not None:
            return path.parent
    raise ConfigError(
        f"{path}: expected an output folder of 'camvidseg segment' or 'camvidseg beam', or a "
        "video written by 'camvidseg video' (or its OUTPUT.json)"
    )


def _video_manifests(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    try:
        names = sorted(path.name for path in folder.iterdir())
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    for name in names:
        if name.endswith(".json") and name != MANIFEST_NAME:
            path = folder / name
            data = read_video_manifest(path) if path.is_file() else None
            if data is not None:
                found.append((path, data))
    return found


def _chunks(entries: Iterable[Entry], size: int) -> Iterator[list[Entry]]:
    iterator = iter(entries)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _Pages:
    """Writes the pages of the grid, one chunk of entries at a time."""

    def __init__(
        self, folder: Path, pages: int, maker: ThumbnailMaker, styles: ClassStyles
    ) -> None:
        self.folder = folder
        self.pages = pages
        self.maker = maker
        self.styles = styles
        self.made = 0
        self.reused = 0
        self.stages: dict[str, str | None] = {}

    def grid(self, number: int, chunk: list[Entry], executor: concurrent.futures.Executor) -> str:
        cards = []
        for card in executor.map(lambda e: prepare(e, self.folder, self.maker), chunk):
            if card.thumbnail is not None:
                if card.thumbnail.made:
                    self.made += 1
                else:
                    self.reused += 1
            entry = card.entry
            error_link = f"{REPORT_NAME}#err-{entry.index}" if entry.status == "error" else None
            stage = self.stages.get(entry.input) if entry.status == "error" else None
            cards.append(card_html(card, self.styles, error_link=error_link, stage=stage))
        nav = pages_nav(number, self.pages)
        first = chunk[0].index + 1 if chunk else 0
        last = chunk[-1].index + 1 if chunk else 0
        count = f"inputs {first}\u2013{last}" if chunk else "no inputs"
        return (
            f'<section id="images"><h2>Images <span class="muted">({count})</span></h2>'
            f"{nav}{grid_html(cards)}{nav}</section>"
        )


def _contents(anchors: list[tuple[str, str]]) -> str:
    links = " ".join(f'<a href="#{anchor}">{text(label)}</a>' for anchor, label in anchors)
    return f'<nav class="toc">{links}</nav>'


def _write(path: Path, html: str) -> None:
    with atomic_write(path) as handle:
        handle.write(html.encode("utf-8", "backslashreplace"))


def write_report(
    folder: str | os.PathLike[str],
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    thumbnail_size: int = DEFAULT_THUMBNAIL_SIZE,
    workers: int | None = None,
) -> ReportResult:
    """Write ``FOLDER/report.html``: a static, self-contained page of a run.

    ``folder`` is an output folder of ``camvidseg segment`` or ``camvidseg beam``
    (``manifest.json``, and ``errors.jsonl`` for Beam), and/or a folder holding
    ``camvidseg video`` outputs (``OUTPUT.json`` beside each video); a video file or its
    manifest names its folder. The grid of inputs is split into pages of ``page_size``
    (``report.html``, ``report-2.html``, ...); thumbnails go to ``FOLDER/thumbs/`` and are
    reused while up to date. Links are relative, so the folder can be moved or zipped.

    Args:
        folder: The folder (or video) to report on.
        page_size: Inputs per page.
        thumbnail_size: Longest side of a thumbnail, in pixels.
        workers: Threads making thumbnails (default: up to 8, one per CPU).

    Returns:
        What was written.

    Raises:
        ConfigError: no manifest there, or one that cannot be read.
        OSError: a page or thumbnail folder cannot be written.
    """
    if page_size < 1:
        raise ConfigError(f"page size must be at least 1 (got {page_size})")
    if thumbnail_size < 16:
        raise ConfigError(f"thumbnail size must be at least 16 pixels (got {thumbnail_size})")
    folder = report_folder(folder)
    manifest = folder / MANIFEST_NAME
    has_manifest = manifest.is_file()
    videos = _video_manifests(folder)
    if not has_manifest and not videos:
        raise ConfigError(
            f"{folder}: nothing to report: no {MANIFEST_NAME} (written by 'camvidseg segment' "
            "or 'camvidseg beam') and no OUTPUT.json of 'camvidseg video'"
        )
    head: Mapping[str, Any] = read_head(manifest) if has_manifest else {}
    totals = scan_entries(manifest) if has_manifest else RunTotals()
    dead: list[DeadLetter] = read_dead_letters(folder / ERRORS_NAME)
    styles = ClassStyles(class_colors(head))
    pages = max(1, math.ceil(totals.entries / page_size))
    _check_thumbs_folder(folder)
    maker = ThumbnailMaker(folder, thumbnail_size)
    workers = workers or min(8, os.cpu_count() or 1)
    writer = _Pages(folder, pages, maker, styles)
    writer.stages = {record.uri: record.stage for record in dead}
    title = f"camvidseg report \u2014 {folder.resolve().name or folder}"
    subtitle = str(head.get("output") or folder)

    def card_link(entry: Entry) -> str:
        return f"{page_name(entry.index // page_size + 1)}#e-{entry.index}"

    evaluation = head.get("evaluation")
    sections = [
        ("summary", "Run", summary_section(head, totals) if has_manifest else ""),
        ("areas", "Class areas", areas_section(totals, styles)),
        (
            "evaluation",
            "Evaluation",
            evaluation_section(evaluation, styles) if isinstance(evaluation, Mapping) else "",
        ),
        ("errors", "Errors", errors_section(totals.errors, dead, card_link)),
        ("videos", "Videos", video_section(videos, folder)),
        ("images", f"Images ({totals.entries})", "<!-- grid -->" if totals.entries else ""),
    ]
    first = [_contents([(a, label) for a, label, html in sections if html])]
    first += [html for anchor, _, html in sections if html and anchor != "images"]
    written: list[Path] = []
    entries = iter_entries(manifest) if has_manifest else iter(())
    with concurrent.futures.ThreadPoolExecutor(workers, "camvidseg-thumbs") as executor:
        for number, chunk in enumerate(_chunks(entries, page_size), start=1):
            body = writer.grid(number, chunk, executor)
            if number == 1:
                body = "\n".join([*first, body])
            else:
                body = f'<p><a href="{REPORT_NAME}">\u2190 run summary</a></p>{body}'
            path = folder / page_name(number)
            _write(path, page(title, subtitle, body))
            written.append(path)
    if not written:  # videos only, or a manifest without entries
        path = folder / REPORT_NAME
        _write(path, page(title, subtitle, "\n".join(first)))
        written.append(path)
    _remove_stale_pages(folder, len(written))
    failed = {entry.input for entry in totals.errors}
    return ReportResult(
        path=written[0],
        pages=tuple(written),
        entries=totals.entries,
        errors=len(totals.errors) + sum(r.uri not in failed for r in dead),
        videos=len(videos),
        thumbnails_made=writer.made,
        thumbnails_reused=writer.reused,
    )


def _check_thumbs_folder(folder: Path) -> None:
    """Refuse a ``thumbs`` that is a file, or a link leading out of the folder (the report
    writes only inside the folder it describes)."""
    thumbs = folder / THUMBS_FOLDER
    if thumbs.is_symlink() and not thumbs.resolve().is_relative_to(folder.resolve()):
        raise ConfigError(
            f"{thumbs} is a symbolic link leading outside {folder}; the report writes only "
            "inside the folder"
        )
    if thumbs.exists() and not thumbs.is_dir():
        raise ConfigError(f"{thumbs} exists and is not a folder")


def _remove_stale_pages(folder: Path, pages: int) -> None:
    """Pages beyond ``pages`` that an earlier, longer report left."""
    for path in folder.iterdir():
        match = _PAGE_FILE.fullmatch(path.name)
        if match is not None and int(match.group(1)) > pages:
            path.unlink(missing_ok=True)
