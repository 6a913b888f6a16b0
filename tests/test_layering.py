"""The layers of docs/architecture.md: no module imports from a layer above its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Layer of each top-level module or package of ``camvidseg`` (docs/architecture.md).
LAYERS: dict[str, int] = {
    **dict.fromkeys(
        [
            "_signals",
            "_types",
            "_version",
            "exceptions",
            "validators",
            "palette",
            "postprocess",
            "cleanup",
            "metrics",
            "tiling",
            "tta",
            "uncertainty",
        ],
        1,
    ),
    **dict.fromkeys(["imageio", "groundtruth", "labelset", "predcache"], 2),
    **dict.fromkeys(["backends", "models", "testing"], 3),
    **dict.fromkeys(["segmenter", "config", "visualize"], 4),
    **dict.fromkeys(["pipeline", "evaluation", "tune", "finetune", "beam", "video", "report"], 5),
    **dict.fromkeys(["cli", "__main__"], 6),
}
#: A module not listed above is a front-end: it may use anything but the CLI.
FRONT_END = 5
#: Upward imports allowed for now, with why (each one lazy, inside a function). Keep this short:
#: the test below fails once an entry is no longer needed, so it gets removed.
KNOWN_UPWARD_IMPORTS = {
    ("camvidseg.segmenter", "camvidseg.video"): "Segmenter.segment_video delegates to video",
}


def layer_of(module: str) -> int:
    parts = module.split(".")
    # ``camvidseg`` itself re-exports every layer (lazily): a front-end may use it.
    return LAYERS.get(parts[1], FRONT_END) if len(parts) > 1 else FRONT_END


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted((SRC / "camvidseg").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        if name != "camvidseg":  # the lazy facade re-exports every layer
            found.append((name, path))
    return found


def imported(path: Path, package: str) -> set[str]:
    """``camvidseg`` modules ``path`` imports anywhere (inside functions too); ``from a import b``
    counts as importing ``a.b`` when ``b`` is a module."""
    known = {name for name, _ in modules()} | {"camvidseg"}
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                names.add(submodule if submodule in known else source)
    return {name for name in names if name == "camvidseg" or name.startswith("camvidseg.")}


def test_every_layer_is_known() -> None:
    assert layer_of("camvidseg.tiling") == 1
    assert layer_of("camvidseg.backends.tfhub") == 3
    assert layer_of("camvidseg.some_new_feature") == FRONT_END
    assert len(modules()) > 30


@pytest.mark.parametrize(("module", "path"), modules(), ids=[name for name, _ in modules()])
def test_no_module_imports_from_a_higher_layer(module: str, path: Path) -> None:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    own = layer_of(module)
    above = {name: layer_of(name) for name in imported(path, package) if layer_of(name) > own}
    allowed = {target for source, target in KNOWN_UPWARD_IMPORTS if source == module}
    assert allowed <= set(above), f"remove {allowed - set(above)} from KNOWN_UPWARD_IMPORTS"
    above = {name: layer for name, layer in above.items() if name not in allowed}
    assert not above, (
        f"{module} (layer {own}) imports from higher layers: {above}; see docs/architecture.md"
    )
