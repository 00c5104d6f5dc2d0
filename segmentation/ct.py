"""Contrast CT / CTA heart segmentation with SimpleITK (no learned weights).

Each step runs at the resolution it needs (details and measured figures: docs/segmentation.md):

1. **Working grid** -- ``BinShrink`` to about :data:`WORK_SPACING_MM` (thick slices: resampled
   to isotropic voxels), lightly smoothed.
2. **Contrast level and heart localisation** -- a first pass at 200 HU finds the region holding
   the largest inscribed sphere; its deep interior gives the blood HU ``B`` and the threshold
   (40 % from soft tissue to ``B``).  No sphere of :data:`MIN_HEART_RADIUS_MM`, or no lung
   around it -> ``SegmentationError("no heart found")``.  Work continues in that region's box.
3. **Bone** -- thin cortical bone of large structures and what it encloses is removed; bright
   regions thicker than any cortex are undiluted contrast (SVC / right-atrial inflow), kept.
4. **Blood pool** -- threshold minus bone, opened; the component with the largest sphere.
5. **Chambers** -- from seeds, or distance-map peaks merged across wide necks, tubes rejected,
   assigned to LV/RV/LA/RA by position (situs solitus).
6. **Vessels** -- the descending aorta tracked from below beside the spine; vessel ends (far
   from the chambers along the blood pool) as markers.
7. **Marker watershed** on the smoothed, inverted distance map: borders on the narrowest
   sections (valves, septal defects, vessel origins); vessel ends named by the chamber they
   leave (ends below a ventricle are its recesses; ends full of undiluted contrast are the SVC).
   Veins that flare into the atrium are handed back by local thickness; borders between
   chambers move to the middle of the orifice channel they cross; the pulmonary border moves
   back to the valve.
8. **Boundaries** -- each structure's border at the midpoint of its own blood HU and the wall's
   (the fat around them for the thin-walled caval veins), never cutting a structure apart at
   a dim neck; narrow branches beside the tracked descending aorta unlabelled; mural thrombus
   (an ellipse fitted around the lumen's channels, and the tissue between channels) added to
   the aorta; the arch's branches (dead-end side tubes) cut at their origin.
9. **Myocardium** -- soft tissue from half-way to fat up to the threshold, within a thick LV wall,
   a 4.5 mm RV wall or a 3 mm atrial wall; enclosed gaps closed.
10. **Post-processing** (:mod:`segmentation.postprocess`) and exact block upsampling to the
    scan's grid.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from cardioplan.arrays import bounding_box, grow_box
from cardioplan.errors import InputError, SegmentationError
from cardioplan.labels import COMPOSITES, LABELS
from cardioplan.seeds import Seed
from segmentation.postprocess import clean_labels

__all__ = ["segment_ct", "CTResult", "WORK_SPACING_MM", "CHAMBERS", "VESSELS"]

log = logging.getLogger(__name__)

WORK_SPACING_MM = 1.5
"""Target voxel size of the working grid (mm)."""
CHAMBERS = ("left_ventricle", "right_ventricle", "left_atrium", "right_atrium")
VESSELS = ("aorta", "pulmonary_artery", "superior_vena_cava", "inferior_vena_cava")
CONTRAST_MIN_RADIUS_MM = 3.0
"""Bright regions holding a sphere of this radius are contrast, not cortical bone (<= 4 mm
thick in the chest)."""
MIN_HEART_RADIUS_MM = 5.0
"""A heart's largest blood-filled chamber holds at least a sphere of this radius (newborn)."""
SADDLE_SIGMA_MM = 2.0
"""Gaussian sigma applied to the distance map before the marker watershed."""
FAT_HU = -100.0
"""Typical epicardial fat: the lowest HU taken for the tissue around the heart or a vein."""
THIN_WALL_MM = 4.5
"""Largest wall grown around the right ventricle (its free wall is 3-5 mm)."""
ATRIAL_WALL_MM = 3.0
"""Largest wall grown around the atria (their walls are 2-3 mm)."""
WALL_HU = 20.0
"""Vessel wall and mural thrombus are above this HU; fat and lung below."""
THROMBUS_MIN_MM = 4.0
"""Thinnest ring added: a normal aortic wall is thinner, mural thrombus or wall thickening not."""
WALL_MAX_MM = 25.0
"""Thickest wall / mural thrombus searched around an aortic lumen."""
WALL_RAYS = 36
"""Rays cast around each aortic section to find its outer wall."""
WALL_CLOSED_FRACTION = 0.75
"""Fraction of rays that must stop at fat or lung for an outer wall to be fitted."""
WALL_FIT_MM = 2.5
"""Largest median misfit (mm) of the outer-wall ellipse."""
WALL_OUTLIER = 2.0
"""Stops farther from the fitted outer wall than this many times the fit's median misfit are
dropped and the ellipse refitted (chosen on the chest CTA, see docs/segmentation.md)."""
WALL_BRIDGE_RADII = 0.5
"""Slices between two fitted outer walls of one sac get a blended wall when the two lie no
farther apart than this many of their radii (chosen on the chest CTA, see
docs/segmentation.md)."""
WALL_MAX_ELONGATION = 2.0
"""Longest/shortest axis of an outer-wall ellipse: the axial cut of a vessel up to 60 degrees
from the body axis (a descending aorta running obliquely)."""
FLARE_WIDENING = 2.0
"""A vessel that opens into a chamber without a narrowing ends where the chamber's thin part
(see :func:`_vessel_junctions`) is this many times the vessel's own cross-section."""
VEIN_OPENING = 0.25
"""The left atrium is opened with a ball of this fraction of its inscribed radius to find the
pulmonary veins' stems (see :func:`_trim_atrial_veins`)."""
NECK_SEARCH_RADII = 2.0
"""A valve orifice or septal defect is searched within this many of its radii of a border."""
NECK_WIDENING = 1.5
"""A channel ends where its section grows by this factor (the chamber beyond it)."""
AV_GROOVE_FAT = 0.35
"""A section of the channel from an atrium into its ventricle whose lateral wall is fat for
more than this fraction lies in the atrioventricular groove, outside the ventricle's wall."""
VALVE_PROMINENCE = 0.05
"""The pulmonary trunk is at least this much (relative area) wider than its valve."""
VALVE_SEARCH_RADII = 4.0
"""The pulmonary valve is searched within this many trunk radii of the watershed's border."""
LUNG_SEARCH_MM = 60.0
MIN_LUNG_FRACTION = 0.04
"""The heart lies between the lungs: at least this fraction of air within the search radius."""
MIN_HEART_ML = 5.0
"""Smallest blood volume (mL) of the heart's connected blood pool."""
BRANCH_RADIUS_FRACTION = 0.6
"""An aortic section beside the tracked descending aorta, narrower than this fraction of its
radius, is a branch (visceral artery)."""
DESCENDING_RADIUS_FRACTION = 0.19
"""The descending aorta's blood section is at least this fraction of the heart's largest
inscribed radius deep (4.2 mm on the adult chest CTA, where it was chosen, see
docs/segmentation.md; it scales down to a neonate's heart)."""
RECONNECT_ML = 0.5
"""Smallest part of a structure kept joined to it when its edge refinement cuts a dim neck."""
RECONNECT_MM = 10.0
"""Longest dim neck (mm) restored between a structure and a part the refinement split off."""

_JUNCTIONS = (("right_atrium", "superior_vena_cava", 1.2, 4.0),
              ("right_atrium", "inferior_vena_cava", 1.2, 4.0),
              ("left_ventricle", "aorta", 1.0, 1.5))
"""Chamber -> vessel openings without a clear narrowing (see :func:`_vessel_junctions`): the
local thickness, relative to the vessel's radius, up to which chamber voxels join the vessel,
and how far from the watershed's border (in vessel radii) they may lie.  The caval veins have
no valve: the vein runs on until it flares into the atrium, wherever along the tube the
watershed put the border.  The outflow tract is about as wide as the aortic root, and the
aortic valve lies near the watershed's border."""

# expected direction (LPS) of each chamber's centre from the heart centre, situs solitus
_CHAMBER_DIRECTIONS = {
    "left_ventricle": (0.75, -0.25, -0.45),
    "right_ventricle": (-0.25, -0.9, -0.2),
    "left_atrium": (0.1, 0.9, 0.35),
    "right_atrium": (-0.9, 0.1, 0.3),
}


@dataclass
class CTResult:
    """What :func:`segment_ct` returns."""

    labels: sitk.Image
    warnings: list[str] = field(default_factory=list)
    method: dict[str, Any] = field(default_factory=dict)


def segment_ct(image: sitk.Image, *, seeds: Sequence[Seed] = (),
               structures: Sequence[str] | None = None,
               work_spacing: float = WORK_SPACING_MM) -> CTResult:
    """Segment the heart in a contrast CT.

    Parameters
    ----------
    image : SimpleITK.Image
        3D CT in Hounsfield units (any pixel type, any direction).
    seeds : sequence of Seed
        Optional points (LPS mm) inside structures; one per chamber makes the chambers exact.
    structures : sequence of str, optional
        Structures to keep in the output (default: all that were found).
    work_spacing : float
        Voxel size (mm) of the working grid.

    Returns
    -------
    CTResult
        ``labels`` (uint8 on the input grid), ``warnings`` and a ``method`` record.

    Raises
    ------
    SegmentationError
        No contrast-filled heart was found.
    InputError
        A seed lies outside the image or outside any blood pool.

    Examples
    --------
    >>> from cardioplan.phantom import make_phantom
    >>> image, truth = make_phantom(spacing=(1.5, 1.5, 1.5))
    >>> result = segment_ct(image)
    >>> sorted(result.method["chambers"])
    ['left_atrium', 'left_ventricle', 'right_atrium', 'right_ventricle']
    """
    warnings: list[str] = []
    given = image
    image = _stored_axially(image)
    full, factors = _working_grid(image, work_spacing)
    blood_hu, threshold, roi = _contrast_level(sitk.GetArrayViewFromImage(full), full)
    work = full[roi[2], roi[1], roi[0]]  # crop to the heart and its vessels (x, y, z order)
    arr = sitk.GetArrayViewFromImage(work)
    bone = _bone_mask(arr, blood_hu, spacing=work.GetSpacing()[::-1])
    blood = (arr > threshold) & ~bone
    heart_blood, dist = _heart_blood_pool(blood, work)
    points = _seed_points(seeds, heart_blood, dist, work)
    chambers = {k: v for k, v in points.items() if k in CHAMBERS}
    source = "seeds" if len(chambers) == len(CHAMBERS) else \
        "automatic" if not chambers else "seeds + automatic"
    chambers.update(_auto_chambers(dist, work, taken=chambers, warnings=warnings))
    vessel_points = {k: v for k, v in points.items() if k not in CHAMBERS}
    descending = None if "aorta" in vessel_points else _descending_aorta(heart_blood, work)
    regions, names = _regions(heart_blood, dist, work, chambers, vessel_points,
                              descending=descending)
    inflow = _bright(arr, blood_hu) & ~bone  # undiluted contrast (see _bone_mask)
    labels_work = _label_regions(regions, names, dist, work, inflow=inflow)
    _vessel_junctions(labels_work, dist, work)
    borders_mm = _centre_chamber_borders(labels_work, dist, work)
    borders_mm.update(_atrioventricular_grooves(labels_work, arr, dist, bone, work,
                                                threshold=threshold))
    valve_mm = _pulmonary_valve(labels_work, work)
    myo_hu = _refine_boundaries(labels_work, arr, dist, bone, work, threshold=threshold)
    before = labels_work > 0
    if descending is not None:
        _prune_aortic_branches(labels_work, descending, work)
    veins_voxels = _trim_atrial_veins(labels_work, work)
    lumen_mm = None if descending is None else _lumen_radius(labels_work, descending, work)
    wall_voxels = _vessel_wall(labels_work, arr, bone, work, dim_hu=0.5 * (myo_hu + threshold),
                               blood_cut=threshold, vessels=before & (labels_work == 0))
    if descending is not None:
        _cut_aortic_side_tubes(labels_work, descending, work, lumen_mm=lumen_mm)
        _cut_rising_branches(labels_work, descending, work, lumen_mm=lumen_mm)
    r_lv = float(dist[chambers["left_ventricle"]]) if "left_ventricle" in chambers else \
        float(dist.max())
    wall_mm = float(np.clip(0.8 * r_lv, 6.0, 14.0))
    epicardium_hu = _add_myocardium(labels_work, arr, threshold, work, wall_mm=wall_mm,
                                    myo_hu=myo_hu)
    _fill_heart(labels_work, arr, work, blood_cut=0.5 * (myo_hu + threshold))
    found = [LABELS.by_value(int(v)).name for v in np.unique(labels_work) if v]
    expected = [n for n in (*CHAMBERS, "myocardium", "aorta", "pulmonary_artery")
                if structures is None or n in structures]
    labels_work = clean_labels(labels_work, spacing=work.GetSpacing()[::-1], warnings=warnings,
                               expected=expected, sigma_mm=0.6 * min(work.GetSpacing()))
    if factors is not None:
        out = sitk.GetImageFromArray(_upsample(labels_work, roi, factors, image.GetSize()[::-1]))
        out.CopyInformation(image)
    else:
        on_work = np.zeros(sitk.GetArrayViewFromImage(full).shape, np.uint8)
        on_work[roi] = labels_work
        out = sitk.GetImageFromArray(on_work)
        out.CopyInformation(full)
        out = sitk.Resample(out, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                            sitk.sitkUInt8)
    if structures is not None:
        out = _keep_structures(out, structures)
    if image is not given:
        # the same voxels in the input's storage order (a permutation: nothing is interpolated)
        out = sitk.Resample(out, given, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                            sitk.sitkUInt8)
    method = {
        "pipeline": "cardioplan CT v1: contrast threshold, distance-transform watershed from "
                    "chamber and vessel markers, anatomical rules",
        "work_spacing_mm": [round(float(s), 3) for s in work.GetSpacing()],
        "blood_hu": round(float(blood_hu), 1),
        "threshold_hu": round(float(threshold), 1),
        "myocardium_hu": round(float(myo_hu), 1),
        "wall_mm": round(wall_mm, 1),
        "epicardium_hu": round(epicardium_hu, 1),
        "aortic_wall_ml": round(wall_voxels * _voxel_ml(work), 1),
        "pulmonary_veins_ml": round(veins_voxels * _voxel_ml(work), 1),
        "chamber_borders_moved_mm": borders_mm,
        "pulmonary_valve_moved_mm": None if valve_mm is None else round(valve_mm, 1),
        "chambers_from": source,
        "chambers": sorted(chambers),
        "found": found,
    }
    log.info("CT: blood %.0f HU, threshold %.0f HU, wall %.0f HU, chambers %s (%s)",
             blood_hu, threshold, myo_hu, ", ".join(sorted(chambers)) or "none", source)
    return CTResult(labels=out, warnings=warnings, method=method)


