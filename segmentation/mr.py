"""MRI heart segmentation (bright-blood bSSFP/cine, 3D whole-heart, LGE) from seeds.

Input is a scalar 3D image in any intensity scale (raw, min-max or z-scored) and any grid:
anisotropic short-axis stacks (5-10 mm slices) and isotropic 3D volumes.  Output is a uint8
label map with the project's label values, on the image grid.

Pipeline
--------
1. Robust intensity normalisation (1st/99th percentiles -> 0/1), optional N4 bias-field
   correction on a shrunk copy (``bias_correction``).
2. Crop to the seeds' region, edge-preserving smoothing in-plane (never across thick slices).
3. Blood/tissue threshold from the histogram of that region (Otsu), checked against the seeds'
   own intensities; the clearly-dark voxels and the bright regions holding no seed become one
   background marker.
4. The blood structures grow together from their clicks (:func:`segmentation.seeded.
   grow_from_seeds`: competing watershed on the gradient magnitude).
5. Per structure: keep the component holding the click, fill holes (slice-wise in stacks, where
   papillary muscles count as cavity as in the usual references); the left ventricle of a
   short-axis stack is closed to its per-slice convex hull.
6. ``myocardium``: the dark wall around the left-ventricular cavity, out to the first edge (lung,
   fat or another cavity), within a plausible thickness learned from the myocardium click or
   from the cavity.
7. Without a ``left_ventricle`` seed in a short-axis stack, the LV is found automatically: the
   most circular bright blob near the stack's centre, consistent through the mid slices.

Examples
--------
>>> labels = segment_mr(image, seeds=[Seed("left_ventricle", (10.0, 20.0, 30.0))])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from cardioplan.errors import InputError, SegmentationError
from cardioplan.labels import LABELS
from cardioplan.seeds import Seed
from segmentation.seeded import component_at, grow_from_seeds, seed_indices, to_image

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
_SLICE_GROWTH_MM = 6.0
_SNAP_MM = 8.0
_NECK_MM = 2.0


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


def _local_level(smooth: np.ndarray, p: tuple[int, int, int], spacing_zyx: Sequence[float],
                 radius_mm: float = 3.0) -> float:
    sl = tuple(slice(max(c - max(int(radius_mm // s), 0), 0), c + max(int(radius_mm // s), 0) + 1)
               for c, s in zip(p, spacing_zyx, strict=True))
    return float(np.median(smooth[sl]))


def _per_slice(fn, mask: np.ndarray, thick: int | None) -> np.ndarray:  # type: ignore[no-untyped-def]
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
    from scipy.spatial import Delaunay, QhullError

    pts = np.argwhere(mask2d)
    if len(pts) < 4:
        return mask2d
    try:
        tri = Delaunay(pts)
    except QhullError:
        return mask2d
    lo, hi = pts.min(0), pts.max(0) + 1
    grid = np.mgrid[lo[0]:hi[0], lo[1]:hi[1]].reshape(2, -1).T
    inside = tri.find_simplex(grid) >= 0
    out = mask2d.copy()
    out[tuple(grid[inside].T)] = True
    return out


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
        Structures to output.  Default: every seeded structure (and ``left_ventricle``, found
        automatically in short-axis stacks when it has no seed).
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
    wanted = _wanted(seeds, structures)
    spacing = tuple(float(s) for s in reversed(image.GetSpacing()))
    arr = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
    thick = _thick_axis(spacing, arr.shape)
    if bias_correction:
        arr = _n4(image)
    arr = _normalise(arr)
    clicks = seed_indices(image, seeds)
    if "left_ventricle" in wanted and not any(s == "left_ventricle" for s, _ in clicks):
        clicks.append(("left_ventricle", _auto_lv(arr, spacing, thick)))
    roi = _roi(arr.shape, [p for _, p in clicks], spacing, thick)
    local = [(s, tuple(int(c - r.start) for c, r in zip(p, roi, strict=True)))
             for s, p in clicks]
    labels_roi = _segment_roi(arr[roi], local, spacing, thick, wanted)
    out = np.zeros(arr.shape, np.uint8)
    out[roi] = labels_roi
    for name in wanted:
        if not np.any(labels_roi == LABELS.value_of(name)):
            log.warning("%s: nothing segmented; check its seed", name)
    return to_image(out, image)


def _wanted(seeds: Sequence[Seed], structures: Sequence[str] | None) -> list[str]:
    for s in seeds:
        if s.structure not in MR_STRUCTURES:
            raise InputError(f"seed for {s.structure!r}: the MR pipeline segments "
                             f"{', '.join(MR_STRUCTURES)}; remove that seed")
    if structures is None:
        names = {s.structure for s in seeds} | {"left_ventricle"}
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


def _segment_roi(arr: np.ndarray, clicks: list[tuple[str, tuple[int, int, int]]],
                 spacing: tuple[float, ...], thick: int | None,
                 wanted: list[str]) -> np.ndarray:
    smooth = ndi.gaussian_filter(arr, _sigmas(spacing, thick, 1.0))
    grad = _gradient_magnitude(smooth, spacing, thick)
    thr = _otsu(smooth)
    blood_clicks = [(s, _snap(smooth, p, spacing, thick, thr)) for s, p in clicks
                    if s in BLOOD_STRUCTURES]
    levels = {s: _local_level(smooth, p, spacing) for s, p in blood_clicks}
    if levels:
        # the threshold must sit below every clicked cavity's own level
        thr = min(thr, 0.85 * min(levels.values()) + 0.15 * float(np.percentile(smooth, 5)))
    bright = smooth > thr
    dark_level = float(np.median(smooth[~bright])) if (~bright).any() else 0.0
    background = smooth < dark_level + 0.5 * (thr - dark_level)
    pts = [p for _, p in blood_clicks]
    seeded_bright = component_at(bright, pts) if pts else np.zeros_like(bright)
    background |= bright & ~seeded_bright
    values = {s: LABELS.value_of(s) for s, _ in blood_clicks}
    by_value = {v: [p for s, p in blood_clicks if s == name] for name, v in values.items()}
    if thick is None:
        grown = grow_from_seeds(grad, by_value, spacing_zyx=spacing, background=background,
                                allowed=bright)
    else:
        grown = _grow_stack(grad, by_value, spacing, thick, background, bright)
    out = np.zeros(arr.shape, np.uint8)
    for name, v in values.items():
        if name not in wanted:
            continue
        mask = component_at(grown == v, [p for s, p in blood_clicks if s == name])
        mask = _per_slice(ndi.binary_fill_holes, mask, thick)
        if name == "left_ventricle" and thick is not None:
            mask = _per_slice(_convex_hull_2d, mask, thick)
        out[mask & (out == 0)] = v
    if "myocardium" in wanted:
        myo_clicks = [p for s, p in clicks if s == "myocardium"]
        out = _myocardium(smooth, grad, out, myo_clicks, spacing, thick, thr)
    return out


def _grow_stack(grad: np.ndarray, seeds: dict[int, list[tuple[int, int, int]]],
                spacing: tuple[float, ...], thick: int, background: np.ndarray,
                bright: np.ndarray) -> np.ndarray:
    """Grow structures slice by slice through a thick-slice stack (or a single slice).

    Each slice is a 2D competing watershed.  Its markers are the clicks in that slice and, for
    every structure, the core (eroded mask) of that structure in its *parent* slice, the
    neighbour one step closer to the structure's click; a structure carried over from its parent
    may not grow more than ``_SLICE_GROWTH_MM`` beyond it, which stops leaks into the atria and
    great vessels at the base.  Bright regions with no marker in a slice are background there.
    The sweep repeats until nothing changes.  Voxels of different slices are never neighbours:
    thick slices are too far apart for a 3D neighbourhood to mean "connected".
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
    for _ in range(nz + 1):
        new = np.zeros_like(labels)
        for z in range(nz):
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
                    core = ndi.binary_erosion(parent, erode) & br[z]
                    if core.any():
                        cores[v] = core[None]
                        limits[v] = ndi.binary_dilation(parent, grow)
            if not clicks and not cores:
                continue
            marked = np.zeros(br[z].shape, bool)
            for v, c in cores.items():
                marked |= c[0]
            for c in clicks.values():
                for _, y, x in c:
                    marked[y, x] = True
            slice_bg = bg[z] | (br[z] & ~_marked_blobs(br[z], marked, neck))
            ws = grow_from_seeds(g[z:z + 1], clicks, spacing_zyx=sp2,
                                 background=slice_bg[None], allowed=br[z:z + 1],
                                 cores=cores)[0]
            for v in pts:
                anchors = [(y, x) for _, y, x in clicks.get(v, [])]
                region = ws == v
                if v in cores:
                    anchors += [tuple(i) for i in np.argwhere(cores[v][0])]
                    region &= limits[v]
                if anchors:
                    new[z][component_at(region, anchors)] = v
        if np.array_equal(new, labels):
            break
        labels = new
    return np.moveaxis(labels, 0, thick)


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
    lv = labels == LABELS.value_of("left_ventricle")
    if not lv.any():
        return labels
    sampling = [1e6 if ax == thick else s for ax, s in enumerate(spacing)]
    dist = ndi.distance_transform_edt(~lv, sampling=sampling)
    if clicks:
        t = float(np.clip(2.0 * max(dist[p] for p in clicks), 5.0, 20.0))
    else:
        t = 10.0
    ring = (dist > 0) & (dist <= t) & (labels == 0) & (smooth <= thr)
    ring = _per_slice(lambda m: m, ring, thick)
    out = labels.copy()
    out[ring] = LABELS.value_of("myocardium")
    return out


def _auto_lv(arr: np.ndarray, spacing: tuple[float, ...], thick: int | None
             ) -> tuple[int, int, int]:
    raise SegmentationError("automatic left-ventricle detection needs a short-axis stack; "
                            "click the left ventricle (--seed left_ventricle=x,y,z)")
