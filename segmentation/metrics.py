"""Segmentation accuracy in physical space: Dice, HD95 and ASSD per structure.

Definitions (the ones MedPy and most challenge papers use, so figures are comparable):

- **Dice** ``2|A∩B| / (|A| + |B|)`` over voxels.
- **Surface distances**: the surface of a mask is its boundary voxels (face-connected contour);
  the distance of a surface voxel of A to B is the Euclidean distance, in millimetres with the
  image spacing, from its centre to the nearest surface-voxel centre of B (exact, from SimpleITK's
  ``SignedMaurerDistanceMap``).
- **HD95**: the 95th percentile of the pooled distances A→B and B→A (MedPy ``hd95``).
- **ASSD**: the mean of the two average surface distances, ``(mean(A→B) + mean(B→A)) / 2``
  (MedPy ``assd``).

A structure missing from one side has Dice 0 and undefined (NaN) distances, with a note;
:func:`evaluate_labels` never drops it silently.

Examples
--------
>>> import SimpleITK as sitk
>>> a = sitk.Image([20, 20, 20], sitk.sitkUInt8); a[5:15, 5:15, 5:15] = 1
>>> b = sitk.Image([20, 20, 20], sitk.sitkUInt8); b[5:15, 5:15, 6:16] = 1
>>> round(dice(a, b), 2)
0.9
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import SimpleITK as sitk

from cardioplan.errors import InputError
from cardioplan.labels import COMPOSITES, LABELS

__all__ = ["dice", "hd95", "assd", "surface_distances", "structure_mask", "volume_ml",
           "evaluate_labels", "same_grid", "resample_like"]

log = logging.getLogger(__name__)

_GRID_TOL = 1e-4


def same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    """True when two images share size, spacing, origin and direction (within 1e-4)."""
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=_GRID_TOL)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=_GRID_TOL)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=_GRID_TOL))


def resample_like(labels: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """Resample a label image onto ``reference``'s grid with nearest neighbour (outside -> 0)."""
    return sitk.Resample(labels, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                         labels.GetPixelID())


def _binary(mask: sitk.Image) -> sitk.Image:
    if mask.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("masks must be single-component images")
    return sitk.Cast(sitk.NotEqual(mask, 0), sitk.sitkUInt8)


