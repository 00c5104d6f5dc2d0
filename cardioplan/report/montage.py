"""Slice montages with label outlines for the report (images and surfaces in, RGB arrays out).

Each montage shows evenly spaced slices of one orientation across the labelled region (the
whole scan without labels), in the radiological convention of
:mod:`cardioplan.viewer.slices`, with orientation letters and the slice index on every tile.
Given the surfaces, each tile also shows where every mesh cuts the slice, as a line in a
lighter tint of the structure's colour over the label outline: where the two part, the mesh
does not follow the segmentation.

Examples
--------
>>> import SimpleITK as sitk
>>> img = sitk.Image([40, 30, 20], sitk.sitkInt16)
>>> montage(img, None, "axial", count=4, window=(0, 1), tile=64).shape
(64, 256, 3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from cardioplan.viewer.inset import slice_plane
from cardioplan.viewer.slices import (
    Orientation,
    SliceSpec,
    display_coords,
    slice_count,
    slice_rgb,
)

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
    [20, 40, 59, 79]
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


def _upscale(rgb: np.ndarray, tile: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Nearest-neighbour upscaling (keeps outlines crisp), then pad to ``tile`` x ``tile``.

    Returns the tile, the scale (tile pixels per picture pixel) and the padding offset."""
    from PIL import Image

    h, w = rgb.shape[:2]
    size = (max(1, round(w * tile / max(h, w))), max(1, round(h * tile / max(h, w))))
    img = Image.fromarray(rgb).resize(size, Image.NEAREST)
    canvas = Image.new("RGB", (tile, tile), (0, 0, 0))
    offset = ((tile - size[0]) // 2, (tile - size[1]) // 2)
    canvas.paste(img, offset)
    return np.asarray(canvas), size[0] / w, offset


def _segments(lines: Any) -> np.ndarray:
    """Point index pairs of every segment of a PolyData's (poly)lines."""
    cells = np.asarray(lines.lines)
    pairs, i = [], 0
    while i < len(cells):
        n = int(cells[i])
        ids = cells[i + 1:i + 1 + n]
        pairs += list(zip(ids[:-1], ids[1:], strict=True))
        i += n + 1
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def _draw_cut_lines(tile_rgb: np.ndarray, image: sitk.Image, orientation: Orientation,
                    index: int, meshes: Mapping[str, tuple[Any, Sequence[int]]],
                    scale: float, offset: tuple[int, int]) -> np.ndarray:
    from PIL import Image, ImageDraw

    origin, normal = slice_plane(image, SliceSpec(orientation, index))
    img = Image.fromarray(tile_rgb)
    draw = ImageDraw.Draw(img)
    for surface, color in meshes.values():
        lines = surface.slice(normal=normal, origin=origin)
        if lines.n_points == 0:
            continue
        xy = display_coords(image, orientation, np.asarray(lines.points))
        xy = (xy + 0.5) * scale + np.asarray(offset)
        tint = tuple(int(round(0.4 * c + 0.6 * 255)) for c in color)
        for a, b in _segments(lines):
            draw.line([tuple(xy[a]), tuple(xy[b])], fill=tint, width=1)
    return np.asarray(img)


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
            structures: Sequence[str] | None = None,
            meshes: Mapping[str, tuple[Any, Sequence[int]]] | None = None) -> np.ndarray:
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
    meshes : dict, optional
        Structure -> (surface in LPS mm, RGB 0..255): draw where each surface cuts the slice.
    """
    indices = montage_indices(labels, orientation, slice_count(image, orientation), count=count)
    tiles = []
    for i in indices:
        picture = slice_rgb(image, labels, orientation, i, window=window, structures=structures)
        tile_rgb, scale, offset = _upscale(picture, tile)
        if meshes:
            tile_rgb = _draw_cut_lines(tile_rgb, image, orientation, i, meshes, scale, offset)
        tiles.append(_annotate(tile_rgb, orientation, i))
    return np.concatenate(tiles, axis=1)
