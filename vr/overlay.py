"""Pixels for text labels and the menu panel (Pillow), uploaded as textures by the renderer.

Pure functions of their inputs: the same buttons and hover give the same image, so the renderer
re-uploads the menu only when :func:`menu_key` changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vr.interaction import MenuButton

__all__ = ["text_image", "menu_image", "menu_key", "MENU_PIXELS"]

MENU_PIXELS = (480, 600)
"""Menu texture size (width, height); the panel is 0.24 x 0.30 m, so 2 px per mm."""


@lru_cache(maxsize=32)
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def text_image(text: str, *, color: tuple[int, int, int] = (255, 255, 255),
               size: int = 40) -> NDArray[np.uint8]:
    """RGBA pixels (top row first) of ``text`` on a dark translucent rounded box.

    Examples
    --------
    >>> img = text_image("12.3 mm")
    >>> img.shape[2], img.dtype.name
    (4, 'uint8')
    """
    from PIL import Image, ImageDraw

    font = _font(size)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    x0, y0, x1, y1 = probe.textbbox((0, 0), text or " ", font=font)
    pad = size // 4
    w, h = (x1 - x0) + 2 * pad, (y1 - y0) + 2 * pad
    img = Image.new("RGBA", (max(w, 1), max(h, 1)), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, w - 1, h - 1), radius=pad, fill=(15, 18, 24, 200))
    d.text((pad - x0, pad - y0), text, font=font, fill=(*color, 255))
    return np.asarray(img, dtype=np.uint8)


def menu_key(buttons: Sequence[MenuButton], hover: str | None, status: str) -> tuple:
    """A hashable summary of what the menu shows (changes exactly when the pixels change)."""
    return (tuple((b.action, b.label, b.active, b.color) for b in buttons), hover, status)


def menu_image(buttons: Sequence[MenuButton], *, hover: str | None = None,
               status: str = "", title: str = "CardioPlan") -> NDArray[np.uint8]:
    """RGBA pixels (top row first) of the menu panel.

    Active buttons (current tool, visible structures) are filled, the hovered one is outlined,
    structure toggles carry a swatch of the structure's colour.
    """
    from PIL import Image, ImageDraw

    w, h = MENU_PIXELS
    img = Image.new("RGBA", (w, h), (22, 26, 34, 235))
    d = ImageDraw.Draw(img)
    title_font, font = _font(26), _font(20)
    d.text((12, 8), title, font=title_font, fill=(235, 235, 235, 255))
    if status:
        d.text((w // 2, 14), status[:40], font=_font(16), fill=(170, 200, 255, 255))
    for b in buttons:
        u0, v0, u1, v1 = b.rect
        box = (int(u0 * w), int(v0 * h), int(u1 * w) - 1, int(v1 * h) - 1)
        if b.action == "noop":
            fill, text = (22, 26, 34, 0), (200, 200, 200, 255)
        elif b.active:
            fill, text = (60, 110, 190, 255), (255, 255, 255, 255)
        else:
            fill, text = (48, 54, 66, 255), (220, 220, 220, 255)
        outline = (255, 210, 80, 255) if b.action == hover else None
        d.rounded_rectangle(box, radius=8, fill=fill, outline=outline, width=3)
        x = box[0] + 10
        if b.color is not None:
            sw = (box[3] - box[1]) // 2
            y = (box[1] + box[3]) // 2 - sw // 2
            d.rectangle((x, y, x + sw, y + sw), fill=(*b.color, 255))
            x += sw + 8
        size, label_font = 20, font
        tb = d.textbbox((0, 0), b.label, font=label_font)
        while tb[2] > box[2] - x - 4 and size > 11:  # shrink long labels to fit the button
            size -= 1
            label_font = _font(size)
            tb = d.textbbox((0, 0), b.label, font=label_font)
        y = (box[1] + box[3]) // 2 - (tb[3] + tb[1]) // 2
        d.text((x, y), b.label, font=label_font, fill=text)
    return np.asarray(img, dtype=np.uint8)
