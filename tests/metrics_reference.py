"""Slow, obvious reference implementations the metrics tests compare against.

Everything loops over pixels and classes in plain Python, sharing no code with
:mod:`camvidseg.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from camvidseg.palette import CamVidPalette


def slow_metrics(
    predictions: Sequence[NDArray[np.uint8]],
    ground_truths: Sequence[NDArray[np.uint8]],
    palette: CamVidPalette,
) -> dict[str, Any]:
    """The evaluation protocol, pixel by pixel."""
    void = palette.void_id
    scored = [c for c in range(len(palette)) if c != void]
    true_positive = dict.fromkeys(scored, 0)
    in_truth = dict.fromkeys(scored, 0)
    in_prediction = dict.fromkeys(scored, 0)
    for prediction, truth in zip(predictions, ground_truths, strict=True):
        for p, g in zip(prediction.ravel().tolist(), truth.ravel().tolist(), strict=True):
            if g == void or g == 255:
                continue  # Void / unlabelled ground truth is ignored
            in_truth[g] += 1
            if p in in_prediction:
                in_prediction[p] += 1
            if p == g:
                true_positive[g] += 1
    iou: dict[str, float | None] = {}
    accuracy: dict[str, float | None] = {}
    for c in scored:
        name = palette.names[c]
        union = in_truth[c] + in_prediction[c] - true_positive[c]
        iou[name] = true_positive[c] / union if union > 0 else None
        accuracy[name] = true_positive[c] / in_truth[c] if in_truth[c] > 0 else None
    defined = [v for v in iou.values() if v is not None]
    measured = [v for v in accuracy.values() if v is not None]
    total = sum(in_truth.values())
    weighted = 0.0
    for c in scored:
        value = iou[palette.names[c]]
        if value is not None:
            weighted += in_truth[c] / total * value if total else 0.0
    return {
        "per_class": iou,
        "per_class_accuracy": accuracy,
        "miou": sum(defined) / len(defined) if defined else None,
        "mean_class_accuracy": sum(measured) / len(measured) if measured else None,
        "pixel_accuracy": sum(true_positive.values()) / total if total else None,
        "fw_iou": weighted if total else None,
        "scored_pixels": total,
    }


def assert_matches(result: dict[str, Any], expected: dict[str, Any]) -> None:
    """Per-class values exactly; the means up to float summation order."""
    assert result["per_class"] == expected["per_class"]
    assert result["per_class_accuracy"] == expected["per_class_accuracy"]
    for key in ("miou", "mean_class_accuracy", "pixel_accuracy", "fw_iou"):
        if expected[key] is None:
            assert result[key] is None, key
        else:
            assert result[key] is not None, key
            assert abs(result[key] - expected[key]) <= 1e-12, key
            assert 0.0 <= result[key] <= 1.0, key
