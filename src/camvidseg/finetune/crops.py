"""Random training crops of cached features: drawn per epoch (seeded), assembled into batches.

A crop is ``cells`` feature cells (``4 * cells`` pixels) of one view (as is, or mirrored) of a
training image, with its labels as output channels (255: ignored). With ``augment="scale"``,
half of the crops are rescaled views instead, whose features are computed on the fly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg.backends.head import FEATURE_STRIDE
from camvidseg.finetune.data import resize_image, resize_labels
from camvidseg.finetune.features import FeatureStore, Prepared, label_crop, read_crop
from camvidseg.finetune.settings import FinetuneConfig
from camvidseg.imageio import open_image
from camvidseg.labelset import LabelSet

__all__ = ["CropPlan", "CropSampler"]

#: Range of the scale of on-the-fly views (``augment="scale"``).
SCALES = (0.5, 1.5)


@attrs.frozen
class CropPlan:
    """Where one training crop comes from (drawn before the epoch, so it is reproducible).

    Attributes:
        index: The training image.
        flip: Mirror image.
        top: First feature cell row (a cached view), or pixel row of the source region.
        left: First feature cell column, or pixel column of the source region.
        scale: 0 for a crop of cached features; else an on-the-fly view's scale, whose source
            region of the model-size image is ``region = (height, width)`` pixels at
            ``(top, left)``.
    """

    index: int
    flip: bool
    top: int
    left: int
    scale: float = 0.0
    region: tuple[int, int] = (0, 0)


class CropSampler:
    """The training crops of a run.

    Crops are as large as ``config.crop`` allows but never larger than the smallest training
    image; each epoch shows every image ``per_image`` times (about its area over the crop's),
    in a seeded random order.
    """

    def __init__(
        self,
        train: Sequence[Prepared],
        label_set: LabelSet,
        config: FinetuneConfig,
        store: FeatureStore,
    ) -> None:
        self.train = train
        self.config = config
        self.store = store
        self.to_channel = label_set.channel_of_id()
        crop = config.crop - config.crop % FEATURE_STRIDE
        rows = min(crop, *(p.padded[0] for p in train)) // FEATURE_STRIDE
        cols = min(crop, *(p.padded[1] for p in train)) // FEATURE_STRIDE
        self.cells = (max(1, rows), max(1, cols))
        self.crop = (self.cells[0] * FEATURE_STRIDE, self.cells[1] * FEATURE_STRIDE)
        area = float(np.mean([p.size[0] * p.size[1] for p in train]))
        self.per_image = max(1, round(area / (self.crop[0] * self.crop[1])))

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train) * self.per_image / self.config.batch_size)

    def plan(self, epoch: int) -> list[CropPlan]:
        """The crops of epoch ``epoch`` (0-based): the same for the same seed and epoch."""
        rng = np.random.default_rng([self.config.seed, epoch])
        order = np.repeat(np.arange(len(self.train)), self.per_image)
        rng.shuffle(order)
        flips = self.config.augment != "none"
        plans = []
        for index in order.tolist():
            item = self.train[index]
            flip = bool(flips and rng.random() < 0.5)
            if self.config.augment == "scale" and rng.random() < 0.5:
                plans.append(self._scaled_plan(rng, index, flip, item.size))
                continue
            rows = item.padded[0] // FEATURE_STRIDE - self.cells[0]
            cols = item.padded[1] // FEATURE_STRIDE - self.cells[1]
            top, left = int(rng.integers(0, rows + 1)), int(rng.integers(0, cols + 1))
            plans.append(CropPlan(index, flip, top, left))
        return plans

    def _scaled_plan(
        self, rng: np.random.Generator, index: int, flip: bool, size: tuple[int, int]
    ) -> CropPlan:
        h, w = size
        smallest = max(self.crop[0] / h, self.crop[1] / w)  # the region must fit the image
        scale = float(rng.uniform(max(SCALES[0], smallest), max(SCALES[1], smallest)))
        height = min(h, max(1, round(self.crop[0] / scale)))
        width = min(w, max(1, round(self.crop[1] / scale)))
        top = int(rng.integers(0, h - height + 1))
        left = int(rng.integers(0, w - width + 1))
        return CropPlan(index, flip, top, left, scale, (height, width))

    def batches(
        self, plans: Sequence[CropPlan]
    ) -> Iterator[tuple[NDArray[np.float16], NDArray[np.uint8]]]:
        """``(features [B, h, w, F] float16, targets [B, 4h, 4w] uint8)`` batches of ``plans``."""
        size = self.config.batch_size
        for start in range(0, len(plans), size):
            features, targets = [], []
            for plan in plans[start : start + size]:
                item = self.train[plan.index]
                labels = np.load(item.labels)
                if plan.scale:
                    feats, crop_labels = self._scaled_view(item, plan, labels)
                else:
                    path = item.features[int(plan.flip)]
                    feats = read_crop(path, plan.top, plan.left, self.cells)
                    pixel = (plan.top * FEATURE_STRIDE, plan.left * FEATURE_STRIDE)
                    crop_labels = label_crop(labels, *pixel, self.crop, plan.flip)
                features.append(feats)
                targets.append(self.to_channel[crop_labels])
            yield np.stack(features), np.stack(targets)

    def _scaled_view(
        self, item: Prepared, plan: CropPlan, labels: NDArray[np.uint8]
    ) -> tuple[NDArray[np.float16], NDArray[np.uint8]]:
        image = resize_image(open_image(item.sample.image).array, item.size)
        rows = slice(plan.top, plan.top + plan.region[0])
        cols = slice(plan.left, plan.left + plan.region[1])
        region = resize_image(np.ascontiguousarray(image[rows, cols]), self.crop)
        region_labels = resize_labels(np.ascontiguousarray(labels[rows, cols]), self.crop)
        if plan.flip:
            region, region_labels = region[:, ::-1], region_labels[:, ::-1]
        return self.store.compute(np.ascontiguousarray(region)), region_labels
