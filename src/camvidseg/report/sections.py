"""The sections of a report's first page: run summary, class areas over the run, evaluation
(metrics and confusion matrix) and errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from camvidseg.report.render import (
    ClassStyles,
    attr,
    key_value_table,
    number,
    percent,
    stat_cards,
    text,
)
from camvidseg.report.sources import DeadLetter, Entry, RunTotals

__all__ = [
    "areas_section",
    "errors_section",
    "evaluation_section",
    "summary_section",
]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(summary: Mapping[str, Any], key: str, fallback: int) -> int:
    value = summary.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else fallback


def _real(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def summary_section(head: Mapping[str, Any], totals: RunTotals) -> str:
    """Counts, speed, the model and every option the manifest records."""
    summary = _mapping(head.get("summary"))
    statuses = totals.statuses
    total = _count(summary, "total", totals.entries)
    kept = statuses.get("skipped", 0)
    cards = [
        ("inputs", number(total), ""),
        ("segmented", number(_count(summary, "ok", statuses.get("ok", 0))), "ok"),
        ("kept from an earlier run", number(_count(summary, "skipped", kept)), "warn"),
        ("failed", number(_count(summary, "error", statuses.get("error", 0))), "err"),
    ]
    not_processed = _count(summary, "not_processed", 0)
    if not_processed:
        cards.append(("not reached", number(not_processed), "warn"))
    seconds = _real(summary.get("seconds"))
    if seconds is not None:
        cards.append(("seconds", f"{seconds:.1f}", ""))
    speed = _real(summary.get("images_per_second"))
    if speed is not None:
        cards.append(("images / s", f"{speed:.2f}", ""))
    model = _mapping(head.get("model"))
    run_rows: list[tuple[str, Any]] = []
    for key, value in (
        ("status", head.get("status")),
        ("interrupted", summary.get("interrupted") or None),
        ("model", model.get("handle") or _mapping(head.get("options")).get("model")),
        ("backend", model.get("backend")),
        ("runner", head.get("runner")),
        ("started", head.get("started")),
        ("updated", head.get("updated")),
        ("camvidseg", head.get("camvidseg_version")),
        ("manifest format", head.get("format")),
    ):
        if value is not None:
            run_rows.append((key, value))
    parts = [
        '<section id="summary"><h2>Run</h2>',
        stat_cards(cards),
        '<div class="cols"><div><h3>Run</h3>',
        key_value_table(run_rows),
        _timing_table(totals),
        "</div>",
    ]
    options = _mapping(head.get("options"))
    if options:
        parts += ["<div><h3>Options</h3>", key_value_table(sorted(options.items())), "</div>"]
    config = _mapping(head.get("config"))
    if config:
        parts += [
            "<div><details><summary>Segmenter settings</summary>",
            key_value_table(sorted(config.items())),
            "</details></div>",
        ]
    parts.append("</div></section>")
    return "\n".join(parts)


def _timing_table(totals: RunTotals) -> str:
    if not totals.timing:
        return ""
    rows = "".join(
        f'<tr><td>{text(stage)}</td><td class="n">{seconds / count * 1000:.1f} ms</td>'
        f'<td class="n">{seconds:.2f} s</td><td class="n">{number(count)}</td></tr>'
        for stage, (seconds, count) in totals.timing.items()
        if count
    )
    return (
        "<h3>Time per image</h3><table><tr><th>stage</th><th class=n>mean</th>"
        f"<th class=n>total</th><th class=n>images</th></tr>{rows}</table>"
    )


def areas_section(totals: RunTotals, styles: ClassStyles) -> str:
    """Each class's share of the run's pixels and the number of images showing it."""
    shares = totals.class_shares()
    if not shares:
        return ""
    images = sum(totals.statuses.get(s, 0) for s in ("ok", "skipped"))
    top = shares[0][1] or 1.0
    rows = "".join(
        f"<tr><td>{styles.label(name)}</td>"
        f'<td class="n"{attr("data-value", share)}>'
        f'<span class="meter" style="width:{share / top * 120:.1f}px"></span>'
        f"{percent(share, 2)}</td>"
        f'<td class="n">{number(count)}</td></tr>'
        for name, share, count in shares
    )
    return (
        '<section id="areas"><h2>Class areas over the run</h2>'
        f'<p class="muted">Share of all pixels of the {number(images)} segmented images '
        "(each image weighted by its size), and the images where each class appears.</p>"
        "<table><tr><th>class</th><th class=n>share of pixels</th><th class=n>images</th></tr>"
        f"{rows}</table></section>"
    )


def _metric_cell(value: Any) -> str:
    real = _real(value)
    data = "" if real is None else attr("data-value", json.dumps(real))
    return f'<td class="n"{data}>{percent(real, 2)}</td>'


def evaluation_section(evaluation: Mapping[str, Any], styles: ClassStyles) -> str:
    """Headline metrics, per-class IoU/accuracy, the confusion matrix and the problems."""
    headline = [
        ("mIoU", "miou"),
        ("pixel accuracy", "pixel_accuracy"),
        ("mean class accuracy", "mean_class_accuracy"),
        ("frequency-weighted IoU", "fw_iou"),
    ]
    rows = "".join(
        f'<tr id="metric-{key}"><th>{label}</th>{_metric_cell(evaluation.get(key))}</tr>'
        for label, key in headline
    )
    facts = [
        (key, evaluation.get(key))
        for key in ("palette", "num_images", "scored_pixels", "ignored_pixels")
        if evaluation.get(key) is not None
    ]
    iou = _mapping(evaluation.get("per_class"))
    accuracy = _mapping(evaluation.get("per_class_accuracy"))
    pixels = _mapping(evaluation.get("per_class_pixels"))
    names = evaluation.get("classes")
    if not isinstance(names, list):
        names = list(iou)
    class_rows = "".join(
        f'<tr data-class="{text(name)}"><td>{styles.label(str(name))}</td>'
        f"{_metric_cell(iou.get(name))}{_metric_cell(accuracy.get(name))}"
        f'<td class="n">{number(pixels.get(name)) if isinstance(pixels.get(name), int) else ""}'
        "</td></tr>"
        for name in names
    )
    parts = [
        '<section id="evaluation"><h2>Evaluation against ground truth</h2><div class="cols">',
        f'<div><table class="metrics">{rows}</table>{key_value_table(facts)}</div>',
        '<div><table class="per-class"><tr><th>class</th><th class=n>IoU</th>'
        f"<th class=n>accuracy</th><th class=n>ground-truth pixels</th></tr>{class_rows}</table>"
        "</div></div>",
        _confusion(_mapping(evaluation.get("confusion_matrix")), styles),
        _problems(evaluation.get("problems")),
        "</section>",
    ]
    return "\n".join(parts)


def _confusion(matrix: Mapping[str, Any], styles: ClassStyles) -> str:
    labels = matrix.get("labels") or matrix.get("classes")
    counts = matrix.get("counts")
    if not isinstance(labels, list) or not isinstance(counts, list) or len(counts) != len(labels):
        return ""
    names = [str(label) for label in labels]
    header = "".join(f'<th class="col">{styles.label(name)}</th>' for name in names)
    body = []
    for name, row in zip(names, counts, strict=True):
        values = [v if isinstance(v, int) else 0 for v in (row if isinstance(row, list) else [])]
        total = sum(values)
        cells = []
        for column, count in zip(names, values, strict=False):
            share = count / total if total else 0.0
            style = ""
            if count:
                ink = ";color:#fff" if share > 0.5 else ""
                style = f' style="background:rgba(47,111,235,{share:.3f}){ink}"'
            tip = f"{name} \u2192 {column}: {count:,} pixels"
            shown = percent(share) if count else ""
            cells.append(f"<td{style}{attr('title', tip)}{attr('data-count', count)}>{shown}</td>")
        body.append(f"<tr><th>{styles.label(name)}</th>{''.join(cells)}</tr>")
    return (
        "<h3>Confusion matrix</h3>"
        '<p class="muted">Rows: ground truth; columns: prediction; each cell is the share of the '
        "row's pixels (hover for the count).</p>"
        f'<div style="overflow-x:auto"><table class="cm"><tr><th>ground truth \u2193</th>{header}'
        f"</tr>{''.join(body)}</table></div>"
    )


def _problems(problems: Any) -> str:
    if not isinstance(problems, list) or not problems:
        return ""
    rows = "".join(
        f'<tr><td>{text(p.get("kind", ""))}</td><td class="in">{text(p.get("path", ""))}</td>'
        f"<td>{text(p.get('message', ''))}</td></tr>"
        for p in problems
        if isinstance(p, Mapping)
    )
    return (
        f"<h3>Files not scored ({len(problems)})</h3><table class=errors>"
        f"<tr><th>kind</th><th>file</th><th>problem</th></tr>{rows}</table>"
    )


def errors_section(
    errors: Sequence[Entry],
    dead_letters: Sequence[DeadLetter],
    card_link: Callable[[Entry], str],
) -> str:
    """Every failed input: the manifest's error entries and dead letters the manifest does not
    list; with dead letters (Beam), a column names the stage where each input failed."""
    if not errors and not dead_letters:
        return ""
    by_uri = {record.uri: record for record in dead_letters}
    staged = bool(dead_letters)

    def stage_cell(record: DeadLetter | None) -> str:
        if not staged:
            return ""
        stage = record.stage if record is not None else None
        return f"<td>{text(stage or '')}</td>"

    rows = []
    for entry in errors:
        record = by_uri.pop(entry.input, None)
        message = entry.error or (record.error if record is not None else "failed")
        rows.append(
            f'<tr id="err-{entry.index}"><td class="in"><a href="{card_link(entry)}">'
            f"{text(entry.input)}</a></td>{stage_cell(record)}<td>{text(message)}</td></tr>"
        )
    rows.extend(
        f'<tr class="dead"><td class="in">{text(record.uri)}</td>{stage_cell(record)}'
        f"<td>{text(record.error)}</td></tr>"
        for record in dead_letters
        if record.uri in by_uri
    )
    stage_header = "<th>stage</th>" if staged else ""
    return (
        f'<section id="errors"><h2>Errors ({len(rows)})</h2>'
        f'<table class="errors"><tr><th>input</th>{stage_header}<th>error</th></tr>'
        f"{''.join(rows)}</table></section>"
    )
