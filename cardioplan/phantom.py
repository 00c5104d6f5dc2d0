"""A synthetic congenital-heart CT angiogram with exact ground truth.

:func:`make_phantom` builds a deterministic contrast CT of a child's chest (int16 Hounsfield
units, LPS geometry with identity direction) and its uint8 label map (values from
:data:`cardioplan.labels.LABELS`).  The anatomy is drawn from smooth primitives in patient space
(millimetres), so any spacing or grid size gives the same physical phantom:

* four chambers: the left ventricle (LV) is a truncated half-ellipsoid whose long axis points
  left-anterior-inferior as in a real chest; the right ventricle (RV) wraps it anteriorly and to
  the right as a crescent; the left atrium (LA) lies posterior and superior, the right atrium (RA)
  to the right; valves are constrictions through a fibrous/muscular base plate;
* myocardium: LV wall 6 mm (the interventricular septum is the LV wall on the RV side), RV free
  wall 4 mm, atrial walls 3 mm;
* a **ventricular septal defect**: a 7 mm hole through the septum joining the LV and RV blood
  pools (split between the two ventricles at the septum's mid-surface in the ground truth);
* aorta (root from the LV, ascending, arch, descending beside the spine), pulmonary artery (from
  the RV outflow tract, anterior-left, bifurcating into left and right branches), superior and
  inferior vena cava into the RA;
* surroundings with realistic intensities: epicardial/mediastinal fat, lungs, chest wall muscle
  and subcutaneous fat, ribs, sternum, a vertebral column whose cancellous bone has blood-pool
  intensity (as in children) and touches the descending aorta, trachea with air, esophagus.

Intensities follow a CTA bolus: left-heart blood brighter than right-heart blood, the IVC only
partly opacified.  A Gaussian blur of ~0.5 voxel models partial volume before Gaussian noise.
:func:`make_mr_phantom` paints the same anatomy (same label map) as a bright-blood bSSFP-like
3D MR volume with a smooth coil bias field and Rician noise.

Examples
--------
>>> image, labels = make_phantom(spacing=(2.0, 2.0, 2.0))
>>> image.GetPixelID() == sitk.sitkInt16, labels.GetPixelID() == sitk.sitkUInt8
(True, True)
>>> from cardioplan.labels import LABELS
>>> bool((sitk.GetArrayViewFromImage(labels) == LABELS["left_ventricle"].value).any())
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from cardioplan.errors import InputError
from cardioplan.labels import LABELS

__all__ = ["make_phantom", "make_mr_phantom", "TISSUE_HU", "TISSUE_MR", "DEFAULT_FOV_MM",
           "CHEST_CENTER_LPS"]

DEFAULT_FOV_MM = (160.0, 160.0, 130.0)
"""Field of view (x, y, z) in mm when ``shape`` is not given (times ``scale``)."""

CHEST_CENTER_LPS = (4.0, -12.0, -152.0)
"""World position (LPS mm) of the phantom's anatomical origin, a realistic CT table position."""

# tissue classes -> HU (mean values of a paediatric CTA)
_AIR, _SUBCUT_FAT, _MUSCLE, _LUNG, _FAT, _CORTEX, _CANCELLOUS, _MYO, _BLOOD_L, _BLOOD_R, \
    _SVC, _IVC, _CARTILAGE, _CSF = range(14)
