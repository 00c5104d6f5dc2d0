"""Image slices with label outlines (pure: SimpleITK images in, numpy arrays out).

A slice is taken from the scan re-oriented to LPS (``sitk.DICOMOrient``), so that index axes
run towards the patient's left (i), posterior (j) and superior (k) whatever the file's
direction.  2D pictures follow the radiological convention:

- axial: anterior at the top, the patient's left on the viewer's right (seen from the feet);
- coronal: superior at the top, the patient's left on the viewer's right (seen from the front);
- sagittal: superior at the top, anterior on the left (seen from the patient's left).

:func:`slice_rgb` returns the RGB picture (window/level grey with coloured label outlines) and
:func:`slice_corners` the physical (LPS mm) corners of that picture, so the same pixels can be
drawn as a textured plane in the 3D scene with the meshes.

Examples
--------
>>> import SimpleITK as sitk
>>> img = sitk.Image([8, 6, 4], sitk.sitkInt16)
>>> oriented = to_lps(img)
>>> slice_rgb(oriented, None, "axial", 2, window=(0, 100)).shape
(6, 8, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import SimpleITK as sitk

from cardioplan.errors import InputError
from cardioplan.labels import LABELS

__all__ = ["Orientation", "ORIENTATIONS", "to_lps", "slice_count", "default_window",
           "oriented_size", "display_coords", "slice_rgb",
           "label_outline", "slice_corners", "SliceSpec", "parse_slice_spec"]

Orientation = Literal["axial", "coronal", "sagittal"]
ORIENTATIONS: tuple[Orientation, ...] = ("axial", "coronal", "sagittal")
_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}
"""Index axis (i, j, k) normal to each orientation in the LPS-oriented image."""


def to_lps(image: sitk.Image) -> sitk.Image:
    """``image`` with its index axes permuted/flipped to run towards L, P and S."""
    if image.GetDimension() != 3:
        raise InputError(f"expected a 3D image, got {image.GetDimension()}D")
    return sitk.DICOMOrient(image, "LPS")


def oriented_size(size: Sequence[int], direction: Sequence[float]) -> tuple[int, int, int]:
    """Grid size along L, P and S of an image of ``size`` and ``direction`` once re-oriented
    by :func:`to_lps` (each index axis goes to the patient axis it is closest to).

    Examples
    --------
    >>> oriented_size((10, 20, 30), (0, 0, 1,  1, 0, 0,  0, 1, 0))  # i->P, j->S, k->L
    (30, 10, 20)
    """
    d = np.abs(np.asarray(direction, float).reshape(3, 3))
    out = [0, 0, 0]
    for index_axis in range(3):
        out[int(np.argmax(d[:, index_axis]))] = int(size[index_axis])
    return out[0], out[1], out[2]


def slice_count(image: sitk.Image, orientation: Orientation) -> int:
    """Number of slices of the LPS-oriented ``image`` in ``orientation``."""
    return int(image.GetSize()[_AXIS[_check(orientation)]])


def _check(orientation: str) -> Orientation:
    if orientation not in _AXIS:
        raise InputError(f"slice orientation must be one of {', '.join(ORIENTATIONS)}, got "
                         f"{orientation!r}")
    return orientation  # type: ignore[return-value]


def default_window(image: sitk.Image, modality: str | None = None) -> tuple[float, float]:
    """Grey window ``(low, high)``: cardiac CT contrast window, else the 1st-99.5th percentile.

    Examples
    --------
    >>> default_window(sitk.Image([2, 2, 2], sitk.sitkInt16), "CT")
    (-200.0, 600.0)
    """
    if (modality or "").upper() == "CT":
        return (-200.0, 600.0)
    arr = sitk.GetArrayViewFromImage(image)
    sample = arr[:: max(1, arr.shape[0] // 32)].ravel()
    lo, hi = np.percentile(sample, [1.0, 99.5]) if sample.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def _take(arr: np.ndarray, orientation: Orientation, index: int) -> np.ndarray:
    """2D display array (rows top->bottom) from a z,y,x array of an LPS-oriented image."""
    if orientation == "axial":
        return arr[index, :, :]            # rows: anterior->posterior, cols: right->left
    if orientation == "coronal":
        return arr[::-1, index, :]         # rows: superior->inferior, cols: right->left
    return arr[::-1, :, index]             # rows: superior->inferior, cols: anterior->posterior


def display_coords(image: sitk.Image, orientation: Orientation,
                   points: np.ndarray) -> np.ndarray:
    """Picture coordinates ``(column, row)`` (pixel centres at integers) of physical points
    (LPS mm, shape (n, 3)) in the pictures of :func:`slice_rgb` of the LPS-oriented ``image``.

    Examples
    --------
    >>> img = sitk.Image([8, 6, 4], sitk.sitkInt16)
    >>> display_coords(img, "coronal", np.array([[2.0, 1.0, 0.0]])).tolist()  # bottom row
    [[2.0, 3.0]]
    """
    orientation = _check(orientation)
    pts = np.asarray(points, float).reshape(-1, 3)
    d = np.asarray(image.GetDirection(), float).reshape(3, 3) * np.asarray(image.GetSpacing())
    ijk = np.linalg.solve(d, (pts - np.asarray(image.GetOrigin())).T).T
    nz = image.GetSize()[2]
    if orientation == "axial":
        return np.stack([ijk[:, 0], ijk[:, 1]], axis=1)
    if orientation == "coronal":
        return np.stack([ijk[:, 0], nz - 1 - ijk[:, 2]], axis=1)
    return np.stack([ijk[:, 1], nz - 1 - ijk[:, 2]], axis=1)


def label_outline(labels2d: np.ndarray) -> np.ndarray:
    """Label values on the outline of each region (0 elsewhere): pixels with a 4-neighbour
    of a different value.

    Examples
    --------
    >>> a = np.zeros((5, 5), np.uint8); a[1:4, 1:4] = 2
    >>> int((label_outline(a) == 2).sum())   # the ring of 8 around the centre pixel
    8
    """
    lab = np.asarray(labels2d)
    edge = np.zeros(lab.shape, bool)
    edge[:-1, :] |= lab[:-1, :] != lab[1:, :]
    edge[1:, :] |= lab[1:, :] != lab[:-1, :]
    edge[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    return np.where(edge & (lab != 0), lab, 0)


def _palette() -> np.ndarray:
    pal = np.zeros((256, 3), np.uint8)
    for lab in LABELS:
        pal[lab.value] = lab.color
    return pal


def slice_rgb(image: sitk.Image, labels: sitk.Image | None, orientation: Orientation,
              index: int, *, window: tuple[float, float],
              structures: Sequence[str] | None = None) -> np.ndarray:
    """RGB picture (uint8, rows x cols x 3) of one slice with label outlines drawn on it.

    Parameters
    ----------
    image : sitk.Image
        The LPS-oriented scan (:func:`to_lps`).
    labels : sitk.Image or None
        The LPS-oriented label map on the same grid, or None for no outlines.
    orientation : {"axial", "coronal", "sagittal"}
    index : int
        Slice index along the orientation's axis of the LPS-oriented image.
    window : (low, high)
        Intensities mapped to black and white.
    structures : list of str, optional
        Only outline these structures (default: all).
    """
    orientation = _check(orientation)
    n = slice_count(image, orientation)
    if not 0 <= index < n:
        raise InputError(f"{orientation} slice {index} is outside the image (0..{n - 1})")
    grey = _take(sitk.GetArrayViewFromImage(image), orientation, index).astype(np.float32)
    lo, hi = window
    grey = np.clip((grey - lo) / max(hi - lo, 1e-6), 0.0, 1.0) * 255.0
    rgb = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    if labels is not None:
        if labels.GetSize() != image.GetSize():
            raise InputError("the label map and the image have different grids; re-run "
                             "`cardioplan segment CASE`")
        lab = _take(sitk.GetArrayViewFromImage(labels), orientation, index)
        if structures is not None:
            keep = np.zeros(256, bool)
            keep[[LABELS.value_of(s) for s in structures if s in LABELS]] = True
            lab = np.where(keep[lab], lab, 0)
        outline = label_outline(lab)
        mask = outline != 0
        rgb[mask] = _palette()[outline[mask]]
    return rgb


def slice_corners(image: sitk.Image, orientation: Orientation,
                  index: int) -> np.ndarray:
    """Physical (LPS mm) positions of the picture's top-left, top-right and bottom-left pixel
    centres, as a (3, 3) array; the picture from :func:`slice_rgb` spans these corners."""
    orientation = _check(orientation)
    nx, ny, nz = image.GetSize()

    def phys(i: float, j: float, k: float) -> list[float]:
        return list(image.TransformContinuousIndexToPhysicalPoint((i, j, k)))

    if orientation == "axial":
        corners = [phys(0, 0, index), phys(nx - 1, 0, index), phys(0, ny - 1, index)]
    elif orientation == "coronal":
        corners = [phys(0, index, nz - 1), phys(nx - 1, index, nz - 1), phys(0, index, 0)]
    else:
        corners = [phys(index, 0, nz - 1), phys(index, ny - 1, nz - 1), phys(index, 0, 0)]
    return np.asarray(corners, float)


@dataclass(frozen=True)
class SliceSpec:
    """Which slice to show: an orientation and an index (None: the middle slice)."""

    orientation: Orientation
    index: int | None = None

    def resolve(self, image: sitk.Image) -> int:
        """The index to use for the LPS-oriented ``image``."""
        n = slice_count(image, self.orientation)
        if self.index is None:
            return n // 2
        if not 0 <= self.index < n:
            raise InputError(f"{self.orientation} slice {self.index} is outside the image "
                             f"(0..{n - 1})")
        return self.index


def parse_slice_spec(text: str) -> SliceSpec:
    """Parse ``axial``, ``coronal:40`` or ``sagittal:mid`` as given to ``--slice``.

    Examples
    --------
    >>> parse_slice_spec("coronal:40")
    SliceSpec(orientation='coronal', index=40)
    """
    name, _, idx = text.partition(":")
    orientation = _check(name.strip().lower())
    if idx.strip() in ("", "mid", "middle"):
        return SliceSpec(orientation)
    try:
        return SliceSpec(orientation, int(idx))
    except ValueError:
        raise InputError(f"--slice {text!r}: expected ORIENTATION[:INDEX], e.g. axial:40") \
            from None
