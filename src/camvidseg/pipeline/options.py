"""What a batch run writes and how: :class:`RunOptions` and the output kinds."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs

from camvidseg.exceptions import ConfigError

__all__ = ["DEFAULT_OUTPUTS", "OUTPUT_KINDS", "RunOptions"]

#: Every output kind, in the order outputs are written and listed.
OUTPUT_KINDS: tuple[str, ...] = ("labels", "color", "overlay", "panel", "confidence")
DEFAULT_OUTPUTS: tuple[str, ...] = ("labels", "color", "overlay")


def _check_outputs(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    kinds = tuple(value)
    unknown = [kind for kind in kinds if kind not in OUTPUT_KINDS]
    if unknown or not kinds:
        raise ConfigError(
            f"outputs must be a non-empty selection of {', '.join(OUTPUT_KINDS)} (got {kinds})"
        )
    if len(set(kinds)) != len(kinds):
        raise ConfigError(f"outputs are listed more than once: {kinds}")


def _in_range(low: float, high: float) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not low <= value <= high:
            raise ConfigError(f"{attribute.name} must be in [{low}, {high}] (got {value})")

    return check


def _one_of(*allowed: object) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in allowed:
            raise ConfigError(f"{attribute.name} must be one of {allowed} (got {value!r})")

    return check


def _sorted_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(kinds)
    return tuple(sorted(chosen, key=lambda k: OUTPUT_KINDS.index(k) if k in OUTPUT_KINDS else 99))


@attrs.frozen
class RunOptions:
    """What a batch run writes and how.

    Attributes:
        outputs: Output kinds to write, from :data:`OUTPUT_KINDS`.
        alpha: Mask weight of the overlay blend, in ``[0, 1]``.
        overlay_format: ``"jpg"`` or ``"png"``.
        jpeg_quality: JPEG quality of overlays, 1..100.
        confidence_bits: 16 (``I;16`` PNG, ``round(p * 65535)``) or 8 (``L`` PNG,
            ``round(p * 255)``).
        legend: Draw the legend on panels.
        overwrite: Redo inputs whose outputs already exist and are valid.
        max_input_pixels: Refuse images with more pixels before decoding them (``None``: only
            Pillow's decompression-bomb limit, ``PIL.Image.MAX_IMAGE_PIXELS``). Images the model
            cannot take whole are tiled by the :class:`~camvidseg.segmenter.Segmenter`.
        workers: Threads for decoding, and as many again for encoding.
        prefetch: Images decoded ahead of the model (default: batch size + 2 x workers).
        checkpoint_seconds: How often the manifest is rewritten during a run (it is always
            written at the end and on Ctrl-C), so a killed run still leaves a recent one.

    Example:
        >>> RunOptions(outputs=("labels", "panel")).outputs
        ('labels', 'panel')
        >>> RunOptions(outputs=("mask",))
        Traceback (most recent call last):
        ...
        camvidseg.exceptions.ConfigError: outputs must be a non-empty selection of labels, \
color, overlay, panel, confidence (got ('mask',))
    """

    outputs: tuple[str, ...] = attrs.field(
        default=DEFAULT_OUTPUTS, converter=_sorted_kinds, validator=_check_outputs
    )
    alpha: float = attrs.field(default=0.6, validator=_in_range(0.0, 1.0))
    overlay_format: str = attrs.field(default="jpg", validator=_one_of("jpg", "png"))
    jpeg_quality: int = attrs.field(default=92, validator=_in_range(1, 100))
    confidence_bits: int = attrs.field(default=16, validator=_one_of(8, 16))
    legend: bool = True
    overwrite: bool = False
    max_input_pixels: int | None = attrs.field(default=None, validator=_in_range(1, float("inf")))
    workers: int = attrs.field(default=4, validator=_in_range(1, 256))
    prefetch: int | None = attrs.field(default=None, validator=_in_range(1, 100_000))
    checkpoint_seconds: float = attrs.field(default=10.0, validator=_in_range(0.0, float("inf")))

    def extension(self, kind: str) -> str:
        """File extension (with the dot) of an output kind.

        Example:
            >>> RunOptions().extension("overlay"), RunOptions().extension("labels")
            ('.jpg', '.png')
        """
        return f".{self.overlay_format}" if kind == "overlay" else ".png"


# -- inputs ------------------------------------------------------------------------------------