TISSUE_HU: dict[str, float] = {
    "air": -1000.0, "subcutaneous_fat": -105.0, "muscle": 45.0, "lung": -820.0,
    "fat": -95.0, "cortical_bone": 950.0, "cancellous_bone": 380.0, "myocardium": 100.0,
    "blood_left": 420.0, "blood_right": 340.0, "svc_blood": 520.0, "ivc_blood": 290.0,
    "cartilage": 110.0, "csf": 10.0,
}
"""Mean HU of each tissue class (left/right blood differ as with a real contrast bolus)."""
_HU_TABLE = np.array(list(TISSUE_HU.values()), dtype=np.float32)
TISSUE_MR: dict[str, float] = {
    "air": 0.0, "subcutaneous_fat": 850.0, "muscle": 280.0, "lung": 60.0, "fat": 800.0,
    "cortical_bone": 30.0, "cancellous_bone": 550.0, "myocardium": 300.0, "blood_left": 1000.0,
    "blood_right": 1000.0, "svc_blood": 950.0, "ivc_blood": 950.0, "cartilage": 400.0,
    "csf": 1100.0,
}
"""Signal of each tissue class in the bright-blood MR phantom (bSSFP contrast ~ T2/T1: blood,
fat and CSF bright; red marrow and cartilage intermediate; muscle dark grey; lung, air and
cortical bone dark).  The same keys, in the same order, as :data:`TISSUE_HU`."""
_MR_TABLE = np.array([TISSUE_MR[k] for k in TISSUE_HU], dtype=np.float32)

_LV, _RV, _LA, _RA, _MYOL, _AO, _PA, _SVCL, _IVCL = (
    LABELS.value_of(n) for n in ("left_ventricle", "right_ventricle", "left_atrium",
                                 "right_atrium", "myocardium", "aorta", "pulmonary_artery",
                                 "superior_vena_cava", "inferior_vena_cava"))


