"""A deterministic numpy model whose answers are known exactly.

Each pixel's class is the palette colour nearest to it (first id on ties). Scores are a softmax
over ``-squared_distance / temperature`` with a real background channel, so tests can assert exact
label maps and confidences, and everything above the backend runs for real without TensorFlow.
"""

from __future__ import annotations

import time
import zlib

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg import validators
from camvidseg._types import ConfidenceMap, LabelMap, Scores
from camvidseg.backends.base import Backend, check_batch
from camvidseg.backends.handles import FAKE_PREFIX
from camvidseg.exceptions import ConfigError
from camvidseg.palette import CamVidPalette
from camvidseg.postprocess import ChannelLayout, labels_and_confidence

__all__ = [
    "FakeHandle",
    "NearestColorBackend",
    "SpeckleNoiseBackend",
    "nearest_color_logits",
    "parse_fake_handle",
]

#: Softmax temperature in squared 8-bit RGB units: neighbours ~64 levels apart differ by ~2 logits.
DEFAULT_TEMPERATURE = 2048.0
#: Logit of the background channel: the nearest class is 0, so background takes a visible share.
DEFAULT_BACKGROUND_LOGIT = -1.0
_VOID_ID = 30


def nearest_color_logits(
    batch: NDArray[np.float32], colors: NDArray[np.uint8], temperature: float = DEFAULT_TEMPERATURE
) -> NDArray[np.float32]:
    """Logits ``-|rgb - colour|^2 / temperature`` per palette colour, ``[B, H, W, N]`` float32.

    Pixel values are rounded back to 8-bit integers first, so the distances are exact integers
    and the argmax is the nearest colour with ties to the lower id.
    """
    pixels = np.rint(batch * np.float32(255.0)).astype(np.float32)
    table = colors.astype(np.float32)
    # |p - c|^2 = |p|^2 - 2 p.c + |c|^2, exact in float32 for 8-bit integer values (< 2^24).
    dist = (
        np.sum(pixels * pixels, axis=-1, keepdims=True)
        - 2.0 * (pixels @ table.T)
        + np.sum(table * table, axis=-1)
    )
    logits: NDArray[np.float32] = (-dist / np.float32(temperature)).astype(np.float32)
    return logits


def _softmax(logits: NDArray[np.float32]) -> NDArray[np.float32]:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    probs: NDArray[np.float32] = (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)
    return probs