def _check_pair(pred: sitk.Image, ref: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
    if not same_grid(pred, ref):
        raise InputError("prediction and reference masks are on different grids; resample one "
                         "onto the other first (segmentation.metrics.resample_like) or use "
                         "evaluate_labels(), which does it")
    return _binary(pred), _binary(ref)


def _counts(pred: sitk.Image, ref: sitk.Image) -> tuple[int, int, int]:
    p = sitk.GetArrayViewFromImage(pred).astype(bool)
    r = sitk.GetArrayViewFromImage(ref).astype(bool)
    return int(p.sum()), int(r.sum()), int(np.count_nonzero(p & r))


def dice(pred: sitk.Image, ref: sitk.Image) -> float:
    """Dice overlap of two binary masks (non-zero = inside) on the same grid.

    Returns NaN when both masks are empty (undefined) and 0 when only one is.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> a = sitk.Image([10, 10, 10], sitk.sitkUInt8); a[2:6, 2:6, 2:6] = 1
    >>> dice(a, a)
    1.0
    """
    p, r = _check_pair(pred, ref)
    n_p, n_r, n_pr = _counts(p, r)
    if n_p + n_r == 0:
        return math.nan
    return 2.0 * n_pr / (n_p + n_r)


def _crop_to_union(p: sitk.Image, r: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
    """Crop both masks to the bounding box of their union plus one voxel (exact distances)."""
    arr = sitk.GetArrayViewFromImage(p).astype(bool) | sitk.GetArrayViewFromImage(r).astype(bool)
    nz = np.nonzero(arr)
    lo = [max(int(ax.min()) - 1, 0) for ax in nz]            # z, y, x
    hi = [min(int(ax.max()) + 2, n) for ax, n in zip(nz, arr.shape, strict=True)]
    index = [int(v) for v in reversed(lo)]
    size = [int(h - low) for low, h in zip(reversed(lo), reversed(hi), strict=True)]
    return sitk.RegionOfInterest(p, size, index), sitk.RegionOfInterest(r, size, index)


def _contour(mask: sitk.Image) -> np.ndarray:
    padded = sitk.ConstantPad(mask, [1] * mask.GetDimension(), [1] * mask.GetDimension(), 0)
    contour = sitk.BinaryContour(padded, fullyConnected=False, backgroundValue=0,
                                 foregroundValue=1)
    arr = sitk.GetArrayFromImage(contour)
    sl = tuple(slice(1, -1) for _ in range(arr.ndim))
    return arr[sl].astype(bool)


def _distance_to_surface(mask: sitk.Image) -> np.ndarray:
    """|distance| (mm) of every voxel centre to the nearest surface-voxel centre of ``mask``."""
    surface = sitk.GetImageFromArray(_contour(mask).astype(np.uint8))
    surface.CopyInformation(mask)
    dist = sitk.SignedMaurerDistanceMap(surface, insideIsPositive=False, squaredDistance=False,
                                        useImageSpacing=True)
    # The surface voxels themselves are the "object": they are at distance 0, not negative.
    return np.maximum(sitk.GetArrayViewFromImage(dist), 0.0)


def surface_distances(pred: sitk.Image, ref: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each surface voxel of ``pred`` to ``ref`` and back.

    Returns ``(pred_to_ref, ref_to_pred)``; both empty when either mask is empty.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> a = sitk.Image([10, 10, 10], sitk.sitkUInt8); a[2:6, 2:6, 2:6] = 1
    >>> float(surface_distances(a, a)[0].max())
    0.0
    """
    p, r = _check_pair(pred, ref)
    n_p, n_r, _ = _counts(p, r)
    if n_p == 0 or n_r == 0:
        return np.empty(0), np.empty(0)
    p, r = _crop_to_union(p, r)
    d_to_r = _distance_to_surface(r)
    d_to_p = _distance_to_surface(p)
    return d_to_r[_contour(p)].astype(float), d_to_p[_contour(r)].astype(float)


def hd95(pred: sitk.Image, ref: sitk.Image) -> float:
    """95th-percentile symmetric Hausdorff distance (mm); NaN when either mask is empty.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> a = sitk.Image([30, 30, 30], sitk.sitkUInt8); a[5:20, 5:20, 5:20] = 1
    >>> b = sitk.Image([30, 30, 30], sitk.sitkUInt8); b[5:20, 5:20, 7:22] = 1
    >>> hd95(a, b)
    2.0
    """
    a_b, b_a = surface_distances(pred, ref)
    if a_b.size == 0:
        return math.nan
    return float(np.percentile(np.concatenate([a_b, b_a]), 95))


def assd(pred: sitk.Image, ref: sitk.Image) -> float:
    """Average symmetric surface distance (mm); NaN when either mask is empty.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> a = sitk.Image([10, 10, 10], sitk.sitkUInt8); a[2:6, 2:6, 2:6] = 1
    >>> assd(a, a)
    0.0
    """
    a_b, b_a = surface_distances(pred, ref)
    if a_b.size == 0:
        return math.nan
    return float((a_b.mean() + b_a.mean()) / 2.0)


def _values_for(name: str, value_map: Mapping[int, str]) -> list[int]:
    members = COMPOSITES.get(name, (name,))
    return [v for v, n in value_map.items() if n in members]


def structure_mask(labels: sitk.Image, name: str,
                   value_map: Mapping[int, str] | None = None) -> sitk.Image:
    """Binary uint8 mask of structure ``name`` in a label map.

    ``value_map`` maps the label map's values to structure names (default: the project's
    :data:`~cardioplan.labels.LABELS`).  Composites (``heart``, ``blood_pool``) are the union of
    their members (:data:`~cardioplan.labels.COMPOSITES`).

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> lab = sitk.Image([4, 4, 4], sitk.sitkUInt8); lab[1, 1, 1] = 1; lab[2, 2, 2] = 5
    >>> heart = structure_mask(lab, "heart")
    >>> int(sitk.GetArrayFromImage(heart).sum())
    2
    """
    vmap = value_map if value_map is not None else {lab.value: lab.name for lab in LABELS}
    arr = sitk.GetArrayViewFromImage(labels)
    out = sitk.GetImageFromArray(np.isin(arr, _values_for(name, vmap)).astype(np.uint8))
    out.CopyInformation(labels)
    return out


def volume_ml(mask: sitk.Image) -> float:
    """Volume of the non-zero voxels of ``mask`` in millilitres."""
    n = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    return n * float(np.prod(mask.GetSpacing())) / 1000.0


def _default_structures(ref: sitk.Image, ref_map: Mapping[int, str]) -> list[str]:
    present = {int(v) for v in np.unique(sitk.GetArrayViewFromImage(ref))} - {0}
    names = {ref_map[v] for v in present if v in ref_map}
    return [n for n in LABELS.names if n in names]


def _check_maps(ref_map: Mapping[int, str], structures: Iterable[str]) -> None:
    for v, n in ref_map.items():
        if n not in LABELS:
            raise InputError(f"reference map {v}={n!r}: unknown structure; use one of: "
                             f"{', '.join(LABELS.names)}")
    for n in structures:
        if n not in LABELS:
            raise InputError(f"unknown structure {n!r}; use one of: {', '.join(LABELS.names)}")


def _score(p: sitk.Image, r: sitk.Image) -> dict[str, Any]:
    n_p, n_r, n_pr = _counts(p, r)
    row: dict[str, Any] = {"dice": math.nan, "hd95_mm": math.nan, "assd_mm": math.nan}
    if n_p == 0 and n_r == 0:
        row["note"] = "absent from both prediction and reference"
        return row
    row["dice"] = 2.0 * n_pr / (n_p + n_r)
    if n_p == 0:
        row["note"] = "missing from the prediction"
    elif n_r == 0:
        row["note"] = "absent from the reference"
    else:
        a_b, b_a = surface_distances(p, r)
        row["hd95_mm"] = float(np.percentile(np.concatenate([a_b, b_a]), 95))
        row["assd_mm"] = float((a_b.mean() + b_a.mean()) / 2.0)
    return row


def evaluate_labels(pred: sitk.Image, ref: sitk.Image, *,
                    ref_map: Mapping[int, str] | None = None,
                    structures: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Dice, HD95, ASSD and volumes per structure of a predicted label map against a reference.

    Parameters
    ----------
    pred : sitk.Image
        Predicted label map with the project's label values (:data:`cardioplan.labels.LABELS`).
    ref : sitk.Image
        Reference label map.  When its grid differs from ``pred``'s it is resampled onto
        ``pred``'s grid with nearest neighbour (physical space; regions outside become 0).
    ref_map : dict of int to str, optional
        Reference value -> structure name, e.g. ``{1: "right_ventricle", 2: "myocardium",
        3: "left_ventricle"}`` for ACDC.  Default: the reference uses the project's values.
    structures : iterable of str, optional
        Structures to score (composites ``heart`` and ``blood_pool`` allowed).  Default: every
        structure present in the reference.

    Returns
    -------
    dict
        ``{name: {"dice", "hd95_mm", "assd_mm", "pred_volume_ml", "ref_volume_ml"[, "note"]}}``.
        Distances are NaN (``null`` in JSON) when either side is empty; ``note`` says which.

    Raises
    ------
    InputError
        Unknown structure names, non-3D/2D mismatched images, or prediction and reference that do
        not overlap in physical space.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> lab = sitk.Image([10, 10, 10], sitk.sitkUInt8); lab[2:6, 2:6, 2:6] = 1
    >>> evaluate_labels(lab, lab)["left_ventricle"]["dice"]
    1.0
    """
    vmap: dict[int, str] = (dict(ref_map) if ref_map is not None
                            else {lab.value: lab.name for lab in LABELS})
    names = list(structures) if structures is not None else _default_structures(ref, vmap)
    _check_maps(vmap, names)
    if pred.GetDimension() != ref.GetDimension():
        raise InputError(f"prediction is {pred.GetDimension()}-D but the reference is "
                         f"{ref.GetDimension()}-D; give label maps of the same dimension")
    ref_on_pred = ref
    if not same_grid(pred, ref):
        log.info("reference grid differs from the prediction's; resampling it (nearest "
                 "neighbour) onto the prediction grid")
        ref_on_pred = resample_like(ref, pred)
        if (np.any(sitk.GetArrayViewFromImage(ref)) and
                not np.any(sitk.GetArrayViewFromImage(ref_on_pred))):
            raise InputError("the reference labels fall outside the prediction's image in "
                             "physical space; check that both files come from the same scan "
                             "(origin, spacing and direction)")
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        p = structure_mask(pred, name)
        r = structure_mask(ref_on_pred, name, vmap)
        row = _score(p, r)
        row["pred_volume_ml"] = volume_ml(p)
        row["ref_volume_ml"] = volume_ml(structure_mask(ref, name, vmap))
        results[name] = row
    return results