# -- steps ------------------------------------------------------------------------------------
def _stored_axially(image: sitk.Image) -> sitk.Image:
    """``image`` with its voxels re-stored (axes permuted and reversed, never interpolated) so
    that its index axes run as near as they can to left, posterior and superior (LPS).

    The rules below work in axial slices (numpy axis 0, from inferior to superior) and
    block-average from index 0, so a CT stored feet-first, in RAS order or sagittally is
    re-stored first: every storage order of the same scan gives the same labels.  Returns
    ``image`` itself when it is stored that way already.
    """
    if image.GetDimension() != 3:
        raise InputError(f"the CT pipeline needs a 3D image, got {image.GetDimension()}D")
    orientation = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
        image.GetDirection())
    return image if orientation == "LPS" else sitk.DICOMOrient(image, "LPS")


def _working_grid(image: sitk.Image, target: float) -> tuple[sitk.Image, list[int] | None]:
    """The image block-averaged to about ``target`` mm (``BinShrink`` factors returned), or,
    for thick slices, resampled to isotropic voxels (factors ``None``); lightly smoothed."""
    factors: list[int] | None = [max(1, int(np.floor(target / s + 0.25)))
                                 for s in image.GetSpacing()]
    work = sitk.BinShrink(image, factors) if any(f > 1 for f in factors) else image
    work = sitk.Cast(work, sitk.sitkFloat32)
    sp = work.GetSpacing()
    if max(sp) > 1.3 * min(sp):
        # thick slices: morphology in voxels must mean the same in every direction
        iso = float(np.clip(target, min(sp), max(sp)))
        size = [max(1, int(round(n * s / iso))) for n, s in zip(work.GetSize(), sp, strict=True)]
        work = sitk.Resample(work, size, sitk.Transform(), sitk.sitkLinear, work.GetOrigin(),
                             [iso] * 3, work.GetDirection(), -1024.0, sitk.sitkFloat32)
        factors = None
    sigma = [0.5 * s for s in work.GetSpacing()]
    return sitk.SmoothingRecursiveGaussian(work, sigma), factors


def _contrast_level(arr: np.ndarray, work: sitk.Image
                    ) -> tuple[float, float, tuple[slice, slice, slice]]:
    """Blood-pool HU, the blood threshold and the region of interest ``[z, y, x]``.

    A first pass with a generic contrast threshold (200 HU, bone above 500 HU removed) finds the
    region holding the largest inscribed sphere (the heart, with its vessels); the region of
    interest is its bounding box plus 25 mm.  The median HU of its deep interior is the
    blood-pool level ``B``; the threshold is 40 % of the way from soft tissue (60 HU) to ``B``
    (low enough for the less opacified right heart of an arterial-phase scan).
    """
    if np.count_nonzero(arr > 200) * float(np.prod(work.GetSpacing())) < 5000.0:
        raise SegmentationError("no heart found: the image has no contrast-enhanced blood "
                                "(almost no voxels above 200 HU); the CT pipeline needs a "
                                "contrast CT/CTA (use --modality mr for MRI)")
    bone = _bone_mask(arr, 500.0, spacing=work.GetSpacing()[::-1])
    first = ndimage.binary_opening((arr > 200) & ~bone, iterations=1)
    dist = _distance(first, work)
    comps, _ = ndimage.label(first)
    best = comps[np.unravel_index(int(np.argmax(dist)), dist.shape)]
    deep = (comps == best) & (dist >= 0.5 * dist.max())
    if dist.max() < MIN_HEART_RADIUS_MM:
        raise SegmentationError(
            f"no heart found: the largest contrast-filled region holds a sphere of only "
            f"{dist.max():.1f} mm radius; a heart chamber needs >= {MIN_HEART_RADIUS_MM:.0f} mm. "
            "Check that the scan covers the heart and is contrast enhanced")
    lung = _air_fraction(arr, work, np.unravel_index(int(np.argmax(dist)), dist.shape),
                         radius_mm=max(LUNG_SEARCH_MM, 3.0 * float(dist.max())))
    if lung < MIN_LUNG_FRACTION:
        raise SegmentationError(
            f"no heart found: the largest contrast-filled region ({dist.max():.1f} mm deep) "
            f"has no lung around it ({100 * lung:.1f} % air within "
            f"{LUNG_SEARCH_MM:.0f} mm); the heart lies between the lungs.  Check that the scan "
            "is a chest CT covering the heart")
    blood = float(np.median(arr[deep]))
    threshold = float(np.clip(60.0 + 0.4 * (blood - 60.0), 130.0, 350.0))
    roi = bounding_box(comps == best, [int(np.ceil(25.0 / s)) for s in work.GetSpacing()[::-1]])
    return blood, threshold, roi  # type: ignore[return-value]


def _air_fraction(arr: np.ndarray, work: sitk.Image, centre: tuple[int, ...], *,
                  radius_mm: float) -> float:
    """Fraction of air-like voxels (< -500 HU: lung) within a ball around ``centre``."""
    sp = np.asarray(work.GetSpacing()[::-1])
    half = np.ceil(radius_mm / sp).astype(int)
    sl = tuple(slice(max(c - h, 0), min(c + h + 1, n))
               for c, h, n in zip(centre, half, arr.shape, strict=True))
    grids = np.ogrid[sl]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, sp, strict=True))
    ball = d2 <= radius_mm ** 2
    return float(np.count_nonzero(ball & (arr[sl] < -500))) / float(max(ball.sum(), 1))


def _bone_mask(arr: np.ndarray, blood_hu: float, *, spacing: Sequence[float]) -> np.ndarray:
    """Cortical bone and the cancellous bone it encloses (slice-wise hole filling).

    Only large cortical structures (>= 2 mL: vertebrae, sternum, ribs) enclose bone; small
    bright specks such as vessel-wall calcifications are removed but the lumen they ring is not.
    Bright regions thicker than any cortex in the chest (an inscribed sphere of at least
    :data:`CONTRAST_MIN_RADIUS_MM`) are undiluted contrast (the inflow of an arm injection in
    the SVC and right atrium), not bone.  ``spacing`` is the voxel size ``(z, y, x)`` in mm.
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    bright = _bright(arr, blood_hu)
    comps, n = ndimage.label(bright)
    if n == 0:
        return bright
    box = bounding_box(bright, 1)  # the zero frame is nearer than any background voxel beyond it
    depth = np.zeros(bright.shape)
    depth[box] = ndimage.distance_transform_edt(bright[box], sampling=spacing)
    thick = _label_max(depth, comps) >= CONTRAST_MIN_RADIUS_MM
    cortex = bright & ~thick[comps]
    cortex = _dilate(cortex) & (arr > blood_hu + 60.0) & \
        ~thick[comps] | cortex
    comps, n = ndimage.label(cortex)
    if n == 0:
        return cortex
    sizes = np.bincount(comps.ravel()) * voxel_ml
    sizes[0] = 0
    big = sizes[comps] >= 2.0
    box = bounding_box(big, 0)
    if box is not None:  # a hole lies inside the bounding box, whose faces open to the outside
        big[box] = ndimage.binary_fill_holes(big[box], structure=np.array(
            [[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], bool))
    return big | cortex


def _bright(arr: np.ndarray, blood_hu: float) -> np.ndarray:
    """Voxels far brighter than the blood pool: cortical bone or undiluted contrast."""
    return arr > max(blood_hu + 200.0, 550.0)


def _upsample(labels: np.ndarray, roi: tuple[slice, ...], factors: Sequence[int],
              shape: Sequence[int]) -> np.ndarray:
    """Put working-grid labels (of the region ``roi``) back on the scan's grid ``[z, y, x]``.

    ``BinShrink`` made each working voxel from a block of ``factors`` (x, y, z) scan voxels, so
    each label is repeated over its block (nearest neighbour, exact and cheap); the few trailing
    scan voxels that did not fill a whole block take the label of the last block.  Only the
    labelled voxels' bounding box is repeated (the rest is background on either grid).
    """
    out = np.zeros(tuple(int(n) for n in shape), np.uint8)
    box = bounding_box(labels > 0, 0)
    if box is None:
        return out
    roi = tuple(slice(r.start + b.start, r.start + b.stop) for r, b in zip(roi, box, strict=True))
    f = [int(k) for k in factors[::-1]]
    block = labels[box]
    for axis, k in enumerate(f):
        if k > 1:
            block = np.repeat(block, k, axis=axis)
        if roi[axis].stop == shape[axis] // k and shape[axis] % k:  # reaches the far edge
            pad = [(0, 0)] * 3
            pad[axis] = (0, shape[axis] % k)
            block = np.pad(block, pad, mode="edge")
    start = [r.start * k for r, k in zip(roi, f, strict=True)]
    out[tuple(slice(a, a + n) for a, n in zip(start, block.shape, strict=True))] = block
    return out


def _voxel_ml(image: sitk.Image) -> float:
    return float(np.prod(image.GetSpacing())) / 1000.0


def _label_max(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Maximum of ``values`` per label, indexed by label value (-inf where a label is absent).

    The same as ``ndimage.maximum(values, labels, ids)``, which sorts every labelled voxel;
    one ``np.maximum.at`` pass over them is about 6x faster on a chest's bone components.
    """
    inside = labels > 0
    out = np.full(int(labels.max()) + 1, -np.inf, dtype=np.float64)
    np.maximum.at(out, labels[inside], values[inside])
    return out


