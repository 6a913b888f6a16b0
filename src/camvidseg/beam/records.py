"""The values that flow between the Beam transforms (plain, picklable, no Beam import).

* ``(uri, image)``: a keyed image, what :class:`~camvidseg.beam.ReadImages` emits and
  :class:`~camvidseg.beam.Segment` takes (``image`` a :class:`~camvidseg.imageio.LoadedImage` or
  an ``(H, W, 3)`` uint8 array).
* :class:`Segmented`: one image and its :class:`~camvidseg.Segmentation`.
* :class:`DeadLetter`: one input that failed, the stage where, and why. Every transform sends
  its failures to a second output instead of failing the pipeline, one record per input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from camvidseg._types import ImageArray
from camvidseg.imageio import LoadedImage
from camvidseg.segmenter import Segmentation

__all__ = [
    "DEAD_LETTER",
    "STAGES",
    "DeadLetter",
    "KeyedImage",
    "Segmented",
    "image_array",
]

#: Tag of the dead-letter output of every transform here.
DEAD_LETTER = "dead_letter"

#: Where an input can fail, in pipeline order: ``input`` (its output name is unsafe or taken by
#: another input), ``read`` (the file could not be fetched), ``decode`` (not an image, damaged,
#: truncated, too large), ``validate`` (an element that is not an ``HxWx3`` uint8 image),
#: ``inference`` (the model failed on it), ``write`` (an output could not be written).
STAGES: tuple[str, ...] = ("input", "read", "decode", "validate", "inference", "write")

#: An element of :class:`~camvidseg.beam.Segment`: ``(uri, image)``.
KeyedImage = tuple[str, LoadedImage | ImageArray]


@attrs.frozen
class DeadLetter:
    """One input that failed.

    Attributes:
        uri: The input as matched (a local path, ``gs://...``, ``s3://...``).
        stage: One of :data:`STAGES`.
        error: One line naming the input and what went wrong.

    Example:
        >>> record = DeadLetter("in/a.png", "decode", "in/a.png: not an image Pillow can read")
        >>> DeadLetter.from_json(record.to_json()) == record
        True
    """

    uri: str
    stage: str = attrs.field(validator=attrs.validators.in_(STAGES))
    error: str

    def to_json(self) -> dict[str, str]:
        """``{"uri", "stage", "error"}``, one line of ``errors.jsonl``."""
        return {"uri": self.uri, "stage": self.stage, "error": self.error}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeadLetter:
        """The record :meth:`to_json` gave."""
        return cls(str(data["uri"]), str(data["stage"]), str(data["error"]))


@attrs.frozen(eq=False)
class Segmented:
    """An image and its segmentation, as :class:`~camvidseg.beam.Segment` emits them.

    Attributes:
        uri: The input.
        image: The decoded input (``mode``, ``frames`` ... say what was done to it).
        segmentation: Labels, confidence and palette; ``segmentation.image`` is the input array.
        model_seconds: This image's share of its batch's model call.
    """

    uri: str
    image: LoadedImage
    segmentation: Segmentation
    model_seconds: float = 0.0


def image_array(image: LoadedImage | ImageArray) -> ImageArray:
    """The ``(H, W, 3)`` uint8 array of an element's image."""
    return image.array if isinstance(image, LoadedImage) else image
