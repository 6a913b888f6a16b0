"""camvidseg.report on synthesised output folders: pages, links, thumbnails, errors, Beam dead
letters, video manifests, 10,000 inputs, and the escaping and link helpers."""

from __future__ import annotations

import html
import json
import os
import tracemalloc
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from camvidseg.exceptions import ConfigError
from camvidseg.report import REPORT_NAME, ReportResult, report_folder, write_report
from camvidseg.report.render import href, percent, safe_relpath, text
from camvidseg.report.sources import class_colors, iter_entries, read_head
from tests.htmlcheck import Node, check_pages
from tests.reportdata import (
    error_entry,
    ok_entry,
    video_manifest,
    write_manifest,
    write_outputs,
)


def card_names(root: Node) -> list[str]:
    return [span.text() for span in root.find_all("span", "name")]


def error_rows(root: Node) -> list[list[str]]:
    table = root.find("table", "errors")
    assert table is not None
    return [[td.text() for td in tr.find_all("td")] for tr in table.find_all("tr")[1:]]


# -- a small run with outputs ------------------------------------------------------------------


@pytest.fixture
def small_run(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    entries = [
        ok_entry("a", 0, write_outputs(out, "a", ["labels", "color", "overlay", "panel"])),
        ok_entry("b", 1, write_outputs(out, "b", ["labels", "confidence"])),
        ok_entry("c", 2, {"labels": "labels/c.png"}),  # output listed but missing
        error_entry("d"),
    ]
    write_manifest(out, entries)
    return out


def test_small_run_cards_links_and_thumbnails(small_run: Path) -> None:
    result = write_report(small_run)
    assert result.path == small_run / REPORT_NAME
    assert (result.entries, result.errors, result.thumbnails_made) == (4, 1, 2)
    pages = check_pages(small_run)
    root = pages["report.html"].root
    assert card_names(root) == ["a", "b", "c", "d"]
    card_a = root.by_id("e-0")
    assert card_a is not None
    # The thumbnail of a is made from its overlay and links to its panel.
    image = card_a.find("img")
    assert image is not None
    assert image.attrs["loading"] == "lazy"
    thumb = small_run / unquote(image.attrs["src"])
    with Image.open(thumb) as picture:
        assert picture.format == "JPEG"
        assert picture.getpixel((5, 5)) == pytest.approx((128, 64, 128), abs=6)
        assert (picture.width, picture.height) == (int(image.attrs["width"]), 24)
    anchors = [a.attrs["href"] for a in card_a.find_all("a")]
    assert anchors[0] == "panel/a.png"
    assert anchors[1:] == ["labels/a.png", "color/a.png", "overlay/a.jpg", "panel/a.png"]
    # b has labels and a 16-bit confidence map: the thumbnail is of the labels, no panel
    card_b = root.by_id("e-1")
    assert card_b is not None
    assert card_b.find_all("a")[0].attrs["href"] == "labels/b.png"
    # c's listed label file does not exist: no link, no thumbnail
    card_c = root.by_id("e-2")
    assert card_c is not None
    assert card_c.find("img") is None
    assert card_c.find_all("a") == []
    # d failed: listed in the errors table, whose row links to its card
    assert error_rows(root) == [["in/d.png", "in/d.png: cannot decode"]]  # no stage column
    assert root.by_id("err-3") is not None
    card_d = root.by_id("e-3")
    assert card_d is not None
    assert "in/d.png: cannot decode" in card_d.text()
    assert not list(small_run.rglob(".cvs-*.tmp"))


def test_class_areas_over_the_run_weight_by_pixels(tmp_path: Path) -> None:
    big = {**ok_entry("big"), "size": [300, 100], "class_areas": {"Road": 1.0}}
    small = {**ok_entry("small"), "size": [10, 10], "class_areas": {"Sky": 0.5, "Road": 0.5}}
    write_manifest(tmp_path, [big, small])
    write_report(tmp_path)
    root = check_pages(tmp_path)["report.html"].root
    section = root.by_id("areas")
    assert section is not None
    rows = {
        tr.find_all("td")[0].text(): tr.find_all("td")[1].attrs["data-value"]
        for tr in section.find_all("tr")[1:]
    }
    assert float(rows["Road"]) == pytest.approx((30000 + 50) / 30100)
    assert float(rows["Sky"]) == pytest.approx(50 / 30100)
    # swatches show the palette's colours
    road = section.find_all("tr")[1].find("span", "sw")
    assert road is not None
    assert road.attrs["style"] == "background:#804080"


def test_thumbnails_are_reused_until_their_source_changes(small_run: Path) -> None:
    first = write_report(small_run)
    second = write_report(small_run)
    assert (second.thumbnails_made, second.thumbnails_reused) == (0, first.thumbnails_made)
    overlay = small_run / "overlay/a.jpg"
    Image.new("RGB", (32, 24), (0, 0, 200)).save(overlay)
    later = overlay.stat().st_mtime_ns + 10_000_000_000
    os.utime(overlay, ns=(later, later))
    third = write_report(small_run)
    assert (third.thumbnails_made, third.thumbnails_reused) == (1, 1)
    image = check_pages(small_run)["report.html"].root.by_id("e-0")
    assert image is not None
    img = image.find("img")
    assert img is not None
    with Image.open(small_run / unquote(img.attrs["src"])) as picture:
        assert picture.getpixel((5, 5)) == pytest.approx((0, 0, 200), abs=6)


def test_pages_and_stale_pages(tmp_path: Path) -> None:
    write_manifest(tmp_path, [ok_entry(f"i{n:02d}", n) for n in range(7)] + [error_entry("bad")])
    result = write_report(tmp_path, page_size=3)
    assert [p.name for p in result.pages] == ["report.html", "report-2.html", "report-3.html"]
    pages = check_pages(tmp_path)
    assert [card_names(p.root) for p in pages.values()] == [
        ["i00", "i01", "i02"],
        ["i03", "i04", "i05"],
        ["i06", "bad"],
    ]
    # the errors table (page 1) links to the card on page 3, which links back
    row = pages["report.html"].root.by_id("err-7")
    assert row is not None
    assert row.find("a") is not None
    assert row.find("a").attrs["href"] == "report-3.html#e-7"  # type: ignore[union-attr]
    nav = pages["report-2.html"].root.find("nav", "pages")
    assert nav is not None
    assert [a.attrs["href"] for a in nav.find_all("a")] == [
        "report.html",
        "report.html",
        "report-3.html",
        "report-3.html",
    ]
    (tmp_path / "report-9.html").write_text("old")
    (tmp_path / "report-x.html").write_text("not ours")
    write_report(tmp_path, page_size=5)
    assert sorted(p.name for p in tmp_path.glob("report*.html")) == [
        "report-2.html",
        "report-x.html",
        "report.html",
    ]


def _synthetic_run(folder: Path, count: int) -> None:
    entries = (
        error_entry(f"img_{n:05d}", f"in/img_{n:05d}.png: damaged <{n}>")
        if n % 250 == 0
        else ok_entry(f"img_{n:05d}", n, {"overlay": f"overlay/img_{n:05d}.jpg"})
        for n in range(count)
    )
    write_manifest(folder, entries)


def _peak_memory_of_report(folder: Path, page_size: int) -> tuple[int, ReportResult]:
    tracemalloc.start()
    try:
        result = write_report(folder, page_size=page_size)
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_ten_thousand_inputs_are_paged_in_bounded_memory(tmp_path: Path) -> None:
    count = 10_000
    _synthetic_run(tmp_path / "small", count // 5)
    _synthetic_run(tmp_path / "large", count)
    small_peak, _ = _peak_memory_of_report(tmp_path / "small", page_size=500)
    peak, result = _peak_memory_of_report(tmp_path / "large", page_size=500)
    # Entries are streamed page by page: five times the inputs, about the same memory (held
    # whole, the entries alone would take about five times as much).
    assert peak < 1.5 * small_peak
    assert len(result.pages) == 20
    assert (result.entries, result.errors) == (count, 40)
    pages = check_pages(tmp_path / "large")
    names = [name for page in pages.values() for name in card_names(page.root)]
    assert names == [f"img_{n:05d}" for n in range(count)]
    rows = error_rows(pages["report.html"].root)
    assert [row[-1] for row in rows] == [
        f"in/img_{n:05d}.png: damaged <{n}>" for n in range(0, count, 250)
    ]


# -- Beam ---------------------------------------------------------------------------------------


def test_beam_folder_merges_dead_letters(tmp_path: Path) -> None:
    head = {
        "format": 1,
        "status": "complete",
        "model": {"handle": "fake:33", "backend": None},
        "options": {"classes": "camvid11", "runner": "DirectRunner"},
        "config": {"classes": 11, "tile": None},
        "runner": "DirectRunner",
        "summary": {"total": 3, "ok": 1, "error": 2, "skipped": 0},
    }
    entries = [
        ok_entry("a"),
        {**error_entry("b"), "input": "gs://bucket/in/b.png"},
        {**error_entry("c"), "input": "gs://bucket/in/c.png"},
    ]
    write_manifest(tmp_path, entries, head)
    letters = [
        {"uri": "gs://bucket/in/b.png", "stage": "decode", "error": "b: not an image"},
        {"uri": "gs://bucket/in/c.png", "stage": "write", "error": "c: disk full"},
        {"uri": "gs://bucket/in/z.png", "stage": "input", "error": "z: name taken by y"},
    ]
    lines = [json.dumps(letter) for letter in letters] + ["{broken"]
    (tmp_path / "errors.jsonl").write_text("\n".join(lines) + "\n")
    result = write_report(tmp_path)
    assert result.errors == 4
    root = check_pages(tmp_path)["report.html"].root
    rows = error_rows(root)
    assert [row[:2] for row in rows] == [
        ["gs://bucket/in/b.png", "decode"],
        ["gs://bucket/in/c.png", "write"],
        ["gs://bucket/in/z.png", "input"],
        ["errors.jsonl:4", ""],
    ]
    assert rows[3][2] == "unreadable: {broken"
    summary = root.by_id("summary")
    assert summary is not None
    assert "DirectRunner" in summary.text()
    assert "Segmenter settings" in summary.text()
    # CamVid-11 colours (Pavement is its own class there)
    assert class_colors(read_head(tmp_path / "manifest.json"))["Pavement"] == (60, 40, 222)


# -- video --------------------------------------------------------------------------------------


def test_video_manifest_summary_player_and_area_chart(tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    labels = tmp_path / "elsewhere" / "drive labels"
    labels.mkdir(parents=True)
    Image.new("RGB", (200, 80), (10, 200, 30)).save(labels / "areas.png")
    (labels / "areas.csv").write_text("frame,time\n")
    (folder / "drive #1.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    manifest = video_manifest(str(labels))
    (folder / "drive #1.mp4.json").write_text(json.dumps(manifest))
    inside = folder / "clip_labels"
    inside.mkdir()
    Image.new("RGB", (20, 8), (0, 0, 0)).save(inside / "areas.png")
    (inside / "areas.csv").write_text("frame\n")
    (folder / "clip.mkv.json").write_text(
        json.dumps(
            {
                "format": "camvidseg-video",
                "status": "error",
                "error": "clip: damaged",
                "labels_dir": "clip_labels",
            }
        )
    )
    (folder / "other.json").write_text('{"format": "something else"}')
    assert report_folder(folder / "drive #1.mp4") == folder
    assert report_folder(folder / "clip.mkv.json") == folder
    result = write_report(folder / "drive #1.mp4")
    assert (result.entries, result.videos) == (0, 2)
    root = check_pages(folder)["report.html"].root
    blocks = root.find_all("div", "video")
    clip, drive = blocks
    assert [block.attrs["id"] for block in blocks] == ["video-0", "video-1"]
    assert [badge.text() for badge in root.find_all("span", "badge")] == ["error", "ok"]
    assert "clip.mkv" in clip.text()
    assert "drive #1.mp4" in drive.text()
    assert "clip: damaged" in clip.text()
    assert clip.find("video") is None  # clip.mkv is not there
    chart = clip.find("img")
    assert chart is not None
    assert chart.attrs["src"] == "clip_labels/areas.png"
    player = drive.find("source")
    assert player is not None
    assert player.attrs["src"] == "drive%20%231.mp4"
    text_of_drive = drive.text()
    for shown in ("30000/1001", "4.21%", "1.07%", "25.4%", "libx264", "scene cuts", "141"):
        assert shown in text_of_drive
    copied = drive.find("img")
    assert copied is not None
    assert copied.attrs["src"].startswith("thumbs/video/")
    assert (folder / copied.attrs["src"]).read_bytes() == (labels / "areas.png").read_bytes()


def test_a_folder_without_manifests_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to report"):
        write_report(tmp_path)
    with pytest.raises(ConfigError, match="no such folder"):
        write_report(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="expected an output folder"):
        write_report(tmp_path / "notes.txt")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"manifest\.json: not a readable camvidseg manifest"):
        write_report(tmp_path)


def test_thumbnails_are_never_written_outside_the_folder(small_run: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (small_run / "thumbs").symlink_to(outside)
    with pytest.raises(ConfigError, match="symbolic link leading outside"):
        write_report(small_run)
    assert list(outside.iterdir()) == []
    (small_run / "thumbs").unlink()
    (small_run / "thumbs").write_text("a file")
    with pytest.raises(ConfigError, match="not a folder"):
        write_report(small_run)


# -- reading manifests defensively -------------------------------------------------------------


def test_plain_json_manifest_and_odd_entries(tmp_path: Path) -> None:
    entries = [
        ok_entry("a"),
        {"input": "in/only-input.png"},
        {
            "name": "n",
            "status": "ok",
            "size": "big",
            "class_areas": {"Road": "x", "Sky": 0.5},
            "outputs": {"labels": 5, "color": "../../etc/passwd", "overlay": "/abs.jpg"},
        },
        [1, 2],
    ]
    write_manifest(tmp_path, entries, streaming=False)
    assert read_head(tmp_path / "manifest.json")["status"] == "complete"
    read = list(iter_entries(tmp_path / "manifest.json"))
    assert [(e.name, e.status) for e in read] == [
        ("a", "ok"),
        ("in/only-input.png", "unknown"),
        ("n", "ok"),
        ("<entry 3>", "error"),
    ]
    assert read[2].class_areas == {"Sky": 0.5}
    assert read[2].size is None
    (tmp_path / "etc").mkdir()
    result = write_report(tmp_path)
    assert result.entries == 4
    pages = check_pages(tmp_path)  # the unsafe output paths are not linked
    assert card_names(pages["report.html"].root) == ["a", "in/only-input.png", "n", "<entry 3>"]


def test_a_damaged_output_gets_no_thumbnail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outputs = write_outputs(tmp_path, "a", ["overlay", "color"])
    data = (tmp_path / outputs["overlay"]).read_bytes()
    (tmp_path / outputs["overlay"]).write_bytes(data[:40])
    write_manifest(tmp_path, [ok_entry("a", 0, outputs)])
    result = write_report(tmp_path)
    # the overlay cannot be read: the thumbnail comes from the colour mask instead
    assert result.thumbnails_made == 1
    assert "no thumbnail" in caplog.text
    check_pages(tmp_path)


# -- helpers ------------------------------------------------------------------------------------

segment_text = st.text(st.characters(codec="utf-8", exclude_characters="/\0"), min_size=1).filter(
    lambda s: s not in (".", "..")
)


@given(st.lists(segment_text, min_size=1, max_size=4))
def test_href_encodes_every_segment_and_round_trips(segments: list[str]) -> None:
    url = href("/".join(segments))
    assert url.isascii()
    assert not set(url) & set(" \"'<>#?&\\")
    assert [unquote(part) for part in url.split("/")] == segments


@given(st.text())
def test_text_escapes_markup_and_round_trips(value: str) -> None:
    escaped = text(value)
    assert not set(escaped) & set("<>\"'")
    assert html.unescape(escaped) == value


@pytest.mark.parametrize(
    "relpath",
    [
        "../x.png",
        "a/../../x.png",
        "/etc/passwd",
        "a//b.png",
        "./a.png",
        "C:/x.png",
        "a\\..\\b.png",
        "",
        "a/./b",
    ],
)
def test_safe_relpath_refuses_paths_leaving_the_folder(relpath: str) -> None:
    assert safe_relpath(relpath) is None


@given(st.floats(min_value=0.0, max_value=1.0))
def test_percent_is_never_empty_and_rounds_to_the_value(fraction: float) -> None:
    shown = percent(fraction, 2)
    if shown.startswith("<"):
        assert 0 < fraction < 0.0001
    else:
        assert abs(float(shown.rstrip("%")) - fraction * 100) <= 0.005 + 1e-9
