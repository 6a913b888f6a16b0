"""Text for the pictures: Pillow's bundled font at any pixel size, measured and drawn."""

from __future__ import annotations

import functools
import math

from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = [
    "MAX_FONT_SIZE",
    "MIN_FONT_SIZE",
    "RGB",
    "Box",
    "Font",
    "Text",
    "auto_font_size",
    "load_font",
    "text_size",
    "vertical_text",
]

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

#: Smallest font (pixels) anything is drawn with, however small the image.
MIN_FONT_SIZE = 12
#: Largest automatic font size, however large the image.
MAX_FONT_SIZE = 144
#: Panel width (or height, if larger) per pixel of font: text stays readable when the whole panel
#: is scaled to fit a screen.
_PANEL_PIXELS_PER_FONT_PIXEL = 90


@functools.lru_cache(maxsize=32)
def load_font(size: int) -> Font:
    """Pillow's bundled font at ``size`` pixels (the bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError):  # Pillow < 10.1 (no size), or without FreeType
        return ImageFont.load_default()


class Text:
    """Measures and draws one-line text at a pixel size, with or without FreeType.

    Without FreeType Pillow only has an ~11 px bitmap font, so text is drawn with it and enlarged
    by a whole factor: blocky, but as large as asked and readable.
    """

    def __init__(self, size: int) -> None:
        font = load_font(size)
        self.size = size
        self.font = font
        if isinstance(font, ImageFont.FreeTypeFont):
            ascent, descent = font.getmetrics()
            self.zoom = 1
            self.line_height = ascent + descent
        else:
            self.zoom = max(1, round(size / 11))
            self.line_height = int(font.getbbox("Ag|")[3]) * self.zoom

    def width(self, text: str, stroke: int = 0) -> int:
        if not text:
            return 0
        if isinstance(self.font, ImageFont.FreeTypeFont):
            left, _, right, _ = self.font.getbbox(text, anchor="la", stroke_width=stroke)
            return math.ceil(right - min(0, left))
        return int(self.font.getbbox(text)[2]) * self.zoom + 2 * stroke

    def draw(
        self,
        canvas: Image.Image,
        xy: tuple[int, int],
        text: str,
        fill: RGB,
        stroke: int = 0,
        stroke_fill: RGB = (0, 0, 0),
    ) -> None:
        """Draw ``text`` with its top-left corner (ascender line) at ``xy``."""
        if not text:
            return
        if isinstance(self.font, ImageFont.FreeTypeFont):
            ImageDraw.Draw(canvas).text(
                xy,
                text,
                fill=fill,
                font=self.font,
                anchor="la",
                stroke_width=stroke,
                stroke_fill=stroke_fill,
            )
            return
        box = self.font.getbbox(text)
        mask = Image.new("L", (int(box[2]) + 2, int(box[3]) + 2), 0)
        ImageDraw.Draw(mask).text((1, 1), text, fill=255, font=self.font)
        mask = mask.resize(
            (mask.width * self.zoom, mask.height * self.zoom), Image.Resampling.NEAREST
        )
        x, y = xy[0] - self.zoom + stroke, xy[1] - self.zoom
        if stroke:
            halo = mask.filter(ImageFilter.MaxFilter(2 * stroke + 1))
            canvas.paste(stroke_fill, (x, y, x + mask.width, y + mask.height), halo)
        canvas.paste(fill, (x, y, x + mask.width, y + mask.height), mask)


def auto_font_size(width: int, height: int) -> int:
    size = round(max(width, height) / _PANEL_PIXELS_PER_FONT_PIXEL)
    return int(min(MAX_FONT_SIZE, max(MIN_FONT_SIZE, size)))


def text_size(font: Font, text: str) -> tuple[int, int]:
    """``(width, height)`` of ``text`` drawn with ``font`` at the origin."""
    left, top, right, bottom = font.getbbox(text)
    return (math.ceil(right - left), math.ceil(bottom - min(top, 0)))


def vertical_text(
    canvas: Image.Image, xy: tuple[int, int], text: str, font: Font, fill: RGB
) -> None:
    """Draw ``text`` rotated 90 degrees (reading bottom to top), its bottom-left at ``xy``."""
    width, height = text_size(font, text)
    mask = Image.new("L", (width + 2, height + 2), 0)
    ImageDraw.Draw(mask).text((1, 1), text, fill=255, font=font)
    rotated = mask.rotate(90, expand=True)
    canvas.paste(fill, (xy[0], xy[1] - rotated.height), rotated)
