"""The sdist and wheel build, pass ``twine check --strict``, and the wheel works without TensorFlow.

The wheel is installed with ``--no-deps`` into a bare virtual environment; its core
dependencies (attrs, numpy, Pillow, tqdm) are linked in from this environment, and nothing
else: TensorFlow, Beam and the other extras cannot be imported there. ``import camvidseg`` and
the ``camvidseg --help`` console script must work in it.
"""

from __future__ import annotations

import email.parser
import importlib.util
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import camvidseg

ROOT = Path(__file__).resolve().parents[1]
#: Import packages of the core dependencies (``[project] dependencies``), and their vendored libs.
CORE_PACKAGES = ("attr", "attrs", "numpy", "PIL", "tqdm")
VENDORED_LIBS = ("numpy.libs", "pillow.libs")

pytestmark = pytest.mark.slow


def _run(*args: str | os.PathLike[str], cwd: Path | None = None) -> str:
    # Without PYTHONPATH, so a bare environment sees only what is installed in it.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [os.fspath(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, check=False
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel built from this checkout (the wheel from the sdist, as ``build`` does)."""
    for needed in ("build", "hatchling"):
        if importlib.util.find_spec(needed) is None:
            pytest.skip(f"{needed} is not installed (it comes with the dev extra)")
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    return out


def _one(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_twine_check_strict(dist: Path) -> None:
    if importlib.util.find_spec("twine") is None:
        pytest.skip("twine is not installed (it comes with the dev extra)")
    output = _run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()))
    assert output.count("PASSED") == 2


def test_wheel_metadata_is_complete(dist: Path) -> None:
    wheel = _one(dist, "camvidseg-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
    assert metadata["Version"] == camvidseg.__version__  # one version source
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["Description-Content-Type"] == "text/markdown"
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(urls)
    classifiers = metadata.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Programming Language :: Python :: 3.1") for c in classifiers)
    requires = metadata.get_all("Requires-Dist") or []
    core = [r for r in requires if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("=")[0] for r in core) == [
        "attrs",
        "numpy",
        "pillow",
        "tqdm",
    ]
    assert {"tf", "docs", "dev"} <= set(metadata.get_all("Provides-Extra") or [])
    assert "camvidseg/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert not [n for n in names if n.startswith(("tests/", "tools/", "docs/"))]


def test_sdist_builds_the_docs_and_runs_the_tests(dist: Path) -> None:
    sdist = _one(dist, "camvidseg-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "mkdocs.yml",
        "src/camvidseg/py.typed",
        "tools/griffe_attrs.py",
        "tools/mkdocs_hooks.py",
        "docs/tutorial.md",
        "examples/photos/arena_stage_washington_dc.jpg",
        "examples/SOURCES.md",
        "scripts/make_gallery.py",
        "tests/conftest.py",
    ):
        assert needed in names, needed


def _link_core_dependencies(site_packages: Path) -> None:
    import numpy

    here = Path(numpy.__file__).parents[1]  # this environment's site-packages
    for package in CORE_PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None, package
        assert spec.submodule_search_locations, package
        source = Path(next(iter(spec.submodule_search_locations)))
        (site_packages / package).symlink_to(source, target_is_directory=True)
    for libs in VENDORED_LIBS:
        if (here / libs).is_dir():
            (site_packages / libs).symlink_to(here / libs, target_is_directory=True)


def test_wheel_in_a_bare_venv_imports_without_tensorflow(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "bare"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", _one(dist, "*.whl"))
    site_packages = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    )
    _link_core_dependencies(site_packages)
    env_code = (
        "import importlib.util, sys, camvidseg, camvidseg.cli;"
        "camvidseg.cli.build_parser();"
        "print(camvidseg.__version__); print(camvidseg.__file__);"
        "print([m for m in ('tensorflow', 'tensorflow_hub', 'apache_beam', 'av', 'openvino')"
        " if m in sys.modules or importlib.util.find_spec(m)])"
    )
    version, location, heavy = _run(python, "-c", env_code, cwd=tmp_path).splitlines()
    assert version == camvidseg.__version__
    assert str(site_packages) in location  # the installed wheel, not this checkout's src
    assert heavy == "[]"  # none importable there, so none imported
    help_text = _run(venv / "bin" / "camvidseg", "--help", cwd=tmp_path)
    assert help_text.startswith("usage: camvidseg")
    assert "segment" in help_text
