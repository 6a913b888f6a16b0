"""A visual, static HTML report of a run: ``camvidseg report OUT`` writes ``OUT/report.html``.

The report covers the output folder of ``camvidseg segment`` or ``camvidseg beam`` (its
``manifest.json``, and Beam's ``errors.jsonl``) and the ``OUTPUT.json`` manifests of
``camvidseg video`` found in the folder:

* the run summary: counts, timing, the model and every option recorded;
* each class's share of the pixels over the run, with the palette's colours;
* with ground truth (``segment --gt``): the metrics, per-class IoU and the confusion matrix;
* every error (with Beam's failing stage);
* a thumbnail grid of every input (thumbnail -> its panel, or the most complete output there
  is), with its class areas, split into pages (``report.html``, ``report-2.html``, ...);
* per video: its summary, the video itself and its class-area chart.

The pages use only relative, percent-encoded links into the folder and HTML-escape every name,
so the folder can be zipped and shared and hostile file names stay text. They need no network
and no script. Only the standard library and Pillow are used.

Example:
    >>> from camvidseg.report import write_report
    >>> write_report  # doctest: +ELLIPSIS
    <function write_report at ...>
"""

from __future__ import annotations

from camvidseg.report.build import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_THUMBNAIL_SIZE,
    REPORT_NAME,
    ReportResult,
    report_folder,
    write_report,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_THUMBNAIL_SIZE",
    "REPORT_NAME",
    "ReportResult",
    "report_folder",
    "write_report",
]
