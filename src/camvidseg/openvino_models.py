"""Model management for OpenVINO IR folders: describe and verify them without TensorFlow.

The counterparts of :func:`camvidseg.models.describe` and :func:`camvidseg.models.verify` for a
folder written by ``camvidseg model convert --to openvino`` (``camvidseg model info DIR`` and
``camvidseg model verify DIR`` use them).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from camvidseg.backends.openvino import FEATURES_XML, OpenVINOBackend, openvino_folder
from camvidseg.backends.openvino_info import OpenVINOModelInfo, describe_openvino
from camvidseg.exceptions import BackendError, ModelLoadError
from camvidseg.models import PROBE_SHAPE, SUM_TOLERANCE, Check, VerifyReport
from camvidseg.postprocess import ChannelLayout, labels_and_confidence

__all__ = ["OpenVINOModelInfo", "describe_openvino", "verify_openvino"]


def _probe() -> np.ndarray[tuple[int, ...], np.dtype[np.float32]]:
    _, height, width, _ = PROBE_SHAPE
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    image = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1)
    return image[None].astype(np.float32)


def _layout(backend: OpenVINOBackend) -> ChannelLayout | None:
    if backend.metadata.label_set is not None:
        return None
    try:
        return ChannelLayout.detect(backend.channels)
    except BackendError:
        return None


def _score_checks(scores: np.ndarray[tuple[int, ...], np.dtype[np.float32]]) -> list[Check]:
    values = scores.astype(np.float64)
    finite = bool(np.isfinite(values).all())
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    checks = [
        Check(
            "probabilities in [0, 1]",
            finite and low >= -1e-6 and high <= 1 + 1e-6,
            f"min {low:.4g}, max {high:.4g}" + ("" if finite else ", with NaN or infinity"),
        )
    ]
    if finite:
        deviation = float(np.abs(values.sum(axis=-1) - 1.0).max())
        checks.append(
            Check(
                "probabilities sum to 1",
                deviation <= SUM_TOLERANCE,
                f"largest deviation {deviation:.2g} (tolerance {SUM_TOLERANCE:g})",
            )
        )
    return checks


def verify_openvino(folder: str | os.PathLike[str], *, threads: int | None = None) -> VerifyReport:
    """Load an IR folder with OpenVINO (fp32), run it on a tiny image and check the results.

    Checks: ``predict`` runs on float32 ``[1, 32, 48, 3]`` and returns ``[1, 32, 48, C]``
    float32 with the channel count of the metadata (33 or 32 for the CamVid model); the values
    are probabilities summing to 1; the in-graph labels equal numpy's argmax of the scores;
    ``get_features`` (optional) runs.

    Raises:
        ModelLoadError: if the folder is not an IR folder or cannot be loaded.
    """
    path = openvino_folder(folder)
    if path is None:
        raise ModelLoadError(f"{folder}: not an OpenVINO IR folder")
    started = time.monotonic()
    backend = OpenVINOBackend.load(path, threads=threads)
    seconds = time.monotonic() - started
    checks = [
        Check("loads", True, f"OpenVINO IR from {path} (converted from {backend.metadata.source})")
    ]
    batch = _probe()
    _, height, width, _ = PROBE_SHAPE
    layout = _layout(backend)
    try:
        scores = backend.predict(batch)
    except BackendError as exc:
        checks.append(Check("predict runs", False, f"on {list(PROBE_SHAPE)}: {exc}"))
        return VerifyReport(os.fspath(folder), path, tuple(checks), load_seconds=seconds)
    checks.append(
        Check(
            "predict runs",
            True,
            f"float32 {list(PROBE_SHAPE)} -> {scores.dtype} {list(scores.shape)}",
        )
    )
    expected = (1, height, width, backend.channels)
    checks.append(
        Check(
            "output shape",
            scores.shape == expected,
            f"{list(scores.shape)}"
            + ("" if scores.shape == expected else f", expected {list(expected)}"),
        )
    )
    if backend.metadata.label_set is None:
        checks.append(
            Check(
                "channels",
                layout is not None,
                f"{backend.channels}: {layout.name}"
                if layout is not None
                else f"{backend.channels}; expected 33 or 32 for a model without a label set",
            )
        )
    checks.append(Check("dtype", scores.dtype == np.float32, f"{scores.dtype} (expected float32)"))
    checks += _score_checks(scores)
    if layout is not None and scores.shape == expected:
        labels, _ = backend.predict_labels(batch, layout)
        reference, _ = labels_and_confidence(scores, layout)
        same = bool(np.array_equal(labels, reference))
        checks.append(
            Check(
                "labels in the graph",
                same,
                "equal numpy's argmax of the scores"
                if same
                else f"{int((labels != reference).sum())} pixels differ from numpy's argmax",
            )
        )
    if (path / FEATURES_XML).is_file():
        try:
            features = backend.get_features(batch)
            checks.append(
                Check(
                    "get_features", features.ndim == 4, f"-> {list(features.shape)}", required=False
                )
            )
        except BackendError as exc:
            checks.append(Check("get_features", False, str(exc), required=False))
    else:
        checks.append(
            Check("get_features", True, "not converted (only fine-tuning needs it)", required=False)
        )
    channels = backend.channels
    layout_name = (
        "label_set"
        if backend.metadata.label_set is not None
        else (None if layout is None else layout.name)
    )
    return VerifyReport(
        os.fspath(folder),
        Path(path),
        tuple(checks),
        channels=channels,
        layout=layout_name,
        load_seconds=seconds,
    )