@attrs.define
class NearestColorBackend:
    """Fake HRNet: nearest CamVid-32 colour per pixel, in either channel layout.

    Args:
        channels: 33 (background channel 0 + ids 0..31) or 32 (Void in channel 0, then the other
            31 ids in order).
        temperature: Softmax temperature in squared 8-bit units.
        background_logit: Logit of channel 0 in the 33-channel layout.
        latency: Seconds to sleep per call, to simulate a slow model in benchmarks.
        feature_dim: Channels of :meth:`get_features` (720 like HRNet-W48).

    Example:
        >>> backend = NearestColorBackend()
        >>> batch = np.zeros((1, 1, 2, 3), np.float32); batch[0, 0, 1] = [128/255, 64/255, 128/255]
        >>> backend.predict(batch).argmax(-1).tolist()  # channel = id + 1
        [[[31, 18]]]
    """

    channels: int = attrs.field(default=33, validator=validators.in_((32, 33)))
    temperature: float = DEFAULT_TEMPERATURE
    background_logit: float = DEFAULT_BACKGROUND_LOGIT
    latency: float = attrs.field(default=0.0, validator=validators.ge(0))
    feature_dim: int = 720
    input_multiple: int = attrs.field(default=1, validator=validators.int_range(1))
    calls: int = attrs.field(default=0, init=False)

    @property
    def name(self) -> str:
        return f"fake:nearest-color-{self.channels}"

    def logits(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """Model logits ``[B, H, W, C]`` in this backend's channel layout."""
        colors = CamVidPalette.camvid32().colors
        by_id = nearest_color_logits(batch, colors, self.temperature)
        if self.channels == 33:
            background = np.full((*by_id.shape[:-1], 1), self.background_logit, np.float32)
            return np.concatenate([background, by_id], axis=-1)
        order = [_VOID_ID, *(i for i in range(32) if i != _VOID_ID)]
        return by_id[..., order]

    def predict(self, batch: NDArray[np.float32]) -> Scores:
        check_batch(batch)
        self.calls += 1
        if self.latency:
            time.sleep(self.latency)
        return _softmax(self.logits(batch))

    def predict_labels(
        self, batch: NDArray[np.float32], layout: ChannelLayout
    ) -> tuple[LabelMap, ConfidenceMap]:
        """Labels and confidence ``[B, H, W]`` (the :class:`~camvidseg.backends.LabelBackend`
        capability): :func:`~camvidseg.postprocess.labels_and_confidence` of :meth:`predict`."""
        return labels_and_confidence(self.predict(batch), layout)

    def get_features(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """``[B, ceil(H/4), ceil(W/4), feature_dim]``: 4x4 mean-pooled RGB, fixed projection."""
        check_batch(batch)
        b, h, w, _ = batch.shape
        ph, pw = -h % 4, -w % 4
        padded = np.pad(batch, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
        pooled = padded.reshape(b, (h + ph) // 4, 4, (w + pw) // 4, 4, 3).mean(axis=(2, 4))
        projection = np.random.default_rng(0).standard_normal((3, self.feature_dim))
        features: NDArray[np.float32] = (pooled @ projection).astype(np.float32)
        return features


@attrs.define
class SpeckleNoiseBackend:
    """A fake model with known noise: another backend whose answers are speckled.

    In every image of a batch a deterministic ``fraction`` of the pixels (chosen from the
    image's content and ``seed``, so the same image always gets the same speckles and a flipped
    or rescaled view gets others) take the scores of a random other pixel of the same image:
    confident, plausible wrong classes scattered as isolated dots, which cleanup can repair.

    Args:
        inner: The clean backend (default: :class:`NearestColorBackend`).
        fraction: Share of pixels whose scores are replaced, in ``[0, 1]``.
        seed: Varies the speckle pattern.

    Example:
        >>> backend = SpeckleNoiseBackend(fraction=0.5)
        >>> batch = np.zeros((1, 4, 4, 3), np.float32); batch[0, :, 2:] = [128/255, 64/255, 128/255]
        >>> labels = backend.predict(batch).argmax(-1)[0]
        >>> int((labels != NearestColorBackend().predict(batch).argmax(-1)[0]).sum()) > 0
        True
    """

    inner: Backend = attrs.field(factory=NearestColorBackend)
    fraction: float = attrs.field(default=0.1, validator=validators.in_range(0, 1))
    seed: int = 0
    calls: int = attrs.field(default=0, init=False)

    @property
    def name(self) -> str:
        return f"{self.inner.name}+speckle{self.fraction:g}/{self.seed}"

    @property
    def input_multiple(self) -> int:
        return self.inner.input_multiple

    def predict(self, batch: NDArray[np.float32]) -> Scores:
        check_batch(batch)
        self.calls += 1
        clean: Scores = self.inner.predict(batch)
        noisy: Scores = clean.copy()
        _, height, width, _ = batch.shape
        for i in range(batch.shape[0]):
            digest = zlib.crc32(np.ascontiguousarray(batch[i]).tobytes())
            rng = np.random.default_rng([self.seed, digest])
            ys, xs = np.nonzero(rng.random((height, width)) < self.fraction)
            noisy[i, ys, xs] = clean[
                i, rng.integers(0, height, ys.size), rng.integers(0, width, xs.size)
            ]
        return noisy


@attrs.frozen
class FakeHandle:
    """A parsed ``fake:`` model handle (see :func:`parse_fake_handle`).

    Attributes:
        channels: 33 or 32 (the channel layout of :class:`NearestColorBackend`).
        latency: Seconds every model call sleeps (for tests of slow models and benchmarks).
        noisy: Wrap the model in :class:`SpeckleNoiseBackend` (known, repairable noise).
    """

    channels: int = 33
    latency: float = 0.0
    noisy: bool = False

    def backend(self, input_multiple: int = 1) -> Backend:
        """The fake model this handle names."""
        clean = NearestColorBackend(
            channels=self.channels, latency=self.latency, input_multiple=input_multiple
        )
        return SpeckleNoiseBackend(clean) if self.noisy else clean


def parse_fake_handle(handle: str) -> FakeHandle:
    """Parse ``fake:33``, ``fake:32`` or ``fake:noisy``, optionally with ``?latency=SECONDS``.

    ``fake:33`` (also plain ``fake:``) is :class:`NearestColorBackend` with a background channel,
    ``fake:32`` the same with Void in channel 0, ``fake:noisy`` the 33-channel one with
    :class:`SpeckleNoiseBackend` noise. The latency parameter is for tests of slow models
    (interruptions, progress) and benchmarks: every model call sleeps that long.

    Raises:
        ConfigError: for another name, an unknown parameter or a bad latency.

    Example:
        >>> parse_fake_handle("fake:32?latency=0.5")
        FakeHandle(channels=32, latency=0.5, noisy=False)
        >>> parse_fake_handle("fake:noisy").backend().name
        'fake:nearest-color-33+speckle0.1/0'
    """
    if not handle.startswith(FAKE_PREFIX):
        raise ConfigError(
            f"{handle!r} is not a fake model handle (those start with {FAKE_PREFIX!r})"
        )
    spec, _, query = handle.removeprefix(FAKE_PREFIX).partition("?")
    noisy = spec.startswith("noisy")
    if noisy:
        spec = spec.replace("noisy", "33", 1)
    channels = spec or "33"
    if channels not in ("32", "33"):
        raise ConfigError(f"unknown fake model {handle!r} (use fake:33, fake:32 or fake:noisy)")
    latency = 0.0
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key != "latency":
            raise ConfigError(f"unknown fake model parameter {key!r} in {handle!r} (use latency)")
        parsed: object
        try:
            parsed = float(value)
        except ValueError:
            parsed = value
        validators.ge(0).check(parsed, "fake model latency")
        latency = float(value)
    return FakeHandle(int(channels), latency, noisy)