def _unit(v: Sequence[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


@dataclass
class _Canvas:
    """The grid being painted: tissue classes and labels, indexed ``[z, y, x]``."""

    origin: np.ndarray  # local (anatomical) coordinate of voxel (0, 0, 0), mm
    spacing: np.ndarray
    shape_zyx: tuple[int, int, int]
    scale: float
    tissue: np.ndarray
    labels: np.ndarray

    def box(self, lo: Sequence[float], hi: Sequence[float]
            ) -> tuple[tuple[slice, ...], np.ndarray, np.ndarray, np.ndarray] | None:
        """Slices and local x, y, z coordinate grids (float32, broadcastable) of a mm box."""
        lo_i = np.floor((np.asarray(lo) - self.origin) / self.spacing).astype(int)
        hi_i = np.ceil((np.asarray(hi) - self.origin) / self.spacing).astype(int) + 1
        size = np.array(self.shape_zyx[::-1])
        lo_i = np.clip(lo_i, 0, size)
        hi_i = np.clip(hi_i, 0, size)
        if np.any(hi_i <= lo_i):
            return None
        axes = [(self.origin[k] + self.spacing[k] * np.arange(lo_i[k], hi_i[k])
                 ).astype(np.float32) for k in range(3)]
        sl = (slice(lo_i[2], hi_i[2]), slice(lo_i[1], hi_i[1]), slice(lo_i[0], hi_i[0]))
        return sl, axes[0][None, None, :], axes[1][None, :, None], axes[2][:, None, None]

    def paint(self, sl: tuple[slice, ...], mask: np.ndarray, tissue: int,
              label: int | None) -> None:
        self.tissue[sl][mask] = tissue
        if label is not None:
            self.labels[sl][mask] = label


def _ellipsoid(c: _Canvas, center: Sequence[float], axes: np.ndarray, radii: Sequence[float],
               tissue: int, label: int | None, *, clip: tuple[np.ndarray, np.ndarray, float]
               | None = None) -> None:
    """Paint an ellipsoid (``axes`` rows are unit vectors), optionally kept on one side of a plane
    ``(point, normal, offset)``: only points with ``dot(p - point, normal) >= offset``."""
    r = max(radii)
    center = np.asarray(center)
    found = c.box(center - r, center + r)
    if found is None:
        return
    sl, x, y, z = found
    d = (x - center[0], y - center[1], z - center[2])
    f = sum(((d[0] * ax[0] + d[1] * ax[1] + d[2] * ax[2]) / rad) ** 2
            for ax, rad in zip(axes, radii, strict=True))
    mask = f <= 1.0
    if clip is not None:
        p, n, off = clip
        h = (x - p[0]) * n[0] + (y - p[1]) * n[1] + (z - p[2]) * n[2]
        mask &= h >= off
    c.paint(sl, mask, tissue, label)


def _half_ellipsoid(c: _Canvas, base: np.ndarray, axis: np.ndarray, length: float,
                    radius: float, h0: float, tissue: int, label: int | None) -> None:
    """A bullet: a cylinder of ``radius`` for ``h0 <= h < 0`` then a half-ellipsoid to ``length``
    along ``axis`` (``h`` measured from ``base``)."""
    r = max(length, radius) + abs(h0)
    found = c.box(base - r, base + r)
    if found is None:
        return
    sl, x, y, z = found
    d = (x - base[0], y - base[1], z - base[2])
    h = d[0] * axis[0] + d[1] * axis[1] + d[2] * axis[2]
    r2 = d[0] ** 2 + d[1] ** 2 + d[2] ** 2 - h ** 2
    hp = np.maximum(h, 0.0) / length
    mask = (h >= h0) & (h <= length) & (r2 <= radius ** 2 * (1.0 - hp ** 2))
    c.paint(sl, mask, tissue, label)


def _cylinder(c: _Canvas, p0: np.ndarray, p1: np.ndarray, radius: float, tissue: int,
              label: int | None) -> None:
    """A solid cylinder between ``p0`` and ``p1`` (flat ends)."""
    lo = np.minimum(p0, p1) - radius
    hi = np.maximum(p0, p1) + radius
    found = c.box(lo, hi)
    if found is None:
        return
    sl, x, y, z = found
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    axis = axis / length
    d = (x - p0[0], y - p0[1], z - p0[2])
    t = d[0] * axis[0] + d[1] * axis[1] + d[2] * axis[2]
    r2 = d[0] ** 2 + d[1] ** 2 + d[2] ** 2 - t ** 2
    c.paint(sl, (t >= 0) & (t <= length) & (r2 <= radius ** 2), tissue, label)


def _tube(c: _Canvas, points: Sequence[Sequence[float]], radii: Sequence[float], tissue: int,
          label: int | None, *, step: float = 0.5) -> None:
    """Sweep a sphere of linearly varying radius along a polyline (capsule chain)."""
    pts = [np.asarray(p, dtype=np.float64) for p in points]
    for i in range(len(pts) - 1):
        p0, p1, r0, r1 = pts[i], pts[i + 1], radii[i], radii[i + 1]
        seg = p1 - p0
        length = float(np.linalg.norm(seg))
        lo = np.minimum(p0, p1) - max(r0, r1)
        hi = np.maximum(p0, p1) + max(r0, r1)
        found = c.box(lo, hi)
        if found is None:
            continue
        sl, x, y, z = found
        u = seg / length
        d = (x - p0[0], y - p0[1], z - p0[2])
        t = np.clip(d[0] * u[0] + d[1] * u[1] + d[2] * u[2], 0.0, length)
        dist2 = sum((d[k] - t * u[k]) ** 2 for k in range(3))
        rad = r0 + (r1 - r0) * (t / length)
        c.paint(sl, dist2 <= rad ** 2, tissue, label)


def _smooth_path(points: Sequence[Sequence[float]], n: int = 12) -> list[np.ndarray]:
    """Catmull-Rom spline through ``points`` (``n`` samples per span) for curved vessels."""
    p = [np.asarray(q, dtype=np.float64) for q in points]
    p = [2 * p[0] - p[1], *p, 2 * p[-1] - p[-2]]
    out: list[np.ndarray] = []
    for i in range(1, len(p) - 2):
        for s in np.linspace(0.0, 1.0, n, endpoint=False):
            a, b, cc, d = p[i - 1], p[i], p[i + 1], p[i + 2]
            out.append(0.5 * ((2 * b) + (-a + cc) * s + (2 * a - 5 * b + 4 * cc - d) * s ** 2
                              + (-a + 3 * b - 3 * cc + d) * s ** 3))
    out.append(p[-2])
    return out


def _vessel(c: _Canvas, knots: Sequence[Sequence[float]], radii: Sequence[float], tissue: int,
            label: int | None) -> None:
    """A smooth vessel through ``knots`` with radii interpolated between knots."""
    path = _smooth_path(knots)
    n = (len(path) - 1) / (len(knots) - 1)
    rad = [float(np.interp(i / n, range(len(radii)), radii)) for i in range(len(path))]
    _tube(c, path, rad, tissue, label)


def _grid(spacing: Sequence[float], shape: Sequence[int] | None, scale: float
          ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    sp = np.asarray([float(s) for s in spacing])
    if sp.shape != (3,) or np.any(sp <= 0) or not np.all(np.isfinite(sp)):
        raise InputError(f"spacing must be three positive numbers (mm), got {spacing!r}")
    if not 0.3 <= scale <= 3.0:
        raise InputError(f"scale must be in 0.3..3 (1 = a child's heart), got {scale!r}")
    if shape is None:
        size = np.maximum(np.rint(np.asarray(DEFAULT_FOV_MM) * scale / sp).astype(int), 8)
    else:
        size = np.asarray([int(n) for n in shape])
        if size.shape != (3,) or np.any(size < 8):
            raise InputError(f"shape must be three sizes (x, y, z) >= 8, got {shape!r}")
    if int(np.prod(size)) > 400_000_000:
        raise InputError(f"a {tuple(size)} phantom is too large; use a coarser spacing")
    origin_local = -(size - 1) * sp / 2.0  # the grid is centred on the anatomical origin
    return sp, origin_local, (int(size[2]), int(size[1]), int(size[0]))


def make_phantom(*, spacing: Sequence[float] = (1.0, 1.0, 1.0),
                 shape: Sequence[int] | None = None, scale: float = 1.0,
                 noise_hu: float = 15.0, blur_voxels: float = 0.5, seed: int = 0,
                 vsd_diameter_mm: float = 7.0) -> tuple[sitk.Image, sitk.Image]:
    """Build the synthetic congenital-heart CTA and its ground-truth label map.

    Parameters
    ----------
    spacing : sequence of 3 float
        Voxel size ``(x, y, z)`` in mm.
    shape : sequence of 3 int, optional
        Grid size ``(x, y, z)``; by default the field of view is
        :data:`DEFAULT_FOV_MM` times ``scale``, centred on the chest.
    scale : float
        Size of the anatomy; 1.0 is a young child (heart about 8 cm long).
    noise_hu : float
        Standard deviation of the Gaussian noise in HU (0 for none).
    blur_voxels : float
        Gaussian sigma, in voxels, of the partial-volume blur applied before the noise.
    seed : int
        Seed of the noise generator; the same arguments always give the same images.
    vsd_diameter_mm : float
        Diameter of the ventricular septal defect (0 for an intact septum).

    Returns
    -------
    image : SimpleITK.Image
        int16 CT in HU, LPS, identity direction.
    labels : SimpleITK.Image
        uint8 ground truth on the same grid (values of :data:`cardioplan.labels.LABELS`).

    Examples
    --------
    >>> img, lab = make_phantom(spacing=(2, 2, 2), noise_hu=0)
    >>> img.GetSize()
    (80, 80, 65)
    """
    if noise_hu < 0 or blur_voxels < 0 or vsd_diameter_mm < 0:
        raise InputError("noise_hu, blur_voxels and vsd_diameter_mm must not be negative")
    tissue, labels, sp, origin = _paint_anatomy(spacing, shape, scale, vsd_diameter_mm)
    hu = _HU_TABLE[tissue]
    del tissue
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing([float(s) for s in sp])
    if blur_voxels > 0:
        image = sitk.SmoothingRecursiveGaussian(image, [float(blur_voxels * s) for s in sp])
    arr = sitk.GetArrayViewFromImage(image) if noise_hu == 0 else \
        sitk.GetArrayFromImage(image)
    if noise_hu > 0:
        rng = np.random.default_rng(seed)
        arr += rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(noise_hu)
    out = sitk.GetImageFromArray(np.clip(np.rint(arr), -1024, 3071).astype(np.int16))
    return _place(out, sp, origin), _place(labels, sp, origin)


def make_mr_phantom(*, spacing: Sequence[float] = (1.0, 1.0, 1.0),
                    shape: Sequence[int] | None = None, scale: float = 1.0,
                    noise: float = 0.04, bias: float = 0.3, blur_voxels: float = 0.5,
                    seed: int = 0, vsd_diameter_mm: float = 7.0
                    ) -> tuple[sitk.Image, sitk.Image]:
    """Build the same anatomy as :func:`make_phantom` as a bright-blood (bSSFP-like) 3D MR.

    Each tissue class gets its :data:`TISSUE_MR` signal (blood 1000: no contrast bolus, so left
    and right blood are equal; fat bright; myocardium and muscle dark grey; lung, air and
    cortical bone dark), blurred by ``blur_voxels``, multiplied by a smooth receive-coil bias
    field (brighter anteriorly and at the centre of the field of view) and given Rician noise
    (the magnitude of a complex signal with Gaussian noise in both channels).

    Parameters
    ----------
    spacing, shape, scale, blur_voxels, seed, vsd_diameter_mm
        As in :func:`make_phantom`; the label map is identical to the CT phantom's.
    noise : float
        Standard deviation of the noise in each channel, as a fraction of the blood signal.
    bias : float
        Strength of the bias field: the signal varies by about ``1 +- bias`` over the chest.

    Returns
    -------
    image : SimpleITK.Image
        float32 magnitude image (arbitrary units, blood about 1000), LPS, identity direction.
    labels : SimpleITK.Image
        uint8 ground truth on the same grid.

    Examples
    --------
    >>> img, lab = make_mr_phantom(spacing=(2, 2, 2))
    >>> img.GetPixelID() == sitk.sitkFloat32
    True
    """
    if noise < 0 or blur_voxels < 0 or vsd_diameter_mm < 0 or not 0 <= bias < 1:
        raise InputError("noise, blur_voxels and vsd_diameter_mm must not be negative and "
                         "bias must be in 0..1")
    tissue, labels, sp, origin = _paint_anatomy(spacing, shape, scale, vsd_diameter_mm)
    image = sitk.GetImageFromArray(_MR_TABLE[tissue])
    del tissue
    image.SetSpacing([float(s) for s in sp])
    if blur_voxels > 0:
        image = sitk.SmoothingRecursiveGaussian(image, [float(blur_voxels * s) for s in sp])
    arr = sitk.GetArrayFromImage(image) * _bias_field(image.GetSize(), sp, scale, bias)
    if noise > 0:
        rng = np.random.default_rng(seed)
        sigma = np.float32(noise * TISSUE_MR["blood_left"])
        re = arr + rng.standard_normal(arr.shape, dtype=np.float32) * sigma
        im = rng.standard_normal(arr.shape, dtype=np.float32) * sigma
        arr = np.sqrt(re * re + im * im)
    out = sitk.GetImageFromArray(arr.astype(np.float32))
    return _place(out, sp, origin), _place(labels, sp, origin)


def _bias_field(size_xyz: Sequence[int], sp: np.ndarray, scale: float,
                bias: float) -> np.ndarray:
    """A smooth multiplicative receive field ``[z, y, x]``: an anterior-posterior ramp (the
    anterior coil) times a fall-off away from the centre of the field of view."""
    half = [(n - 1) * s / 2.0 for n, s in zip(size_xyz, sp, strict=True)]
    x, y, z = (((np.arange(n) * s - h) / (80.0 * scale)).astype(np.float32)
               for n, s, h in zip(size_xyz, sp, half, strict=True))
    ramp = -0.6 * y[None, :, None]                   # LPS: anterior is -y
    falloff = -0.4 * (x[None, None, :] ** 2 + z[:, None, None] ** 2)
    return np.exp(np.float32(bias) * (ramp + falloff)).astype(np.float32)


def _paint_anatomy(spacing: Sequence[float], shape: Sequence[int] | None, scale: float,
                   vsd_diameter_mm: float
                   ) -> tuple[np.ndarray, sitk.Image, np.ndarray, np.ndarray]:
    """Tissue classes ``[z, y, x]``, the label image, the spacing and the LPS origin."""
    sp, origin_local, shape_zyx = _grid(spacing, shape, scale)
    canvas = _Canvas(origin=origin_local / scale, spacing=sp / scale, shape_zyx=shape_zyx,
                     scale=scale, tissue=np.zeros(shape_zyx, np.uint8),
                     labels=np.zeros(shape_zyx, np.uint8))
    _draw_chest(canvas)
    _draw_heart(canvas, vsd_radius=vsd_diameter_mm / 2.0)
    origin = np.asarray(CHEST_CENTER_LPS) + origin_local
    return canvas.tissue, sitk.GetImageFromArray(canvas.labels), sp, origin


def _place(image: sitk.Image, sp: np.ndarray, origin: np.ndarray) -> sitk.Image:
    image.SetSpacing([float(s) for s in sp])
    image.SetOrigin([float(o) for o in origin])
    return image


def _draw_chest(c: _Canvas) -> None:
    """Body wall, lungs, spine, ribs, sternum, trachea and esophagus (local mm, x=L y=P z=S)."""
    zmin = c.origin[2]
    zmax = c.origin[2] + c.spacing[2] * c.shape_zyx[0]
    found = c.box((-200, -200, zmin), (200, 200, zmax))
    assert found is not None
    sl, x, y, z = found

    def ellipse(cx: float, cy: float, a: float, b: float) -> np.ndarray:
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0

    shape2 = c.shape_zyx
    body = np.broadcast_to(ellipse(0, 0, 76, 60), shape2)
    c.paint(sl, body, _SUBCUT_FAT, None)
    c.paint(sl, np.broadcast_to(ellipse(0, 0, 71, 55), shape2), _MUSCLE, None)
    cavity = ellipse(0, -2, 63, 46)
    c.paint(sl, np.broadcast_to(cavity, shape2), _LUNG, None)
    # posterior mediastinum and the vertebral column
    c.paint(sl, np.broadcast_to(ellipse(0, 30, 22, 16), shape2), _FAT, None)
    c.paint(sl, np.broadcast_to(ellipse(0, 38, 14.5, 13), shape2), _CORTEX, None)
    c.paint(sl, np.broadcast_to(ellipse(0, 38, 12.5, 11), shape2), _CANCELLOUS, None)
    c.paint(sl, np.broadcast_to(ellipse(0, 58, 6, 5), shape2), _CSF, None)
    # intervertebral discs every 20 mm (soft tissue between the vertebral bodies)
    body_xy = ellipse(0, 38, 14.5, 13)
    disc = (np.abs(np.mod(z + 6.0, 20.0) - 10.0) <= 2.5) & body_xy
    c.paint(sl, disc, _CARTILAGE, None)
    # sternum (anterior midline) with costal cartilage lateral to it
    c.paint(sl, np.broadcast_to(ellipse(0, -53, 10, 4.5), shape2), _CORTEX, None)
    c.paint(sl, np.broadcast_to(ellipse(0, -53, 8, 3), shape2), _CANCELLOUS, None)
    # ribs: elliptical hoops in the chest wall, sloping down anteriorly, every 18 mm
    wall = ((x / 67) ** 2 + ((y + 1) / 50.5) ** 2)
    ring = np.abs(np.sqrt(wall) - 1.0) * 58.0  # ~ distance from the hoop line, mm
    for k in range(-6, 7):
        z0 = 18.0 * k + 0.55 * (y + 50)  # ribs run lower anteriorly
        rib = (ring <= 3.5) & (np.abs(z - z0) <= 3.5) & (np.abs(x) > 14)
        c.paint(sl, rib, _CORTEX, None)
        c.paint(sl, (ring <= 2.0) & (np.abs(z - z0) <= 2.0) & (np.abs(x) > 14), _CANCELLOUS,
                None)
        cart = (ring <= 3.0) & (np.abs(z - z0) <= 3.0) & (np.abs(x) > 10) & (np.abs(x) <= 14)
        c.paint(sl, cart, _CARTILAGE, None)
    # anterior/superior mediastinum around the great vessels
    _cylinder(c, np.array([0, -8, 18.0]), np.array([0, -8, 90.0]), 20, _FAT, None)
    # trachea (air) and esophagus
    trachea = [(-5, 14, 90), (-5, 14, 46), (-8, 18, 36), (-22, 22, 26)]
    _tube(c, trachea, [9, 9, 8, 6], _MUSCLE, None)
    _tube(c, trachea, [7, 7, 6, 4.5], _AIR, None)
    _tube(c, [(-4, 30, 90), (2, 28, 0), (8, 24, -90)], [5.5, 5.5, 5.5], _MUSCLE, None)


def _draw_heart(c: _Canvas, *, vsd_radius: float) -> None:
    """Chambers, myocardium, VSD and great vessels with their ground-truth labels."""
    a = _unit((0.62, -0.55, -0.56))  # LV long axis, base -> apex (left, anterior, inferior)
    s = _unit(np.array([-0.6, -0.8, 0.0]) - np.dot([-0.6, -0.8, 0.0], a) * a)  # LV -> RV
    t = np.cross(a, s)  # completes the frame (right-posterior-inferior)
    base = np.array([4.0, 4.0, 2.0])  # centre of the LV base (mitral-aortic plane)
    L, R, W = 31.0, 15.5, 6.0  # LV cavity length/radius, LV wall
    rv_wall, atrial_wall = 4.0, 3.0
    la_c = base - a * 22 - t * 2 - s * 9 + np.array([4.0, 1.0, 0.0])
    la_axes = np.array([_unit((1, 0, 0)), _unit((0, 1, 0.2)), _unit((0, -0.2, 1))])
    la_r = (19.0, 12.5, 14.0)
    ra_c = base - a * 14 + s * 20 - t * 6 + np.array([-15.0, 2.0, 0.0])
    ra_axes = np.array([_unit((1, 0.3, 0)), _unit((-0.3, 1, 0)), _unit((0, 0, 1))])
    ra_r = (15.0, 14.0, 19.0)
    ra_top = ra_c + np.array([-3.0, 3.0, 17.0])
    ra_bottom = ra_c + np.array([0.0, 6.0, -16.0])
    rv_c = base + a * 13 + s * 21
    rv_axes = np.array([a, s, t])
    rv_r = (27.0, 16.0, 24.0)
    aortic = base + s * 9 - t * 5
    root = aortic - a * W
    outflow = rv_c - t * 18 - a * 8 + s * 2
    valve = outflow + np.array([4.0, 3.0, 12.0])
    bif = np.array([10.0, 6.0, 38.0])
    # (knots, radii, tissue, label, fat sleeve)
    vessels = [
        ([(-24, 2, 90), (-23, 2, 50), ra_top + (0, 0, 8), ra_top], [7.0] * 4, _SVC, _SVCL, 2.0),
        ([(-6, 20, -90), (-6, 18, -45), ra_bottom - (0, 0, 8), ra_bottom], [8.5] * 4, _IVC,
         _IVCL, 2.0),
        ([root, root + (3, -4, 9), (-8, -6, 40), (-1, -1, 55), (9, 10, 57), (17, 22, 46),
          (19, 27, 20), (19, 27, -20), (17, 27, -90)],
         [7.0, 8.5, 8.0, 7.5, 7.0, 6.5, 6.5, 6.5, 6.5], _BLOOD_L, _AO, 2.5),
        ([valve, valve + (6, 2, 8), bif], [6.0, 7.5, 7.0], _BLOOD_R, _PA, 2.0),
        ([bif, (28, 14, 36), (45, 20, 30)], [5.5, 5.0, 4.0], _BLOOD_R, _PA, 1.5),
        ([bif, (-8, 10, 36), (-26, 14, 34), (-42, 18, 30)], [5.5, 5.0, 5.0, 4.0], _BLOOD_R,
         _PA, 1.5),
    ]

    # fat first: epicardial fat (thicker in the grooves) and the sleeves of the great vessels
    fat = 3.5
    _ellipsoid(c, la_c, la_axes, [r + atrial_wall + fat for r in la_r], _FAT, None)
    _ellipsoid(c, ra_c, ra_axes, [r + atrial_wall + fat for r in ra_r], _FAT, None)
    _ellipsoid(c, rv_c, rv_axes, [r + rv_wall + fat for r in rv_r], _FAT, None,
               clip=(base, a, -rv_wall - fat))
    _half_ellipsoid(c, base, a, L + W + fat, R + W + fat, -W - fat, _FAT, None)
    for knots, radii, _, _, fat in vessels:
        _vessel(c, knots, [r + fat for r in radii], _FAT, None)

    # great arteries first, with 1.5 mm walls: chamber walls painted later keep them apart
    for knots, radii, _, _, _ in vessels[2:]:
        _vessel(c, knots, [r + 1.5 for r in radii], _MUSCLE, None)
    for knots, radii, tissue, label, _ in vessels[2:]:
        _vessel(c, knots, radii, tissue, label)
    # atria: the ventricles and their base plates overwrite any overlap
    _ellipsoid(c, la_c, la_axes, [r + atrial_wall for r in la_r], _MYO, _MYOL)
    _ellipsoid(c, ra_c, ra_axes, [r + atrial_wall for r in ra_r], _MYO, _MYOL)
    for knots, radii, tissue, label, _ in vessels[:2]:  # caval veins through the RA wall
        _vessel(c, knots, radii, tissue, label)
    _ellipsoid(c, la_c, la_axes, la_r, _BLOOD_L, _LA)
    _ellipsoid(c, ra_c, ra_axes, ra_r, _BLOOD_R, _RA)

    # right ventricle: an ellipsoid whose LV side is cut away by the LV (the septum)
    _ellipsoid(c, rv_c, rv_axes, [r + rv_wall for r in rv_r], _MYO, _MYOL,
               clip=(base, a, -rv_wall))
    _ellipsoid(c, rv_c, rv_axes, rv_r, _BLOOD_R, _RV, clip=(base, a, 0.0))
    # left ventricle: myocardium (with a basal plate) then the cavity
    _half_ellipsoid(c, base, a, L + W, R + W, -W, _MYO, _MYOL)
    _half_ellipsoid(c, base, a, L, R, 0.0, _BLOOD_L, _LV)

    # valves: orifices through the base plates (split at the valve plane)
    mitral = base - s * 6 + t * 3
    _cylinder(c, mitral - a * (W + 4), mitral - a * (W / 2), 8.0, _BLOOD_L, _LA)
    _cylinder(c, mitral - a * (W / 2), mitral + a * 1, 8.0, _BLOOD_L, _LV)
    tricuspid = base + s * 26 - t * 6
    _cylinder(c, tricuspid - a * (rv_wall + 5), tricuspid - a * (rv_wall / 2), 8.5, _BLOOD_R,
              _RA)
    _cylinder(c, tricuspid - a * (rv_wall / 2), tricuspid + a * 1, 8.5, _BLOOD_R, _RV)

    # ventricular septal defect: a hole through the septum, just below the aortic valve
    if vsd_radius > 0:
        h = 9.0
        r_epi = (R + W) * np.sqrt(1 - (h / (L + W)) ** 2)
        r_endo = R * np.sqrt(1 - (h / L) ** 2)
        mid = base + a * h - t * 2 + s * (r_epi + r_endo) / 2
        _cylinder(c, base + a * h - t * 2 + s * (r_endo - 2), mid, vsd_radius, _BLOOD_L, _LV)
        _cylinder(c, mid, base + a * h - t * 2 + s * (r_epi + 2), vsd_radius, _BLOOD_R, _RV)

    # great arteries: aortic root through the LV base plate; PA from a muscular infundibulum
    _cylinder(c, aortic - a * W, aortic - a * (W / 2), 6.5, _BLOOD_L, _AO)
    _cylinder(c, aortic - a * (W / 2), aortic + a * 1, 6.5, _BLOOD_L, _LV)
    _cylinder(c, outflow, valve, 10.0, _MYO, _MYOL)  # the muscle ends at the valve
    _vessel(c, [outflow - (valve - outflow) * 0.8, valve], [7.0, 6.0], _BLOOD_R, _RV)
    _vessel(c, [valve, valve + (6, 2, 8)], [6.0, 7.5], _BLOOD_R, _PA)