def _anchored_box(mask: np.ndarray, pad: int | Sequence[int]) -> tuple[slice, ...] | None:
    """:func:`~cardioplan.arrays.bounding_box` with every axis starting at index 0, where
    distance maps are the whole grid's: ITK rounds each distance by its voxels' absolute
    indices (see :func:`_distance`)."""
    box = bounding_box(mask, pad)
    return None if box is None else tuple(slice(0, b.stop) for b in box)


def _dilate(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """``ndimage.binary_dilation(mask, iterations=...)``, computed on the mask's bounding box
    grown by ``iterations`` voxels (nothing outside it can change: the same result, cheaper)."""
    out = np.zeros(mask.shape, bool)
    box = bounding_box(mask, iterations)
    if box is not None:
        out[box] = ndimage.binary_dilation(mask[box], iterations=iterations)
    return out


def _distance(mask: np.ndarray, ref: sitk.Image) -> np.ndarray:
    """Distance (mm) from each foreground voxel to the background.

    Computed on the foreground's bounding box grown by a voxel (the nearest background voxel
    of one inside it is never farther than the box's background rim), the box kept from index 0
    on: ITK rounds each distance by its voxels' absolute indices, so only a box anchored there
    gives the same floats as the whole grid.
    """
    out = np.zeros(mask.shape, np.float32)
    box = _anchored_box(mask, 1)
    if box is None:
        return out
    img = sitk.GetImageFromArray(mask[box].astype(np.uint8))
    img.SetSpacing(ref.GetSpacing())
    d = sitk.SignedMaurerDistanceMap(img, insideIsPositive=True, squaredDistance=False,
                                     useImageSpacing=True)
    out[box] = np.where(mask[box], sitk.GetArrayViewFromImage(d), 0)
    return out


def _distance_to(target: np.ndarray, ref: sitk.Image, within_mm: float) -> np.ndarray:
    """Distance (mm) of each voxel to ``target`` (0 on it), exact up to ``within_mm``.

    ``_distance(~target)`` computed on the target's bounding box grown by ``within_mm``: the
    voxels beyond it (all farther than ``within_mm``) are ``inf``.
    """
    out = np.full(target.shape, np.inf, np.float32)
    box = _anchored_box(target, [int(np.ceil(within_mm / s)) + 1
                                 for s in ref.GetSpacing()[::-1]])
    if box is not None:
        out[box] = _distance(~target[box], ref)
    return out


def _heart_blood_pool(blood: np.ndarray, work: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """The connected blood of the heart and great vessels, and its distance transform."""
    opened = ndimage.binary_opening(blood, iterations=1)
    comps, n = ndimage.label(opened)
    if n == 0:
        raise SegmentationError("no heart found: no contrast-filled region large enough for a "
                                "heart chamber; check that the scan is a contrast CT of the "
                                "chest")
    dist = _distance(opened, work)
    radius = _label_max(dist, comps)[1:]
    voxel_ml = float(np.prod(work.GetSpacing())) / 1000.0
    sizes = np.bincount(comps.ravel())[1:] * voxel_ml
    best = int(np.argmax(radius))
    if radius[best] < MIN_HEART_RADIUS_MM or sizes[best] < MIN_HEART_ML:
        raise SegmentationError(
            f"no heart found: the largest contrast-filled region holds a sphere of only "
            f"{radius[best]:.1f} mm radius ({sizes[best]:.0f} mL); a heart chamber needs "
            f">= {MIN_HEART_RADIUS_MM:.0f} mm.  Check that the scan covers the heart and is "
            "contrast enhanced, or pass seeds")
    keep = [best]
    near = _dilate(comps == best + 1, iterations=max(
        1, int(round(10.0 / min(work.GetSpacing())))))
    for i in range(n):
        if i != best and radius[i] >= 0.5 * radius[best] and sizes[i] >= 0.2 * sizes[best] \
                and near[comps == i + 1].any():
            keep.append(i)
    heart = np.isin(comps, [k + 1 for k in keep])
    dist[~heart] = 0
    return heart, dist


def _seed_points(seeds: Sequence[Seed], blood: np.ndarray, dist: np.ndarray,
                 work: sitk.Image) -> dict[str, tuple[int, int, int]]:
    """Working-grid index ``(z, y, x)`` of each seed, moved to the deepest blood voxel nearby."""
    out: dict[str, tuple[int, int, int]] = {}
    size = work.GetSize()
    r = max(1, int(round(5.0 / min(work.GetSpacing()))))
    for seed in seeds:
        idx = work.TransformPhysicalPointToContinuousIndex([float(c) for c in seed.point])
        x, y, z = (int(round(c)) for c in idx)
        if not (0 <= x < size[0] and 0 <= y < size[1] and 0 <= z < size[2]):
            raise InputError(f"seed {seed.structure} at {_fmt(seed.point)} lies outside the "
                             "image; seeds are LPS millimetres (as the viewer shows them)")
        sl = (slice(max(z - r, 0), z + r + 1), slice(max(y - r, 0), y + r + 1),
              slice(max(x - r, 0), x + r + 1))
        local = np.where(blood[sl], dist[sl], 0)
        if local.max() <= 0:
            raise InputError(f"seed {seed.structure} at {_fmt(seed.point)} is not inside a "
                             "contrast-filled chamber or vessel (it lies in tissue, bone or "
                             "air); move it into the middle of the blood pool")
        dz, dy, dx = np.unravel_index(int(np.argmax(local)), local.shape)
        out[seed.structure] = (int(sl[0].start + dz), int(sl[1].start + dy),
                               int(sl[2].start + dx))
    return out


def _fmt(point: Sequence[float]) -> str:
    return "(" + ", ".join(f"{c:.1f}" for c in point) + ") mm"


def _peaks(dist: np.ndarray, work: sitk.Image, *, h: float) -> list[tuple[float, tuple]]:
    """Regional maxima of the distance map with dynamic >= ``h`` mm, deepest first."""
    d_img = sitk.GetImageFromArray(dist)
    d_img.CopyInformation(work)
    peaks = sitk.RegionalMaxima(sitk.HMaxima(d_img, h), backgroundValue=0, foregroundValue=1,
                                fullyConnected=True)
    comps, n = ndimage.label(sitk.GetArrayViewFromImage(peaks) & (dist > 0))
    if n == 0:
        return []
    pos = ndimage.maximum_position(dist, comps, np.arange(1, n + 1))
    out = [(float(dist[p]), tuple(int(c) for c in p)) for p in pos]
    return sorted(out, reverse=True)


def _auto_chambers(dist: np.ndarray, work: sitk.Image, *, taken: dict[str, tuple],
                   warnings: list[str]) -> dict[str, tuple[int, int, int]]:
    """Find the chambers not given by seeds: deep, compact parts assigned by position."""
    missing = [c for c in CHAMBERS if c not in taken]
    if not missing:
        return {}
    used = [np.asarray(work.TransformIndexToPhysicalPoint(p[::-1])) for p in taken.values()]
    thick = np.argwhere(dist >= 0.4 * dist.max()).mean(axis=0)
    centre = np.asarray(work.TransformContinuousIndexToPhysicalPoint(
        [float(c) for c in thick[::-1]]))
    top = centre[2] + 1.2 * float(dist.max())  # the great-artery roots lie above the chambers
    chosen = []
    for r, p in _chamber_candidates(dist, work):
        xyz = np.asarray(work.TransformIndexToPhysicalPoint(p[::-1]))
        if xyz[2] <= top and all(np.linalg.norm(xyz - u) > r for u in used):
            chosen.append((r, p))
            used.append(xyz)
    chosen = chosen[:len(missing) + 3]
    if not chosen:
        warnings.append("the chambers could not be found automatically; place one seed per "
                        "chamber (--seed left_ventricle=x,y,z ...)")
        return {}
    pts = [np.asarray(work.TransformIndexToPhysicalPoint(p[::-1])) for _, p in chosen]
    best: tuple[float, tuple] = (-np.inf, ())
    k = min(len(missing), len(chosen))
    for combo in itertools.permutations(range(len(chosen)), k):
        for names in itertools.combinations(missing, k):
            score = 0.0
            for i, name in zip(combo, names, strict=True):
                v = pts[i] - centre
                v = v / (np.linalg.norm(v) + 1e-6)
                score += (float(np.dot(v, _unit(_CHAMBER_DIRECTIONS[name]))) + 1.0) \
                    * chosen[i][0]
            if score > best[0]:
                best = (score, tuple(zip(names, combo, strict=True)))
    found = {name: chosen[i][1] for name, i in best[1]}
    lost = [c for c in missing if c not in found]
    if lost:
        warnings.append(f"could not find {', '.join(lost)} automatically; place a seed in "
                        "each (--seed NAME=x,y,z)")
    return found


def _chamber_candidates(dist: np.ndarray, work: sitk.Image) -> list[tuple[float, tuple]]:
    """Deepest point of each compact blood-pool part, deepest first.

    Distance-map peaks joined by a neck nearly as wide as the smaller peak (no valve or septum
    between them) are one part; parts whose deep core is a long tube are vessels, not chambers.
    """
    peaks = _peaks(dist, work, h=max(1.0, 0.5 * max(work.GetSpacing())))
    if not peaks:
        return []
    markers = np.zeros(dist.shape, np.int32)
    for i, (_, p) in enumerate(peaks):
        markers[p] = i + 1
    d_img = sitk.GetImageFromArray(dist)
    d_img.CopyInformation(work)
    m_img = sitk.GetImageFromArray(markers)
    m_img.CopyInformation(work)
    regions = sitk.GetArrayFromImage(sitk.MorphologicalWatershedFromMarkers(
        -d_img, m_img, markWatershedLine=False, fullyConnected=False))
    regions[dist <= 0] = 0
    parent = list(range(len(peaks) + 1))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for (a, b), neck in sorted(_necks(regions, dist).items(), key=lambda kv: -kv[1]):
        ra, rb = find(a), find(b)
        if ra != rb and neck >= 0.7 * min(peaks[ra - 1][0], peaks[rb - 1][0]):
            parent[max(ra, rb)] = min(ra, rb)  # the deeper peak (lower index) represents
    r_top = peaks[0][0]
    out = []
    for i, (r, p) in enumerate(peaks):
        if find(i + 1) == i + 1 and r >= 0.33 * r_top and not _is_tube(dist, p, work):
            out.append((r, p))
    return out


def _is_tube(dist: np.ndarray, peak: tuple[int, int, int], work: sitk.Image) -> bool:
    """True when the deep core around ``peak`` is a long tube (a vessel), not a chamber.

    The core is the connected set of voxels at least 85 % as deep as the peak, within four
    radii; for a vessel it runs along the lumen (long), for a chamber it stays compact.
    """
    r = float(dist[peak])
    sp = np.asarray(work.GetSpacing()[::-1])
    half = np.ceil(4 * r / sp).astype(int)
    sl = tuple(slice(max(c - k, 0), c + k + 1) for c, k in zip(peak, half, strict=True))
    comps, _ = ndimage.label(dist[sl] >= 0.85 * r)
    local = tuple(c - s.start for c, s in zip(peak, sl, strict=True))
    core = np.argwhere(comps == comps[local]) * sp
    if len(core) < 4:
        return False
    spread = float(np.sqrt(np.linalg.eigvalsh(np.cov(core.T)).max()))
    return spread > 1.2 * r


def _unit(v: Sequence[float]) -> np.ndarray:
    a = np.asarray(v, float)
    return a / np.linalg.norm(a)


def _ball_markers(shape: tuple[int, ...], dist: np.ndarray, points: dict[str, tuple],
                  values: dict[str, int], work: sitk.Image) -> np.ndarray:
    markers = np.zeros(shape, np.int32)
    sp = np.asarray(work.GetSpacing()[::-1])
    for name, p in points.items():
        r = max(float(dist[p]) * 0.5, float(sp.max()))
        rr = np.ceil(r / sp).astype(int)
        sl = tuple(slice(max(c - k, 0), min(c + k + 1, n))
                   for c, k, n in zip(p, rr, shape, strict=True))
        grids = np.ogrid[sl]
        d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, p, sp, strict=True))
        ball = (d2 <= r * r) & (dist[sl] > 0)
        markers[sl][ball] = values[name]
    return markers


