"""``camvidseg report`` and ``camvidseg segment --report`` on real runs of the fake model: every
input and error appears, every link resolves, hostile names stay text, metrics match the
manifest."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from camvidseg.cli import main
from tests.hostile import write_scene
from tests.htmlcheck import Node, check_pages

#: File and folder names that break naive HTML or URLs: quotes, markup, entities, spaces,
#: percent signs (also ones that decode to '..'), '#', '?', unicode, a leading dash.
HOSTILE = [
    'say "hi".png',
    "it's.png",
    "<img src=x onerror=alert(1)>.png",
    "a&amp;b & c.png",
    "100% sure %2e%2e %41.png",
    "#frag?q=1&x=2.png",
    "caf\u00e9 \u6771\u4eac \U0001f697.png",
    "-dash  two  spaces .png",
    'dir "quoted" <b>/inner #1?.png',
]
#: Hostile names that fail: an empty file, and a name segment refuses (a backslash).
HOSTILE_ERRORS = {
    'bad "<x>" & #?%.png': "empty file",
    "</figure><script>alert(1)<\\script>.png": "unsafe part",
}


def run_cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(list(args))
    return code, buffer.getvalue()


def manifest(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "manifest.json").read_text("utf-8"))
    return data


def cards(root: Node) -> dict[str, Node]:
    """Card of each input, by the input path its name's title gives."""
    found = {}
    for figure in root.find_all("figure", "card"):
        name = figure.find("span", "name")
        assert name is not None
        found[name.attrs["title"]] = figure
    return found


def error_inputs(root: Node) -> dict[str, str]:
    table = root.find("table", "errors")
    if table is None:
        return {}
    rows = table.find_all("tr")[1:]
    return {tr.find_all("td")[0].text(): tr.find_all("td")[-1].text() for tr in rows}


def all_cards(pages: dict[str, Any]) -> dict[str, Node]:
    found: dict[str, Node] = {}
    for page in pages.values():
        found.update(cards(page.root))
    return found


def test_segment_report_of_a_run_with_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    for i in range(3):
        write_scene(images / f"frame_{i}.png", seed=i)
    (images / "broken.jpg").write_bytes(b"not a jpeg at all")
    out = tmp_path / "out"
    code = main(["segment", str(images), "-o", str(out), "--model", "fake:33", "--outputs",
                 "labels,overlay,panel", "--report", "-q"])  # fmt: skip
    assert code == 1  # the bad file; the report is written all the same
    assert (out / "report.html").is_file()
    pages = check_pages(out)
    data = manifest(out)
    found = all_cards(pages)
    assert set(found) == {entry["input"] for entry in data["entries"]}
    for entry in data["entries"]:
        card = found[entry["input"]]
        assert entry["status"] in card.attrs["class"].split()
        if entry["status"] == "ok":
            first = card.find("a")
            assert first is not None
            assert first.attrs["href"] == entry["outputs"]["panel"]
            image = card.find("img")
            assert image is not None
            assert (out / unquote(image.attrs["src"])).is_file()
    errors = error_inputs(pages["report.html"].root)
    assert errors == {e["input"]: e["error"] for e in data["entries"] if e["status"] == "error"}
    assert len(errors) == 1
    assert "broken.jpg" in next(iter(errors))


