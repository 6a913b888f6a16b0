"""A head trained by ``camvidseg finetune`` on a frozen backbone, and the backend that uses it.

A head folder (``HEAD_DIR``) holds ``head.json`` (label set, backbone, architecture, training
record) and ``head.weights.npz`` (float32 arrays, readable without TensorFlow). The head maps
backbone features ``[B, H/4, W/4, F]`` to one logit per trained class:

- features are rounded to float16 first (the training cache stores them so; rounding live
  features the same way makes training, validation and inference see identical values), then
  standardised with the per-channel mean and scale measured on the training features;
- ``"3x3"`` (default): 1x1 conv F -> width, ReLU, two 3x3 convs width -> width with ReLU,
  1x1 conv width -> K; ``"1x1"``: one 1x1 conv F -> K (a linear probe);
- logits are upsampled bilinearly by the feature stride (4, half-pixel centres), cropped to the
  input size and turned into probabilities with a softmax.

:class:`HeadBackend` composes any :class:`~camvidseg.backends.FeatureBackend` with a head into
a backend whose ``predict`` returns exactly K channels (the ``"exact"`` channel layout of the
head's :class:`~camvidseg.labelset.LabelSet`). A head is refused on a backbone whose features
differ from the one it was trained on (:func:`backbone_fingerprint`).

TensorFlow is imported lazily, only to run or train a head.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import Scores
from camvidseg.backends.base import FeatureBackend, check_batch
from camvidseg.exceptions import BackendError, ConfigError, ModelLoadError
from camvidseg.imageio import atomic_write
from camvidseg.labelset import LabelSet

__all__ = [
    "FEATURE_STRIDE",
    "HEAD_FILE",
    "HEAD_FORMAT",
    "HEAD_KINDS",
    "HEAD_VERSION",
    "WEIGHTS_FILE",
    "Head",
    "HeadBackend",
    "HeadInfo",
    "HeadWeights",
    "attach_head",
    "backbone_fingerprint",
    "head_identity",
    "head_module",
    "layer_shapes",
    "read_head",
    "read_head_info",
    "same_backbone",
]

#: Input pixels per feature cell along each axis (HRNet's ``get_features`` is at 1/4 size).
FEATURE_STRIDE = 4
#: The head's description, in a head folder.
HEAD_FILE = "head.json"
#: The head's weights, in a head folder.
WEIGHTS_FILE = "head.weights.npz"
#: ``"format"`` of ``head.json``.
HEAD_FORMAT = "camvidseg-head"
#: Version of ``head.json`` this library writes (and the newest it reads).
HEAD_VERSION = 1
#: Head architectures: a small 3x3 conv stack, or a single 1x1 conv.
HEAD_KINDS = ("3x3", "1x1")

_PROBE_VERSION = "probe1"
_PROBE_DIRECTIONS = 8
#: Relative distance under which two probe fingerprints are the same backbone: far above the
#: differences of float32 arithmetic between machines (or TF32 on GPUs), far below those of
#: two different backbones (whose probes are unrelated, a relative distance near 1 or more).
_PROBE_RTOL = 2e-2


def _tf() -> Any:
    """TensorFlow, imported on first use (its start-up chatter kept out of the terminal)."""
    from camvidseg.backends.tfhub import import_tensorflow

    return import_tensorflow()[0]


def layer_shapes(
    kind: str, feature_dim: int, width: int, channels: int
) -> list[tuple[int, int, int, int]]:
    """Kernel shapes ``(kh, kw, in, out)`` of a head, first layer first.

    Example:
        >>> layer_shapes("3x3", 720, 64, 11)
        [(1, 1, 720, 64), (3, 3, 64, 64), (3, 3, 64, 64), (1, 1, 64, 11)]
        >>> layer_shapes("1x1", 720, 64, 11)
        [(1, 1, 720, 11)]
    """
    if kind == "1x1":
        return [(1, 1, feature_dim, channels)]
    if kind == "3x3":
        return [
            (1, 1, feature_dim, width),
            (3, 3, width, width),
            (3, 3, width, width),
            (1, 1, width, channels),
        ]
    raise ConfigError(f"head kind must be one of {', '.join(HEAD_KINDS)} (got {kind!r})")


def _float32(value: object) -> NDArray[np.float32]:
    array = np.array(value, dtype=np.float32, copy=True)
    array.setflags(write=False)
    return array


def _float32_tuple(values: object) -> tuple[NDArray[np.float32], ...]:
    return tuple(_float32(v) for v in values)  # type: ignore[attr-defined]


@attrs.frozen(eq=False)
class HeadWeights:
    """The numbers of a head (read-only float32 arrays).

    Attributes:
        kind: ``"3x3"`` or ``"1x1"``.
        mean: ``(F,)`` feature mean, subtracted first.
        scale: ``(F,)`` inverse feature standard deviation, multiplied next.
        kernels: ``(kh, kw, in, out)`` conv kernels, first layer first.
        biases: ``(out,)`` biases, one per kernel.
    """

    kind: str
    mean: NDArray[np.float32] = attrs.field(converter=_float32)
    scale: NDArray[np.float32] = attrs.field(converter=_float32)
    kernels: tuple[NDArray[np.float32], ...] = attrs.field(converter=_float32_tuple)
    biases: tuple[NDArray[np.float32], ...] = attrs.field(converter=_float32_tuple)

    def __attrs_post_init__(self) -> None:
        if not self.kernels or len(self.kernels) != len(self.biases):
            raise ConfigError(
                f"a head needs one bias per kernel (got {len(self.kernels)} kernels, "
                f"{len(self.biases)} biases)"
            )
        width = self.kernels[0].shape[-1] if len(self.kernels) > 1 else 0
        expected = layer_shapes(self.kind, self.feature_dim, width, self.channels)
        got = [tuple(k.shape) for k in self.kernels]
        depth = (self.feature_dim,)
        if got != expected or self.mean.shape != depth or self.scale.shape != depth:
            raise ConfigError(f"head {self.kind!r}: kernel shapes {got} (expected {expected})")
        for kernel, bias in zip(self.kernels, self.biases, strict=True):
            if bias.shape != (kernel.shape[-1],):
                raise ConfigError(f"bias of shape {bias.shape} for a kernel of {kernel.shape}")

    @property
    def feature_dim(self) -> int:
        """``F``: backbone feature channels."""
        return int(self.kernels[0].shape[2])

    @property
    def channels(self) -> int:
        """``K``: output channels."""
        return int(self.kernels[-1].shape[-1])

    @property
    def width(self) -> int:
        """Hidden channels (0 for a ``"1x1"`` head)."""
        return int(self.kernels[0].shape[-1]) if len(self.kernels) > 1 else 0

    @classmethod
    def initial(
        cls,
        kind: str,
        feature_dim: int,
        channels: int,
        *,
        width: int = 64,
        seed: int = 0,
        mean: NDArray[np.float32] | None = None,
        scale: NDArray[np.float32] | None = None,
    ) -> HeadWeights:
        """Fresh weights: He-uniform kernels before each ReLU, a small last layer, zero biases.

        Example:
            >>> w = HeadWeights.initial("3x3", 8, 3, width=4, seed=1)
            >>> w.channels, w.width, [k.shape for k in w.kernels][1]
            (3, 4, (3, 3, 4, 4))
        """
        rng = np.random.default_rng([seed, 0x4EAD])
        shapes = layer_shapes(kind, feature_dim, width, channels)
        kernels = []
        for i, shape in enumerate(shapes):
            fan_in = shape[0] * shape[1] * shape[2]
            # ReLU layers keep their activations' variance (He); the last starts near-uniform.
            limit = math.sqrt(6.0 / fan_in) if i < len(shapes) - 1 else math.sqrt(0.1 / fan_in)
            kernels.append(rng.uniform(-limit, limit, size=shape).astype(np.float32))
        return cls(
            kind,
            np.zeros(feature_dim, np.float32) if mean is None else mean,
            np.ones(feature_dim, np.float32) if scale is None else scale,
            kernels,
            [np.zeros(s[-1], np.float32) for s in shapes],
        )

    def to_arrays(self) -> dict[str, NDArray[np.float32]]:
        """Named arrays (``mean``, ``scale``, ``kernel0``, ``bias0``, ...)."""
        arrays = {"mean": self.mean, "scale": self.scale}
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases, strict=True)):
            arrays[f"kernel{i}"] = kernel
            arrays[f"bias{i}"] = bias
        return arrays

    @classmethod
    def from_arrays(cls, kind: str, arrays: Mapping[str, NDArray[Any]]) -> HeadWeights:
        """Inverse of :meth:`to_arrays`."""
        count = sum(1 for name in arrays if name.startswith("kernel"))
        try:
            return cls(
                kind,
                arrays["mean"],
                arrays["scale"],
                [arrays[f"kernel{i}"] for i in range(count)],
                [arrays[f"bias{i}"] for i in range(count)],
            )
        except KeyError as exc:
            raise ConfigError(f"head weights lack the array {exc}") from None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the arrays as ``.npz`` atomically; returns the path."""
        path = Path(path)
        arrays: dict[str, Any] = dict(self.to_arrays())
        with atomic_write(path) as handle:
            np.savez(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], kind: str) -> HeadWeights:
        """Read weights written by :meth:`save`.

        Raises:
            ModelLoadError: naming the file, if it is missing or damaged.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except FileNotFoundError:
            raise ModelLoadError(f"{path}: no such head weights file") from None
        except (OSError, ValueError, EOFError) as exc:
            raise ModelLoadError(f"{path}: cannot read head weights ({exc})") from None
        try:
            return cls.from_arrays(kind, arrays)
        except ConfigError as exc:
            raise ModelLoadError(f"{path}: {exc}") from None

    def equals(self, other: HeadWeights) -> bool:
        """Whether both hold exactly the same numbers."""
        mine, theirs = self.to_arrays(), other.to_arrays()
        return (
            self.kind == other.kind
            and mine.keys() == theirs.keys()
            and all(np.array_equal(mine[k], theirs[k]) for k in mine)
        )


@attrs.frozen
class HeadInfo:
    """What ``head.json`` says: the label set, the backbone and the architecture.

    Attributes:
        label_set: The classes of the head's outputs.
        base_model: Handle of the backbone it was trained on.
        backbone_fingerprint: :func:`backbone_fingerprint` of that backbone.
        kind: ``"3x3"`` or ``"1x1"``.
        details: Everything else ``head.json`` records (training settings, seed, versions,
            best epoch, ...), kept as read.
    """

    label_set: LabelSet
    base_model: str
    backbone_fingerprint: str
    kind: str
    details: Mapping[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``head.json``."""
        return {
            "format": HEAD_FORMAT,
            "version": HEAD_VERSION,
            "label_set": self.label_set.to_dict(),
            "base_model": self.base_model,
            "backbone_fingerprint": self.backbone_fingerprint,
            "kind": self.kind,
            **{k: v for k, v in self.details.items() if k not in _HEAD_KEYS},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeadInfo:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: another format, a newer version, or a malformed object.
        """
        if not isinstance(data, Mapping) or data.get("format") != HEAD_FORMAT:
            raise ConfigError(f'not a camvidseg head description ("format": {HEAD_FORMAT!r})')
        version = data.get("version")
        if not isinstance(version, int) or not 1 <= version <= HEAD_VERSION:
            raise ConfigError(
                f"head version {version!r} is not one this camvidseg reads (1..{HEAD_VERSION})"
            )
        try:
            kind = str(data["kind"])
            if kind not in HEAD_KINDS:
                raise ConfigError(f"unknown head kind {kind!r}")
            return cls(
                LabelSet.from_dict(data["label_set"]),
                str(data["base_model"]),
                str(data["backbone_fingerprint"]),
                kind,
                {k: v for k, v in data.items() if k not in _HEAD_KEYS},
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"malformed head description ({type(exc).__name__}: {exc})") from None


_HEAD_KEYS = frozenset(
    {"format", "version", "label_set", "base_model", "backbone_fingerprint", "kind"}
)


@attrs.frozen
class Head:
    """A head read from its folder: :class:`HeadInfo` and :class:`HeadWeights`."""

    info: HeadInfo
    weights: HeadWeights = attrs.field(eq=False)
    folder: Path | None = None

    def __attrs_post_init__(self) -> None:
        if self.weights.channels != self.info.label_set.channels:
            raise ConfigError(
                f"head weights have {self.weights.channels} output channels but the label set "
                f"{self.info.label_set.describe()} needs {self.info.label_set.channels}"
            )
        if self.weights.kind != self.info.kind:
            raise ConfigError(f"head weights are {self.weights.kind!r}, not {self.info.kind!r}")

    @property
    def label_set(self) -> LabelSet:
        """The classes of the outputs."""
        return self.info.label_set


def read_head_info(folder: str | os.PathLike[str]) -> HeadInfo:
    """Read only ``head.json`` of a head folder (its label set, backbone and architecture).

    Raises:
        ConfigError: naming the folder or file, when it is not a head folder or is damaged.
    """
    folder = Path(folder)
    path = folder / HEAD_FILE
    if not folder.is_dir():
        raise ConfigError(f"head folder {folder}: no such folder")
    if not path.is_file():
        raise ConfigError(
            f"head folder {folder} holds no {HEAD_FILE}: not a head made by camvidseg finetune"
        )
    try:
        return HeadInfo.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ConfigError) as exc:
        raise ConfigError(f"{path}: cannot read the head description ({exc})") from None


def head_identity(folder: str | os.PathLike[str]) -> str:
    """``"head:<sha256 of the weights, 16 hex digits>"``: what a prediction cache or a manifest
    records, so that outputs of another head are never taken for this one's.

    Raises:
        ConfigError: the folder holds no head weights.
    """
    path = Path(folder) / WEIGHTS_FILE
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        raise ConfigError(f"head folder {folder}: cannot read {WEIGHTS_FILE} ({exc})") from None
    return f"head:{digest}"


def read_head(folder: str | os.PathLike[str]) -> Head:
    """Read ``head.json`` and ``head.weights.npz`` from a head folder (no TensorFlow needed).

    Raises:
        ConfigError: naming the folder or file, when it is not a head folder or is damaged.
    """
    folder = Path(folder)
    info = read_head_info(folder)
    try:
        weights = HeadWeights.load(folder / WEIGHTS_FILE, info.kind)
        return Head(info, weights, folder)
    except (ModelLoadError, ConfigError) as exc:
        raise ConfigError(f"head folder {folder}: {exc}") from None


# -- backbone fingerprints ------------------------------------------------------------------------


def _probe_image() -> NDArray[np.float32]:
    """A fixed 64x64 test card: gradients, a checkerboard and colour blocks, in [0, 1]."""
    y, x = np.mgrid[0:64, 0:64].astype(np.float32) / np.float32(63.0)
    checker = ((np.arange(64)[:, None] // 8 + np.arange(64)[None, :] // 8) % 2).astype(np.float32)
    image = np.stack([x, y, 0.5 * (x + y)], axis=-1)
    image[16:48, 16:48, 0] = checker[16:48, 16:48]
    image[40:60, 4:30] = np.array([0.9, 0.2, 0.1], np.float32)
    image[4:20, 36:60] = np.array([0.1, 0.3, 0.8], np.float32)
    return image[None]


def backbone_fingerprint(backend: FeatureBackend) -> str:
    """A fingerprint of what a backbone's ``get_features`` computes.

    The backbone's features of a fixed 64x64 test card, averaged over its four quadrants and
    projected on 8 fixed directions: 32 numbers, with the feature depth. Two backbones are the
    same (:func:`same_backbone`) when these agree to 2% (float rounding of one backbone on two
    machines stays far below; two different backbones differ completely). Unlike a hash of
    files, it is the same for a model folder, its copy in a cache and an export of it.

    Example:
        >>> from camvidseg.backends.fake import NearestColorBackend
        >>> backbone_fingerprint(NearestColorBackend()).split(":")[:2]
        ['probe1', '720']
    """
    features = np.asarray(backend.get_features(_probe_image()), dtype=np.float64)
    if features.ndim != 4 or features.shape[0] != 1 or min(features.shape) == 0:
        raise BackendError(
            f"{backend.name}: get_features returned shape {features.shape} for a "
            "[1, 64, 64, 3] image; expected [1, h, w, F]"
        )
    _, h, w, depth = features.shape
    rng = np.random.default_rng(0x9E3779B9)
    directions = rng.standard_normal((depth, _PROBE_DIRECTIONS)) / math.sqrt(depth)
    quadrants = [
        features[0, rows, cols].mean(axis=(0, 1))
        for rows in (slice(0, max(1, h // 2)), slice(h // 2, h))
        for cols in (slice(0, max(1, w // 2)), slice(w // 2, w))
    ]
    summary = np.stack(quadrants) @ directions
    values = ",".join(f"{v:.6e}" for v in summary.reshape(-1))
    return f"{_PROBE_VERSION}:{depth}:{values}"


def _parse_probe(fingerprint: str) -> tuple[int, NDArray[np.float64]] | None:
    version, _, rest = fingerprint.partition(":")
    depth, _, values = rest.partition(":")
    if version != _PROBE_VERSION or not depth.isdigit():
        return None
    try:
        numbers = np.array([float(v) for v in values.split(",")], dtype=np.float64)
    except ValueError:
        return None
    return int(depth), numbers


def same_backbone(a: str, b: str) -> bool:
    """Whether two :func:`backbone_fingerprint` values describe the same backbone.

    Example:
        >>> same_backbone("probe1:2:1.0,2.0", "probe1:2:1.001,2.0")
        True
        >>> same_backbone("probe1:2:1.0,2.0", "probe1:2:-1.0,2.0")
        False
    """
    pa, pb = _parse_probe(a), _parse_probe(b)
    if pa is None or pb is None:
        return a == b
    (da, va), (db, vb) = pa, pb
    if da != db or va.shape != vb.shape:
        return False
    scale = max(float(np.linalg.norm(va)), float(np.linalg.norm(vb)), 1e-12)
    return float(np.linalg.norm(va - vb)) <= _PROBE_RTOL * scale


# -- the head in TensorFlow ------------------------------------------------------------------------


def head_module(weights: HeadWeights, *, trainable: bool = False) -> Any:
    """The head as a ``tf.Module`` holding its weights as variables.

    The module has ``logits(features)`` (``[B, h, w, F]`` -> ``[B, h, w, K]``) and the
    ``tf.function`` ``probabilities(features, height, width)`` (-> ``[B, height, width, K]``,
    softmax of the logits upsampled by :data:`FEATURE_STRIDE` and cropped), which
    :class:`HeadBackend`, validation during training and the exported SavedModel all call, so
    they compute exactly the same numbers. ``trainable_variables`` are the kernels and biases.
    """
    _tf()
    import tensorflow as tf

    depth = weights.feature_dim

    class CamVidSegHead(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(name="camvidseg_head")
            self.kind = weights.kind
            self.mean = tf.Variable(weights.mean, trainable=False, name="mean")
            self.scale = tf.Variable(weights.scale, trainable=False, name="scale")
            self.kernels = [
                tf.Variable(k, trainable=trainable, name=f"kernel{i}")
                for i, k in enumerate(weights.kernels)
            ]
            self.biases = [
                tf.Variable(b, trainable=trainable, name=f"bias{i}")
                for i, b in enumerate(weights.biases)
            ]

        def logits(self, features: Any) -> Any:
            x = tf.cast(tf.cast(features, tf.float16), tf.float32)
            x = (x - self.mean) * self.scale
            last = len(self.kernels) - 1
            for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases, strict=True)):
                x = tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"), bias)
                if i < last:
                    x = tf.nn.relu(x)
            return x

        def upsampled_logits(self, features: Any) -> Any:
            logits = self.logits(features)
            shape = tf.shape(logits)
            size = tf.stack([shape[1] * FEATURE_STRIDE, shape[2] * FEATURE_STRIDE])
            return tf.image.resize(logits, size, method="bilinear")

        @tf.function(  # type: ignore[untyped-decorator]
            input_signature=[
                tf.TensorSpec([None, None, None, depth], tf.float32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.int32),
            ],
            autograph=False,  # plain Python loops over the layers; no tensor control flow
        )
        def probabilities(self, features: Any, height: Any, width: Any) -> Any:
            up = self.upsampled_logits(features)
            return tf.nn.softmax(up[:, :height, :width], axis=-1)

        def to_weights(self) -> HeadWeights:
            return HeadWeights(
                self.kind,
                self.mean.numpy(),
                self.scale.numpy(),
                [k.numpy() for k in self.kernels],
                [b.numpy() for b in self.biases],
            )

    return CamVidSegHead()


def _check_features(features: NDArray[Any], batch_shape: tuple[int, ...], name: str) -> None:
    b, h, w, _ = batch_shape
    expected = (b, -(-h // FEATURE_STRIDE), -(-w // FEATURE_STRIDE))
    if features.ndim != 4 or features.shape[:3] != expected:
        raise BackendError(
            f"{name}: get_features returned shape {features.shape} for a batch of shape "
            f"{batch_shape}; a head needs [B, ceil(H/{FEATURE_STRIDE}), ceil(W/"
            f"{FEATURE_STRIDE}), F]"
        )


class HeadBackend:
    """A backbone's features through a trained head: ``predict`` gives K probabilities.

    Satisfies :class:`~camvidseg.backends.FeatureBackend` (``get_features`` is the backbone's).
    Inputs are padded to a multiple of :data:`FEATURE_STRIDE` by the Segmenter
    (``input_multiple``), so every feature cell covers exactly 4x4 input pixels, as in training.

    Args:
        backbone: The backbone (a loaded SavedModel, or a fake).
        head: The head (see :func:`read_head`).
        fingerprint: The backbone's :func:`backbone_fingerprint`, if known (else computed).

    Raises:
        ConfigError: the head was trained on another backbone, or for other features.

    Example:
        >>> from camvidseg.backends.fake import NearestColorBackend
        >>> backbone = NearestColorBackend()
        >>> info = HeadInfo(LabelSet.camvid11(), "fake:33", backbone_fingerprint(backbone), "1x1")
        >>> head = Head(info, HeadWeights.initial("1x1", 720, 11))
        >>> HeadBackend(backbone, head).predict(np.zeros((1, 8, 8, 3), np.float32)).shape
        (1, 8, 8, 11)
    """

    def __init__(
        self, backbone: FeatureBackend, head: Head, *, fingerprint: str | None = None
    ) -> None:
        if not callable(getattr(backbone, "get_features", None)):
            raise ConfigError(f"{backbone.name} has no get_features: a head cannot run on it")
        actual = backbone_fingerprint(backbone) if fingerprint is None else fingerprint
        where = f"head {head.folder}" if head.folder is not None else "the head"
        depth = int(actual.split(":")[1]) if actual.startswith(_PROBE_VERSION) else None
        if depth is not None and depth != head.weights.feature_dim:
            raise ConfigError(
                f"{where} takes {head.weights.feature_dim} feature channels but "
                f"{backbone.name} gives {depth}: it was trained on another backbone "
                f"({head.info.base_model})"
            )
        if not same_backbone(actual, head.info.backbone_fingerprint):
            raise ConfigError(
                f"{where} was trained on another backbone ({head.info.base_model}); its "
                f"features differ from those of {backbone.name}. Use it with --model "
                f"{head.info.base_model}, or train a head for this model"
            )
        self._backbone = backbone
        self._head = head
        self._module: Any = None

    @property
    def name(self) -> str:
        where = self._head.folder.name if self._head.folder is not None else "in-memory"
        return f"{self._backbone.name}+head:{where}"

    @property
    def input_multiple(self) -> int:
        return math.lcm(FEATURE_STRIDE, max(1, int(self._backbone.input_multiple)))

    @property
    def label_set(self) -> LabelSet:
        """The classes of the outputs (channel ``j``: the ``j``-th trained id)."""
        return self._head.label_set

    @property
    def head(self) -> Head:
        return self._head

    @property
    def backbone(self) -> FeatureBackend:
        return self._backbone

    @property
    def module(self) -> Any:
        """The head's ``tf.Module`` (see :func:`head_module`), built on first use."""
        if self._module is None:
            self._module = head_module(self._head.weights)
        return self._module

    def get_features(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._backbone.get_features(batch)

    def predict(self, batch: NDArray[np.float32]) -> Scores:
        check_batch(batch)
        features = np.asarray(self._backbone.get_features(batch), dtype=np.float32)
        _check_features(features, batch.shape, self._backbone.name)
        tf = _tf()
        probs = self.module.probabilities(
            tf.constant(features), tf.constant(batch.shape[1]), tf.constant(batch.shape[2])
        )
        scores: Scores = np.asarray(probs.numpy(), dtype=np.float32)
        return scores


def attach_head(
    backbone: FeatureBackend, head: str | os.PathLike[str] | Head, *, fingerprint: str | None = None
) -> HeadBackend:
    """``backbone`` with the head of a head folder (or a :class:`Head`) on top.

    Raises:
        ConfigError: the folder is not a head, or the head belongs to another backbone.
    """
    loaded = head if isinstance(head, Head) else read_head(head)
    return HeadBackend(backbone, loaded, fingerprint=fingerprint)