def _regions(blood: np.ndarray, dist: np.ndarray, work: sitk.Image,
             chambers: dict[str, tuple], vessel_points: dict[str, tuple], *,
             descending: np.ndarray | None = None) -> tuple[np.ndarray, dict[int, str]]:
    """Watershed of the inverted distance map from chamber, seeded and far-vessel markers.

    ``descending`` is the tracked descending aorta's marker (:func:`_descending_aorta`).

    Returns the region map and ``region id -> structure name`` for the chambers and seeded
    structures; far-vessel regions (ids > 1000) are named later by their neighbours.
    """
    names: dict[int, str] = {}
    values: dict[str, int] = {}
    for i, name in enumerate([*chambers, *vessel_points]):
        values[name] = i + 1
        names[i + 1] = name
    points = {**chambers, **vessel_points}
    markers = _ball_markers(blood.shape, dist, points, values, work)
    if descending is not None:
        values["aorta"] = len(values) + 1
        names[values["aorta"]] = "aorta"
        markers[descending & (markers == 0)] = values["aorta"]
    if chambers:
        r_ch = max(float(dist[p]) for p in chambers.values())
        far = _geodesic_far(blood, markers > 0, work, far_mm=2.5 * r_ch)
        # vessels that touch (aorta and pulmonary trunk at 1.5 mm) meet at a thin contact:
        # only their cores (deeper than ~2 voxels) seed separate markers
        core = far & (markers == 0) & (dist > 2.0 * max(work.GetSpacing()))
        comps, n = ndimage.label(core)
        markers[comps > 0] = comps[comps > 0] + 1000
    d_img = sitk.GetImageFromArray(dist)
    d_img.CopyInformation(work)
    # a valve orifice or septal defect is a short tube of constant radius between two wider
    # cavities: smoothing the distance map turns that plateau into a saddle at its middle, so
    # the border falls on the valve plane rather than anywhere along the orifice
    d_img = sitk.SmoothingRecursiveGaussian(d_img, SADDLE_SIGMA_MM)
    # quantised to 0.01 mm: the watershed's priority queue is far faster on integer levels
    d_img = sitk.Cast(sitk.Round(d_img * 100.0), sitk.sitkInt32)
    m_img = sitk.GetImageFromArray(markers)
    m_img.CopyInformation(work)
    ws = sitk.MorphologicalWatershedFromMarkers(-d_img, m_img, markWatershedLine=False,
                                                fullyConnected=False)
    regions = sitk.GetArrayFromImage(ws).astype(np.int32)
    regions[~blood] = 0
    return regions, names


def _descending_aorta(blood: np.ndarray, work: sitk.Image) -> np.ndarray | None:
    """Track the descending aorta up from the lowest slices: a round blood section posterior to
    the heart, followed slice by slice while it overlaps the section below and does not swell.

    A section is round when its inscribed radius is at least :data:`DESCENDING_RADIUS_FRACTION`
    of the heart's largest inscribed radius (a bound that scales from adults to neonates) and
    its area at most three times that of its inscribed circle.  The marker is the core of the
    round sections up to the first that is not (a thrombus-lined lumen or a branch's origin
    is irregular); the tube is followed further, through such sections and as its lumen
    tapers (each section at least half as deep as the one below), only to tell its length, so
    that a field of view cut just below the heart keeps it.

    Returns the marker, or None when the tube was followed over less than 20 mm.
    """
    sx, sy, sz = work.GetSpacing()
    dist = _distance(blood, work)
    r_min = DESCENDING_RADIUS_FRACTION * float(dist.max())
    thick = np.argwhere(dist >= 0.4 * dist.max()).mean(axis=0)
    centre_y = work.TransformContinuousIndexToPhysicalPoint([float(c) for c in thick[::-1]])[1]
    marker = np.zeros(blood.shape, bool)
    prev: np.ndarray | None = None
    prev_area = 0.0
    tracked = 0
    clean = True
    prev_r = 0.0
    for z in range(blood.shape[0]):  # from inferior to superior (see _stored_axially)
        # the lumen may taper (thrombus, a cut through a branch origin): once found, the
        # tube is followed while each section is at least half as deep as the one below
        bound = r_min if prev is None else min(r_min, 0.5 * prev_r)
        pick = _aortic_section(blood[z], prev, prev_area, work, z, r_min=bound,
                               centre_y=centre_y)
        if pick is None:
            if prev is not None:
                break
            continue
        prev, prev_area, d2, r = pick
        prev_r = r
        clean = clean and r >= r_min and prev_area <= 3.0 * np.pi * r * r
        if clean:
            marker[z] = d2 >= 0.5 * r
        tracked += 1
    return marker if tracked * sz >= 20.0 else None


def _aortic_section(section: np.ndarray, prev: np.ndarray | None, prev_area: float,
                    work: sitk.Image, z: int, *, r_min: float, centre_y: float
                    ) -> tuple[np.ndarray, float, np.ndarray, float] | None:
    """The descending aorta's blood section in one slice (:func:`_descending_aorta`).

    Before the tube is found (``prev`` None): the most posterior-left round section (at least
    ``r_min`` deep) behind the heart's centre (``centre_y``, LPS mm).  After: a section at
    least ``r_min`` deep that overlaps ``prev`` by 30 % of it and at most doubles its area
    ``prev_area``.  Returns the
    section, its area (mm^2), its in-plane depth map (mm) and inscribed radius, or None.
    """
    sx, sy, _ = work.GetSpacing()
    comps, _ = ndimage.label(section)
    pick = None
    for i, box in enumerate(ndimage.find_objects(comps), start=1):
        # the depth on the component's box + 1 voxel: the same as on the whole slice (the
        # nearest voxel outside it is never farther than the box's empty rim)
        box = grow_box(box, 1, section.shape)
        in_box = comps[box] == i
        area = in_box.sum() * sx * sy
        d_box = ndimage.distance_transform_edt(in_box, sampling=(sy, sx))
        r = float(d_box.max())
        if r < r_min or r <= max(sx, sy):  # one voxel deep: a crumb, not a section
            continue
        comp = np.zeros(section.shape, bool)
        comp[box] = in_box
        d2 = np.zeros(section.shape)
        d2[box] = d_box
        if prev is not None:
            if (comp & prev).sum() >= 0.3 * prev.sum() and area <= 2.0 * prev_area:
                return comp, area, d2, r
            continue
        if area > 3.0 * np.pi * r * r:
            continue
        iy, ix = ndimage.center_of_mass(comp)
        cx, cy, _ = work.TransformContinuousIndexToPhysicalPoint([float(ix), float(iy), float(z)])
        score = cy + 0.5 * cx  # posterior (+y) and left (+x) in LPS
        if cy > centre_y and (pick is None or score > pick[0]):
            pick = (score, comp, area, d2, r)
    return None if pick is None else pick[1:]


def _prune_aortic_branches(labels: np.ndarray, descending: np.ndarray, work: sitk.Image
                           ) -> None:
    """Unlabel the aortic branches that run beside the tracked descending aorta, in place.

    The descending aorta is one tube of slowly varying section; a visceral artery leaves it at
    an angle with a far smaller radius and runs on beside it (the superior mesenteric artery
    runs caudally in front of it).  In each slice where the descending aorta was tracked,
    aortic sections that do not touch the tracked one and whose inscribed radius is less than
    :data:`BRANCH_RADIUS_FRACTION` of its are branches, not aorta.  A wider section there (the
    ascending aorta beside the heart) stays.
    """
    ao_v = LABELS.value_of("aorta")
    sy, sx = work.GetSpacing()[1], work.GetSpacing()[0]
    for z in np.flatnonzero(descending.any(axis=(1, 2))):
        comps, n = ndimage.label(labels[z] == ao_v)
        if n <= 1:
            continue
        ids = np.arange(1, n + 1)
        d2 = ndimage.distance_transform_edt(comps > 0, sampling=(sy, sx))
        radius = ndimage.maximum(d2, comps, ids)
        tracked = np.unique(comps[descending[z]])
        tracked = tracked[tracked > 0]
        if tracked.size == 0:
            continue
        r_ao = float(max(radius[t - 1] for t in tracked))
        for i in ids:
            if i not in tracked and radius[i - 1] < BRANCH_RADIUS_FRACTION * r_ao:
                labels[z][comps == i] = 0


def _lumen_radius(labels: np.ndarray, descending: np.ndarray, work: sitk.Image) -> float:
    """The tracked descending aorta's inscribed radius (mm; the median over its tracked
    slices of the aortic label's in-plane depth), measured on the contrast lumen (before
    :func:`_vessel_wall` adds any thrombus).  In-plane: the 3D depth of the lowest slices
    depends on where the field of view ends, not on the aorta."""
    aorta = labels == LABELS.value_of("aorta")
    sy, sx = work.GetSpacing()[1], work.GetSpacing()[0]
    return float(np.median([ndimage.distance_transform_edt(aorta[z], sampling=(sy, sx))
                            [descending[z]].max()
                            for z in np.flatnonzero(descending.any(axis=(1, 2)))]))


def _cut_aortic_side_tubes(labels: np.ndarray, descending: np.ndarray, work: sitk.Image, *,
                           lumen_mm: float) -> None:
    """Unlabel the aorta's side tubes (the arch's branches), in place.

    The arch's branches leave it as tubes far narrower than the aorta: its side tubes
    (:func:`_side_tubes`) for a ball of :data:`BRANCH_RADIUS_FRACTION` times the tracked
    descending aorta's lumen radius ``lumen_mm`` (:func:`_lumen_radius`) -- the calibre the
    branches beside the descending aorta are told by (:func:`_prune_aortic_branches`).
    """
    aorta = labels == LABELS.value_of("aorta")
    r = BRANCH_RADIUS_FRACTION * lumen_mm
    tubes = _side_tubes(aorta, r, work)
    rest, _ = ndimage.label(aorta & ~tubes)
    # parts of the aorta at least a ball's volume (not the crumbs the opening leaves)
    large = np.bincount(rest.ravel()) * _voxel_ml(work) * 1000.0 >= 4.0 / 3.0 * np.pi * r ** 3
    large[0] = False
    parts, n = ndimage.label(tubes)
    root = _dilate(labels == LABELS.value_of("left_ventricle"))
    for i, found in enumerate(ndimage.find_objects(parts), start=1):
        box = grow_box(found, 1, parts.shape)  # tube + 1 voxel
        tube = parts[box] == i
        # a branch is a dead end: not a stretch between two parts of the aorta, not the
        # descending aorta, not the root (which leaves the left ventricle)
        if np.count_nonzero(large[np.unique(rest[box][_dilate(tube)])]) < 2 and \
                not (tube & (descending[box] | root[box])).any():
            labels[box][tube] = 0


def _cut_rising_branches(labels: np.ndarray, descending: np.ndarray, work: sitk.Image, *,
                         lumen_mm: float) -> None:
    """Unlabel the arch's branches where they part from it, in place.

    The arch's branches leave it upwards: going up slice by slice, an aortic section splits
    into the aorta's own continuation (the largest section above it) and a branch.  A section
    above narrower than :data:`BRANCH_RADIUS_FRACTION` of the continuation (in equivalent
    radius) whose part of the aorta above the split is a dead end -- it does not meet the
    continuation again (lumen channels of a sac do), nor the tracked descending aorta or the
    left ventricle -- and holds at least the side-tube ball of :func:`_cut_aortic_side_tubes`
    (not a crumb of the edge) is a branch.
    """
    ao_v = LABELS.value_of("aorta")
    ball = 4.0 / 3.0 * np.pi * (BRANCH_RADIUS_FRACTION * lumen_mm) ** 3 / \
        (_voxel_ml(work) * 1000.0)  # voxels
    root = _dilate(labels == LABELS.value_of("left_ventricle"))
    zs = np.flatnonzero((labels == ao_v).any(axis=(1, 2)))
    for z in zs[:-1]:
        aorta = labels == ao_v
        here, n = ndimage.label(aorta[z])
        up, m = ndimage.label(aorta[z + 1])
        if n == 0 or m < 2:
            continue
        areas = np.bincount(up.ravel())
        for s in range(1, n + 1):
            kids = np.unique(up[(here == s) & (up > 0)])
            if kids.size < 2:
                continue
            main = kids[np.argmax(areas[kids])]
            for c in kids[areas[kids] < BRANCH_RADIUS_FRACTION ** 2 * areas[main]]:
                above, _ = ndimage.label(aorta[z + 1:])
                part = above == above[0][up == c][0]
                if not part[0][up == main].any() and part.sum() >= ball and \
                        not (part & (descending[z + 1:] | root[z + 1:])).any():
                    labels[z + 1:][part] = 0


