"""Export backbone + head as one SavedModel with the hub model's ``predict`` signature."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from camvidseg.backends.base import FeatureBackend
from camvidseg.backends.head import FEATURE_STRIDE, Head, HeadBackend, head_module, read_head
from camvidseg.exceptions import ConfigError
from camvidseg.labelset import METADATA_PATH, ModelMetadata, write_model_metadata

__all__ = ["export_savedmodel", "require_savedmodel"]


def require_savedmodel(backbone: FeatureBackend) -> Any:
    """The loaded SavedModel object behind ``backbone`` (a head backend's backbone included).

    Raises:
        ConfigError: the backbone was not loaded from a SavedModel (e.g. a ``fake:`` model),
            so there is nothing to export.
    """
    if isinstance(backbone, HeadBackend):
        backbone = backbone.backbone
    model = getattr(backbone, "model", None)
    if model is None or not callable(getattr(model, "get_features", None)):
        raise ConfigError(
            f"exporting needs a SavedModel backbone (a tfhub.dev URL, Kaggle handle or local "
            f"folder); {backbone.name} is not one"
        )
    return model


def export_savedmodel(
    head: str | os.PathLike[str] | Head,
    backbone: FeatureBackend,
    output: str | os.PathLike[str],
) -> Path:
    """Write one SavedModel computing the backbone's features and the head's probabilities.

    The model has the hub model's functions: ``predict(images)`` (float32 ``[B, H, W, 3]`` in
    ``[0, 1]`` -> ``[B, H, W, K]`` probabilities, one channel per trained class of the head's
    label set, no background channel) and ``get_features(images)`` (the backbone's). Inputs of
    any size work: they are padded inside the model (edge pixels repeated) to a multiple of the
    feature stride, as the Segmenter pads for a head, and the outputs are cropped back, so the
    exported model returns exactly what ``Segmenter.from_hub(base, head=HEAD_DIR)`` computes.
    ``assets/camvidseg.json`` records the label set (see :mod:`camvidseg.labelset`), so the
    model loads anywhere like the stock one and labels follow its classes.

    Args:
        head: A head folder or a :class:`~camvidseg.backends.head.Head`.
        backbone: The backbone it was trained on, loaded from a SavedModel (a
            :class:`~camvidseg.backends.tfhub.TFHubBackend`, or a head backend on one).
        output: Folder to create (it must not exist, or be empty). The SavedModel is written
            beside it under a temporary name and moved into place when complete.

    Returns:
        ``output``.

    Raises:
        ConfigError: the backbone is not a SavedModel, the head belongs to another backbone,
            or ``output`` is not empty.
    """
    from camvidseg.backends.tfhub import import_tensorflow

    import_tensorflow()
    import tensorflow as tf

    loaded = head if isinstance(head, Head) else read_head(head)
    if isinstance(backbone, HeadBackend):
        backbone = backbone.backbone
    model = require_savedmodel(backbone)
    HeadBackend(backbone, loaded)  # refuses a head of another backbone
    out = Path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"export folder {out} exists and is not empty; choose a new folder")
    head_mod = head_module(loaded.weights)
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)

    def edge_pad(images: Any) -> Any:
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        pad_h, pad_w = -height % FEATURE_STRIDE, -width % FEATURE_STRIDE
        images = tf.concat([images, tf.repeat(images[:, -1:], pad_h, axis=1)], axis=1)
        return tf.concat([images, tf.repeat(images[:, :, -1:], pad_w, axis=2)], axis=2)

    class FineTunedHRNet(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(name="camvidseg_finetuned")
            self.backbone = model
            self.head = head_mod

        @tf.function(input_signature=[spec], autograph=False)  # type: ignore[untyped-decorator]
        def predict(self, images: Any) -> Any:
            height, width = tf.shape(images)[1], tf.shape(images)[2]
            padded = edge_pad(images)
            features = self.backbone.get_features(padded)
            probs = self.head.probabilities(features, tf.shape(padded)[1], tf.shape(padded)[2])
            return probs[:, :height, :width]

        @tf.function(input_signature=[spec], autograph=False)  # type: ignore[untyped-decorator]
        def get_features(self, images: Any) -> Any:
            return self.backbone.get_features(images)

    metadata = ModelMetadata(
        loaded.label_set,
        loaded.info.base_model,
        loaded.info.backbone_fingerprint,
        loaded.label_set.channels,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{os.getpid()}.export"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        tf.saved_model.save(FineTunedHRNet(), str(staging))
        write_model_metadata(staging, metadata)
        with contextlib.suppress(FileNotFoundError):
            out.rmdir()  # empty (checked above)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    assert (out / METADATA_PATH).is_file()
    return out
