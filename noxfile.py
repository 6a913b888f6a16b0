"""Developer tasks: ``nox -s lint typecheck tests docs gallery build bench``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "venv"


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src, tests and benchmarks."""
    session.install("-e", ".[beam,dev,video]")  # camvidseg.beam subclasses Beam's typed classes
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite with the TensorFlow, Beam, video and OpenVINO extras (the fake SavedModel
    path included)."""
    session.install("-e", ".[tf,beam,dev,video,openvino]")
    session.run("pytest", "--cov=camvidseg", "--cov-report=term", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly (any warning fails)."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict")


@nox.session
def gallery(session: nox.Session) -> None:
    """Regenerate docs/gallery.md and docs/gallery/ (``-- --model PATH`` for the real model)."""
    session.install("-e", ".[tf]")
    session.run("python", "scripts/make_gallery.py", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and wheel and check their metadata."""
    session.install("build", "twine")
    session.run("python", "-m", "build")
    session.run("twine", "check", "--strict", "dist/*")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmark scripts (ratios against references measured in the same run)."""
    session.install("-e", ".[tf,dev,bench]")
    session.run("python", "benchmarks/run.py", *session.posargs)
