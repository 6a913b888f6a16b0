"""The report in a real browser (Debian's chromium, headless), where one is installed: the page
renders (a screenshot that is not blank and shows the thumbnails) and hostile names run no
script (the DOM after loading keeps the page's title and holds no injected element)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camvidseg.report import write_report
from tests.reportdata import error_entry, ok_entry, write_manifest, write_outputs

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK), reason="Debian's chromium is not installed"
    ),
]

NAMES = [
    "<img src=x onerror=\"document.title='pwned'\">",
    'it\'s "quoted" & #frag?x=%41',
    "caf\u00e9 \u6771\u4eac",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=180, check=True, env=env, cwd=tmp_path
    )


@pytest.fixture
def hostile_report(tmp_path: Path) -> Path:
    out = tmp_path / "out #1 %?"
    entries = [
        ok_entry(name, i, write_outputs(out, name, ["labels", "overlay", "panel"]))
        for i, name in enumerate(NAMES)
    ]
    entries.append(error_entry("<b>broken</b>", 'in/<b>broken</b>.png: "cannot" decode'))
    write_manifest(out, entries)
    return write_report(out).path


def test_screenshot_is_not_blank_and_shows_the_thumbnails(
    hostile_report: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "shot.png"
    chromium(tmp_path, "--window-size=1280,1400", f"--screenshot={shot}", hostile_report.as_uri())
    with Image.open(shot) as image:
        picture = image.convert("RGB")
    assert picture.size == (1280, 1400)
    pixels = np.asarray(picture).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50  # text, tables, swatches, thumbnails
    # The overlays are flat Road purple: their thumbnails must be on screen (three of them).
    road = int((np.abs(pixels.astype(int) - (128, 64, 128)) <= 8).all(axis=1).sum())
    assert road > 3 * 1000


def test_hostile_names_run_no_script(hostile_report: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom", hostile_report.as_uri()).stdout
    assert "<title>camvidseg report" in dom
    assert "pwned" not in dom.split("</title>")[0]
    assert '<img src="x"' not in dom
    assert "<b>broken" not in dom
    assert "&lt;b&gt;broken&lt;/b&gt;" in dom
