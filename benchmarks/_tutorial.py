"""Tutorial-style postprocessing, as the seed notebook and the TF Hub tutorials write it.

Deliberately naive (it is the baseline the fast paths are measured against): drop the background
channel, ``np.argmax``, a float confidence, colour by looping over the classes with one boolean
mask per class and colour channel, blend in floating point, decode colours one class at a time.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def labels_and_confidence(
    scores: NDArray[np.float32],
) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    pred_mask = scores[..., 1:]  # remove the background class added by the model
    pred_mask = np.squeeze(pred_mask)
    labels = np.argmax(pred_mask, axis=-1).astype(np.uint8)
    confidence = np.max(pred_mask, axis=-1) / np.sum(pred_mask, axis=-1)
    return labels, confidence.astype(np.float32)


def colorize(labels: NDArray[np.uint8], colors: NDArray[np.uint8]) -> NDArray[np.uint8]:
    r_map = np.zeros_like(labels).astype(np.uint8)
    g_map = np.zeros_like(labels).astype(np.uint8)
    b_map = np.zeros_like(labels).astype(np.uint8)
    for class_id in range(len(colors)):
        index = labels == class_id
        r_map[index] = colors[class_id][0]
        g_map[index] = colors[class_id][1]
        b_map[index] = colors[class_id][2]
    return np.stack([r_map, g_map, b_map], axis=2)


def overlay(image: NDArray[np.uint8], mask: NDArray[np.uint8], alpha: float) -> NDArray[np.uint8]:
    blended = (1 - alpha) * image.astype(np.float64) + alpha * mask.astype(np.float64)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def decode(rgb: NDArray[np.uint8], colors: NDArray[np.uint8]) -> NDArray[np.uint8]:
    labels = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    for class_id in reversed(range(len(colors))):
        labels[np.all(rgb == colors[class_id], axis=-1)] = class_id
    return labels