_UNREACHED = np.finfo(np.float64).max / 2.0
"""What ``sitk.FastMarchingImageFilter`` leaves in the voxels its front never reaches."""


def _geodesic(mask: np.ndarray, start: np.ndarray, work: sitk.Image, *, stop_mm: float
              ) -> np.ndarray:
    """Distance (mm) from ``start`` along paths inside ``mask`` (huge beyond ``stop_mm``).

    Marched on the bounding box of the mask and start grown by a voxel: outside the mask the
    front crawls (speed 1e-6) and stops long before a voxel beyond the box's rim (the same
    result).
    """
    out = np.full(mask.shape, _UNREACHED)
    box = bounding_box(mask | start, 1)
    if box is None:
        return out
    speed = sitk.GetImageFromArray(np.where(mask[box], 1.0, 1e-6).astype(np.float32))
    speed.SetSpacing(work.GetSpacing())
    fm = sitk.FastMarchingImageFilter()
    fm.SetTrialPoints((np.argwhere(start[box])[:, ::-1]).tolist())  # x, y, z in the box
    fm.SetStoppingValue(float(stop_mm))
    arrival = fm.Execute(speed)
    out[box] = sitk.GetArrayViewFromImage(arrival)
    return out


def _geodesic_far(blood: np.ndarray, start: np.ndarray, work: sitk.Image, *, far_mm: float
                  ) -> np.ndarray:
    """Blood voxels farther than ``far_mm`` from ``start`` along paths inside the blood pool."""
    return blood & (_geodesic(blood, start, work, stop_mm=1.5 * far_mm) > far_mm)


def _label_regions(regions: np.ndarray, names: dict[int, str], dist: np.ndarray,
                   work: sitk.Image, *, inflow: np.ndarray | None = None) -> np.ndarray:
    """Name the far-vessel regions by the chamber they leave, and paint the label map.

    A vessel end filled mostly with undiluted contrast (``inflow``: far brighter than the
    blood pool, which the contrast reaches only after mixing in the lungs) carries the
    injection back to the heart: it is the superior vena cava, whatever it touches.
    """
    necks = _necks(regions, dist)
    neighbours: dict[int, list[tuple[int, float]]] = {}
    for (a, b), v in necks.items():
        neighbours.setdefault(a, []).append((b, v))
        neighbours.setdefault(b, []).append((a, v))
    centroid = _centroids(regions, work)
    named = dict(names)
    far = sorted(r for r in np.unique(regions) if r > 1000)
    ids = [int(r) for r in np.unique(regions) if r]
    radius = dict(zip(ids, _label_max(dist, regions)[ids].tolist(), strict=True))
    aorta = [r for r, n in named.items() if n == "aorta" and r in radius]
    if aorta:
        # vessel ends joined to the aorta without a narrowing: arch, ascending aorta
        r_ao = max(float(radius[r]) for r in aorta)
        frontier = list(aorta)
        while frontier:
            cur = frontier.pop()
            for nb, neck in neighbours.get(cur, []):
                if nb > 1000 and nb not in named and \
                        neck >= 0.75 * min(r_ao, float(radius[nb])):
                    named[nb] = "aorta"
                    frontier.append(nb)
    if inflow is not None:
        for r in far:
            if r not in named and np.mean(inflow[regions == r]) >= 0.5:
                named[r] = "superior_vena_cava"
    vessel_of = {"left_ventricle": "aorta", "right_ventricle": "pulmonary_artery",
                 "left_atrium": None}
    pending = {r for r in far if r not in named}
    changed = True
    while pending and changed:
        changed = False
        for r in sorted(pending):
            cands = [(v, nb) for nb, v in neighbours.get(r, []) if nb in named]
            if not cands:
                continue
            _, nb = max(cands)
            src = named[nb]
            if src in ("left_ventricle", "right_ventricle") and \
                    centroid[r][2] < centroid[nb][2]:
                vessel = src  # the great arteries leave upwards: below is the ventricle's own
            elif src == "right_atrium":
                vessel = "superior_vena_cava" if centroid[r][2] > centroid[nb][2] else \
                    "inferior_vena_cava"
            elif src in CHAMBERS:
                vessel = vessel_of.get(src) or ""
            else:
                vessel = src
            named[r] = vessel
            pending.discard(r)
            changed = True
    lut = np.zeros(int(regions.max()) + 1, np.uint8)
    for r, name in named.items():
        if name and name in LABELS:
            lut[r] = LABELS.value_of(name)
    return lut[regions]


def _centroids(regions: np.ndarray, work: sitk.Image) -> dict[int, np.ndarray]:
    """LPS centroid (mm) of each region."""
    ids = [int(r) for r in np.unique(regions) if r]
    cz = ndimage.center_of_mass(np.ones(regions.shape, np.uint8), regions, ids)
    return {r: np.asarray(work.TransformContinuousIndexToPhysicalPoint(
        [float(c[2]), float(c[1]), float(c[0])])) for r, c in zip(ids, cz, strict=True)}


