"""What :func:`~camvidseg.tune.tune` returns: every :class:`Trial`, ranked, in a
:class:`TuneResult`."""

from __future__ import annotations

from typing import Any

import attrs

from camvidseg.config import SegmentConfig
from camvidseg.metrics import EvaluationProblem, EvaluationResult
from camvidseg.tune.space import Objective, Setting

__all__ = ["ABSTAIN_NOTE", "Trial", "TuneResult"]

#: One line to show wherever thresholds are tuned.
ABSTAIN_NOTE = (
    "abstaining (min_confidence) counts as a miss under the evaluation protocol: it can never "
    "raise pixel accuracy, only a class's IoU by removing its false positives"
)


@attrs.frozen(eq=False)
class Trial:
    """One evaluated setting.

    Attributes:
        setting: The candidate.
        result: Its metrics over the images.
        score: The objective (``None`` when undefined).
    """

    setting: Setting
    result: EvaluationResult
    score: float | None

    def rank_key(self) -> tuple[Any, ...]:
        """Best first: higher score, then simpler, then canonical order."""
        return (
            self.score is None,
            -(self.score or 0.0),
            self.setting.complexity(),
            self.setting.sort_key(),
        )

    def to_dict(self) -> dict[str, Any]:
        """Setting, score and headline metrics."""
        return {
            **self.setting.to_dict(),
            "score": self.score,
            "miou": self.result.miou,
            "pixel_accuracy": self.result.pixel_accuracy,
            "mean_class_accuracy": self.result.mean_class_accuracy,
            "model_runs_per_image": self.setting.model_runs,
        }


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


@attrs.frozen(eq=False)
class TuneResult:
    """What :func:`tune` found.

    Attributes:
        trials: Every evaluated setting, best first.
        baseline: The setting without TTA, cleanup or threshold.
        objective: What was maximised.
        config: The best setting as a config (the base config's other settings kept).
        search: ``"grid"`` or ``"coordinate"``.
        passes: Passes over the cached predictions.
        computed_views: Image views the model had to run for (0 when all were cached).
        reused_views: Image views read from the cache.
        problems: Images that could not be used.
    """

    trials: tuple[Trial, ...]
    baseline: Trial
    objective: Objective
    config: SegmentConfig
    search: str
    passes: int
    computed_views: int
    reused_views: int
    problems: tuple[EvaluationProblem, ...] = ()

    @property
    def best(self) -> Trial:
        """The best trial."""
        return self.trials[0]

    @property
    def num_images(self) -> int:
        """Images the metrics cover."""
        return self.best.result.num_images

    @property
    def improvement(self) -> float | None:
        """Best minus baseline objective (``None`` when either is undefined)."""
        if self.best.score is None or self.baseline.score is None:
            return None
        return self.best.score - self.baseline.score

    def distinct_trials(self) -> tuple[Trial, ...]:
        """The trials, best first, without those whose confusion matrix equals a better-ranked
        (hence simpler, on ties) trial's: e.g. thresholds below every pixel's confidence."""
        seen: set[bytes] = set()
        out = []
        for trial in self.trials:
            key = trial.result.confusion.counts.tobytes()
            if key not in seen:
                seen.add(key)
                out.append(trial)
        return tuple(out)

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready summary: objective, best, baseline, the ``top`` distinct trials (see
        :meth:`distinct_trials`) and the config."""
        distinct = self.distinct_trials()
        trials = distinct if top is None else distinct[:top]
        return {
            "objective": str(self.objective),
            "num_images": self.num_images,
            "search": self.search,
            "passes": self.passes,
            "evaluated": len(self.trials),
            "distinct": len(distinct),
            "computed_views": self.computed_views,
            "reused_views": self.reused_views,
            "best": self.best.to_dict(),
            "baseline": self.baseline.to_dict(),
            "improvement": self.improvement,
            "trials": [t.to_dict() for t in trials],
            "config": self.config.to_dict(),
            "note": ABSTAIN_NOTE,
            "problems": [p.to_dict() for p in self.problems],
        }

    def table(self, top: int = 10) -> str:
        """A ranked text table of the ``top`` distinct trials, the baseline and the protocol note.

        Settings whose results equal those of a better-ranked, simpler one are not shown.
        """
        label = self.objective.label
        show_miou = self.objective.class_name is not None
        header = ["rank", label, *(["mIoU"] if show_miou else []), "pixel acc", "TTA"]
        header += ["cleanup", "min conf"]
        rows = []
        distinct = self.distinct_trials()
        for rank, trial in enumerate(distinct[:top], start=1):
            rows.append(self._row(str(rank), trial, show_miou))
        rows.append(self._row("base", self.baseline, show_miou))
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            return "  ".join(
                cell.rjust(width) if i < len(cells) - 3 else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        lines = [line(header), *(line(r) for r in rows[:-1]), "-" * len(line(header))]
        lines.append(line(rows[-1]))
        gain = self.improvement
        passes = f"{self.passes} pass{'es' if self.passes != 1 else ''}"
        summary = (
            f"{len(self.trials)} settings evaluated ({len(distinct)} distinct results; "
            f"{self.search} search, {passes} over the cache) on {self.num_images} images; "
            f"best {label} {_percent(self.best.score)}"
        )
        if gain is not None:
            summary += f", {100 * gain:+.2f} points over the baseline"
        lines += [summary, f"note: {ABSTAIN_NOTE}"]
        return "\n".join(lines)

    @staticmethod
    def _row(rank: str, trial: Trial, show_miou: bool) -> list[str]:
        s = trial.setting
        cells = [rank, _percent(trial.score)]
        if show_miou:
            cells.append(_percent(trial.result.miou))
        cells += [_percent(trial.result.pixel_accuracy), s.describe_tta(), s.describe_cleanup()]
        cells.append(s.describe_threshold())
        return cells
