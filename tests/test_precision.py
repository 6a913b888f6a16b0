"""Precision and threads: CPU flag reading, the bf16 rule, the config field and CLI flags, TF's
process-wide setting, and ``compare_precision``'s arithmetic (on fake models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from camvidseg import ConfigError, SegmentConfig, Segmenter
from camvidseg.backends import precision
from camvidseg.backends.fake import NearestColorBackend, SpeckleNoiseBackend
from camvidseg.cli import build_parser
from camvidseg.cli._config import config_from_args
from camvidseg.precision_check import compare_precision, label_agreement_iou
from camvidseg.testing import street_scene

NO_BF16 = frozenset({"fpu", "avx2", "fma"})
WITH_BF16 = NO_BF16 | {"avx512f", "avx512_bf16"}

CPUINFO = """processor\t: 0
model name\t: Some CPU
flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile
processor\t: 1
flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile
"""


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    flags = precision.cpu_flags(tmp_path / "cpuinfo")
    assert flags == frozenset({"fpu", "sse", "avx2", "avx512f", "avx512_bf16", "amx_tile"})
    assert precision.bf16_support_problem(flags) is None
    assert precision.cpu_flags(tmp_path / "missing") is None
    problem = precision.bf16_support_problem(frozenset({"avx2"}))
    assert problem is not None
    assert "avx512_bf16 or amx_bf16" in problem


def test_this_machines_answer_is_consistent() -> None:
    flags = precision.cpu_flags()
    expected = flags is not None and bool(flags & precision.BF16_FLAGS)
    assert (precision.bf16_support_problem() is None) == expected


def test_unreadable_cpuinfo_is_not_taken_as_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda path="": None)
    with pytest.raises(ConfigError, match="cannot tell whether this CPU supports bfloat16"):
        precision.require_bf16()


@pytest.mark.parametrize("value", ["fp16", "FP32", None, 32])
def test_bad_precision_values(value: object) -> None:
    with pytest.raises(ConfigError, match="precision must be fp32 or bf16"):
        precision.check_precision(value)
    with pytest.raises(ConfigError, match="precision must be fp32 or bf16"):
        SegmentConfig(precision=value)  # type: ignore[arg-type]


def test_config_fields_round_trip_and_validate() -> None:
    config = SegmentConfig(precision="bf16", threads=3)
    data = config.to_dict()
    assert (data["precision"], data["threads"]) == ("bf16", 3)
    assert SegmentConfig.from_dict(data) == config
    # Added after format version 1: written only when set, so older readers keep working.
    assert "precision" not in SegmentConfig().to_dict()
    assert "threads" not in SegmentConfig().to_dict()
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        SegmentConfig(threads=0)
    with pytest.raises(ConfigError, match=r"precision must be fp32 or bf16 \(got 'half'\)"):
        SegmentConfig.from_dict({"precision": "half"})
    with pytest.raises(ConfigError, match=r"threads must be an integer >= 1 or null \(got '2'\)"):
        SegmentConfig.from_dict({"threads": "2"})


@pytest.mark.parametrize("command", ["segment", "tune"])
def test_flags_override_the_config_file(command: str, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"precision": "bf16", "threads": 2}))
    extra = ["x"] if command == "segment" else ["x", "y"]
    parser = build_parser()
    base = [command, *extra, "-o", str(tmp_path / "o")]
    from_file = config_from_args(parser.parse_args([*base, "--config", str(config)]))
    assert (from_file.precision, from_file.threads) == ("bf16", 2)
    given_flags = parser.parse_args(
        [*base, "--config", str(config), "--precision", "fp32", "--threads", "1"]
    )
    assert (config_from_args(given_flags).precision, config_from_args(given_flags).threads) == (
        "fp32",
        1,
    )
    defaults = config_from_args(parser.parse_args(base))
    assert (defaults.precision, defaults.threads) == ("fp32", None)


@pytest.mark.tf
def test_tensorflow_bf16_setting_is_explicit_and_switchable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tf = pytest.importorskip("tensorflow")
    key = "auto_mixed_precision_onednn_bfloat16"
    monkeypatch.setattr(precision, "cpu_flags", lambda path="": WITH_BF16)
    try:
        precision.configure_tensorflow("bf16")
        assert tf.config.optimizer.get_experimental_options()[key] is True
        precision.configure_tensorflow("fp32")
        assert tf.config.optimizer.get_experimental_options()[key] is False
    finally:
        tf.config.optimizer.set_experimental_options({key: False})
    monkeypatch.setattr(precision, "cpu_flags", lambda path="": NO_BF16)
    with pytest.raises(ConfigError, match=r"--precision bf16 \(TensorFlow\): this CPU has no"):
        precision.configure_tensorflow("bf16")


@pytest.mark.tf
def test_tensorflow_threads_after_start_is_a_clear_error() -> None:
    tf = pytest.importorskip("tensorflow")
    tf.constant(1.0) + 1.0  # TensorFlow has started in this test process
    current = tf.config.threading.get_intra_op_parallelism_threads()
    wanted = current + 1
    with pytest.raises(ConfigError, match=f"--threads {wanted}: TensorFlow has already started"):
        precision.configure_tensorflow("fp32", wanted)


@given(
    hnp.arrays(np.uint8, (4, 5), elements=st.integers(0, 4)),
    hnp.arrays(np.uint8, (4, 5), elements=st.integers(0, 4)),
)
def test_label_agreement_iou_matches_the_obvious_count(a: Any, b: Any) -> None:
    inter, union, equal = label_agreement_iou(a, b, 5)
    for c in range(5):
        assert inter[c] == np.sum((a == c) & (b == c))
        assert union[c] == np.sum((a == c) | (b == c))
    assert int(equal) == int(np.sum(a == b))


def test_compare_precision_reports_agreement_iou_and_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seed in range(2):
        Image.fromarray(street_scene(36, 48, seed=seed)[0]).save(tmp_path / f"{seed}.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    asked: list[tuple[str, int | None]] = []

    def from_hub(handle: str, **options: Any) -> Segmenter:
        asked.append((options.pop("precision"), options.pop("threads")))
        for key in ("cache_dir", "timeout"):
            options.pop(key)
        # "bf16" is the noisy fake: some labels change.
        exact = NearestColorBackend()
        backend = exact if asked[-1][0] == "fp32" else SpeckleNoiseBackend(exact)
        return Segmenter(backend, **options)

    monkeypatch.setattr(precision, "cpu_flags", lambda path="": WITH_BF16)
    monkeypatch.setattr(Segmenter, "from_hub", staticmethod(from_hub))
    result = compare_precision("fake:33", [tmp_path], threads=2)
    assert asked == [("fp32", 2), ("bf16", 2)]
    assert [p.name for p in (i.path for i in result.images)] == ["0.png", "1.png"]
    assert [p.name for p, _ in result.errors] == ["broken.png"]
    clean = [street_scene(36, 48, seed=s)[1] for s in range(2)]
    noisy = [
        Segmenter(SpeckleNoiseBackend(NearestColorBackend()))
        .segment(street_scene(36, 48, seed=s)[0])
        .labels
        for s in range(2)
    ]
    equal = sum(int(np.sum(c == n)) for c, n in zip(clean, noisy, strict=True))
    assert result.agreement == pytest.approx(equal / (2 * 36 * 48))
    assert 0.5 < result.agreement < 1.0
    road = sum(int(np.sum((c == 17) & (n == 17))) for c, n in zip(clean, noisy, strict=True))
    road_union = sum(int(np.sum((c == 17) | (n == 17))) for c, n in zip(clean, noisy, strict=True))
    assert result.class_iou["Road"] == pytest.approx(road / road_union)
    assert result.speedup > 0
    assert "label agreement" in result.format()
    assert json.loads(json.dumps(result.to_dict()))["errors"][0]["path"].endswith("broken.png")


def test_compare_precision_needs_bf16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda path="": NO_BF16)
    with pytest.raises(ConfigError, match="there is no bf16 to compare with on this machine"):
        compare_precision("fake:33", [tmp_path])


def test_manifest_records_precision_and_bf16_changes_the_output_options() -> None:
    from camvidseg.pipeline import RunOptions
    from camvidseg.pipeline.manifest import kind_options, options_json

    class Bf16Backend(NearestColorBackend):
        precision = "bf16"
        threads = 4

    fp32, bf16 = Segmenter(NearestColorBackend()), Segmenter(Bf16Backend())
    options = RunOptions()
    assert "precision" not in kind_options("labels", options, fp32, "m")
    assert kind_options("labels", options, bf16, "m")["precision"] == "bf16"
    recorded = options_json(options, bf16, "m")
    assert (recorded["precision"], recorded["threads"]) == ("bf16", 4)
    assert options_json(options, fp32, "m")["precision"] == "fp32"
