"""The one CLI option group: flags over a config file, field by field, then one Segmenter."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from camvidseg import CleanupConfig, ConfigError, TTAConfig
from camvidseg.backends import DEFAULT_HANDLE, NearestColorBackend, SpeckleNoiseBackend
from camvidseg.cli._config import (
    add_segmenter_options,
    build_segmenter,
    config_from_args,
    model_handle,
)
from camvidseg.config import SegmentConfig, load_config, save_config

#: A config file with every field away from its default.
LOADED = SegmentConfig(
    model="fake:32",
    classes=11,
    max_side=200,
    batch_size=3,
    tile=128,
    overlap=32,
    tta=TTAConfig(flip=True, scales=(0.5, 1.0)),
    cleanup=CleanupConfig(opening=1, closing=2, min_region=40, majority=5),
    min_confidence=0.3,
    description="from a file",
)


def parse(*argv: str, postprocessing: bool = True) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="x")
    add_segmenter_options(parser, postprocessing=postprocessing)
    return parser.parse_args(list(argv))


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return save_config(LOADED, tmp_path / "c.json")


def test_no_flags_no_file_is_the_default_config() -> None:
    assert config_from_args(parse()) == SegmentConfig()


def test_no_flags_keeps_the_file(config_file: Path) -> None:
    assert config_from_args(parse("--config", str(config_file))) == LOADED


@pytest.mark.parametrize(
    ("flags", "changes"),
    [
        (["--model", "fake:noisy"], {"model": "fake:noisy"}),
        (["--classes", "32"], {"classes": 32, "cleanup": LOADED.cleanup}),
        (["--max-side", "64"], {"max_side": 64}),
        (["--batch-size", "8"], {"batch_size": 8}),
        (["--tile", "256"], {"tile": 256}),
        (["--tile", "0"], {"tile": None}),
        (["--overlap", "8"], {"overlap": 8}),
        (["--tta", "none"], {"tta": None}),
        (["--tta", "flip"], {"tta": TTAConfig(flip=True, scales=(0.5, 1.0))}),
        (["--tta-scales", "1,2"], {"tta": TTAConfig(flip=True, scales=(1.0, 2.0))}),
        (["--min-confidence", "0.75"], {"min_confidence": 0.75}),
        (["--min-region", "0"], {"cleanup": attrs.evolve(LOADED.cleanup, min_region=0)}),
        (["--majority", "3"], {"cleanup": attrs.evolve(LOADED.cleanup, majority=3)}),
        (["--opening", "0"], {"cleanup": attrs.evolve(LOADED.cleanup, opening=0)}),
        (["--closing", "4"], {"cleanup": attrs.evolve(LOADED.cleanup, closing=4)}),
    ],
)
def test_each_flag_overrides_only_its_field(
    config_file: Path, flags: list[str], changes: dict[str, Any]
) -> None:
    config = config_from_args(parse("--config", str(config_file), *flags))
    assert config == attrs.evolve(LOADED, **changes)
    untouched = [f.name for f in attrs.fields(SegmentConfig) if f.name not in changes]
    for name in untouched:
        assert getattr(config, name) == getattr(LOADED, name), name


def test_flags_without_a_file_apply_over_the_defaults() -> None:
    config = config_from_args(
        parse("--batch-size", "2", "--tta-scales", "1,1.5", "--majority", "3")
    )
    assert config == SegmentConfig(
        batch_size=2, tta=TTAConfig(scales=(1.0, 1.5)), cleanup=CleanupConfig(majority=3)
    )


def test_flags_that_do_not_fit_are_refused(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="--tta none and --tta-scales contradict"):
        config_from_args(parse("--tta", "none", "--tta-scales", "1"))
    with pytest.raises(ConfigError, match=r"majority must be .*\(from the command line\)"):
        config_from_args(parse("--majority", "4"))
    with pytest.raises(ConfigError, match=r"overlap must be at most half the tile \(64; got 100\)"):
        config_from_args(parse("--config", str(config_file), "--overlap", "100"))


def test_without_postprocessing_flags() -> None:
    args = parse("--tile", "256", postprocessing=False)
    assert not hasattr(args, "tta")
    assert config_from_args(args) == SegmentConfig(tile=256)
    with pytest.raises(SystemExit):
        parse("--majority", "3", postprocessing=False)


def test_load_time_options_are_not_settings() -> None:
    args = parse("--cache-dir", "/c", "--timeout", "5")
    assert (args.cache_dir, args.timeout) == ("/c", 5.0)
    assert config_from_args(args) == SegmentConfig()


def test_build_segmenter_uses_the_config(config_file: Path) -> None:
    args = parse("--config", str(config_file), "--batch-size", "4", "--model", "fake:noisy")
    segmenter = build_segmenter(args, config_from_args(args))
    assert isinstance(segmenter.backend, SpeckleNoiseBackend)
    assert (segmenter.batch_size, segmenter.max_side, segmenter.tile) == (4, 200, 128)
    assert (segmenter.palette.name, segmenter.min_confidence) == ("camvid11", 0.3)
    assert segmenter.tta == LOADED.tta
    assert segmenter.cleanup == LOADED.cleanup
    # The file's batch size applies when the flag is left out.
    args = parse("--config", str(config_file))
    assert build_segmenter(args, config_from_args(args)).batch_size == 3


def test_model_handle_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAMVIDSEG_MODEL", raising=False)
    assert model_handle(SegmentConfig()) == DEFAULT_HANDLE
    monkeypatch.setenv("CAMVIDSEG_MODEL", "fake:32")
    assert model_handle(SegmentConfig()) == "fake:32"
    assert model_handle(SegmentConfig(model="fake:33")) == "fake:33"
    segmenter = build_segmenter(parse(), SegmentConfig())
    assert isinstance(segmenter.backend, NearestColorBackend)
    assert segmenter.backend.channels == 32
    monkeypatch.setenv("CAMVIDSEG_MODEL", "")  # empty: unset
    assert model_handle(SegmentConfig()) == DEFAULT_HANDLE


# -- the config file format ------------------------------------------------------------------------


def test_batch_size_is_written_only_when_set(tmp_path: Path) -> None:
    assert "batch_size" not in SegmentConfig().to_dict()
    assert SegmentConfig(batch_size=4).to_dict()["batch_size"] == 4
    keys = list(SegmentConfig(batch_size=4).to_dict())
    assert keys.index("batch_size") == keys.index("max_side") + 1
    # A file written before batch_size existed still loads, with the default.
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"version": 1, "model": None, "classes": 32, "max_side": 512}))
    assert load_config(old) == SegmentConfig(max_side=512)
    # What the default config writes is the version-1 format, byte for byte.
    assert json.loads(SegmentConfig().to_json()) == {
        "version": 1,
        "model": None,
        "classes": 32,
        "grouping": "merge",
        "max_side": None,
        "tile": None,
        "overlap": 64,
        "drop_void": False,
        "tta": None,
        "cleanup": CleanupConfig().to_dict(),
        "min_confidence": None,
        "description": "",
    }


def test_flags_apply_by_field_name() -> None:
    args = parse()
    fields = {f.name for f in attrs.fields(SegmentConfig)}
    assert fields & set(vars(args)) == {
        "model",
        "classes",
        "max_side",
        "batch_size",
        "tile",
        "overlap",
        "tta",
        "min_confidence",
        "precision",
        "threads",
        "head",
    }
    # A flag named after a field overrides it with no code of its own in config_from_args.
    args.drop_void = True
    args.grouping = "merge"
    assert config_from_args(args) == SegmentConfig(drop_void=True)