def _necks(part_map: np.ndarray, dist: np.ndarray) -> dict[tuple[int, int], float]:
    """For each pair of touching regions, the largest radius on their shared boundary."""
    codes_all, values_all = [], []
    big = int(part_map.max()) + 1
    for axis in range(3):
        a = np.moveaxis(part_map, axis, 0)
        da = np.moveaxis(dist, axis, 0)
        la, lb = a[:-1], a[1:]
        sel = (la != lb) & (la > 0) & (lb > 0)
        lo = np.minimum(la[sel], lb[sel]).astype(np.int64)
        hi = np.maximum(la[sel], lb[sel]).astype(np.int64)
        codes_all.append(lo * big + hi)
        values_all.append(np.minimum(da[:-1][sel], da[1:][sel]))
    codes = np.concatenate(codes_all)
    values = np.concatenate(values_all)
    if codes.size == 0:
        return {}
    order = np.argsort(codes, kind="stable")
    codes, values = codes[order], values[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    maxima = np.maximum.reduceat(values, starts)
    return {(int(c // big), int(c % big)): float(v)
            for c, v in zip(codes[starts], maxima, strict=True)}


def _local_thickness(mask: np.ndarray, dist: np.ndarray, work: sitk.Image,
                     radii: Sequence[float]) -> np.ndarray:
    """Radius (mm) of the largest of ``radii`` whose ball fits in ``mask`` and covers the voxel
    (a coarse local-thickness map: the opening spectrum of the blood pool)."""
    out = np.zeros(mask.shape, np.float32)
    for r in sorted(radii):
        centres = dist >= r
        if not centres.any():
            break
        out[(_distance_to(centres, work, r) <= r) & mask] = r
    return out


def _vessel_section(vessel: np.ndarray, chamber: np.ndarray, work: sitk.Image) -> np.ndarray:
    """The vessel's voxels per step (the largest spacing) of geodesic distance from its border
    with the chamber, in its first three steps (the seed layer itself, thicker than a step,
    left out)."""
    step = max(work.GetSpacing())
    t_vessel = _geodesic(vessel, vessel & _dilate(chamber), work, stop_mm=5 * step)
    return np.bincount((t_vessel[vessel & (t_vessel < 4 * step)] / step).astype(np.int64))[1:]


def _before_flare(chamber: np.ndarray, vessel: np.ndarray, thin: np.ndarray,
                  work: sitk.Image, reach: float, section: np.ndarray) -> np.ndarray:
    """Voxels of ``chamber`` nearer the ``vessel`` (geodesically) than where ``thin`` flares.

    Walking from the vessel's border into the chamber, the part of the chamber that continues
    the vessel keeps about the vessel's cross-section; where the chamber's thin voxels per step
    (smoothed over 3 steps) exceed :data:`FLARE_WIDENING` times the vessel's own ``section``
    (:func:`_vessel_section`: its voxels per step in the first three steps from the border),
    the vessel has opened into the chamber: a thin rim of a wide cavity (a swirl of dense
    inflow in the right atrium) is chamber, not vessel.  Searched up to ``reach`` mm; no
    flare: the whole reach.
    """
    step = max(work.GetSpacing())
    t = _geodesic(chamber, chamber & _dilate(vessel), work, stop_mm=reach + 3 * step)
    area = np.bincount((t[thin & (t < reach + 2 * step)] / step).astype(np.int64))[1:]
    if not section.size or area.size < 3:
        return np.ones(chamber.shape, bool)
    smooth = np.convolve(area.astype(float), np.ones(3) / 3.0, mode="valid")
    wide = np.flatnonzero(smooth > FLARE_WIDENING * np.median(section))
    return t < (int(wide[0]) + 1.5) * step if wide.size else np.ones(chamber.shape, bool)


def _vessel_junctions(labels: np.ndarray, dist: np.ndarray, work: sitk.Image) -> None:
    """Hand the start of each vessel back from the chamber it leaves, in place.

    Where a vein opens into the right atrium (or the aortic root into the outflow tract)
    without a narrowing, the watershed puts the border somewhere along the tube.  (The
    pulmonary trunk starts at a valve narrowing and is left to the watershed: the thin
    infundibulum of the right ventricle would look like a tube here.)  Chamber voxels near the
    vessel whose local thickness is no more than the vessel's (they lie in the tube, not in the
    chamber's body) join the vessel, up to where the tube flares into the chamber
    (:func:`_before_flare`).  A vessel whose section grows by :data:`NECK_WIDENING` within its
    first three steps from the border starts at a neck the watershed already found (an aortic
    annulus with the sinuses above it), and keeps its border.
    """
    present = {int(v) for v in np.unique(labels)}
    pairs = [(LABELS.value_of(c), LABELS.value_of(v), k, reach) for c, v, k, reach in _JUNCTIONS
             if LABELS.value_of(c) in present and LABELS.value_of(v) in present]
    pairs = [(c, v, k, reach) for c, v, k, reach in pairs
             if (_dilate(labels == v) & (labels == c)).any()]
    if not pairs:
        return
    step = max(work.GetSpacing())
    r_vessel = {v: float(np.percentile(dist[labels == v], 99)) for _, v, _, _ in pairs}
    thickness = _local_thickness(labels > 0, dist, work, np.arange(
        2 * step, 1.2 * max(r_vessel.values()) + 1.5 * step, step))
    for c, v, k, reach in pairs:
        vessel = labels == v
        section = _vessel_section(vessel, labels == c, work)
        if section.size >= 3 and section[2] >= NECK_WIDENING * section[0]:
            continue  # the vessel widens at once beyond the border: it lies at a neck (valve)
        r_v = r_vessel[v]
        near = _distance_to(vessel, work, reach * r_v) <= reach * r_v
        thin = (labels == c) & near & (thickness <= k * r_v + 0.5 * step)
        thin &= _before_flare(labels == c, vessel, thin, work, reach * r_v, section)
        comps, n = ndimage.label(thin | vessel)
        touching = np.unique(comps[vessel])
        labels[thin & np.isin(comps, touching[touching > 0])] = v


def _centre_chamber_borders(labels: np.ndarray, dist: np.ndarray, work: sitk.Image
                            ) -> dict[str, float]:
    """Put each border between two chambers in the middle of the orifice it crosses, in place.

    A valve orifice or septal defect is a short channel of nearly constant section between two
    wider cavities, and the watershed puts the border anywhere along it (where the channel
    meets the cavity at a slant, it is slightly narrower there).  Walking away from the border
    into each chamber (geodesic distance), the cross-section area stays that of the channel
    until the chamber widens; the border moves to the middle of the channel, i.e. by half the
    difference of the two channel lengths, each searched within :data:`NECK_SEARCH_RADII`
    radii of the border.  Returns the distance moved (mm) per ``"a/b"`` pair.
    """
    present = [c for c in CHAMBERS if LABELS.value_of(c) in labels]
    moved: dict[str, float] = {}
    step = max(work.GetSpacing())
    for name_a, name_b in itertools.combinations(present, 2):
        a_v, b_v = LABELS.value_of(name_a), LABELS.value_of(name_b)
        a, b = labels == a_v, labels == b_v
        start_a = a & _dilate(b)
        if not start_a.any():
            continue
        start_b = b & _dilate(a)
        reach = NECK_SEARCH_RADII * max(float(dist[start_a | start_b].max()), step)
        t_a, len_a = _channel_length(a, start_a, work, reach)
        t_b, len_b = _channel_length(b, start_b, work, reach)
        shift = 0.5 * (len_a - len_b)
        if shift >= step:
            labels[a & (t_a < shift)] = b_v
        elif shift <= -step:
            labels[b & (t_b < -shift)] = a_v
        else:
            continue
        moved[f"{name_a}/{name_b}"] = round(shift, 1)
    return moved


def _atrioventricular_grooves(labels: np.ndarray, arr: np.ndarray, dist: np.ndarray,
                              bone: np.ndarray, work: sitk.Image, *, threshold: float
                              ) -> dict[str, float]:
    """Give each atrium the part of its valve channel that runs through fat, in place.

    An atrioventricular valve's annulus lies where the orifice passes through the ventricle's
    myocardium; on its way from the atrium the channel may cross the fat of the
    atrioventricular groove, and the watershed may put the border where the channel leaves the
    atrium (a slit in the atrial wall, narrower than the orifice).  The ventricle's voxels
    within two ventricle radii of the border (geodesic) are the channel; its sections are the
    steps of the geodesic distance from the ventricle beyond it, which crosses the channel from
    the ventricle's side.  Each section's wall is the second layer of tissue beside it (lung
    and bone excluded), classified by HU (fat below half-way between the myocardium and fat).
    Walking from the border into the ventricle, past the atrial wall (the fat must start within
    :data:`ATRIAL_WALL_MM` and a voxel of the border), the sections walled by more than
    :data:`AV_GROOVE_FAT` fat join the atrium, up to the first walled by myocardium, provided
    two such sections follow (a ventricle walled by fat throughout, a wall too thin to see, is
    left alone).  Returns the distance moved (mm) per ``"atrium/ventricle"`` pair.
    """
    blood = labels > 0
    shell = _dilate(blood, iterations=2) & ~_dilate(blood) & ~bone & (arr > -500.0) & \
        (arr < threshold)
    fat = shell & (arr <= 0.5 * (_myocardium_hu(arr, shell) + FAT_HU))
    step = max(work.GetSpacing())
    moved: dict[str, float] = {}
    for atrium, ventricle in (("right_atrium", "right_ventricle"),
                              ("left_atrium", "left_ventricle")):
        a_v, v_v = LABELS.value_of(atrium), LABELS.value_of(ventricle)
        v = labels == v_v
        start = v & _dilate(labels == a_v)
        if not start.any():
            continue
        r_v = float(dist[v].max())
        # only t <= 2 r_v matters: the voxels the front passes are final, whatever the stop
        t = _geodesic(v, start, work, stop_mm=2 * r_v + step)
        far = v & (t > 2 * r_v)
        if not far.any():
            continue
        back = _geodesic(v, far, work, stop_mm=3 * r_v)
        channel = v & (t <= 2 * r_v)
        section = np.full(labels.shape, -1, np.int64)
        section[channel] = np.floor(np.maximum(back[start].max() - back[channel], 0.0) / step)
        # each tissue voxel of the shell walls the section of the blood voxel nearest to it
        box = bounding_box(channel, 3)
        nearest = ndimage.distance_transform_edt(~blood[box], return_indices=True)[1]
        ring = section[box][tuple(nearest[:, shell[box]])]
        keep = ring >= 0
        if not keep.any():
            continue
        # wall and fat voxels per section, summed over 3 sections (a coarse grid's noise)
        n_ring = np.convolve(np.bincount(ring[keep]), np.ones(3), mode="same")
        n_fat = np.convolve(np.bincount(ring[keep], weights=fat[box][shell[box]][keep],
                                        minlength=n_ring.size), np.ones(3), mode="same")
        grooved = n_fat > AV_GROOVE_FAT * np.maximum(n_ring, 1.0)
        first = int(np.argmax(grooved))  # the fat starts beyond the atrial wall, if any
        if not grooved[first] or first * step > ATRIAL_WALL_MM + step or \
                grooved[first:].all():
            continue
        groove = first + int(np.argmin(grooved[first:]))
        if grooved[groove:groove + 2].tolist() != [False, False]:
            continue
        labels[(section >= 0) & (section < groove)] = a_v
        moved[f"{atrium}/{ventricle}"] = round(groove * step, 1)
    return moved


def _channel_length(mask: np.ndarray, start: np.ndarray, work: sitk.Image, reach: float
                    ) -> tuple[np.ndarray, float]:
    """Geodesic distance inside ``mask`` from ``start`` and how far (mm) its level sets keep
    the area of the channel at ``start`` (at most ``reach``): the first step whose area
    (smoothed over 3 steps) exceeds :data:`NECK_WIDENING` times the channel's section."""
    step = max(work.GetSpacing())
    t = _geodesic(mask, start, work, stop_mm=reach + 3 * step)
    near = mask & (t < reach + 2 * step)
    # bin 0 is the seed layer itself (thicker than a step); smooth[j] is centred on bin j + 2
    area = np.bincount((t[near] / step).astype(np.int64))[1:].astype(float)
    if area.size < 4:  # the chamber ends within a few steps: no channel to measure
        return t, 0.0
    smooth = np.convolve(area, np.ones(3) / 3.0, mode="valid")
    section = smooth[0]
    wide = np.flatnonzero(smooth > NECK_WIDENING * section)
    end = (int(wide[0]) + 1.5) * step if wide.size else reach
    return t, min(end, reach)


def _pulmonary_valve(labels: np.ndarray, work: sitk.Image) -> float | None:
    """Move the right ventricle / pulmonary artery border back to the valve, in place.

    The watershed puts that border at the narrowest section between the ventricle and the
    branch ends, which in an adult is often the branches' origins: the trunk is left in the
    ventricle.  Walking back into the ventricle from that border, the cross-section area (the
    ventricle's voxels per step of geodesic distance) widens in the trunk and sinuses, narrows
    at the valve, then widens into the outflow tract and the ventricle's body.  The first local
    minimum of the smoothed area that lies at least :data:`VALVE_PROMINENCE` below the wider
    trunk before it, within :data:`VALVE_SEARCH_RADII` trunk radii of the border, is the valve;
    the ventricle's voxels before it join the pulmonary artery.  No such minimum (the border
    already is at the valve): nothing changes.  Returns the distance moved (mm) or None.
    """
    rv_v, pa_v = LABELS.value_of("right_ventricle"), LABELS.value_of("pulmonary_artery")
    rv, pa = labels == rv_v, labels == pa_v
    start = rv & _dilate(pa)
    if not start.any():
        return None
    step = max(work.GetSpacing())
    r_pa = float(np.percentile(_distance(pa, work)[pa], 99))
    reach = VALVE_SEARCH_RADII * max(r_pa, step)
    t = _geodesic(rv, start, work, stop_mm=reach + 3 * step)
    near = rv & (t < reach + 2 * step)
    bins = (t[near] / step).astype(np.int64)
    # bin 0 is the seed layer itself (thicker than a step); smooth[j] is centred on bin j + 2
    area = np.bincount(bins)[1:].astype(float)
    if area.size < 3:
        return None
    smooth = np.convolve(area, np.ones(3) / 3.0, mode="valid")
    for j in range(1, min(smooth.size - 1, int(reach / step) - 2)):
        # the dip must exceed the relative prominence and the counting noise of a coarse
        # grid (two standard deviations of a 3-step mean of voxel counts)
        dip = max(VALVE_PROMINENCE * smooth[j], 2.0 * np.sqrt(smooth[j] / 3.0))
        if smooth[j] < smooth[j - 1] and smooth[j] <= smooth[j + 1] and \
                smooth[:j].max() >= smooth[j] + dip:
            cut = (j + 2.5) * step
            trunk = rv & (t < cut)
            labels[trunk] = pa_v
            return cut
    return None


def _trim_atrial_veins(labels: np.ndarray, work: sitk.Image) -> int:
    """Unlabel the pulmonary veins' stems left in the left atrium, in place.

    The pulmonary veins open into the left atrium without a narrowing, and their ends lie too
    near the atrium to get a vessel marker, so the watershed leaves their stems in the atrium:
    they are the atrium's side tubes (:func:`_side_tubes`) for a ball of :data:`VEIN_OPENING`
    times its inscribed radius.  Runs after the edge refinement, so that no neighbour grows
    into the veins' voxels.  Returns the number of voxels unlabelled.
    """
    la = labels == LABELS.value_of("left_atrium")
    if not la.any():
        return 0
    veins = _side_tubes(la, VEIN_OPENING * float(_distance(la, work).max()), work)
    labels[veins] = 0
    return int(np.count_nonzero(veins))


def _side_tubes(mask: np.ndarray, r: float, work: sitk.Image) -> np.ndarray:
    """Tubes narrower than a ball of radius ``r`` (mm) that leave the body of ``mask``.

    ``mask`` opened with the ball, plus the rim within ``r / 2`` of the opened body (corners
    the ball cannot reach), is the body; of the rest, each part that reaches farther than the
    ball's diameter from it is a tube longer than wide; shorter parts (clipped corners) are not.
    """
    depth = _distance(mask, work)
    body = _distance_to(depth >= r, work, r) <= r
    body |= _distance_to(body, work, 0.5 * r) <= 0.5 * r
    tubes = np.zeros(mask.shape, bool)
    # every voxel of both, anchored at index 0: distances to the body as on the grid
    box = _anchored_box(mask | body, 1)
    if box is None:
        return tubes
    parts, n = ndimage.label(mask[box] & ~body[box])
    if n:
        reach = _label_max(_distance(~body[box], work), parts)
        tubes[box] = (reach > 2.0 * r)[parts] & (parts > 0)
    return tubes


def _vessel_wall(labels: np.ndarray, arr: np.ndarray, bone: np.ndarray, work: sitk.Image, *,
                 dim_hu: float, blood_cut: float, vessels: np.ndarray | None = None) -> int:
    """Add the aorta's mural thrombus, thickened wall or dim false lumen to it, in place.

    Slice by slice, rays from each aortic section's centre cross the unlabelled soft tissue
    around the lumen (above :data:`WALL_HU`, nearer the aorta than any other blood structure)
    until something else stops them.  Where most rays stop at fat or lung (a closed ring, as
    around an aneurysm sac), an ellipse fitted to the stops is the outer wall; when it lies at
    least :data:`THROMBUS_MIN_MM` beyond the lumen (thicker than a normal wall) the soft
    tissue inside it (darker than ``blood_cut``: what is brighter is another vessel running
    beside it) joins the aorta.  Failing that, the rays cross partially opacified blood
    (brighter than ``dim_hu``: a dissection's false lumen, slow flow in a sac; not
    ``vessels``, blood another step took out as a branch or vein) to where it meets the tissue
    around it (:func:`_section_wall`), and that blood inside the ellipse joins.  Sections whose
    neighbours (2 slices either way) do not agree on the radius, whose rays are not stopped
    (surrounded by other soft tissue) or whose ellipse fits badly (the arch cut lengthwise) are
    left as lumen; a few such slices between two fitted sections of one sac get the blend of
    their walls (:func:`_bridge_walls`).  Returns the number of voxels added.
    """
    ao_v = LABELS.value_of("aorta")
    aorta = labels == ao_v
    if not aorta.any():
        return 0
    sy, sx = work.GetSpacing()[1], work.GetSpacing()[0]
    others = (labels > 0) & ~aorta
    # tissue nearer the aorta than any other blood structure (not the heart's own wall)
    d_others = _distance(~others, work) if others.any() else np.full(arr.shape, np.inf)
    own = _distance(~aorta, work) < d_others
    tissue = (arr >= WALL_HU) & ~bone & ((labels == 0) | aorta) & own
    fat_or_lung = arr < WALL_HU
    dim = tissue & (arr > dim_hu)
    if vessels is not None:
        dim &= ~vessels
    fits: dict[tuple[int, int], tuple] = {}  # (z, section): ellipse
    for z in np.flatnonzero(aorta.any(axis=(1, 2))):
        # lumen channels closer than a thrombus is thick share one sac (a lumen split by
        # thrombus or a flap): one section
        near = ndimage.distance_transform_edt(~aorta[z], sampling=(sy, sx)) <= \
            0.5 * THROMBUS_MIN_MM
        comps, n = ndimage.label(near)
        for c in range(1, n + 1):
            found = _section_wall((comps == c) & aorta[z], tissue[z], dim[z], fat_or_lung[z],
                                  others[z], (sy, sx), soft=tissue[z] & (arr[z] < blood_cut))
            if found is not None:
                fits[(int(z), c)] = found
    added = 0
    yy, xx = np.mgrid[0:arr.shape[1], 0:arr.shape[2]]
    walls: list[tuple[int, tuple]] = []
    fills = []
    for (z, _c), (fit, fill) in fits.items():
        rad = float(np.sqrt(fit[2] * fit[3]))
        # continuity: sections within 2 slices must have been fitted and agree on the radius
        near = [float(np.sqrt(f[2] * f[3])) for (zz, _), (f, _) in fits.items()
                if 0 < abs(zz - z) <= 2]
        if len(near) < 2 or abs(float(np.median(near)) - rad) > WALL_FIT_MM * 2:
            continue
        walls.append((int(z), fit))
        fills.append((int(z), fit[5], fill))
    fills += [(z, inside, tissue[z]) for z, inside in _bridge_walls(walls, aorta, work)]
    for z, inside, fill in fills:
        disk = inside(xx * sx, yy * sy) <= 1.0
        grow = disk & fill & (labels[z] == 0)
        labels[z][grow] = ao_v
        added += int(grow.sum())
    return added + _join_channels(labels, own & (d_others > ATRIAL_WALL_MM), work)


def _section_wall(sec: np.ndarray, tissue: np.ndarray, dim: np.ndarray,
                  fat_or_lung: np.ndarray, others: np.ndarray, spacing_yx: tuple[float, float], *,
                  soft: np.ndarray) -> tuple[tuple, np.ndarray] | None:
    """The outer wall of one aortic section (2D, see :func:`_vessel_wall`) and what inside it
    may join the aorta, or None.

    Rays from the section's centre first cross soft tissue to a closed ring of fat or lung
    (mural thrombus: the ``soft`` tissue joins, not the contrast of a vessel beside it);
    failing that, they cross partially opacified blood (``dim``; a septum thinner than
    :data:`THROMBUS_MIN_MM` between it and the lumen, a dissection's flap, is crossed) to
    where it meets the tissue around it, and only that blood joins.
    """
    sy, sx = spacing_yx
    step = min(sx, sy)
    yy, xx = np.nonzero(sec)
    cy, cx = yy.mean(), xx.mean()
    r_lumen = float(np.sqrt(sec.sum() * sx * sy / np.pi))
    if r_lumen < 3.0:
        return None
    reach = r_lumen + WALL_MAX_MM
    radii = np.arange(0.0, reach, 0.5 * step)
    angles = np.linspace(0.0, 2.0 * np.pi, WALL_RAYS, endpoint=False)
    py = cy + np.outer(np.sin(angles), radii) / sy
    px = cx + np.outer(np.cos(angles), radii) / sx
    sac = _dim_sac(dim | sec, spacing_yx) & (tissue | sec)
    for through, closing, gap in ((tissue, fat_or_lung, 0),
                                  (sac, ~others, int(THROMBUS_MIN_MM / (0.5 * step)))):
        closed, ey, ex = _ray_stops(py, px, through | sec, closing, gap=gap)
        if closed < WALL_CLOSED_FRACTION:
            continue
        fit = _fit_wall(ex * sx, ey * sy, step)
        if fit is None:
            continue
        rad = float(np.sqrt(fit[2] * fit[3]))  # equivalent radius
        if fit[4] > WALL_FIT_MM or max(fit[2], fit[3]) > reach or \
                rad < r_lumen + THROMBUS_MIN_MM:  # a normal wall is left to the lumen
            continue
        return fit, soft if through is tissue else through
    return None


def _dim_sac(blood: np.ndarray, spacing_yx: tuple[float, float]) -> np.ndarray:
    """An aortic section's lumen and partially opacified blood as one sac (2D).

    Closed with a disc of half :data:`THROMBUS_MIN_MM` (a dissection's flap or a thrombus
    strand between a bright and a dim channel is thinner) and its holes filled (the noise of
    dim blood dips below its threshold here and there)."""
    half = 0.5 * THROMBUS_MIN_MM
    # on the blood's box grown beyond the closing's reach: the closed sac lies inside it, and
    # what touches its empty rim touches the slice's border (the same holes are filled)
    box = bounding_box(blood, [int(np.ceil(half / s)) + 2 for s in spacing_yx])
    near = ndimage.distance_transform_edt(~blood[box], sampling=spacing_yx) <= half
    out = blood.copy()
    out[box] |= ndimage.binary_fill_holes(
        ndimage.distance_transform_edt(near, sampling=spacing_yx) > half)
    return out


def _ray_stops(py: np.ndarray, px: np.ndarray, through: np.ndarray, closing: np.ndarray, *,
               gap: int = 0) -> tuple[float, np.ndarray, np.ndarray]:
    """Where rays (rows of sample points, voxel units) first leave ``through``.

    Runs of fewer than ``gap`` samples outside ``through`` with ``through`` beyond them (a
    septum) are crossed.  Returns the fraction of rays that stop, past their first sample, on
    a ``closing`` voxel inside the slice, and those rays' stop points (y, x in voxels).
    """
    iy, ix = np.rint(py).astype(int), np.rint(px).astype(int)
    inside = (iy >= 0) & (iy < through.shape[0]) & (ix >= 0) & (ix < through.shape[1])
    ok = np.zeros(iy.shape, bool)
    ok[inside] = through[iy[inside], ix[inside]]
    if gap > 1:
        ok = ndimage.binary_closing(np.pad(ok, ((0, 0), (gap, gap)), mode="edge"),
                                    structure=np.ones((1, gap), bool))[:, gap:-gap]
    stops = np.argmin(ok, axis=1)  # first sample that is not ``through``
    rows = np.arange(len(stops))
    at = inside[rows, stops]
    closed = ~ok.all(axis=1) & (stops > 0) & at
    closed[closed] = closing[iy[rows, stops][closed], ix[rows, stops][closed]]
    return float(closed.mean()), py[closed, stops[closed]], px[closed, stops[closed]]


def _bridge_walls(walls: list[tuple[int, tuple]], aorta: np.ndarray, work: sitk.Image
                  ) -> list[tuple[int, Callable]]:
    """Outer walls for the slices between two fitted sections of one sac.

    A tube's section changes little over its own radius: where the fit failed in a few slices
    (a ray carried past the wall, a badly fitting outline) between two fitted sections of the
    same sac (each centre inside the other's ellipse) no farther apart than their equivalent
    radius, the wall there is the blend of the two ellipses' implicit functions, weighted by
    the slice's position between them (itself an ellipse).  Slices whose lumen does not lie
    inside the blended wall are left alone.  Returns ``(z, inside)`` per bridged section.
    """
    sx, sy, sz = work.GetSpacing()
    yy, xx = np.mgrid[0:aorta.shape[1], 0:aorta.shape[2]]
    bridged: list[tuple[int, Callable]] = []
    walls = sorted(walls, key=lambda w: w[0])
    for i, (z1, f1) in enumerate(walls):
        same = [(z2, f2) for z2, f2 in walls[i + 1:] if z2 > z1
                and f1[5](np.array(f2[0]), np.array(f2[1])) <= 1.0
                and f2[5](np.array(f1[0]), np.array(f1[1])) <= 1.0]
        if not same:
            continue
        z2, f2 = same[0]  # the next section of the same sac
        radius = 0.5 * (np.sqrt(f1[2] * f1[3]) + np.sqrt(f2[2] * f2[3]))
        if z2 - z1 < 2 or (z2 - z1) * sz > WALL_BRIDGE_RADII * radius:
            continue
        for z in range(z1 + 1, z2):
            t = (z - z1) / (z2 - z1)

            def inside(px: np.ndarray, py: np.ndarray, t: float = t, a: Callable = f1[5],
                       b: Callable = f2[5]) -> np.ndarray:
                return (1.0 - t) * a(px, py) + t * b(px, py)

            if (aorta[z] & (inside(xx * sx, yy * sy) <= 1.0)).any():
                bridged.append((z, inside))
    return bridged


def _join_channels(labels: np.ndarray, own: np.ndarray, work: sitk.Image) -> int:
    """Add what lies between an aortic section's lumen channels, in place.

    Lumen channels closer than a thrombus is thick (:data:`THROMBUS_MIN_MM`) share one sac
    (a lumen split by thrombus or a flap, as in :func:`_vessel_wall`): in each axial slice,
    where a sac holds more than one channel, the aorta closed with a disc of half that
    distance is its section, and the holes of every section are filled; the unlabelled voxels
    inside that are ``own`` (the aorta's, away from the heart's wall) join the aorta.  Returns
    the number of voxels added.
    """
    ao_v = LABELS.value_of("aorta")
    sy, sx = work.GetSpacing()[1], work.GetSpacing()[0]
    # the aorta's main body only: an island beside it (a branch cut off by the edge
    # refinement, dropped later) is not a channel of its sac
    parts, n = ndimage.label(labels == ao_v)
    main = parts == 1 + int(np.argmax(np.bincount(parts.ravel())[1:])) if n else parts > 0
    added = 0
    # slices cut to the aorta's box grown in-plane past its sacs' reach by two voxels (the
    # same result: every sac and a background frame around it)
    box = bounding_box(main, [0, *(int(np.ceil(0.5 * THROMBUS_MIN_MM / d)) + 2 for d in (sy, sx))])
    if box is None:
        return 0
    main, own, labels = main[box], own[box], labels[box]
    for z in np.flatnonzero(main.any(axis=(1, 2))):
        aorta = main[z]
        near = ndimage.distance_transform_edt(~aorta, sampling=(sy, sx)) <= 0.5 * THROMBUS_MIN_MM
        sacs, _ = ndimage.label(near)
        channels, _ = ndimage.label(aorta)
        pairs = np.unique(np.column_stack([sacs[channels > 0], channels[channels > 0]]), axis=0)
        split = np.bincount(pairs[:, 0], minlength=sacs.max() + 1)[sacs] > 1  # several channels
        closed = split & (ndimage.distance_transform_edt(near, sampling=(sy, sx)) >
                          0.5 * THROMBUS_MIN_MM)
        grow = ndimage.binary_fill_holes(closed | aorta) & own[z] & (labels[z] == 0)
        labels[z][grow] = ao_v
        added += int(grow.sum())
    return added


def _fit_wall(x: np.ndarray, y: np.ndarray, step: float) -> tuple | None:
    """The aorta's outer wall through the rays' stops (mm): :func:`_fit_ellipse`, then again
    without the stops farther from it than :data:`WALL_OUTLIER` times its median misfit (at
    least ``step``): soft tissue running beside the aorta carries a few rays past its wall,
    and a least-squares fit follows them."""
    fit = _fit_ellipse(x, y)
    if fit is None:
        return None
    keep = _radial_misfit(fit[0], fit[1], fit[5], x, y) <= max(WALL_OUTLIER * fit[4], step)
    if keep.all() or keep.sum() < 6:
        return fit
    return _fit_ellipse(x[keep], y[keep]) or fit


def _fit_ellipse(x: np.ndarray, y: np.ndarray) -> tuple | None:
    """Algebraic least-squares ellipse through points (mm): an oblique cut of a round vessel.

    Returns ``(cx, cy, a, b, misfit, inside)`` -- centre, semi-axes, the median radial misfit
    (mm) of the points and ``inside(x, y)``, which is <= 1 inside -- or None when the points
    do not lie on an ellipse no more elongated than :data:`WALL_MAX_ELONGATION`.
    """
    mx, my = float(x.mean()), float(y.mean())
    u, v = x - mx, y - my
    design = np.column_stack([u * u, u * v, v * v, u, v])
    (qa, qb, qc, qd, qe), *_ = np.linalg.lstsq(design, np.ones_like(u), rcond=None)
    quad = np.array([[qa, qb / 2.0], [qb / 2.0, qc]])
    if np.linalg.det(quad) <= 0.0:
        return None  # a hyperbola or parabola
    u0, v0 = np.linalg.solve(2.0 * quad, [-qd, -qe])
    level = 1.0 - (qa * u0 * u0 + qb * u0 * v0 + qc * v0 * v0 + qd * u0 + qe * v0)
    eig = np.linalg.eigvalsh(quad)
    if level <= 0.0 or eig.min() <= 0.0:
        return None
    a, b = np.sqrt(level / eig)
    if max(a, b) > WALL_MAX_ELONGATION * min(a, b):
        return None
    cx, cy = mx + u0, my + v0

    def inside(px: np.ndarray, py: np.ndarray) -> np.ndarray:
        du, dv = px - cx, py - cy
        return (qa * du * du + qb * du * dv + qc * dv * dv) / level

    misfit = float(np.median(_radial_misfit(cx, cy, inside, x, y)))
    return cx, cy, float(a), float(b), misfit, inside


def _radial_misfit(cx: float, cy: float, inside: Callable, x: np.ndarray, y: np.ndarray
                   ) -> np.ndarray:
    """Distance (mm) of each point from an ellipse along the ray from its centre."""
    r = np.hypot(x - cx, y - cy)
    return np.abs(r - r / np.sqrt(np.maximum(inside(x, y), 1e-12)))


def _refine_boundaries(labels: np.ndarray, arr: np.ndarray, dist: np.ndarray,
                       bone: np.ndarray, work: sitk.Image, *, threshold: float) -> float:
    """Move each blood structure's boundary to half-way between its own blood and its wall.

    Partial volume puts the edge of an object at the midpoint between its own HU and that of
    what borders it.  The global threshold is low enough for the least opacified chamber; for
    each structure the edge is the midpoint between its median blood HU and the wall's: the
    myocardium's HU (the soft tissue around the blood pool) for the chambers and the arteries,
    whose walls are thick; for the thin-walled caval veins the median of the tissue two voxels
    out (lung and bone excluded, kept between fat and the myocardium's HU), usually fat.
    Voxels below the edge leave the structure; neighbouring unlabelled voxels above it join
    (one voxel each way).  Returns the myocardium HU.
    """
    blood = labels > 0
    near = _dilate(blood)
    shell = _dilate(blood, iterations=2) & ~near
    myo_hu = _myocardium_hu(arr, shell & (arr < threshold))
    tissue = shell & ~bone & (arr < threshold) & (arr > -500.0)  # not blood, bone or lung
    veins = {LABELS.value_of("superior_vena_cava"), LABELS.value_of("inferior_vena_cava")}
    deep_mm = 2.0 * max(work.GetSpacing())
    for v in (int(v) for v in np.unique(labels) if v):
        mask = labels == v
        deep = mask & (dist >= deep_mm)
        level = float(np.median(arr[deep])) if deep.sum() > 50 else float(np.median(arr[mask]))
        outside = myo_hu
        if v in veins:  # thin-walled: the lumen borders the tissue around it
            around = arr[_dilate(mask, iterations=2) & tissue]
            if around.size > 50:
                outside = float(np.clip(np.median(around), FAT_HU, myo_hu))
        cut = 0.5 * (level + outside)
        labels[mask & (arr < cut)] = 0
        labels[_reconnect(mask, labels == v, work)] = v
        grow = _dilate(labels == v) & (labels == 0) & (arr >= cut) & ~bone
        labels[grow] = v
    return myo_hu


def _myocardium_hu(arr: np.ndarray, shell: np.ndarray) -> float:
    """Median HU of the soft tissue (above -30 HU) in ``shell`` (100 HU when too few)."""
    soft = arr[shell & (arr > -30.0)]
    return float(np.median(soft)) if soft.size > 100 else 100.0


def _reconnect(before: np.ndarray, after: np.ndarray, work: sitk.Image) -> np.ndarray:
    """Voxels of ``before`` to restore so that the parts of ``after`` stay joined.

    Trimming a structure's edge at a HU level is a partial-volume correction; it must not cut
    the structure apart where its lumen narrows to a dim neck (a lumen narrowed by thrombus,
    partial volume in a small channel).  Each part of ``after`` of at least
    :data:`RECONNECT_ML` that ``before`` joined to the largest part gets back the steepest
    path (face neighbours, geodesic distance inside ``before``) from the largest part to it,
    and the trimmed voxels touching that path, when the path is at most :data:`RECONNECT_MM`.
    """
    comps, n = ndimage.label(after)
    restore = np.zeros(before.shape, bool)
    if n <= 1:
        return restore
    sizes = np.bincount(comps.ravel())[1:]
    main = int(np.argmax(sizes)) + 1
    min_voxels = RECONNECT_ML / _voxel_ml(work)
    steps = [np.array(d) for d in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0),
                                   (0, 0, 1), (0, 0, -1))]
    for i in np.flatnonzero(sizes >= min_voxels) + 1:
        if i == main:
            continue
        d = _geodesic(before, comps == i, work, stop_mm=RECONNECT_MM)
        d = np.where(before, d, np.inf)
        on_main = np.where(comps == main, d, np.inf)
        p = np.array(np.unravel_index(int(np.argmin(on_main)), d.shape))
        if not np.isfinite(on_main[tuple(p)]) or on_main[tuple(p)] > RECONNECT_MM:
            continue
        path = np.zeros(before.shape, bool)
        while comps[tuple(p)] != i:
            path[tuple(p)] = True
            nbs = [p + s for s in steps
                   if all(0 <= c < m for c, m in zip(p + s, d.shape, strict=True))]
            q = min(nbs, key=lambda x: d[tuple(x)])
            if d[tuple(q)] >= d[tuple(p)]:
                break
            p = q
        restore |= _dilate(path) & before & ~after
    return restore


def _add_myocardium(labels: np.ndarray, arr: np.ndarray, threshold: float, work: sitk.Image,
                    *, wall_mm: float, myo_hu: float) -> float:
    """Label soft tissue around the chambers as myocardium, in place.

    Soft tissue (above the epicardial edge, up to the blood threshold) connected to the
    chambers, within ``wall_mm`` of the left ventricle, :data:`THIN_WALL_MM` of the right
    ventricle or :data:`ATRIAL_WALL_MM` of the atria (whichever chamber is nearest), and for
    the thin walls nearer the chamber than any great artery (the atrial wall runs on as a
    muscular sleeve around the caval veins where they join).  The epicardial edge is half-way
    between the wall's HU ``myo_hu`` and the tissue around the heart: a first growth to
    half-way to fat (:data:`FAT_HU`) finds that tissue (the median of the unlabelled voxels
    three voxels outside, beyond the edge's partial volume; lung and blood excluded, kept
    between fat and the wall's HU), the
    wall is then grown again to half-way to it.  Returns that edge (HU).
    """
    lv = labels == LABELS.value_of("left_ventricle")
    rv = labels == LABELS.value_of("right_ventricle")
    atria = np.isin(labels, [LABELS.value_of("left_atrium"), LABELS.value_of("right_atrium")])
    if not (lv.any() or rv.any() or atria.any()):
        lv = labels > 0
    chambers = lv | rv | atria
    # exact up to the widest wall (beyond it a voxel is in no wall, whichever chamber is
    # nearest); an artery only matters within the thin walls; an absent structure is at inf
    thin_reach = max(THIN_WALL_MM, ATRIAL_WALL_MM)
    d_lv, d_rv, d_at = (_distance_to(m, work, max(wall_mm, thin_reach)) for m in (lv, rv, atria))
    arteries = np.isin(labels, [LABELS.value_of("aorta"), LABELS.value_of("pulmonary_artery")])
    to_artery = _distance_to(arteries, work, thin_reach)
    # the LV wall wraps the aortic root's base; thin walls stop where an artery is nearer
    d_thin = np.minimum(d_rv, d_at)
    thin_mm = np.where(d_rv <= d_at, THIN_WALL_MM, ATRIAL_WALL_MM)
    near = np.where(d_lv <= d_thin, d_lv <= wall_mm, (d_thin <= thin_mm) & (d_thin < to_artery))
    candidates = (arr <= threshold) & (labels == 0) & near
    # grown on the bounding box of the candidates and chambers plus a voxel (the same result)
    box = bounding_box(candidates | chambers, 1) or tuple(slice(0, 0) for _ in labels.shape)

    def grow(edge: float) -> np.ndarray:
        soft = candidates[box] & (arr[box] > edge)
        grown, _ = ndimage.label(soft | chambers[box])
        touching = np.unique(grown[chambers[box]])
        out = np.zeros(labels.shape, bool)
        out[box] = ndimage.binary_opening(np.isin(grown, touching[touching > 0]) & soft,
                                          iterations=1)
        return out

    myo = grow(0.5 * (myo_hu + FAT_HU))
    heart = myo | chambers
    around = arr[_dilate(heart, iterations=3) & ~_dilate(heart, iterations=2) & (labels == 0)
                 & (arr > -500.0) & (arr < threshold)]
    outside = float(np.clip(np.median(around), FAT_HU, myo_hu)) if around.size > 50 else FAT_HU
    edge = 0.5 * (myo_hu + outside)
    labels[grow(edge)] = LABELS.value_of("myocardium")
    return edge


def _fill_heart(labels: np.ndarray, arr: np.ndarray, work: sitk.Image, *,
                blood_cut: float) -> None:
    """Close the heart: unlabelled soft tissue or blood enclosed by chambers and myocardium.

    Poorly mixed blood (a right atrium fed by unopacified IVC blood) falls below the blood
    threshold and is not reached by the wall growth; enclosed in the heart, it becomes
    ``blood_pool`` when it is brighter than ``blood_cut``, else myocardium.  In place.
    """
    heart_values = [LABELS.value_of(c) for c in CHAMBERS] + [LABELS.value_of("myocardium")]
    heart = np.isin(labels, heart_values)
    if not heart.any():
        return
    r = max(1, int(round(4.0 / min(work.GetSpacing()))))
    box = bounding_box(heart, r)  # the closing, and the holes it encloses, lie in this box
    closed = ndimage.binary_closing(heart[box], structure=ndimage.generate_binary_structure(
        3, 1), iterations=r, border_value=0)
    filled = np.zeros(heart.shape, bool)
    filled[box] = ndimage.binary_fill_holes(closed, structure=np.array(
        [[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], bool))
    gap = filled & (labels == 0) & (arr > -30.0)
    cavity = ndimage.binary_opening(gap & (arr >= blood_cut), iterations=1)  # not thin walls
    comps, n = ndimage.label(cavity)
    if n:
        sizes = np.bincount(comps.ravel()) * _voxel_ml(work)
        cavity = (sizes >= 0.1)[comps] & cavity  # not specks either
    labels[cavity] = LABELS.value_of("blood_pool")
    labels[gap & ~cavity] = LABELS.value_of("myocardium")


def _keep_structures(labels: sitk.Image, structures: Sequence[str]) -> sitk.Image:
    arr = sitk.GetArrayFromImage(labels)
    keep = [LABELS.value_of(m) for s in structures for m in COMPOSITES.get(s, (s,))]
    arr[~np.isin(arr, keep)] = 0
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(labels)
    return out
