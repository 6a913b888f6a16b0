"""The training step of a head: weighted cross-entropy on upsampled logits, AdamW, a schedule.

TensorFlow is imported when a :class:`Trainer` is built. The optimizer is written out (a few
lines of AdamW) so its whole state is a handful of arrays that a checkpoint restores exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from camvidseg._types import UNLABELLED
from camvidseg.backends.head import HeadWeights, head_module

__all__ = ["Trainer", "learning_rate"]

_BETA1 = 0.9
_BETA2 = 0.999
_EPSILON = 1e-8
#: Share of the steps spent warming the learning rate up.
WARMUP = 0.05


def learning_rate(step: int, total: int, peak: float) -> float:
    """Linear warm-up over the first 5% of ``total`` steps, then a cosine decay towards 0 (the
    last step still learns a little).

    ``step`` counts from 0 (the step about to run).

    Example:
        >>> [round(learning_rate(s, 100, 1.0), 3) for s in (0, 4, 5, 52, 99)]
        [0.2, 1.0, 1.0, 0.508, 0.0]
    """
    warmup = max(1, round(WARMUP * total))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class Trainer:
    """A head's variables, AdamW state and the compiled training step.

    Args:
        weights: Initial (or resumed) head weights.
        channel_weights: ``(K,)`` loss weight of each output channel.
        total_steps: Steps of the whole run (for the schedule).
        peak_rate: Peak learning rate.
        weight_decay: Decoupled weight decay of the kernels.
    """

    def __init__(
        self,
        weights: HeadWeights,
        channel_weights: NDArray[np.float64],
        *,
        total_steps: int,
        peak_rate: float,
        weight_decay: float,
    ) -> None:
        from camvidseg.backends.tfhub import import_tensorflow

        tf, _ = import_tensorflow()

        self._tf = tf
        self.module = head_module(weights, trainable=True)
        self.total_steps = total_steps
        self.peak_rate = peak_rate
        self._variables = [*self.module.kernels, *self.module.biases]
        self._decay = [True] * len(self.module.kernels) + [False] * len(self.module.biases)
        self._m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self._variables]
        self._v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self._variables]
        self._step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._weight_decay = float(weight_decay)
        self._channel_weights = tf.constant(np.asarray(channel_weights, dtype=np.float32))
        self._compiled = tf.function(self._train_step, reduce_retracing=True, autograph=False)

    @property
    def step(self) -> int:
        """Steps taken so far."""
        return int(self._step.numpy())

    def current_rate(self) -> float:
        """The learning rate of the next step."""
        return learning_rate(self.step, self.total_steps, self.peak_rate)

    def last_rate(self) -> float:
        """The learning rate of the last step taken."""
        return learning_rate(max(0, self.step - 1), self.total_steps, self.peak_rate)

    def train_step(self, features: NDArray[np.float16], targets: NDArray[np.uint8]) -> float:
        """One AdamW step on a batch; returns its loss.

        Args:
            features: ``[B, h, w, F]`` float16 feature crops.
            targets: ``[B, 4h, 4w]`` uint8 output channels of the pixels (255: ignored).
        """
        tf = self._tf
        rate = tf.constant(self.current_rate(), tf.float32)
        loss = self._compiled(tf.constant(features), tf.constant(targets), rate)
        return float(loss.numpy())

    def _train_step(self, features: Any, targets: Any, rate: Any) -> Any:
        tf = self._tf
        with tf.GradientTape() as tape:
            logits = self.module.upsampled_logits(features)
            labels = tf.cast(targets, tf.int32)
            valid = labels != UNLABELLED
            safe = tf.where(valid, labels, tf.zeros_like(labels))
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
            weights = tf.gather(self._channel_weights, safe) * tf.cast(valid, tf.float32)
            loss = tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1e-6)
        gradients = tape.gradient(loss, self._variables)
        self._step.assign_add(1)
        t = tf.cast(self._step, tf.float32)
        correction1 = 1.0 - tf.pow(_BETA1, t)
        correction2 = 1.0 - tf.pow(_BETA2, t)
        for variable, grad, m, v, decay in zip(
            self._variables, gradients, self._m, self._v, self._decay, strict=True
        ):
            m.assign(_BETA1 * m + (1.0 - _BETA1) * grad)
            v.assign(_BETA2 * v + (1.0 - _BETA2) * tf.square(grad))
            update = (m / correction1) / (tf.sqrt(v / correction2) + _EPSILON)
            if decay and self._weight_decay:
                update = update + self._weight_decay * variable
            variable.assign_sub(rate * update)
        return loss

    def weights(self) -> HeadWeights:
        """The current head weights (a copy)."""
        weights: HeadWeights = self.module.to_weights()
        return weights

    def state(self) -> dict[str, NDArray[Any]]:
        """Everything a checkpoint needs to continue exactly: weights, moments, step."""
        arrays: dict[str, NDArray[Any]] = {
            f"weights/{k}": v for k, v in self.weights().to_arrays().items()
        }
        for i, (m, v) in enumerate(zip(self._m, self._v, strict=True)):
            arrays[f"adam/m{i}"] = m.numpy()
            arrays[f"adam/v{i}"] = v.numpy()
        arrays["adam/step"] = np.array(self.step, dtype=np.int64)
        return arrays

    def load_state(self, arrays: dict[str, NDArray[Any]]) -> None:
        """Restore :meth:`state` (weights, moments and step)."""
        weights = HeadWeights.from_arrays(
            self.module.kind,
            {k.removeprefix("weights/"): v for k, v in arrays.items() if k.startswith("weights/")},
        )
        self.module.mean.assign(weights.mean)
        self.module.scale.assign(weights.scale)
        for variable, value in zip(
            self._variables, [*weights.kernels, *weights.biases], strict=True
        ):
            variable.assign(value)
        for i, (m, v) in enumerate(zip(self._m, self._v, strict=True)):
            m.assign(arrays[f"adam/m{i}"])
            v.assign(arrays[f"adam/v{i}"])
        self._step.assign(int(arrays["adam/step"]))
