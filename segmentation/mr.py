"""MRI heart segmentation (bright-blood bSSFP/cine, 3D whole-heart, LGE) from seeds.

Input is a scalar 3D image in any intensity scale (raw, min-max or z-scored) and any grid:
anisotropic short-axis stacks (5-10 mm slices) and isotropic 3D volumes.  Output is a uint8
label map with the project's label values, on the image grid.

Pipeline (details and measurements in ``docs/evaluation.md``)
--------
1. Robust intensity normalisation (1st/99th percentiles -> 0/1); optional N4 bias-field
   correction fitted on a ~4 mm copy (``bias_correction``; off by default, measured no gain).
2. Crop to the clicks +- 60 mm; Gaussian smoothing in-plane only for stacks; sub-millimetre 3D
   volumes are segmented on a ~1.2 mm grid and interpolated back.
3. Blood threshold half-way (0.35 of the way in 3D volumes and single slices) from the dark
   tissue to the dimmest clicked cavity; clicks on papillary muscles move to the nearest deep
   blood.  Clearly dark voxels and blood regions
   holding no click are the background marker.
4. The clicked structures grow together (:func:`segmentation.seeded.grow_from_seeds`: geodesic
   competition on the gradient magnitude), slice by slice in thick-slice stacks.  In 3D volumes a
   chamber (LV, RV, LA, RA) keeps at most 2.25x (RV: 8x) the volume of the largest ball
   inscribed in the blood around its click, the part its front reaches first (a size prior
   against leaks through necks), opened with a 5 mm ball; the ventricles and the right atrium
   are instead opened with 0.6 of their inscribed radius (arterial valves, caval veins), the
   rim within half that radius given back, and bordered at their own half-maximum.
5. Per structure: keep the component holding the click, fill holes (slice-wise in stacks); the
   left ventricle of a short-axis stack is re-thresholded per slice half-way between its blood
   and its wall, then taken as its per-slice convex hull plus one voxel (papillary
   muscles and trabeculae count as cavity) of the one blob that continues the neighbouring
   slice's cavity, swept outwards from the click, plus the next voxels out that are brighter
   than 0.35 of the way from its wall to its blood (partial-volume endocardium).  The right
   ventricle of a stack only shrinks from its click towards the apex, takes there the blood
   against the septum within its neighbour slice's footprint, and gets a one-voxel rim (after
   the myocardium).
   Then the shared post-processing
   (:func:`segmentation.postprocess.clean_labels`: islands, holes, label-aware smoothing,
   minimum size, a warning for every requested structure that came out empty).
6. ``myocardium``: the band of myocardial intensity around the left-ventricular cavity, within a
   thickness learned from the myocardium click (twice its depth) or 10 mm, stopped at the
   epicardium's strong edges; in stacks its thickness is then smoothed around the cavity
   (running median over 90 degrees) so that it is a ring.
7. Without a ``left_ventricle`` seed in a short-axis stack, the LV is found automatically: the
   roundest, most convex, most central bright blob of the mid slices with a mid-grey wall,
   consistent between slices.

Examples
--------
>>> labels = segment_mr(image, seeds=[Seed("left_ventricle", (10.0, 20.0, 30.0))])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from cardioplan.errors import InputError, SegmentationError
from cardioplan.labels import LABELS
from cardioplan.seeds import Seed
from segmentation.postprocess import clean_labels
from segmentation.seeded import (
    arrival_time,
    component_at,
    edge_speed,
    grow_from_seeds,
    seed_indices,
    to_image,
)

__all__ = ["segment_mr", "MR_STRUCTURES", "BLOOD_STRUCTURES"]

log = logging.getLogger(__name__)

BLOOD_STRUCTURES = ("left_ventricle", "right_ventricle", "left_atrium", "right_atrium", "aorta",
                    "pulmonary_artery", "superior_vena_cava", "inferior_vena_cava",
                    "blood_pool")
"""Structures that are bright blood in bSSFP/whole-heart MR (and mid-grey in LGE)."""

MR_STRUCTURES = (*BLOOD_STRUCTURES, "myocardium")
"""Structures the MR pipeline can produce."""

_ROI_MARGIN_MM = 60.0
_THICK_RATIO = 2.0
_SLICE_GROWTH_MM = 4.0
_SNAP_MM = 8.0
_WORK_MM = 1.2
_AWAY_2D = 0.3
_MYO_DEFAULT_MM = 10.0
_MYO_THICKNESS_FACTOR = 2.0
_APEX_GROWTH_MM = 3.0
_NECK_MM = 2.0
_REFINE_MM = 3.0
_EPI_EDGE_PCT = 80.0
_LV_NECK_MM = 2.0
_LV_RIM_FRACTION = 0.35  # chosen among 0.25 / 0.35 / 0.5 on ACDC
_RV_RIM_STEPS = 2  # chosen among 1 / 2 / 3 on ACDC
_RV_WALL_GAP_DEG = 5.0  # one of the 72 directions: a closed ring (15 / 25 measured)
_LV_WALL_GAP_DEG = 30.0  # chosen among 5 / 20 / 30 / 45 / 90 on ACDC
_LV_BASE_GAP_DEG = 120.0  # 120 / 150 equal on ACDC; 90 cost one automatic LV
_RV_WALL_MM = 8.0  # 5 / 6 / 8 equal on ACDC; 8 keeps a margin for thin predicted walls
_MYO_SMOOTH_DEG = 90.0
_ANGLE_BINS = 72
_EPI_MIN_MM = 3.0
_BLOOD_FRACTION_STACK = 0.5
_BLOOD_FRACTION_VOLUME = 0.35
_CHAMBER_BALLS = {"left_ventricle": 2.25, "right_ventricle": 8.0, "right_atrium": 2.25}
_NECK_FRACTION = 0.6
_GIVE_BACK_FRACTION = 0.5
_WALL_MM = 5.0
_NECKED = ("left_ventricle", "right_ventricle", "right_atrium")
_CHAMBER_OPEN_MM = 5.0
_RIDGE_INNER_BALLS = 1.25  # the left atrium's watershed markers, chosen on LA2018
_RIDGE_OUTER_BALLS = 4.5
_RIDGE_SMOOTH_MM = 0.6
_OWN_FRACTION = 0.5
_CHAMBERS = ("left_ventricle", "right_ventricle", "left_atrium", "right_atrium")
_LEVEL_PCT_STACK = 65.0


def _check_image(image: sitk.Image) -> None:
    if image.GetDimension() != 3:
        raise InputError(f"the MR pipeline needs a 3D image, got {image.GetDimension()}-D; "
                         "wrap a single slice as a one-slice volume")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("the MR pipeline needs a scalar (grey-level) image, got "
                         f"{image.GetNumberOfComponentsPerPixel()} components per voxel")


def _normalise(arr: np.ndarray) -> np.ndarray:
    """Map the 1st..99th percentile to 0..1 (float32): intensity-scale invariance."""
    sample = arr[:: max(1, arr.shape[0] // 32)]
    lo, hi = np.percentile(sample, [1.0, 99.0])
    if not hi > lo:
        raise SegmentationError("the image is (almost) uniform; there is nothing to segment")
    return ((arr - lo) / (hi - lo)).astype(np.float32)


def _thick_axis(spacing_zyx: Sequence[float], shape: Sequence[int]) -> int | None:
    """Index (numpy order) of the slice axis of a thick-slice stack or of a single slice, or
    None for a volume to process in 3D."""
    if 1 in shape:
        return list(shape).index(1)
    s = np.asarray(spacing_zyx, float)
    ax = int(np.argmax(s))
    others = np.delete(s, ax)
    return ax if s[ax] >= _THICK_RATIO * others.max() else None


def _roi(shape: tuple[int, ...], points: list[tuple[int, int, int]],
         spacing_zyx: Sequence[float], thick: int | None) -> tuple[slice, ...]:
    pts = np.asarray(points)
    out = []
    for ax in range(3):
        if ax == thick:
            out.append(slice(0, shape[ax]))
            continue
        m = int(math.ceil(_ROI_MARGIN_MM / spacing_zyx[ax]))
        out.append(slice(max(int(pts[:, ax].min()) - m, 0),
                         min(int(pts[:, ax].max()) + m + 1, shape[ax])))
    return tuple(out)


def _sigmas(spacing_zyx: Sequence[float], thick: int | None, mm: float) -> list[float]:
    return [0.0 if ax == thick else mm / s for ax, s in enumerate(spacing_zyx)]


def _gradient_magnitude(smooth: np.ndarray, spacing_zyx: Sequence[float],
                        thick: int | None) -> np.ndarray:
    g2 = np.zeros_like(smooth)
    for ax, s in enumerate(spacing_zyx):
        if ax == thick or smooth.shape[ax] < 2:
            continue
        g2 += (np.gradient(smooth, s, axis=ax)) ** 2
    return np.sqrt(g2)


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centres[int(np.argmax(between))])


def _blood_threshold(smooth: np.ndarray, clicks: list[tuple[str, tuple[int, int, int]]],
                     spacing: tuple[float, ...], thick: int | None) -> float:
    """Blood/tissue threshold at half-way between the dark tissue and the clicked cavities.

    The dark level is the median below the Otsu threshold of the region; the blood level is the
    dimmest clicked cavity's local level (after moving its click off papillary muscles).
    Half-maximum is where an edge blurred by the scanner's point-spread function lies, in any
    contrast where blood is brighter than its wall: bSSFP, whole-heart and LGE alike.  That
    holds in short-axis cine stacks, whose blood is homogeneous; in 3D volumes and single
    slices (whole-heart, LGE, axial views of every chamber) the blood is less uniform (inflow,
    LGE's grey pool) and dimmer cavities than the clicked one's centre are common, so the cut
    sits lower (``_BLOOD_FRACTION_VOLUME``; measured in ``docs/evaluation.md``).  In stacks a
    cavity's level is the 65th percentile of its 3 mm ball rather than the median: the ball
    around the deepest point of a thin systolic right ventricle is half wall, whose median
    would drop the threshold into the myocardium.
    """
    t = _otsu(smooth)
    stack = thick is not None and smooth.shape[thick] > 1
    pct = _LEVEL_PCT_STACK if stack else 50.0
    levels = [_local_level(smooth, _snap(smooth, p, spacing, thick, t), spacing, pct=pct)
              for s, p in clicks if s in BLOOD_STRUCTURES]
    if not levels or not (smooth < t).any():
        return t
    dark = float(np.median(smooth[smooth < t]))
    frac = _BLOOD_FRACTION_STACK if stack else _BLOOD_FRACTION_VOLUME
    return dark + frac * (min(levels) - dark)


def _local_level(smooth: np.ndarray, p: tuple[int, int, int], spacing_zyx: Sequence[float],
                 radius_mm: float = 3.0, pct: float = 50.0) -> float:
    sl = tuple(slice(max(c - max(int(radius_mm // s), 0), 0), c + max(int(radius_mm // s), 0) + 1)
               for c, s in zip(p, spacing_zyx, strict=True))
    return float(np.percentile(smooth[sl], pct))


def _per_slice(fn: Callable[[np.ndarray], np.ndarray], mask: np.ndarray,
               thick: int | None) -> np.ndarray:
    """Apply a 2D operation slice by slice along the thick axis (3D when isotropic)."""
    if thick is None:
        return fn(mask)
    out = np.zeros_like(mask)
    for i in range(mask.shape[thick]):
        idx = [slice(None)] * 3
        idx[thick] = i
        sl = mask[tuple(idx)]
        if sl.any():
            out[tuple(idx)] = fn(sl)
    return out


def _convex_hull_2d(mask2d: np.ndarray) -> np.ndarray:
    """The filled convex hull of a 2D mask (pixel centres)."""
    from PIL import Image, ImageDraw
    from scipy.spatial import ConvexHull, QhullError

    pts = np.argwhere(mask2d)
    if len(pts) < 4:
        return mask2d
    try:
        hull = pts[ConvexHull(pts).vertices]
    except QhullError:                      # collinear points
        return mask2d
    canvas = Image.new("1", (mask2d.shape[1], mask2d.shape[0]), 0)
    ImageDraw.Draw(canvas).polygon([(int(x), int(y)) for y, x in hull], fill=1, outline=1)
    return mask2d | np.asarray(canvas, dtype=bool)


def segment_mr(image: sitk.Image, *, seeds: Sequence[Seed],
               structures: Sequence[str] | None = None,
               bias_correction: bool = False) -> sitk.Image:
    """Segment heart structures in an MR volume from one click per structure.

    Parameters
    ----------
    image : sitk.Image
        Scalar 3D MR image, any intensity scale and grid.
    seeds : sequence of Seed
        Clicks (LPS mm) inside structures; several per structure allowed.  Seeds for
        structures the MR pipeline cannot make are refused.
    structures : sequence of str, optional
        Structures to output.  Default: every seeded structure, and ``left_ventricle``
        (found automatically in short-axis stacks when it has no seed).  In a 3D volume
        without seeds this raises :class:`SegmentationError` asking for a click.
    bias_correction : bool
        Run N4 bias-field correction (on a 4 mm copy) first; useful for surface-coil images
        with strong shading.

    Returns
    -------
    sitk.Image
        uint8 label map with :data:`cardioplan.labels.LABELS` values, on ``image``'s grid.

    Raises
    ------
    InputError
        Not a scalar 3D image, seeds outside the image, unsupported structures.
    SegmentationError
        Nothing found (e.g. automatic LV detection failed): click the structure instead.
    """
    _check_image(image)
    spacing = tuple(float(s) for s in reversed(image.GetSpacing()))
    arr = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
    thick = _thick_axis(spacing, arr.shape)
    wanted = _wanted(seeds, structures, auto_lv=thick is not None and min(arr.shape) > 1)
    if bias_correction:
        arr = _n4(image)
    arr = _normalise(arr)
    clicks = seed_indices(image, seeds)
    if "left_ventricle" in wanted and not any(s == "left_ventricle" for s, _ in clicks):
        clicks.append(("left_ventricle", _auto_lv(arr, spacing, thick)))
    roi = _roi(arr.shape, [p for _, p in clicks], spacing, thick)
    local = [(s, tuple(int(c - r.start) for c, r in zip(p, roi, strict=True)))
             for s, p in clicks]
    labels_roi = _segment_coarse(arr[roi], local, spacing, thick, wanted)
    out = np.zeros(arr.shape, np.uint8)
    out[roi] = labels_roi
    warnings: list[str] = []
    out = clean_labels(out, spacing=spacing, warnings=warnings, expected=wanted)
    for w in warnings:
        log.warning("%s", w)
    return to_image(out, image)


def _wanted(seeds: Sequence[Seed], structures: Sequence[str] | None, *,
            auto_lv: bool) -> list[str]:
    for s in seeds:
        if s.structure not in MR_STRUCTURES:
            raise InputError(f"seed for {s.structure!r}: the MR pipeline segments "
                             f"{', '.join(MR_STRUCTURES)}; remove that seed")
    if structures is None:
        # the LV is added automatically where it can be found: in short-axis stacks
        names = {s.structure for s in seeds} | ({"left_ventricle"} if auto_lv or not seeds
                                                  else set())
    else:
        names = set(structures)
        bad = names - set(MR_STRUCTURES)
        if bad:
            raise InputError(f"the MR pipeline cannot segment {', '.join(sorted(bad))}; it "
                             f"segments {', '.join(MR_STRUCTURES)}")
        missing = {n for n in names if n != "left_ventricle"} - {s.structure for s in seeds}
        if missing:
            raise InputError(f"MR segmentation of {', '.join(sorted(missing))} needs one seed "
                             "each (--seed NAME=x,y,z); only left_ventricle is automatic")
    if "myocardium" in names and "left_ventricle" not in names:
        names.add("left_ventricle")          # the wall is found around the cavity
    return [n for n in MR_STRUCTURES if n in names]


def _n4(image: sitk.Image) -> np.ndarray:
    """N4 bias-field-corrected voxels (field fitted on a ~4 mm copy, applied at full size)."""
    img = sitk.Cast(image, sitk.sitkFloat32)
    arr = sitk.GetArrayViewFromImage(img)
    lo = float(np.percentile(arr, 1))
    img = img - lo + 1.0                                       # N4 needs positive intensities
    shrink = [max(1, int(round(4.0 / s))) for s in img.GetSpacing()]
    small = sitk.Shrink(img, shrink)
    mask = sitk.OtsuThreshold(small, 0, 1, 200)
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations([30, 20])
    n4.Execute(small, mask)
    log_field = n4.GetLogBiasFieldAsImage(img)
    return sitk.GetArrayFromImage(img / sitk.Exp(log_field)).astype(np.float32)


def _segment_coarse(arr: np.ndarray, clicks: list[tuple[str, tuple[int, int, int]]],
                    spacing: tuple[float, ...], thick: int | None,
                    wanted: list[str]) -> np.ndarray:
    """Segment at about ``_WORK_MM`` resolution and interpolate the labels back.

    Sub-millimetre 3D volumes (LGE, whole-heart) are segmented on an integer-decimated grid,
    after smoothing, which is 4-8x faster; each label's mask is interpolated (linear) back to
    the full grid at the exact positions of the coarse samples, so boundaries stay smooth.  The
    coarse grid runs through the first click, so which voxels are sampled does not depend on
    the storage order or the field of view.
    """
    f = [1 if ax == thick else max(1, int(round(_WORK_MM / s))) for ax, s in enumerate(spacing)]
    if f == [1, 1, 1]:
        return _segment_roi(arr, clicks, spacing, thick, wanted)
    smooth = ndi.gaussian_filter(arr, _sigmas(spacing, thick, 0.5 * _WORK_MM))
    start = [c % k for c, k in zip(clicks[0][1], f, strict=True)]
    small = smooth[tuple(slice(o, None, k) for o, k in zip(start, f, strict=True))]
    small_clicks = [(s, tuple((c - o) // k for c, o, k in zip(p, start, f, strict=True)))
                    for s, p in clicks]
    sp_small = tuple(s * k for s, k in zip(spacing, f, strict=True))
    lab = _segment_roi(small, small_clicks, sp_small, thick, wanted)
    best = np.zeros(arr.shape, np.float32)
    out = np.zeros(arr.shape, np.uint8)
    for v in np.unique(lab):
        if v == 0:
            continue
        # full-grid voxel i lies at (i - start) / f on the coarse grid
        prob = ndi.affine_transform((lab == v).astype(np.float32), [1.0 / k for k in f],
                                    offset=[-o / k for o, k in zip(start, f, strict=True)],
                                    output_shape=arr.shape, order=1, mode="nearest")
        win = (prob > 0.5) & (prob > best)
        best[win] = prob[win]
        out[win] = v
    return out


def _segment_roi(arr: np.ndarray, clicks: list[tuple[str, tuple[int, int, int]]],
                 spacing: tuple[float, ...], thick: int | None,
                 wanted: list[str]) -> np.ndarray:
    smooth = ndi.gaussian_filter(arr, _sigmas(spacing, thick, 1.0))
    grad = _gradient_magnitude(smooth, spacing, thick)
    thr = _blood_threshold(smooth, clicks, spacing, thick)
    blood_clicks = [(s, _snap(smooth, p, spacing, thick, thr)) for s, p in clicks
                    if s in BLOOD_STRUCTURES]
    bright = smooth > thr
    dark_level = float(np.median(smooth[~bright])) if (~bright).any() else 0.0
    background = smooth < dark_level + 0.5 * (thr - dark_level)
    pts = [p for _, p in blood_clicks]
    seeded_bright = component_at(bright, pts) if pts else np.zeros_like(bright)
    background |= bright & ~seeded_bright
    values = {s: LABELS.value_of(s) for s, _ in blood_clicks}
    by_value = {v: [p for s, p in blood_clicks if s == name] for name, v in values.items()}
    if thick is None:
        grown = _grow_volume(grad, by_value, spacing, background, bright)
    else:
        stack = _grow_stack(grad, by_value, spacing, thick, background, bright,
                            walled=[LABELS.value_of("left_ventricle")])
        grown = dict.fromkeys(values, stack)
    out = np.zeros(arr.shape, np.uint8)
    for name, v in values.items():
        if name not in wanted:
            continue
        others = (grown[name] != v) & (grown[name] != 0)
        mask = component_at(grown[name] == v, by_value[v])
        mask = _per_slice(ndi.binary_fill_holes, mask, thick) & ~others
        if thick is None and name in _CHAMBERS:
            mask = _chamber_3d(mask, name, arr, smooth, grad, bright, by_value[v], spacing)
        if name == "right_ventricle" and thick is not None and arr.shape[thick] > 1:
            # the LV's per-slice re-threshold at its own blood/wall contrast (stacks only: a
            # single slice gets its own half-maximum below)
            mask = _refine_cavity(smooth, mask, spacing, thick) & ~others
        if name == "left_ventricle" and thick is not None:
            lv_clicks = [p for s, p in blood_clicks if s == name]
            mask = _refine_cavity(smooth, mask, spacing, thick)
            mask = _lv_cavity(mask, lv_clicks, spacing, thick) & ~others
            if arr.shape[thick] > 1:
                mask |= _bright_rim(smooth, mask, spacing, thick) & ~others
        if thick is not None and arr.shape[thick] == 1:
            mask = _own_half_maximum(smooth, mask, by_value[v], spacing, thick)
            if name != "right_ventricle":  # its crescent's tips are not necks
                mask = _slice_necks(mask, by_value[v], spacing)
        out[mask & (out == 0)] = v
    if thick is not None:
        _limit_to_lv_slices(out, thick)
        _taper_right_ventricle(out, [p for s, p in blood_clicks if s == "right_ventricle"],
                               thick)
    stack = thick is not None and arr.shape[thick] > 1
    if "myocardium" in wanted or stack:
        myo_clicks = [p for s, p in clicks if s == "myocardium"]
        walled = _myocardium(smooth, grad, out, myo_clicks, spacing, thick, thr)
        if "myocardium" in wanted:
            out = walled
    if stack:
        _end_at_open_wall(out, walled, blood_clicks, spacing, thick)
        grown_rv = out == LABELS.value_of("right_ventricle")
        _rv_beside_wall(out, walled, blood_clicks, spacing, thick)
        _rv_against_septum(out, walled, smooth, bright, grown_rv, blood_clicks, spacing, thick)
        # like the LV's hull plus one voxel: the border on the wall, not at the blood's
        # half-maximum (the trabeculated rim counts as cavity); after the wall, which keeps
        # the septum
        rv = out == LABELS.value_of("right_ventricle")
        out[_per_slice(ndi.binary_dilation, rv, thick) & (out == 0)] = LABELS.value_of(
            "right_ventricle")
        # then, as the LV's, the partial-volume voxels beyond it (a ring at a time)
        for _ in range(_RV_RIM_STEPS):
            rv = out == LABELS.value_of("right_ventricle")
            out[_bright_rim(smooth, rv, spacing, thick) & (out == 0)] = LABELS.value_of(
                "right_ventricle")
    return out


def _grow_volume(grad: np.ndarray, seeds: dict[int, list[tuple[int, int, int]]],
                 spacing: tuple[float, ...], background: np.ndarray, bright: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """The competition in a 3D volume; returns the label map each structure is read from.

    Chambers are read from a competition whose fronts keep to their side of the blood
    threshold (``_AWAY_2D``): in 3D the background otherwise enters the blood through weak
    wall edges (LGE) and takes whole lobes of an atrium; the chamber's leaks through valves and
    veins are then cut by :func:`_chamber_3d`.  Vessels (tubes, no such prior) are read from
    the symmetric competition.
    """
    names = {LABELS.by_value(v).name: v for v in seeds}
    out: dict[str, np.ndarray] = {}
    if any(n in _CHAMBERS for n in names):
        held = grow_from_seeds(grad, seeds, spacing_zyx=spacing, background=background,
                               allowed=bright, away=_AWAY_2D)
        out |= {n: held for n in names if n in _CHAMBERS}
    if any(n not in _CHAMBERS for n in names):
        free = grow_from_seeds(grad, seeds, spacing_zyx=spacing, background=background,
                               allowed=bright)
        out |= {n: free for n in names if n not in _CHAMBERS}
    return out


def _chamber_3d(grown: np.ndarray, name: str, arr: np.ndarray, smooth: np.ndarray,
                grad: np.ndarray, bright: np.ndarray, clicks: list[tuple[int, int, int]],
                spacing: tuple[float, ...]) -> np.ndarray:
    """A chamber of a 3D volume from its grown region: size prior, then necks and spurs.

    The size prior (:func:`_first_reached`) caps the region at ``_CHAMBER_BALLS`` inscribed balls:
    2.25 for the right atrium and the left ventricle, 8 for the right ventricle,
    whose crescent around the septum holds about as much blood as the left ventricle with about
    0.6 times its depth (1 / 0.6^3 = 4.6 times the LV's ratio).  The left atrium is instead cut
    on the ridges of a finer gradient between its core and what lies far beyond it
    (:func:`_ridge_cut`), then opened with a ``_CHAMBER_OPEN_MM`` ball (its pulmonary veins are
    part of it in the project's label set).  The ventricles and the right atrium, whose outlets
    and inlets (aorta, pulmonary artery, caval veins) are structures of their own, are cut at
    necks: opened with a ball of
    ``_NECK_FRACTION`` of their inscribed radius (an arterial valve or a caval vein is about
    half as wide as its chamber), the opened-away rim within ``_GIVE_BACK_FRACTION`` of that
    radius given back (the apex and the crescent's tips; a vessel stub at most that long).  The size
    prior's front reaches a chamber's boundary layer last (the front slows with depth), after
    it has passed a neck; so these chambers finally get back the grown voxels one voxel around
    them that are brighter than their own half-maximum (:func:`_own_edge`).
    """
    depth = ndi.distance_transform_edt(bright, sampling=spacing).astype(np.float32)
    r = max(float(depth[_climb(depth, p)]) for p in clicks)
    if r <= 0.0:
        return grown
    t = _front(grown, grad, depth, r, clicks, spacing)
    ball = 4.0 / 3.0 * math.pi * r ** 3 / math.prod(spacing)
    if name not in _NECKED:
        mask = _ridge_cut(arr, t, ball, clicks, spacing)
        return ndi.binary_fill_holes(_open_spurs(mask, clicks, spacing, _CHAMBER_OPEN_MM))
    mask = _first_reached(t, _CHAMBER_BALLS[name] * ball)
    radius = max(_CHAMBER_OPEN_MM, _NECK_FRACTION * r)
    mask = ndi.binary_fill_holes(_open_spurs(mask, clicks, spacing, radius,
                                             give_back=_GIVE_BACK_FRACTION))
    return _own_edge(smooth, mask, grown, bright, clicks, spacing)


def _own_edge(smooth: np.ndarray, mask: np.ndarray, grown: np.ndarray, bright: np.ndarray,
              clicks: list[tuple[int, int, int]], spacing: tuple[float, ...]) -> np.ndarray:
    """Put a 3D chamber's border at its own half-maximum: half-way between its blood (median
    inside) and its wall (median of the non-blood voxels up to ``_WALL_MM`` outside: at fine
    spacings a thin wall between blood and bright fat lies above the blood threshold, so the
    ring must reach beyond it).  The grown voxels one voxel around the chamber above that level
    are added, those inside below it dropped; the part holding the click is kept."""
    steps = max(1, round(_WALL_MM / min(spacing)))
    ring = ndi.binary_dilation(mask, iterations=steps) & ~mask & ~bright
    if not ring.any():
        return mask
    wall = float(np.median(smooth[ring]))
    cut = 0.5 * (wall + float(np.median(smooth[mask])))
    kept = component_at(ndi.binary_dilation(mask) & grown & (smooth > cut), clicks)
    return ndi.binary_fill_holes(kept) if kept.any() else mask


def _front(mask: np.ndarray, grad: np.ndarray, depth: np.ndarray, r: float,
           clicks: list[tuple[int, int, int]], spacing: tuple[float, ...]) -> np.ndarray:
    """Arrival time, within ``mask``, of a chamber's front from its clicks (``inf`` outside).

    The chamber's scale ``r`` is the depth in the blood mask (``depth``: distance to the
    nearest non-blood voxel) of the local maximum reached by climbing that depth from the
    click, so it does not depend on where in the chamber the click lies.  The front is slowed
    by edges (as in the competition) and in proportion to the local depth of the blood relative
    to that scale, so it fills the wide chamber before it passes narrow necks (valves, veins,
    thin-walled contacts with neighbouring cavities).
    """
    speed = np.maximum(edge_speed(grad) * np.clip(depth / r, 0.0, 1.0), 1e-3)
    return np.where(mask, arrival_time(speed, clicks, spacing_zyx=spacing), np.inf)


def _first_reached(t: np.ndarray, voxels: float) -> np.ndarray:
    """The size prior: the ``voxels`` voxels (at most) that the front ``t`` reaches first."""
    n = int(voxels)
    if int(np.isfinite(t).sum()) <= n:
        return np.isfinite(t)
    return t <= np.partition(t.ravel(), n)[n]


def _ridge_cut(arr: np.ndarray, t: np.ndarray, ball: float,
               clicks: list[tuple[int, int, int]], spacing: tuple[float, ...]) -> np.ndarray:
    """Cut a grown left atrium on the ridges of the gradient between its core and its far side.

    Marker watershed on the gradient magnitude of a ``_RIDGE_SMOOTH_MM`` smoothing (finer than
    the competition's: the atrium's walls against its bright neighbours are thin): the inner
    marker is the ``_RIDGE_INNER_BALLS`` inscribed balls the front ``t`` (:func:`_front`)
    reaches first, the outer one what it reaches after ``_RIDGE_OUTER_BALLS`` balls and all that
    lies outside the grown region.  The border then follows the strongest edges in between
    instead of a volume: the LA2018 atria hold 1.5-3.2 balls, and a cap at any one volume cuts
    the large ones short and over-grows the small ones.
    """
    inner = _first_reached(t, _RIDGE_INNER_BALLS * ball)
    markers = inner.astype(np.uint8)
    markers[~_first_reached(t, _RIDGE_OUTER_BALLS * ball)] = 2
    fine = _gradient_magnitude(ndi.gaussian_filter(arr, _sigmas(spacing, None, _RIDGE_SMOOTH_MM)),
                               spacing, None)
    ws = sitk.MorphologicalWatershedFromMarkers(
        sitk.GetImageFromArray(fine.astype(np.float32)), sitk.GetImageFromArray(markers),
        markWatershedLine=False, fullyConnected=False)
    return component_at(sitk.GetArrayFromImage(ws) == 1, clicks)


def _own_half_maximum(smooth: np.ndarray, mask: np.ndarray, clicks: list[tuple[int, int, int]],
                      spacing: tuple[float, ...], thick: int) -> np.ndarray:
    """Trim a structure of a single slice to its own half-maximum.

    The shared blood threshold sits 0.35 of the way from the dark tissue to the *dimmest*
    clicked cavity, so a brighter structure (an artery, a cavity with inflow) spreads into
    grey tissue and partial volume around it; each structure is cut at half-way
    (``_OWN_FRACTION``) between the dark tissue and its own level (the median around its
    click), keeping the part connected to its click.
    """
    t = _otsu(smooth)
    if not (smooth < t).any():
        return mask
    dark = float(np.median(smooth[smooth < t]))
    level = max(_local_level(smooth, p, spacing) for p in clicks)
    kept = component_at(mask & (smooth > dark + _OWN_FRACTION * (level - dark)), clicks)
    return _per_slice(ndi.binary_fill_holes, kept, thick) if kept.any() else mask


def _slice_necks(mask: np.ndarray, clicks: list[tuple[int, int, int]],
                 spacing: tuple[float, ...]) -> np.ndarray:
    """Cut a structure of a single slice at its necks, as the 3D chambers are cut.

    Opened with a disc of ``_NECK_FRACTION`` of its inscribed radius (the structure's own
    distance map climbed from the click), the part holding the click kept and the rim within
    ``_GIVE_BACK_FRACTION`` of that disc's radius given back: a leak through a valve or a thin
    contact into a neighbouring cavity or grey tissue is dropped.  The distance maps of the
    one-voxel-thick volume are those of the slice, so the opening is done with them.  Not
    applied to the right ventricle: the tips of its crescent are narrower than its body and
    would be cut as necks (HVSMR RV 0.810 -> 0.789 when applied).
    """
    depth = ndi.distance_transform_edt(mask, sampling=spacing)
    radius = _NECK_FRACTION * max(float(depth[_climb(depth, p)]) for p in clicks)
    core = depth > radius
    if radius <= 0.0 or not core.any():
        return mask
    opened = component_at(ndi.distance_transform_edt(~core, sampling=spacing) <= radius, clicks)
    if not opened.any():
        return mask
    near = ndi.distance_transform_edt(~opened, sampling=spacing) <= _GIVE_BACK_FRACTION * radius
    return component_at(near & mask, clicks)


def _open_spurs(mask: np.ndarray, clicks: list[tuple[int, int, int]],
                spacing: tuple[float, ...], radius: float, *,
                give_back: float = 0.0) -> np.ndarray:
    """Open a 3D chamber with a ``radius`` ball and keep the part holding its click: drops the
    spurs the size prior's front left in veins and through necks.  With ``give_back`` the
    chamber's voxels within ``give_back * radius`` of the opened part return (its rim and apex,
    and a stub of each cut vessel no longer than that)."""
    opened = component_at(ndi.binary_opening(mask, _ball(radius, spacing)), clicks)
    if not opened.any():
        return mask
    return ndi.binary_dilation(opened, _ball(give_back * radius, spacing)) & mask \
        if give_back > 0 else opened


def _ball(radius: float, spacing: tuple[float, ...]) -> np.ndarray:
    r = [int(radius // s) for s in spacing]
    grid = np.ogrid[tuple(slice(-k, k + 1) for k in r)]
    return sum((g * s) ** 2 for g, s in zip(grid, spacing, strict=True)) <= radius ** 2


def _climb(depth: np.ndarray, p: tuple[int, int, int]) -> tuple[int, int, int]:
    """The local maximum of ``depth`` reached from ``p`` by steepest ascent (26-neighbours)."""
    while True:
        box = tuple(slice(max(c - 1, 0), c + 2) for c in p)
        step = np.unravel_index(int(np.argmax(depth[box])), depth[box].shape)
        q = tuple(int(b.start + i) for b, i in zip(box, step, strict=True))
        if depth[q] <= depth[p]:
            return p
        p = (q[0], q[1], q[2])


def _lv_cavity(mask: np.ndarray, clicks: list[tuple[int, int, int]],
               spacing: tuple[float, ...], thick: int) -> np.ndarray:
    """Left-ventricular cavity of a short-axis stack: per slice, one compact blob, and its
    convex hull plus a one-voxel rim.

    The hull makes papillary muscles and trabeculae count as cavity (the usual convention of
    cine-MR volumetry and of the ACDC/Kaggle references) and puts the border on the compact
    wall rather than at the blood's half-maximum.  It would also span any strand of blood that
    leaked through the wall (into the right ventricle or apical fat), so first each slice keeps
    only the blob (split at necks < ``_LV_NECK_MM``) that continues the cavity of its
    neighbour towards the click -- slices are swept outwards from the clicked one, which is
    kept whole -- and a slice whose blood continues nothing is empty, as are those beyond it.
    """
    sp2 = [s for ax, s in enumerate(spacing) if ax != thick]
    neck = _disk(_LV_NECK_MM, sp2)
    m3 = np.moveaxis(mask, thick, 0)
    out = np.zeros_like(m3)
    z0s = sorted({p[thick] for p in clicks})
    order = sorted(range(m3.shape[0]), key=lambda z: min(abs(z - h) for h in z0s))
    for z in order:
        m = m3[z]
        if m.any() and z not in z0s:
            nearest = min(z0s, key=lambda h: abs(h - z))
            m = _continuing_blob(m, out[z - 1 if z > nearest else z + 1], neck)
        if m.any():
            out[z] = ndi.binary_dilation(_convex_hull_2d(m))
    return np.moveaxis(out, 0, thick)


def _continuing_blob(mask: np.ndarray, parent: np.ndarray, neck: np.ndarray) -> np.ndarray:
    """The blob of a 2D mask (split at necks narrower than ``neck``, its opened-away rim given
    back) that overlaps ``parent`` most; empty when none does."""
    opened = ndi.binary_opening(mask, neck)
    lab, n = ndi.label(opened if opened.any() else mask)
    overlap = np.bincount(lab[parent], minlength=n + 1)[1:]
    if n == 0 or overlap.max() == 0:
        return np.zeros_like(mask)
    return mask & ndi.binary_dilation(lab == int(np.argmax(overlap)) + 1, neck)


def _refine_cavity(smooth: np.ndarray, mask: np.ndarray, spacing: tuple[float, ...],
                   thick: int) -> np.ndarray:
    """Per slice, re-threshold a cavity at its own blood/wall contrast.

    The global blood threshold sits half-way to the darkest tissue (lung), which can lie below
    a bright wall; here each slice's cavity plus a ``_REFINE_MM`` margin is split in two by Otsu
    (blood versus myocardium of that slice) and the bright part connected to the cavity's core
    is kept.
    """
    sp2 = [s for ax, s in enumerate(spacing) if ax != thick]
    margin = _disk(_REFINE_MM, sp2)
    wall = _disk(6.0, sp2)
    m3 = np.moveaxis(mask, thick, 0)
    s3 = np.moveaxis(smooth, thick, 0)
    out = m3.copy()
    for z in range(m3.shape[0]):
        m = m3[z]
        if m.sum() < 20:
            continue
        zone = ndi.binary_dilation(m, margin)
        t = _half_maximum(s3[z], m, wall)
        core = _core(m, np.ones((3, 3), bool)) & (s3[z] > t)
        if not core.any():
            continue
        bright = (s3[z] > t) & zone
        out[z] = ndi.binary_fill_holes(component_at(bright, [tuple(i) for i in np.argwhere(core)]))
    return np.moveaxis(out, 0, thick)


def _half_maximum(smooth2d: np.ndarray, mask: np.ndarray, wall: np.ndarray) -> float:
    """Half-way between a 2D cavity's median and its wall ring's (1 voxel to ``wall`` out)."""
    ring = ndi.binary_dilation(mask, wall) & ~ndi.binary_dilation(mask)
    return 0.5 * (float(np.median(smooth2d[mask])) + float(np.median(smooth2d[ring])))


def _bright_rim(smooth: np.ndarray, mask: np.ndarray, spacing: tuple[float, ...],
                thick: int) -> np.ndarray:
    """Per slice, the voxels just outside a cavity brighter than ``_LV_RIM_FRACTION`` of the
    way from its wall ring's (1 voxel-6 mm out) median to its own median: partial-volume
    voxels on the endocardium that the reference counts as cavity."""
    sp2 = [s for ax, s in enumerate(spacing) if ax != thick]
    wall = _disk(6.0, sp2)
    m3 = np.moveaxis(mask, thick, 0)
    s3 = np.moveaxis(smooth, thick, 0)
    out = np.zeros_like(m3)
    for z in range(m3.shape[0]):
        m = m3[z]
        if m.sum() < 20:
            continue
        near = ndi.binary_dilation(m)
        ring = ndi.binary_dilation(m, wall) & ~near
        level_wall = float(np.median(s3[z][ring]))
        t = level_wall + _LV_RIM_FRACTION * (float(np.median(s3[z][m])) - level_wall)
        out[z] = near & ~m & (s3[z] > t)
    return np.moveaxis(out, 0, thick)


def _limit_to_lv_slices(labels: np.ndarray, thick: int) -> None:
    """In a short-axis stack, keep the right ventricle within the left ventricle's slices."""
    lv = np.moveaxis(labels == LABELS.value_of("left_ventricle"), thick, 0)
    zs = np.flatnonzero(lv.any(axis=(1, 2)))
    if len(zs) == 0:
        return
    view = np.moveaxis(labels, thick, 0)
    rv = LABELS.value_of("right_ventricle")
    for z in (*range(0, zs[0]), *range(zs[-1] + 1, view.shape[0])):
        view[z][view[z] == rv] = 0


def _taper_right_ventricle(labels: np.ndarray, clicks: list[tuple[int, int, int]],
                           thick: int) -> None:
    """In a short-axis stack, let the right ventricle only shrink from its click towards the
    apex: a slice's part beyond its neighbour's (towards the click) is dropped whenever the
    slice is the larger of the two.

    The right ventricle tapers to the apex (in 29 of the 30 ACDC reference frames its
    cross-section never grows from its largest slice apexwards); a larger cross-section there
    is a leak into apical fat or the pericardium.  The apex is the end of the left
    ventricle's slices with the smaller cross-section.
    """
    apex = _apex_step(labels, thick)
    if not apex or not clicks:
        return
    view = np.moveaxis(labels, thick, 0)
    rv = LABELS.value_of("right_ventricle")
    z = clicks[0][thick]
    parent = view[z] == rv
    z += apex
    while 0 <= z < view.shape[0]:
        cur = view[z] == rv
        if cur.sum() > parent.sum():
            view[z][cur & ~parent] = 0
        parent = view[z] == rv
        z += apex


def _direction_bins(lv: np.ndarray, spacing_yx: Sequence[float]) -> np.ndarray:
    """Per voxel of a slice, its direction around the centroid of the 2D cavity ``lv`` as one
    of ``_ANGLE_BINS`` bins."""
    cy, cx = np.argwhere(lv).mean(0)
    yy, xx = np.indices(lv.shape)
    ang = np.arctan2((yy - cy) * spacing_yx[0], (xx - cx) * spacing_yx[1])
    return ((ang + np.pi) / (2 * np.pi) * _ANGLE_BINS).astype(int) % _ANGLE_BINS


def _wall_gap_deg(lv: np.ndarray, myo: np.ndarray, spacing_yx: Sequence[float]) -> float:
    """The widest opening of a 2D cavity's wall, in degrees around the cavity's centroid
    (sampled in ``_ANGLE_BINS`` directions): 0 for a closed ring, 360 without a wall."""
    if not lv.any() or not myo.any():
        return 360.0
    have = np.zeros(_ANGLE_BINS, bool)
    have[_direction_bins(lv, spacing_yx)[myo]] = True
    run = widest = 0
    for h in np.roll(have, -int(np.argmax(have))):   # start on the wall: no run wraps
        run = 0 if h else run + 1
        widest = max(widest, run)
    return widest * 360.0 / _ANGLE_BINS


def _end_at_open_wall(labels: np.ndarray, walled: np.ndarray,
                      clicks: list[tuple[str, tuple[int, int, int]]],
                      spacing: tuple[float, ...], thick: int) -> None:
    """In a short-axis stack, end the ventricles where the left ventricle's wall (in
    ``walled``, which holds it even when it is not an output) opens.

    The right ventricle ends, outwards from its clicked slice in both directions, at the first
    slice where that wall is not a closed ring (``_RV_WALL_GAP_DEG``): at the base the left
    ventricle's wall opens towards its valves, and the blood beside it there is right atrium
    and outflow tract, which continue the ventricle's blood with no edge; towards the apex an
    open wall means the cavity has ended.  The left ventricle ends towards the apex at the
    first slice whose wall is open by ``_LV_WALL_GAP_DEG`` or more: its cavity there has leaked
    out of the ring (apical fat, pericardium) or is no cavity.  Towards the base its wall
    opens in true basal slices too (towards the outflow tract), so it ends only where the
    wall is open by ``_LV_BASE_GAP_DEG`` or more: the blood there is the atrium's.
    """
    sp2 = [s for ax, s in enumerate(spacing) if ax != thick]
    view = np.moveaxis(labels, thick, 0)
    wall = np.moveaxis(walled, thick, 0)
    lv_v, myo_v = LABELS.value_of("left_ventricle"), LABELS.value_of("myocardium")
    apex = _apex_step(labels, thick)
    rules = [("right_ventricle", -1, _RV_WALL_GAP_DEG), ("right_ventricle", 1, _RV_WALL_GAP_DEG)]
    if apex:
        rules += [("left_ventricle", apex, _LV_WALL_GAP_DEG),
                  ("left_ventricle", -apex, _LV_BASE_GAP_DEG)]
    for name, step, max_gap in rules:
        v = LABELS.value_of(name)
        z0s = [p[thick] for s, p in clicks if s == name]
        if not z0s:
            continue
        z, ended = z0s[0] + step, False
        while 0 <= z < view.shape[0]:
            sl = view[z]
            if not ended and (sl == v).any():
                ended = _wall_gap_deg(wall[z] == lv_v, wall[z] == myo_v, sp2) >= max_gap
            if ended:
                sl[sl == v] = 0
            z += step


def _rv_beside_wall(labels: np.ndarray, walled: np.ndarray,
                    clicks: list[tuple[str, tuple[int, int, int]]],
                    spacing: tuple[float, ...], thick: int) -> None:
    """In a short-axis stack, keep in every slice but the clicked one only the parts of the
    right ventricle that come within ``_RV_WALL_MM`` of the left ventricle or its wall.

    The right ventricle wraps the septum; a separate piece away from it is apical fat or
    pericardium that the slice-to-slice growth drifted into, or atrium and outflow tract cut
    off at the base.
    """
    z0s = [p[thick] for s, p in clicks if s == "right_ventricle"]
    if not z0s:
        return
    sp2 = [s for ax, s in enumerate(spacing) if ax != thick]
    near_mm = _disk(_RV_WALL_MM, sp2)
    view = np.moveaxis(labels, thick, 0)
    wall = np.moveaxis(walled, thick, 0)
    heart = np.isin(wall, [LABELS.value_of("left_ventricle"), LABELS.value_of("myocardium")])
    rv_v = LABELS.value_of("right_ventricle")
    for z in range(view.shape[0]):
        rv = view[z] == rv_v
        if z == z0s[0] or not rv.any():
            continue
        parts, _ = ndi.label(rv)
        near = np.unique(parts[rv & ndi.binary_dilation(heart[z], near_mm)])
        view[z][rv & ~np.isin(parts, near)] = 0


def _rv_against_septum(labels: np.ndarray, walled: np.ndarray, smooth: np.ndarray,
                       bright: np.ndarray, grown: np.ndarray,
                       clicks: list[tuple[str, tuple[int, int, int]]],
                       spacing: tuple[float, ...], thick: int) -> None:
    """In a short-axis stack, give the right ventricle, slice by slice from its click towards
    the apex, the free blood lying against the left ventricle's wall within the right
    ventricle's footprint in the neighbour slice.

    Towards the apex the right ventricle's blood is split by trabeculae and the moderator
    band, and the heart shifts between thick slices, so the slice-to-slice growth, which
    carries its parent slice's core, misses the blood against the septum.  The right
    ventricle wraps the septum in every slice: a free blood piece (above the blood threshold,
    connected) is taken where it touches the LV's wall (a voxel next to it), lies
    within the neighbour's footprint -- per direction around the LV's centre
    (``_ANGLE_BINS``), no farther from the LV and its wall than the neighbour's right ventricle
    reaches --, and is brighter than the neighbour's half-maximum (the rule of
    :func:`_refine_cavity`); and only while the slice stays no larger than its neighbour (the
    taper of :func:`_taper_right_ventricle`).  Slices the growth did not reach (no RV in
    ``grown``, the RV before :func:`_rv_beside_wall` dropped its drift pieces), and those
    beyond the first whose wall is open (:func:`_end_at_open_wall`), get nothing.  It runs
    after :func:`_rv_beside_wall`, so the neighbour's footprint holds no drift; what it adds
    touches the wall.
    """
    apex = _apex_step(labels, thick)
    z0s = [p[thick] for s, p in clicks if s == "right_ventricle"]
    if not apex or not z0s:
        return
    sp2 = [s for ax, s in enumerate(spacing) if ax != thick]
    ring = _disk(6.0, sp2)
    view, wall, s3, br, reached = (np.moveaxis(a, thick, 0)
                                   for a in (labels, walled, smooth, bright, grown))
    lv_v, myo_v = LABELS.value_of("left_ventricle"), LABELS.value_of("myocardium")
    rv_v = LABELS.value_of("right_ventricle")
    z = z0s[0] + apex
    while 0 <= z < view.shape[0]:
        lv, myo, rv = wall[z] == lv_v, wall[z] == myo_v, view[z] == rv_v
        parent, lv_p = view[z - apex] == rv_v, wall[z - apex] == lv_v
        if not (reached[z].any() and lv.any() and lv_p.any() and parent.any()) or \
                _wall_gap_deg(lv, myo, sp2) >= _RV_WALL_GAP_DEG:
            return
        reach = _reach(parent, lv_p, wall[z - apex] == myo_v, sp2)
        bins = _direction_bins(lv, sp2)
        dist = ndi.distance_transform_edt(~(lv | myo), sampling=sp2)
        free = br[z] & (view[z] == 0) & ~(lv | myo) & (dist <= reach[bins]) & (
            s3[z] > _half_maximum(s3[z - apex], parent, ring))
        parts, _ = ndi.label(free)
        touching = np.unique(parts[free & ndi.binary_dilation(myo, np.ones((3, 3), bool))])
        add = np.isin(parts, touching[touching > 0])
        if (add | rv).sum() <= parent.sum():
            view[z][add] = rv_v
        z += apex


def _reach(rv: np.ndarray, lv: np.ndarray, myo: np.ndarray,
           spacing_yx: Sequence[float]) -> np.ndarray:
    """Per direction bin around the centroid of the 2D cavity ``lv``, how far (mm) ``rv``
    reaches out from the cavity and its wall ``myo``; -1 where it is absent."""
    dist = ndi.distance_transform_edt(~(lv | myo), sampling=spacing_yx)
    reach = np.full(_ANGLE_BINS, -1.0)
    np.maximum.at(reach, _direction_bins(lv, spacing_yx)[rv], dist[rv])
    return reach


def _apex_step(labels: np.ndarray, thick: int) -> int:
    """+1 or -1: the direction (along the stack) of the apex, the end of the left ventricle's
    slices with the smaller cross-section; 0 when it spans fewer than 4 slices."""
    area = np.moveaxis(labels == LABELS.value_of("left_ventricle"), thick, 0).sum(axis=(1, 2))
    zs = np.flatnonzero(area)
    if len(zs) < 4:
        return 0
    return 1 if area[zs[-2:]].mean() < area[zs[:2]].mean() else -1


def _grow_stack(grad: np.ndarray, seeds: dict[int, list[tuple[int, int, int]]],
                spacing: tuple[float, ...], thick: int, background: np.ndarray,
                bright: np.ndarray, *, walled: Sequence[int] = ()) -> np.ndarray:
    """Grow structures slice by slice through a thick-slice stack (or a single slice).

    Each slice is a 2D competition (:func:`segmentation.seeded.grow_from_seeds`).  Its markers
    are the clicks in that slice and, for every structure, the core (eroded mask) of that
    structure in its *parent* slice, the neighbour one step closer to the structure's click.  A
    structure carried over from its parent may not grow more than ``_SLICE_GROWTH_MM`` beyond
    it (``_APEX_GROWTH_MM`` towards the apex, where the cross-sections of the ``walled``
    ventricle shrink), which stops leaks into the atria, great vessels and apical fat.  Bright
    regions with no marker in a slice are background there, and the fronts keep to their side
    of the blood threshold (``_AWAY_2D``: a cavity's front is 3x slower in wall, the
    background's 3x slower in blood), so one click fills a thin crescent such as the right
    ventricle instead of losing its tips to the nearer background.  A click beats another
    structure's carried-over core: the part of that core that covers it is dropped (a click one
    slice off the reference's, next to the other ventricle's, otherwise lost its cavity to
    that ventricle on every slice).  The sweep repeats until nothing changes; sweeps that
    still alternate after ``nz + 1`` continue in place.  Voxels of different slices are never
    neighbours: thick slices are too far apart for a 3D neighbourhood to mean "connected".
    """
    g = np.moveaxis(grad, thick, 0)
    bg = np.moveaxis(background, thick, 0)
    br = np.moveaxis(bright, thick, 0)
    nz = g.shape[0]
    sp2 = (1.0, *[s for ax, s in enumerate(spacing) if ax != thick])
    pts = {v: [(p[thick], *[c for ax, c in enumerate(p) if ax != thick]) for p in ps]
           for v, ps in seeds.items()}
    home = {v: [p[0] for p in ps] for v, ps in pts.items()}
    labels = np.zeros(g.shape, np.uint8)
    erode = _disk(2.0, sp2[1:])
    grow = _disk(_SLICE_GROWTH_MM, sp2[1:])
    neck = _disk(_NECK_MM, sp2[1:])
    shrink = _disk(_APEX_GROWTH_MM, sp2[1:])
    for sweep in range(2 * (nz + 1)):
        # simultaneous sweeps (each slice from the previous sweep's neighbours); if they have
        # not settled after nz + 1 (two states can alternate, a structure swapping slices with
        # its neighbour each sweep), sweeps in place, each slice from its updated neighbour
        in_place = sweep > nz
        before = labels.copy() if in_place else labels
        new = labels if in_place else np.zeros_like(labels)
        apex = _apex_side(labels, walled, home)
        for z in range(nz):
            new[z] = 0
            clicks = {v: [(0, y, x) for zz, y, x in ps if zz == z] for v, ps in pts.items()}
            clicks = {v: c for v, c in clicks.items() if c}
            cores: dict[int, np.ndarray] = {}
            limits: dict[int, np.ndarray] = {}
            for v in pts:
                if v in clicks:
                    continue
                nearest = min(home[v], key=lambda h, z=z: abs(h - z))
                parent = labels[z - 1 if z > nearest else z + 1] == v
                if parent.any():
                    core = _core(parent, erode) & br[z]
                    if core.any():
                        cores[v] = core[None]
                        towards_apex = apex != 0 and np.sign(z - nearest) == apex
                        limits[v] = ndi.binary_dilation(parent, shrink if towards_apex
                                                        else grow)
            for v, core in cores.items():
                # a click in this slice is its structure's: another's carried-over core that
                # covers it has leaked into the clicked cavity, and that part of it goes
                lab, _ = ndi.label(core[0])
                hit = [lab[y, x] for u, c in clicks.items() if u != v for _, y, x in c]
                core[0] &= ~np.isin(lab, [h for h in hit if h])
            if not clicks and not cores:
                continue
            marked = np.zeros(br[z].shape, bool)
            for c in cores.values():
                marked |= c[0]
            for c in clicks.values():
                for _, y, x in c:
                    marked[y, x] = True
            slice_bg = bg[z] | (br[z] & ~_marked_blobs(br[z], marked, neck))
            ws = grow_from_seeds(g[z:z + 1], clicks, spacing_zyx=sp2,
                                 background=slice_bg[None], allowed=br[z:z + 1],
                                 cores=cores, away=_AWAY_2D)[0]
            for v in pts:
                anchors = [(y, x) for _, y, x in clicks.get(v, [])]
                region = ws == v
                if v in cores:
                    anchors += [tuple(i) for i in np.argwhere(cores[v][0])]
                    region &= limits[v]
                if not anchors:
                    continue
                region = component_at(region, anchors)
                new[z][region] = v
        if np.array_equal(new, before):
            break
        labels = new
    else:
        log.debug("slice-by-slice growth did not settle in %d sweeps", 2 * (nz + 1))
    return np.moveaxis(labels, 0, thick)


def _apex_side(labels: np.ndarray, walled: Sequence[int],
               home: dict[int, list[int]]) -> int:
    """+1 or -1: the direction (along the stack) of the apex, where the left-ventricular
    cross-section shrinks; 0 while unknown."""
    for v in walled:
        if v not in home:
            continue
        area = (labels == v).sum(axis=(1, 2))
        z0 = home[v][0]
        below = area[z0 - 1] if z0 > 0 else 0
        above = area[z0 + 1] if z0 + 1 < len(area) else 0
        if below or above:
            return -1 if below < above else 1
    return 0


def _core(mask: np.ndarray, erode: np.ndarray) -> np.ndarray:
    """The inside of a 2D mask, shrunk by ``erode`` (or less for small cavities)."""
    for st in (erode, np.ones((3, 3), bool)):
        core = ndi.binary_erosion(mask, st)
        if core.any():
            return core
    return mask


def _marked_blobs(bright: np.ndarray, marked: np.ndarray, neck: np.ndarray) -> np.ndarray:
    """Bright voxels of the blobs holding a marker, blobs being split at necks narrower than
    ``neck`` (partial-volume bridges between cavities); the opened-away rim is given back."""
    opened = ndi.binary_opening(bright, neck)
    blobs = component_at(opened, [tuple(i) for i in np.argwhere(marked & opened)])
    blobs |= component_at(bright & ~opened, [tuple(i) for i in np.argwhere(marked & ~opened)])
    return ndi.binary_dilation(blobs, neck) & bright


def _snap(smooth: np.ndarray, p: tuple[int, int, int], spacing: tuple[float, ...],
          thick: int | None, thr: float) -> tuple[int, int, int]:
    """Move a cavity click off dark or edge voxels (papillary muscle, trabeculation, flow void)
    to the deepest blood voxel within ``_SNAP_MM`` (in its slice for stacks).

    A marker on an edge would start flooding only at the edge's height, after the background
    had taken the cavity; the deepest nearby blood voxel is the cavity's own basin.
    """
    r = [0 if ax == thick else int(_SNAP_MM // s) for ax, s in enumerate(spacing)]
    lo = [max(c - k, 0) for c, k in zip(p, r, strict=True)]
    box = smooth[tuple(slice(a, c + k + 1) for a, c, k in zip(lo, p, r, strict=True))] > thr
    if not box.any():
        log.warning("a cavity seed lies in dark tissue with no blood within %.0f mm; "
                    "its structure may be missed", _SNAP_MM)
        return p
    local = tuple(c - a for c, a in zip(p, lo, strict=True))
    if box[local]:
        box = component_at(box, [local])        # stay in the clicked cavity
    sampling = [1e6 if ax == thick else s for ax, s in enumerate(spacing)]
    depth = ndi.distance_transform_edt(np.pad(box, 1), sampling=sampling)[1:-1, 1:-1, 1:-1]
    grid = np.indices(box.shape).reshape(3, -1).T
    away = np.sqrt((((grid + lo - np.asarray(p)) * np.asarray(spacing)) ** 2).sum(1))
    score = depth.reshape(-1) - 0.5 * away
    score[~box.reshape(-1)] = -np.inf
    best = grid[int(np.argmax(score))] + lo
    return (int(best[0]), int(best[1]), int(best[2]))


def _disk(radius_mm: float, spacing_yx: Sequence[float]) -> np.ndarray:
    r = [max(1, int(round(radius_mm / s))) for s in spacing_yx]
    y, x = np.mgrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1]
    return (y * spacing_yx[0]) ** 2 + (x * spacing_yx[1]) ** 2 <= radius_mm ** 2 + 1e-6


def _myocardium(smooth: np.ndarray, grad: np.ndarray, labels: np.ndarray,
                clicks: list[tuple[int, int, int]], spacing: tuple[float, ...],
                thick: int | None, thr: float) -> np.ndarray:
    """Add the left-ventricular wall around the cavity.

    The wall is the band of myocardial intensity around the cavity: darker than blood (below
    the half-maximum threshold; in stacks, below half-way between the wall and the cavity's
    blood, where the cavity was cut, if that is higher) and brighter than lung, within a
    maximum thickness.  The
    myocardial level comes from the myocardium click (or from the band just outside the cavity)
    and the thickness limit from the click's depth: the simulated click sits mid-wall, so the
    wall is about twice as thick there.  Per slice the band is closed (2 mm) so that it
    follows the cavity as a ring, and it never covers another structure.  Beyond
    ``_EPI_MIN_MM`` from the cavity, strong edges (gradient above the region's
    ``_EPI_EDGE_PCT`` percentile) are the epicardium: the band stops there instead of running
    on into neighbouring tissue of the same grey (liver, chest wall).  In stacks the band's
    thickness is finally made to vary smoothly around the cavity (:func:`_radial_regular`).
    """
    lv = labels == LABELS.value_of("left_ventricle")
    if not lv.any():
        return labels
    sampling = [1e6 if ax == thick else s for ax, s in enumerate(spacing)]
    dist = ndi.distance_transform_edt(~lv, sampling=sampling)
    depth = max((float(dist[p]) for p in clicks), default=0.0)
    if depth <= 0.0:
        depth = _MYO_DEFAULT_MM / 2
    near = (dist > 1.0) & (dist <= 4.0) & (labels == 0) & (smooth <= thr)
    level = float(np.median(smooth[near])) if near.any() else thr
    if thick is not None:
        # the cavity was cut half-way between its blood and its wall (_refine_cavity): the
        # wall reaches up to that level, which can lie above the global blood threshold
        thr = max(thr, 0.5 * (level + float(np.median(smooth[lv]))))
    t = float(np.clip(_MYO_THICKNESS_FACTOR * depth, 5.0, 25.0))
    floor = level - 0.5 * (level - float(np.percentile(smooth, 2)))
    free = labels == 0
    band = (dist > 0) & (dist <= t) & free & (smooth <= thr) & (smooth >= floor)
    edge = (grad > float(np.percentile(grad, _EPI_EDGE_PCT))) & (dist > _EPI_MIN_MM)
    band &= ~edge
    in_plane = [s for ax, s in enumerate(spacing) if ax != thick]
    close = _disk(2.0, in_plane) if thick is not None else None

    def ring(m: np.ndarray) -> np.ndarray:
        if close is None:
            return ndi.binary_closing(m, iterations=1)
        return ndi.binary_closing(np.pad(m, 4), close)[4:-4, 4:-4]

    band = _per_slice(ring, band, thick) & free & (dist <= t)
    if close is not None:
        band = _per_slice(lambda m: ndi.binary_opening(m, close), band | lv, thick) & free
    joined, _ = ndi.label(band | lv)
    band &= np.isin(joined, np.unique(joined[lv]))  # the band's parts that touch the cavity
    if close is not None:
        band = _radial_regular(band, lv, dist, free & (smooth <= thr), spacing, thick)
    out = labels.copy()
    out[band] = LABELS.value_of("myocardium")
    return out


def _radial_regular(band: np.ndarray, lv: np.ndarray, dist: np.ndarray, ok: np.ndarray,
                    spacing: tuple[float, ...], thick: int) -> np.ndarray:
    """Per slice, make the wall a ring whose thickness varies smoothly around the cavity.

    The band's outer distance from the cavity is measured in ``_ANGLE_BINS`` directions around
    the cavity's centroid and replaced by its running median over ``_MYO_SMOOTH_DEG``: a spur
    into same-grey neighbouring tissue (a few directions) is cut and a gap is bridged.  The
    wall is then every ``ok`` voxel out to that distance.
    """
    win = max(1, int(round(_MYO_SMOOTH_DEG / 360.0 * _ANGLE_BINS))) | 1
    sp2 = [s for ax, s in enumerate(spacing) if ax != thick]
    b3, l3, d3, o3 = (np.moveaxis(a, thick, 0) for a in (band, lv, dist, ok))
    out = np.zeros_like(b3)
    for z in range(b3.shape[0]):
        if not l3[z].any() or not b3[z].any():
            continue
        bins = _direction_bins(l3[z], sp2)
        outer = np.zeros(_ANGLE_BINS)
        np.maximum.at(outer, bins[b3[z]], d3[z][b3[z]])
        radius = ndi.median_filter(outer, size=win, mode="wrap")
        out[z] = o3[z] & (d3[z] > 0) & (d3[z] <= radius[bins])
    return np.moveaxis(out, 0, thick)


def _auto_lv(arr: np.ndarray, spacing: tuple[float, ...], thick: int | None
             ) -> tuple[int, int, int]:
    """Find the left-ventricular cavity of a short-axis stack; returns a click ``(z, y, x)``.

    In the middle half of the stack, every bright blob of plausible size (1.5-60 cm²) is scored
    by how round it is (minor/major axis ratio of its second moments), how convex (solidity),
    and how completely a mid-grey wall surrounds it (the LV's ring of myocardium, 1.5-6 mm out,
    darker than blood but not black like lung),
    with a preference for the image centre, where cine planning puts the heart (falling linearly
    to 0 at the middle of the image edges).  A blob's
    score adds the best overlapping blob's score in each neighbouring slice, so the winner is
    round, walled and consistent through the stack.  The click is the winner's deepest point.
    """
    if thick is None or arr.shape[thick] < 2:
        raise SegmentationError("automatic left-ventricle detection needs a short-axis stack "
                                "(thick slices); click the left ventricle instead "
                                "(--seed left_ventricle=x,y,z)")
    stack = np.moveaxis(arr, thick, 0)
    sp2 = tuple(s for ax, s in enumerate(spacing) if ax != thick)
    smooth = ndi.gaussian_filter(stack, (0.0, 1.0 / sp2[0], 1.0 / sp2[1]))
    nz, ny, nx = smooth.shape
    centre = smooth[:, ny // 4:3 * ny // 4, nx // 4:3 * nx // 4]
    thr = _otsu(centre)
    bright = smooth > thr
    band_in, band_out = _disk(1.5, sp2), _disk(6.0, sp2)
    pix = sp2[0] * sp2[1]
    zs = range(nz // 4, max(nz // 4 + 1, (3 * nz + 3) // 4))
    cands: dict[int, list[tuple[float, np.ndarray]]] = {}
    for z in zs:
        lab, n = ndi.label(ndi.binary_opening(bright[z], _disk(2.0, sp2)))
        for i in range(1, n + 1):
            comp = lab == i
            area = comp.sum() * pix
            if not 150.0 <= area <= 6000.0:
                continue
            cands.setdefault(z, []).append((_lv_score(comp, smooth[z], thr, band_in, band_out,
                                                      sp2), comp))
    best: tuple[float, list[tuple[int, np.ndarray]]] | None = None
    for z, items in cands.items():
        for score, comp in items:
            total, chain = score, [(z, comp)]
            for nb in (z - 1, z + 1):
                linked = [(s, c) for s, c in cands.get(nb, [])
                          if (c & comp).sum() > 0.3 * min(c.sum(), comp.sum())]
                if linked:
                    s, c = max(linked, key=lambda sc: sc[0])
                    total += s
                    chain.append((nb, c))
            if best is None or total > best[0]:
                best = (total, chain)
    if best is None or best[0] <= 0:
        raise SegmentationError("no left ventricle found automatically (no round, walled "
                                "bright blob in the mid slices); click it instead "
                                "(--seed left_ventricle=x,y,z)")
    # the click is the deepest point of the winner and of its linked neighbours, the same
    # deepest-point rule a user's (simulated) click follows
    depths = [(ndi.distance_transform_edt(c, sampling=sp2), z) for z, c in best[1]]
    depth, z = max(depths, key=lambda d: float(d[0].max()))
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    log.info("left ventricle found automatically in slice %d", z)
    p = [int(y), int(x)]
    p.insert(thick, int(z))
    return (p[0], p[1], p[2])


def _lv_score(comp: np.ndarray, smooth: np.ndarray, thr: float, band_in: np.ndarray,
              band_out: np.ndarray, sp2: tuple[float, ...]) -> float:
    """Round x convex x walled x central score of a 2D blob (0..1).

    The wall evidence is the fraction of a 1.5-6 mm band around the blob that is darker than
    blood times how grey that dark band is (its median over the blood threshold, at most 1):
    myocardium is mid-grey, whereas a vessel surrounded by lung or air has a black ring.
    """
    pts = np.argwhere(comp) * np.asarray(sp2)
    if len(pts) < 5:
        return 0.0
    ev = np.linalg.eigvalsh(np.cov(pts.T))
    roundness = float(np.sqrt(max(ev[0], 1e-9) / max(ev[1], 1e-9)))
    solidity = comp.sum() / max(_convex_hull_2d(comp).sum(), 1)
    band = ndi.binary_dilation(comp, band_out) & ~ndi.binary_dilation(comp, band_in)
    bright = smooth > thr
    wall = band & ~bright
    walled = float(wall.sum()) / max(int(band.sum()), 1)
    # myocardium is mid-grey; a ring as dark as lung or air is a vessel's, not the LV's
    muscle = float(np.clip(np.median(smooth[wall]) / thr, 0.0, 1.0)) if wall.any() else 0.0
    ny, nx = comp.shape
    cy, cx = np.argwhere(comp).mean(0)
    off = np.hypot((cy - ny / 2) / (ny / 2), (cx - nx / 2) / (nx / 2))
    central = max(0.0, 1.0 - off)
    return roundness * solidity * (walled * muscle) ** 2 * central
