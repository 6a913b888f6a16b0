"""A random-weight SavedModel with HRNetV2-W48's structure, built on demand for benchmarks.

The fake SavedModel of the tests computes almost nothing, so it says nothing about backend
speed. This one has the structure of the CamVid HRNetV2-W48 (Sun et al., 2019; the segmentation
variant of HRNet-Semantic-Segmentation):

* stem: two 3x3 stride-2 convolutions to 64 channels (1/4 resolution);
* stage 1: four bottleneck blocks (64 -> 256 channels);
* stages 2, 3, 4: 1, 4 and 3 modules with 2, 3 and 4 branches of 48, 96, 192 and 384 channels
  (four basic blocks per branch), each module ending in a multi-resolution fusion (1x1 convs +
  bilinear upsampling from lower resolutions, chains of 3x3 stride-2 convs from higher ones);
* head: every branch upsampled to 1/4 resolution and concatenated (720 channels), a 1x1
  720 -> 720 convolution with ReLU, a 1x1 convolution to 33 classes, bilinear upsampling to the
  input size and a softmax.

BatchNorm is folded into the convolutions (a bias each). The weights are random, calibrated like
BatchNorm's statistics on a random image, so every convolution's output has zero mean and unit
variance per channel, with residual branches scaled down; activations stay in range at every
depth and the logits are not degenerate. ``predict`` and ``get_features`` are plain
``tf.function`` attributes (no serving signature), as in the published model.

It is about 260 MB, so it is built once into a cache folder (``$CAMVIDSEG_BENCH_CACHE``, else
``~/.cache/camvidseg-bench``), never committed and never built in CI. Usage::

    python benchmarks/hrnet_model.py            # build (if needed) and print its size
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: this tree's "benchmarks" and camvidseg
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_ROOT), *([str(_ROOT / "src")] if (_ROOT / "src").is_dir() else [])]

from benchmarks._common import Row, print_rows, row

#: ``benchmarks/run.py`` runs this only when asked for by name (it builds a 260 MB model).
RUN_BY_DEFAULT = False
#: Parameters of HRNetV2-W48 as published (segmentation variant).
PUBLISHED_PARAMETERS = 65.9e6
#: Multiply-adds of HRNetV2-W48 on one 720x960 frame, as given in issue 14.
PUBLISHED_MACS_720x960 = 247e9
BRANCH_CHANNELS = (48, 96, 192, 384)
MODULES_PER_STAGE = (1, 4, 3)  # stages 2, 3, 4
BLOCKS = 4
CLASSES = 33
NAME = "hrnetv2-w48-random-v1"
#: Scale of the last BatchNorm of every residual branch (folded), keeping sums in range.
RESIDUAL_GAMMA = 0.3
LOGIT_GAMMA = 3.0
#: Size of the random image every folded BatchNorm is calibrated on.
CALIBRATION_SIZE = (256, 320)


def cache_dir() -> Path:
    return Path(
        os.environ.get("CAMVIDSEG_BENCH_CACHE", Path.home() / ".cache" / "camvidseg-bench")
    ).expanduser()


def model_path() -> Path:
    return cache_dir() / NAME


class _Builder:
    """Creates the folded convolutions, calibrating each on the activations it first sees."""

    def __init__(self, tf: Any, seed: int = 0) -> None:
        self.tf = tf
        self.rng = np.random.default_rng(seed)
        self.variables: list[Any] = []
        self.macs_per_pixel = 0.0  # at input resolution, summed over convolutions

    def conv(self, x: Any, out: int, k: int = 3, stride: int = 1, gamma: float = 1.0) -> Any:
        """A folded conv+BN on ``x`` (eager, at build time): calibrate, then record it."""
        tf = self.tf
        cin = int(x.shape[-1])
        w = self.rng.standard_normal((k, k, cin, out)).astype(np.float32)
        w *= np.sqrt(2.0 / (k * k * cin)).astype(np.float32)
        y = tf.nn.conv2d(x, w, stride, "SAME")
        mean = tf.reduce_mean(y, axis=[0, 1, 2]).numpy()
        std = tf.math.reduce_std(y, axis=[0, 1, 2]).numpy() + 1e-5
        scale = (gamma / std).astype(np.float32)
        weight = tf.Variable(w * scale, name=f"w{len(self.variables)}")
        bias = tf.Variable((-mean * scale).astype(np.float32), name=f"b{len(self.variables)}")
        self.variables += [weight, bias]
        return weight, bias


class HRNetW48:
    """The network as a list of operations over TF tensors; ``layers`` hold the variables."""

    def __init__(self, tf: Any, calibration: np.ndarray[Any, Any]) -> None:
        self.tf = tf
        self.builder = _Builder(tf)
        self.layers: dict[str, tuple[Any, Any]] = {}
        #: Multiply-adds of the convolutions on the calibration image.
        self.macs = 0.0
        self._calibrating = True
        self.logits(tf.constant(calibration))
        self._calibrating = False

    # -- building blocks -------------------------------------------------------------------

    def _conv(
        self,
        name: str,
        x: Any,
        out: int,
        k: int = 3,
        stride: int = 1,
        relu: bool = True,
        gamma: float = 1.0,
    ) -> Any:
        tf = self.tf
        if self._calibrating:
            self.layers[name] = self.builder.conv(x, out, k, stride, gamma)
            h, w = -(-int(x.shape[1]) // stride), -(-int(x.shape[2]) // stride)
            self.macs += h * w * k * k * int(x.shape[-1]) * out
        weight, bias = self.layers[name]
        y = tf.nn.conv2d(x, weight, stride, "SAME") + bias
        return tf.nn.relu(y) if relu else y

    def _basic(self, name: str, x: Any) -> Any:
        c = int(x.shape[-1])
        y = self._conv(f"{name}.1", x, c)
        y = self._conv(f"{name}.2", y, c, relu=False, gamma=RESIDUAL_GAMMA)
        return self.tf.nn.relu(x + y)

    def _bottleneck(self, name: str, x: Any, planes: int) -> Any:
        y = self._conv(f"{name}.1", x, planes, k=1)
        y = self._conv(f"{name}.2", y, planes)
        y = self._conv(f"{name}.3", y, planes * 4, k=1, relu=False, gamma=RESIDUAL_GAMMA)
        if int(x.shape[-1]) != planes * 4:
            x = self._conv(f"{name}.down", x, planes * 4, k=1, relu=False)
        return self.tf.nn.relu(x + y)

    def _resize(self, x: Any, like: Any) -> Any:
        return self.tf.image.resize(x, self.tf.shape(like)[1:3], method="bilinear")

    def _fuse(self, name: str, branches: list[Any]) -> list[Any]:
        tf = self.tf
        fused = []
        for i, target in enumerate(branches):
            total = target
            for j, source in enumerate(branches):
                if j > i:  # lower resolution: 1x1 conv, then upsample
                    y = self._conv(f"{name}.{i}.{j}", source, BRANCH_CHANNELS[i], k=1, relu=False)
                    total = total + self._resize(y, target)
                elif j < i:  # higher resolution: (i - j) stride-2 3x3 convs
                    y = source
                    for step in range(i - j):
                        last = step == i - j - 1
                        out = BRANCH_CHANNELS[i] if last else BRANCH_CHANNELS[j]
                        y = self._conv(f"{name}.{i}.{j}.{step}", y, out, stride=2, relu=not last)
                    total = total + y
            fused.append(tf.nn.relu(total))
        return fused

    # -- the network -----------------------------------------------------------------------

    def features(self, images: Any) -> Any:
        """``[B, H/4, W/4, 720]``: the concatenated, upsampled branches."""
        tf = self.tf
        x = self._conv("stem.1", images, 64, stride=2)
        x = self._conv("stem.2", x, 64, stride=2)
        for b in range(BLOCKS):
            x = self._bottleneck(f"layer1.{b}", x, 64)
        branches = [
            self._conv("transition1.0", x, BRANCH_CHANNELS[0]),
            self._conv("transition1.1", x, BRANCH_CHANNELS[1], stride=2),
        ]
        for stage, modules in enumerate(MODULES_PER_STAGE, start=2):
            if stage > 2:
                new = len(branches)
                branches.append(
                    self._conv(
                        f"transition{stage - 1}.{new}", branches[-1], BRANCH_CHANNELS[new], stride=2
                    )
                )
            for m in range(modules):
                for k, branch in enumerate(branches):
                    for b in range(BLOCKS):
                        branch = self._basic(f"stage{stage}.{m}.{k}.{b}", branch)
                    branches[k] = branch
                branches = self._fuse(f"stage{stage}.{m}.fuse", branches)
        top = branches[0]
        return tf.concat([top] + [self._resize(b, top) for b in branches[1:]], axis=-1)

    def logits(self, images: Any) -> Any:
        x = self.features(images)
        x = self._conv("head.1", x, sum(BRANCH_CHANNELS), k=1)
        return self._conv("head.2", x, CLASSES, k=1, relu=False, gamma=LOGIT_GAMMA)

    def predict(self, images: Any) -> Any:
        tf = self.tf
        logits = self.logits(images)
        return tf.nn.softmax(tf.image.resize(logits, tf.shape(images)[1:3]), axis=-1)


def build(path: Path | None = None, *, force: bool = False) -> Path:
    """Build the SavedModel into ``path`` (default :func:`model_path`) unless it is there."""
    path = model_path() if path is None else path
    if path.is_dir() and (path / "saved_model.pb").is_file() and not force:
        return path
    import tensorflow as tf

    started = time.perf_counter()
    height, width = CALIBRATION_SIZE
    calibration = np.random.default_rng(1).random((1, height, width, 3), dtype=np.float32)
    net = HRNetW48(tf, calibration)
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    module = tf.Module()
    module.params = list(net.builder.variables)
    module.predict = tf.function(net.predict, input_signature=[spec])
    module.get_features = tf.function(net.features, input_signature=[spec])
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".build-", dir=path.parent))
    try:
        tf.saved_model.save(module, str(staged))
        macs = net.macs * (720 * 960) / (height * width)
        (staged / "assets").mkdir(exist_ok=True)
        (staged / "assets" / "benchmark.json").write_text(json.dumps({"macs_720x960": macs}))
        if path.exists():
            shutil.rmtree(path)
        os.replace(staged, path)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    print(f"built {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def parameter_count(path: Path) -> int:
    """Number of weights in the SavedModel's variables (read from its checkpoint)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    shapes = reader.get_variable_to_shape_map()
    return int(
        sum(
            np.prod(shape)
            for name, shape in shapes.items()
            if "/.ATTRIBUTES/VARIABLE_VALUE" in name and shape
        )
    )


