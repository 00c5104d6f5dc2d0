"""Label-map clean-up shared by the CT and MR pipelines.

:func:`clean_labels` keeps the relevant islands of each structure, fills enclosed holes,
smooths the label map without opening gaps or overlaps between neighbouring structures, drops
structures below a minimum size, and records (never silently) every structure that ended empty.
All steps work on NumPy arrays ``[z, y, x]`` with the voxel spacing in the same order.

Examples
--------
>>> import numpy as np
>>> lab = np.zeros((20, 20, 20), np.uint8); lab[5:15, 5:15, 5:15] = 1; lab[1, 1, 1] = 1
>>> out = clean_labels(lab, spacing=(1.0, 1.0, 1.0), warnings=[])
>>> int(out[1, 1, 1]), int(out[10, 10, 10])
(0, 1)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from cardioplan.arrays import bounding_box, label_counts
from cardioplan.labels import LABELS

__all__ = ["clean_labels", "keep_relevant_islands", "fill_holes", "smooth_labels",
           "structure_volumes"]

log = logging.getLogger(__name__)


def keep_relevant_islands(mask: np.ndarray, *, min_fraction: float = 0.1) -> np.ndarray:
    """Keep the largest connected component and any other at least ``min_fraction`` of it."""
    comps, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(comps.ravel())[1:]
    keep = np.flatnonzero(sizes >= min_fraction * sizes.max()) + 1
    return np.isin(comps, keep)


def fill_holes(labels: np.ndarray) -> np.ndarray:
    """Give background voxels enclosed by structures the label of their nearest structure."""
    fg = labels > 0
    if not fg.any():
        return labels
    box = bounding_box(fg)  # holes lie inside the bounding box
    holes = np.zeros(fg.shape, bool)
    holes[box] = ndimage.binary_fill_holes(fg[box]) & ~fg[box]
    if not holes.any():
        return labels
    sl = bounding_box(holes, 1)
    sub = labels[sl]
    _, nearest = ndimage.distance_transform_edt(sub == 0, return_distances=True,
                                                return_indices=True)
    filled = sub[tuple(nearest)]
    out = labels.copy()
    out[sl][holes[sl]] = filled[holes[sl]]
    return out


def smooth_labels(labels: np.ndarray, *, spacing: Sequence[float], sigma_mm: float = 1.0
                  ) -> np.ndarray:
    """Label-aware smoothing: Gaussian-smooth each structure's indicator, keep the argmax.

    Because every voxel takes exactly one label (background included), shared boundaries stay
    shared: no gaps or overlaps appear between touching structures.
    """
    values = [int(v) for v in np.unique(labels) if v != 0]
    if not values or sigma_mm <= 0:
        return labels
    sl = bounding_box(labels, int(np.ceil(3 * sigma_mm / min(spacing))) + 1)
    sub = labels[sl]
    sigma = [sigma_mm / s for s in spacing]
    best = ndimage.gaussian_filter((sub == 0).astype(np.float32), sigma)
    out_sub = np.zeros_like(sub)
    for v in values:
        score = ndimage.gaussian_filter((sub == v).astype(np.float32), sigma)
        better = score > best
        out_sub[better] = v
        best = np.maximum(best, score)
    out = labels.copy()
    out[sl] = out_sub
    return out


def structure_volumes(labels: np.ndarray, *, spacing: Sequence[float]) -> dict[str, dict]:
    """``{name: {"value", "voxels", "volume_ml"}}`` for every structure present."""
    counts = label_counts(labels)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    out = {}
    for lab in LABELS:
        n = int(counts[lab.value])
        if n:
            out[lab.name] = {"value": lab.value, "voxels": n,
                             "volume_ml": round(n * voxel_ml, 2)}
    return out


def clean_labels(labels: np.ndarray, *, spacing: Sequence[float], warnings: list[str],
                 expected: Sequence[str] = (), min_ml: float = 0.05, sigma_mm: float = 1.0,
                 island_fraction: float = 0.1) -> np.ndarray:
    """Clean a label map: islands, holes, label-aware smoothing, minimum size.

    Parameters
    ----------
    labels : numpy.ndarray
        uint8 label map ``[z, y, x]`` (values of :data:`cardioplan.labels.LABELS`).
    spacing : sequence of 3 float
        Voxel spacing in the array's axis order ``(z, y, x)``, mm.
    warnings : list of str
        Appended with a message for each structure removed or missing.
    expected : sequence of str
        Structures that should be present; each one missing after clean-up is warned about.
    min_ml : float
        Structures smaller than this (mL) are removed (with a warning).
    sigma_mm : float
        Gaussian sigma of the label-aware smoothing (0 to skip).
    island_fraction : float
        Islands smaller than this fraction of a structure's largest component are dropped.

    Returns
    -------
    numpy.ndarray
        The cleaned uint8 label map.
    """
    out = labels.copy()
    for v in (int(v) for v in np.unique(out) if v != 0):
        mask = out == v
        keep = keep_relevant_islands(mask, min_fraction=island_fraction)
        out[mask & ~keep] = 0
    out = fill_holes(out)
    out = smooth_labels(out, spacing=spacing, sigma_mm=sigma_mm)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    counts = label_counts(out)
    for v in np.flatnonzero(counts[1:]) + 1:
        if counts[v] * voxel_ml < min_ml:
            name = LABELS.by_value(int(v)).name
            msg = (f"{name}: only {counts[v] * voxel_ml:.3f} mL found (< {min_ml} mL); removed "
                   "-- place a seed inside it to segment it")
            warnings.append(msg)
            log.warning("%s", msg)
            out[out == v] = 0
    for name in expected:
        if not (out == LABELS.value_of(name)).any():
            msg = f"{name} was not found; place a seed inside it (--seed {name}=x,y,z)"
            if msg not in warnings:
                warnings.append(msg)
                log.warning("%s", msg)
    return out
