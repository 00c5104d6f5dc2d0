"""Slice montages with label outlines for the report (pure: images in, RGB arrays out).

Each montage shows evenly spaced slices of one orientation across the labelled region (the
whole scan without labels), in the radiological convention of
:mod:`cardioplan.viewer.slices`, with orientation letters and the slice index on every tile.

Examples
--------
>>> import SimpleITK as sitk
>>> img = sitk.Image([40, 30, 20], sitk.sitkInt16)
>>> montage(img, None, "axial", count=4, window=(0, 1), tile=64).shape
(64, 256, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from cardioplan.viewer.slices import Orientation, slice_count, slice_rgb

__all__ = ["montage_indices", "montage", "ORIENTATION_LETTERS"]

ORIENTATION_LETTERS: dict[str, tuple[str, str, str, str]] = {
    # top, bottom, left, right of the picture
    "axial": ("A", "P", "R", "L"),
    "coronal": ("S", "I", "R", "L"),
    "sagittal": ("S", "I", "A", "P"),
}
_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}


def montage_indices(labels: sitk.Image | None, orientation: Orientation, n_slices: int,
                    *, count: int) -> list[int]:
    """``count`` evenly spaced slice indices inside the labelled extent (or the whole image).

    Examples
    --------
    >>> montage_indices(None, "axial", 100, count=4)
    [20, 40, 60, 80]
    """
    lo, hi = 0, n_slices - 1
    if labels is not None:
        arr = sitk.GetArrayViewFromImage(labels)
        numpy_axis = 2 - _AXIS[orientation]
        other = tuple(a for a in range(3) if a != numpy_axis)
        present = np.flatnonzero(arr.any(axis=other))
        if present.size:
            lo, hi = int(present[0]), int(present[-1])
    positions = np.linspace(lo, hi, count + 2)[1:-1]
    return sorted({int(round(p)) for p in positions})


def _upscale(rgb: np.ndarray, tile: int) -> np.ndarray:
    """Nearest-neighbour upscaling (keeps outlines crisp), then pad to ``tile`` x ``tile``."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = tile / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = Image.fromarray(rgb).resize(size, Image.NEAREST)
    canvas = Image.new("RGB", (tile, tile), (0, 0, 0))
    canvas.paste(img, ((tile - size[0]) // 2, (tile - size[1]) // 2))
    return np.asarray(canvas)


def _annotate(tile_rgb: np.ndarray, orientation: str, index: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.fromarray(tile_rgb)
    draw = ImageDraw.Draw(img)
    t, b, left, right = ORIENTATION_LETTERS[orientation]
    w, h = img.size
    yellow = (250, 220, 60)
    draw.text((w // 2 - 3, 2), t, fill=yellow)
    draw.text((w // 2 - 3, h - 13), b, fill=yellow)
    draw.text((3, h // 2 - 6), left, fill=yellow)
    draw.text((w - 10, h // 2 - 6), right, fill=yellow)
    draw.text((4, 2), f"{orientation[:3]} {index}", fill=(220, 220, 220))
    return np.asarray(img)


def montage(image: sitk.Image, labels: sitk.Image | None, orientation: Orientation, *,
            count: int = 6, window: tuple[float, float], tile: int = 220,
            structures: Sequence[str] | None = None) -> np.ndarray:
    """A row of ``count`` slices (each ``tile`` pixels square) with label outlines.

    Parameters
    ----------
    image, labels : sitk.Image
        LPS-oriented scan and label map (:func:`cardioplan.viewer.slices.to_lps`).
    orientation : {"axial", "coronal", "sagittal"}
    count : int
        Number of slices.
    window : (low, high)
        Grey window.
    tile : int
        Tile size in pixels.
    structures : list of str, optional
        Outline only these structures.
    """
    indices = montage_indices(labels, orientation, slice_count(image, orientation), count=count)
    tiles = [_annotate(_upscale(slice_rgb(image, labels, orientation, i, window=window,
                                          structures=structures), tile), orientation, i)
             for i in indices]
    return np.concatenate(tiles, axis=1)