def macs_720x960(path: Path) -> float:
    """Multiply-adds of the convolutions on one 720x960 frame (counted when it was built)."""
    data = json.loads((path / "assets" / "benchmark.json").read_text())
    return float(data["macs_720x960"])


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="build again")
    args = parser.parse_args(argv)
    rows = model_rows(build(force=args.force))
    print_rows(rows)
    return rows


def model_rows(path: Path) -> list[Row]:
    """Rows comparing the built model's size and multiply-adds with HRNetV2-W48's."""
    params = parameter_count(path)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    macs = macs_720x960(path)
    return [
        row(
            "HRNet-shaped model: parameters / published HRNetV2-W48",
            params / PUBLISHED_PARAMETERS,
            target=None,
            detail=f"{params / 1e6:.2f} M vs {PUBLISHED_PARAMETERS / 1e6:.1f} M (within 5 %: "
            f"{abs(params / PUBLISHED_PARAMETERS - 1) <= 0.05}); {size / 2**20:.0f} MiB at {path}",
        ),
        row(
            "HRNet-shaped model: multiply-adds per 720x960 frame / issue's figure",
            macs / PUBLISHED_MACS_720x960,
            detail=f"{macs / 1e9:.0f} G vs {PUBLISHED_MACS_720x960 / 1e9:.0f} G",
        ),
    ]


if __name__ == "__main__":
    main(sys.argv[1:])