def test_report_command_json_and_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_scene(tmp_path / "in" / "a.png")
    assert main(["segment", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model",
                 "fake:33", "-q"]) == 0  # fmt: skip
    assert not (tmp_path / "out" / "report.html").exists()
    code, printed = run_cli("report", str(tmp_path / "out"), "--json", "--thumbnail-size", "64")
    assert code == 0
    result = json.loads(printed)
    assert result["entries"] == 1
    assert result["errors"] == 0
    assert result["thumbnails_made"] == 1
    assert result["report"] == str(tmp_path / "out" / "report.html")
    check_pages(tmp_path / "out")
    capsys.readouterr()
    assert main(["report", str(tmp_path / "in")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["report", str(tmp_path / "out"), "--thumbnail-size", "8"]) == 2
    assert "at least 16" in capsys.readouterr().err


def test_hostile_names_stay_text_and_links_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "in put"
    for i, name in enumerate(HOSTILE):
        write_scene(images / name, seed=i)
    (images / 'bad "<x>" & #?%.png').write_bytes(b"")
    write_scene(images / "</figure><script>alert(1)<\\script>.png")
    out = tmp_path / "out #?% <\u00e9>"
    code = main(["segment", str(images), "-o", str(out), "--model", "fake:33", "--outputs",
                 "labels,color,overlay,panel", "--report", "-q"])  # fmt: skip
    assert code == 1
    raw = "\n".join(p.read_text("utf-8") for p in out.glob("report*.html"))
    assert "<script" not in raw
    assert "<img src=x" not in raw
    assert "</figure><" not in raw
    pages = check_pages(out)  # every href/src resolves to a file inside OUT
    data = manifest(out)
    found = all_cards(pages)
    names = {figure.find("span", "name").text() for figure in found.values()}  # type: ignore[union-attr]
    ok = [e for e in data["entries"] if e["status"] == "ok"]
    assert len(ok) == len(HOSTILE)
    assert {e["name"] for e in ok} <= names
    for entry in ok:
        card = found[entry["input"]]
        hrefs = [unquote(a.attrs["href"]) for a in card.find_all("a")]
        assert hrefs[0] == entry["outputs"]["panel"]
        assert sorted(set(hrefs)) == sorted(entry["outputs"].values())
        image = card.find("img")
        assert image is not None
        assert image.attrs["alt"] == entry["name"]
    errors = error_inputs(pages["report.html"].root)
    assert sorted(errors) == sorted(str(images / name) for name in HOSTILE_ERRORS)
    for name, reason in HOSTILE_ERRORS.items():
        assert reason in errors[str(images / name)]
        assert str(images / name) in found  # failed inputs have their card too


def test_gt_metrics_and_confusion_matrix_equal_the_manifest(
    street_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["segment", str(street_dataset / "images"), "-o", str(out), "--model",
                 "fake:noisy", "--classes", "11", "--gt", str(street_dataset / "gt"),
                 "--report", "-q"])  # fmt: skip
    assert code == 0
    evaluation = manifest(out)["evaluation"]
    root = check_pages(out)["report.html"].root
    section = root.by_id("evaluation")
    assert section is not None
    for key in ("miou", "pixel_accuracy", "mean_class_accuracy", "fw_iou"):
        row = root.by_id(f"metric-{key}")
        assert row is not None
        cell = row.find("td")
        assert cell is not None
        assert float(cell.attrs["data-value"]) == evaluation[key]
        assert cell.text() == f"{100 * evaluation[key]:.2f}%"
    assert 0.5 < evaluation["miou"] < 1.0  # the noisy fake makes real mistakes
    per_class = {
        tr.attrs["data-class"]: [td.attrs.get("data-value") for td in tr.find_all("td")[1:3]]
        for tr in section.find_all("tr")
        if "data-class" in tr.attrs
    }
    assert list(per_class) == evaluation["classes"]
    for name, (iou, accuracy) in per_class.items():
        for shown, expected in ((iou, evaluation["per_class"][name]),
                                (accuracy, evaluation["per_class_accuracy"][name])):  # fmt: skip
            assert (None if shown is None else float(shown)) == expected
    matrix = section.find("table", "cm")
    assert matrix is not None
    counts = [
        [int(td.attrs["data-count"]) for td in tr.find_all("td")]
        for tr in matrix.find_all("tr")[1:]
    ]
    assert counts == evaluation["confusion_matrix"]["counts"]
    labels = [th.text() for th in matrix.find_all("th", "col")]
    assert labels == evaluation["confusion_matrix"]["labels"]
