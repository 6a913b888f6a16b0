"""Fine-tuning: train a new head on the frozen HRNet backbone (``camvidseg finetune``).

The backbone stays frozen: its ``get_features`` is called once per image (and mirror image), the
features are cached as float16 on disk, and a small head (a 3x3 conv stack, or a 1x1 linear
probe) learns to map them to the classes of a :class:`~camvidseg.labelset.LabelSet` (CamVid-32,
CamVid-11 or a user's class list). The head folder it writes is used with
``Segmenter.from_hub(handle, head=HEAD_DIR)`` or ``camvidseg segment --head HEAD_DIR``, and
:func:`export_savedmodel` bakes backbone and head into one SavedModel.

TensorFlow is imported only inside the functions that train or export.
"""

from __future__ import annotations

from camvidseg.finetune.data import CLASS_WEIGHT_MODES, DataError, DataOptions, Sample
from camvidseg.finetune.export import export_savedmodel, require_savedmodel
from camvidseg.finetune.run import evaluate_head, finetune
from camvidseg.finetune.settings import (
    AUGMENTATIONS,
    EpochRecord,
    FinetuneConfig,
    FinetuneInterrupted,
    FinetuneResult,
)

__all__ = [
    "AUGMENTATIONS",
    "CLASS_WEIGHT_MODES",
    "DataError",
    "DataOptions",
    "EpochRecord",
    "FinetuneConfig",
    "FinetuneInterrupted",
    "FinetuneResult",
    "Sample",
    "evaluate_head",
    "export_savedmodel",
    "finetune",
    "require_savedmodel",
]
