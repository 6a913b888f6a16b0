from __future__ import annotations

from pathlib import Path

import pytest

import camvidseg
from tests.childproc import run_python

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    return run_python(code).stdout.strip()


def test_child_processes_import_the_tree_under_test() -> None:
    assert _run("import camvidseg; print(camvidseg.__file__)") == camvidseg.__file__


def test_import_does_not_import_tensorflow() -> None:
    out = _run(
        "import sys, camvidseg, camvidseg.backends, camvidseg.cli;"
        "camvidseg.cli.build_parser();"
        "print(sorted(m for m in ('tensorflow', 'tensorflow_hub', 'apache_beam', 'scipy') "
        "if m in sys.modules))"
    )
    assert out == "[]"


def test_public_api() -> None:
    assert camvidseg.__all__ == sorted(camvidseg.__all__, key=lambda n: (not n.isupper(), n))
    for name in camvidseg.__all__:
        assert hasattr(camvidseg, name), name
    assert {"Segmenter", "Segmentation", "CamVidPalette"} <= set(camvidseg.__all__)
    assert (ROOT / "src" / "camvidseg" / "py.typed").is_file()
    assert camvidseg.__version__.count(".") >= 2


def test_errors_subclass_builtins() -> None:
    assert issubclass(camvidseg.ModelLoadError, OSError)
    assert issubclass(camvidseg.InvalidImageError, ValueError)
    assert issubclass(camvidseg.BackendError, RuntimeError)
    for name in ("ModelLoadError", "InvalidImageError", "BackendError", "PaletteError"):
        assert issubclass(getattr(camvidseg, name), camvidseg.CamVidSegError)


def test_import_and_help_stay_light() -> None:
    out = _run(
        "import sys, camvidseg, camvidseg.cli; camvidseg.cli.build_parser();"
        "print(sorted(m for m in ('numpy', 'attrs', 'PIL', 'tqdm') if m in sys.modules))"
    )
    assert out == "[]"


def test_lazy_public_names_are_the_real_objects() -> None:
    out = _run(
        "import camvidseg, sys; from camvidseg import Segmenter, Segmentation, CamVidPalette;"
        "from camvidseg.segmenter import Segmenter as S; import camvidseg.palette as p;"
        "print(Segmenter is S, CamVidPalette is p.CamVidPalette, 'Segmenter' in dir(camvidseg),"
        " camvidseg.UNLABELLED)"
    )
    assert out == "True True True 255"
    with pytest.raises(AttributeError, match="NoSuchName"):
        camvidseg.NoSuchName  # noqa: B018
