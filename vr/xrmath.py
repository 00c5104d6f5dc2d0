"""Pose, projection and picking maths for the headset: pure NumPy, no runtime, no GL.

Conventions
-----------
- OpenXR spaces are right-handed, metres, +Y up, -Z forward (where the user looks).
- Matrices are 4x4 NumPy arrays acting on column vectors (``p' = M @ p``), row-major in memory;
  transpose them for GL uniforms (which are column-major).
- Quaternions are ``(x, y, z, w)`` like ``XrQuaternionf``.
- The clip space is OpenGL's (``z`` in ``[-1, 1]``), as OpenXR's GL binding expects.
- Patient space is LPS millimetres (the case's meshes); :data:`LPS_TO_XR` turns it so that the
  patient faces the user: patient left -> +X, superior -> +Y, anterior -> +Z (toward the user).

Examples
--------
>>> import numpy as np
>>> from vr.xrmath import Pose, quat_from_axis_angle
>>> p = Pose((0, 1, 0), quat_from_axis_angle((0, 1, 0), np.pi / 2))
>>> np.round(p.transform_point((0, 0, -1)), 6).tolist()
[-1.0, 1.0, -0.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "LPS_TO_XR",
    "Pose",
    "quat_normalize",
    "quat_multiply",
    "quat_conjugate",
    "quat_rotate",
    "quat_from_axis_angle",
    "quat_from_matrix",
    "quat_to_matrix",
    "quat_from_two_vectors",
    "pose_matrix",
    "view_matrix",
    "projection_from_fov",
    "project_points",
    "ndc_to_pixels",
    "scale_matrix",
    "translation_matrix",
    "transform_points",
    "transform_directions",
    "ray_plane",
    "ray_quad",
    "ray_triangles",
    "ray_aabb",
    "ray_aabbs",
    "plane_transform",
    "model_matrix",
]

Array = NDArray[np.float64]

LPS_TO_XR: Array = np.array([[1.0, 0.0, 0.0, 0.0],
                             [0.0, 0.0, 1.0, 0.0],
                             [0.0, -1.0, 0.0, 0.0],
                             [0.0, 0.0, 0.0, 1.0]])
"""Rotation from patient LPS axes to the viewer's XR axes (patient facing the user)."""


def _vec(v: ArrayLike, n: int = 3) -> Array:
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    if a.shape != (n,):
        raise ValueError(f"expected {n} numbers, got shape {np.shape(v)}")
    return a


# -- quaternions ---------------------------------------------------------------------------------
def quat_normalize(q: ArrayLike) -> Array:
    """Unit quaternion ``q / |q|`` (identity for a zero quaternion)."""
    a = _vec(q, 4)
    n = float(np.linalg.norm(a))
    return np.array([0.0, 0.0, 0.0, 1.0]) if n < 1e-12 else a / n


def quat_multiply(a: ArrayLike, b: ArrayLike) -> Array:
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``).

    Examples
    --------
    >>> quat_multiply((0, 0, 0, 1), (0, 0, 1, 0)).tolist()
    [0.0, 0.0, 1.0, 0.0]
    """
    x1, y1, z1, w1 = _vec(a, 4)
    x2, y2, z2, w2 = _vec(b, 4)
    return np.array([w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
                     w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2])


def quat_conjugate(q: ArrayLike) -> Array:
    """Conjugate (the inverse of a unit quaternion)."""
    x, y, z, w = _vec(q, 4)
    return np.array([-x, -y, -z, w])


def quat_rotate(q: ArrayLike, v: ArrayLike) -> Array:
    """Rotate vector(s) ``v`` (shape (3,) or (N, 3)) by unit quaternion ``q``."""
    return np.asarray(v, dtype=np.float64) @ quat_to_matrix(q).T


def quat_from_axis_angle(axis: ArrayLike, angle: float) -> Array:
    """Rotation of ``angle`` radians about ``axis`` (right-hand rule).

    Examples
    --------
    >>> np.round(quat_from_axis_angle((0, 0, 1), np.pi), 6).tolist()
    [0.0, 0.0, 1.0, 0.0]
    """
    ax = _vec(axis)
    n = float(np.linalg.norm(ax))
    if n < 1e-12:
        return np.array([0.0, 0.0, 0.0, 1.0])
    s = np.sin(angle / 2.0)
    return np.concatenate([ax / n * s, [np.cos(angle / 2.0)]])


def quat_to_matrix(q: ArrayLike) -> Array:
    """3x3 rotation matrix of a quaternion (normalised first)."""
    x, y, z, w = quat_normalize(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def quat_from_matrix(m: ArrayLike) -> Array:
    """Unit quaternion of a 3x3 rotation matrix (Shepperd's method, ``w >= 0``)."""
    r = np.asarray(m, dtype=np.float64)[:3, :3]
    tr = np.trace(r)
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, s / 4]
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
        q = [s / 4, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s, (r[2, 1] - r[1, 2]) / s]
    elif r[1, 1] > r[2, 2]:
        s = np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
        q = [(r[0, 1] + r[1, 0]) / s, s / 4, (r[1, 2] + r[2, 1]) / s, (r[0, 2] - r[2, 0]) / s]
    else:
        s = np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
        q = [(r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, s / 4, (r[1, 0] - r[0, 1]) / s]
    qa = quat_normalize(q)
    return -qa if qa[3] < 0 else qa


def quat_from_two_vectors(a: ArrayLike, b: ArrayLike) -> Array:
    """Shortest rotation taking direction ``a`` onto direction ``b``."""
    u = _vec(a) / max(np.linalg.norm(a), 1e-12)
    v = _vec(b) / max(np.linalg.norm(b), 1e-12)
    d = float(np.dot(u, v))
    if d < -1 + 1e-9:  # opposite: rotate pi about any axis perpendicular to u
        axis = np.cross(u, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(u, [0.0, 1.0, 0.0])
        return quat_from_axis_angle(axis, np.pi)
    return quat_normalize(np.concatenate([np.cross(u, v), [1.0 + d]]))


# -- poses ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pose:
    """A rigid transform: rotation ``orientation`` (x, y, z, w) then translation ``position``.

    Like ``XrPosef``: it maps points from the local space into the parent (reference) space.
    """

    position: Array = field(default_factory=lambda: np.zeros(3))
    orientation: Array = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", _vec(self.position))
        object.__setattr__(self, "orientation", quat_normalize(self.orientation))

    @classmethod
    def from_xr(cls, posef: Any) -> Pose:
        """Convert an ``xr.Posef`` (anything with ``.position.x``... and ``.orientation.w``)."""
        p, o = posef.position, posef.orientation
        return cls((p.x, p.y, p.z), (o.x, o.y, o.z, o.w))

    @classmethod
    def from_matrix(cls, m: ArrayLike) -> Pose:
        """Rigid part of a 4x4 matrix (its rotation must be orthonormal)."""
        a = np.asarray(m, dtype=np.float64)
        return cls(a[:3, 3], quat_from_matrix(a[:3, :3]))

    def matrix(self) -> Array:
        """4x4 matrix of this pose (local -> parent)."""
        return pose_matrix(self.position, self.orientation)

    def inverse(self) -> Pose:
        """The inverse transform (parent -> local)."""
        qi = quat_conjugate(self.orientation)
        return Pose(-quat_rotate(qi, self.position), qi)

    def compose(self, other: Pose) -> Pose:
        """``self * other``: apply ``other`` first, then ``self``."""
        return Pose(self.position + quat_rotate(self.orientation, other.position),
                    quat_multiply(self.orientation, other.orientation))

    def transform_point(self, p: ArrayLike) -> Array:
        """Map point(s) (shape (3,) or (N, 3)) from local to parent space."""
        return quat_rotate(self.orientation, p) + self.position

    def transform_direction(self, d: ArrayLike) -> Array:
        """Rotate direction(s) from local to parent space."""
        return quat_rotate(self.orientation, d)

    @property
    def forward(self) -> Array:
        """The local -Z axis in the parent space (where a controller's aim pose points)."""
        return self.transform_direction((0.0, 0.0, -1.0))

    def to_dict(self) -> dict[str, list[float]]:
        """``{"position": [x, y, z], "orientation": [x, y, z, w]}`` (JSON-friendly)."""
        return {"position": [float(v) for v in self.position],
                "orientation": [float(v) for v in self.orientation]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Pose:
        """Inverse of :meth:`to_dict`."""
        return cls(d["position"], d["orientation"])


def translation_matrix(t: ArrayLike) -> Array:
    """4x4 translation."""
    m = np.eye(4)
    m[:3, 3] = _vec(t)
    return m


def scale_matrix(s: float) -> Array:
    """4x4 uniform scale."""
    m = np.eye(4) * float(s)
    m[3, 3] = 1.0
    return m


def pose_matrix(position: ArrayLike, orientation: ArrayLike) -> Array:
    """4x4 matrix mapping local points to the parent space (rotation then translation)."""
    m = np.eye(4)
    m[:3, :3] = quat_to_matrix(orientation)
    m[:3, 3] = _vec(position)
    return m


def view_matrix(position: ArrayLike, orientation: ArrayLike) -> Array:
    """World -> eye matrix from an eye pose (``XrView.pose``): the inverse of its pose matrix.

    Examples
    --------
    >>> v = view_matrix((0, 1.6, 0), (0, 0, 0, 1))
    >>> (v @ [0, 1.6, -2, 1]).tolist()
    [0.0, 0.0, -2.0, 1.0]
    """
    r = quat_to_matrix(orientation)
    m = np.eye(4)
    m[:3, :3] = r.T
    m[:3, 3] = -r.T @ _vec(position)
    return m


def projection_from_fov(angle_left: float, angle_right: float, angle_up: float,
                        angle_down: float, *, near: float = 0.05, far: float = 100.0) -> Array:
    """Asymmetric OpenGL perspective projection from an ``XrFovf`` (angles in radians).

    ``angle_left`` and ``angle_down`` are negative for a usual field of view.  The result maps
    the eye-space frustum to clip space with ``z`` in ``[-1, 1]`` (like
    ``XrMatrix4x4f_CreateProjection`` for ``GRAPHICS_OPENGL``).  Build it from the field of view
    only: the swapchain's aspect ratio need not match it.

    Examples
    --------
    >>> p = projection_from_fov(-0.5, 0.5, 0.5, -0.5)
    >>> c = p @ [np.tan(0.5), 0, -1, 1]
    >>> float(round(c[0] / c[3], 6))
    1.0
    """
    if not far > near > 0:
        raise ValueError(f"need far > near > 0, got near={near}, far={far}")
    tl, tr = np.tan(angle_left), np.tan(angle_right)
    tu, td = np.tan(angle_up), np.tan(angle_down)
    w, h = tr - tl, tu - td
    if w <= 0 or h <= 0:
        raise ValueError("field of view must have angle_right > angle_left and "
                         "angle_up > angle_down")
    return np.array([
        [2.0 / w, 0.0, (tr + tl) / w, 0.0],
        [0.0, 2.0 / h, (tu + td) / h, 0.0],
        [0.0, 0.0, -(far + near) / (far - near), -2.0 * far * near / (far - near)],
        [0.0, 0.0, -1.0, 0.0],
    ])


def transform_points(m: ArrayLike, pts: ArrayLike) -> Array:
    """Apply a 4x4 affine matrix to point(s) of shape (3,) or (N, 3)."""
    a = np.asarray(m, dtype=np.float64)
    p = np.asarray(pts, dtype=np.float64)
    return p @ a[:3, :3].T + a[:3, 3]


def transform_directions(m: ArrayLike, dirs: ArrayLike) -> Array:
    """Apply the linear part of a 4x4 matrix to direction(s) (no translation)."""
    a = np.asarray(m, dtype=np.float64)
    return np.asarray(dirs, dtype=np.float64) @ a[:3, :3].T


def project_points(proj: ArrayLike, view: ArrayLike, pts: ArrayLike) -> tuple[Array, Array]:
    """Project world point(s) to normalised device coordinates.

    Returns
    -------
    ndc : ndarray (N, 3)
        x, y, z in [-1, 1] for points inside the frustum.
    in_front : ndarray of bool (N,)
        True where the point is in front of the eye (``w > 0``).
    """
    p = np.atleast_2d(np.asarray(pts, dtype=np.float64))
    hom = np.c_[p, np.ones(len(p))] @ (np.asarray(proj) @ np.asarray(view)).T
    w = hom[:, 3]
    safe = np.where(np.abs(w) < 1e-12, 1e-12, w)
    return hom[:, :3] / safe[:, None], w > 0


def ndc_to_pixels(ndc: ArrayLike, width: int, height: int) -> Array:
    """NDC x, y -> pixel (column, row) with row 0 at the **bottom** (GL read-back order).

    Pixel centres: NDC -1 is the left edge of column 0, +1 the right edge of column ``width-1``.
    """
    a = np.atleast_2d(np.asarray(ndc, dtype=np.float64))
    col = (a[:, 0] + 1.0) * 0.5 * width - 0.5
    row = (a[:, 1] + 1.0) * 0.5 * height - 0.5
    return np.c_[col, row]


# -- picking -------------------------------------------------------------------------------
def ray_plane(origin: ArrayLike, direction: ArrayLike, point: ArrayLike,
              normal: ArrayLike) -> float | None:
    """Distance ``t >= 0`` along a ray to a plane, or None (parallel or behind).

    Examples
    --------
    >>> ray_plane((0, 0, 0), (0, 0, -1), (0, 0, -2), (0, 0, 1))
    2.0
    """
    o, d, p, n = _vec(origin), _vec(direction), _vec(point), _vec(normal)
    denom = float(np.dot(d, n))
    if abs(denom) < 1e-12:
        return None
    t = float(np.dot(p - o, n)) / denom
    return t if t >= 0 else None


def ray_quad(origin: ArrayLike, direction: ArrayLike, quad_pose: Pose, width: float,
             height: float) -> tuple[float, float, float] | None:
    """Hit a rectangle centred on ``quad_pose`` in its local XY plane (normal +Z).

    Returns ``(t, u, v)`` with ``u`` from left (0) to right (1) and ``v`` from top (0) to
    bottom (1) — texture-like coordinates of the panel — or None when the ray misses.
    """
    n = quad_pose.transform_direction((0.0, 0.0, 1.0))
    t = ray_plane(origin, direction, quad_pose.position, n)
    if t is None:
        return None
    hit = _vec(origin) + t * _vec(direction)
    local = quad_pose.inverse().transform_point(hit)
    u = local[0] / width + 0.5
    v = 0.5 - local[1] / height
    if 0.0 <= u <= 1.0 and 0.0 <= v <= 1.0:
        return t, float(u), float(v)
    return None


def ray_aabb(origin: ArrayLike, direction: ArrayLike, lo: ArrayLike,
             hi: ArrayLike) -> float | None:
    """Entry distance of a ray into an axis-aligned box (0 when the origin is inside), or None."""
    o, d = _vec(origin), _vec(direction)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1 = (_vec(lo) - o) * inv
        t2 = (_vec(hi) - o) * inv
    tmin = np.nanmax(np.minimum(t1, t2))
    tmax = np.nanmin(np.maximum(t1, t2))
    if tmax < max(tmin, 0.0):
        return None
    return float(max(tmin, 0.0))


def ray_aabbs(origin: ArrayLike, direction: ArrayLike, lo: ArrayLike,
              hi: ArrayLike) -> Array:
    """Entry distances of a ray into many boxes (``lo``, ``hi``: (N, 3)); ``inf`` for a miss.

    Examples
    --------
    >>> ray_aabbs((0, 0, 0), (0, 0, -1), [[-1, -1, -3], [5, 5, -3]], [[1, 1, -2], [6, 6, -2]])
    array([ 2., inf])
    """
    o, d = _vec(origin), _vec(direction)
    lo_a, hi_a = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1 = (lo_a - o) * inv
        t2 = (hi_a - o) * inv
    tmin = np.nanmax(np.minimum(t1, t2), axis=1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=1)
    enter = np.maximum(tmin, 0.0)
    return np.where(tmax >= enter, enter, np.inf)


def ray_triangles(origin: ArrayLike, direction: ArrayLike, vertices: ArrayLike,
                  faces: ArrayLike) -> tuple[float, int] | None:
    """Nearest hit of a ray with triangles (Möller–Trumbore, vectorised, two-sided).

    Parameters
    ----------
    origin, direction : array_like (3,)
        The ray (``direction`` need not be unit length; ``t`` is in its units).
    vertices : array_like (N, 3)
    faces : array_like (M, 3) of int

    Returns
    -------
    (t, face_index) of the nearest hit with ``t > 0``, or None.

    Examples
    --------
    >>> v = np.array([[-1, -1, -2], [1, -1, -2], [0, 1, -2]], float)
    >>> ray_triangles((0, 0, 0), (0, 0, -1), v, [[0, 1, 2]])
    (2.0, 0)
    """
    o, d = _vec(origin), _vec(direction)
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if len(f) == 0:
        return None
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    e1, e2 = b - a, c - a
    pvec = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, pvec)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    tvec = o - a
    u = np.einsum("ij,ij->i", tvec, pvec) * inv
    qvec = np.cross(tvec, e1)
    w = (qvec @ d) * inv
    t = np.einsum("ij,ij->i", e2, qvec) * inv
    hit = ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (t > 1e-9)
    if not hit.any():
        return None
    idx = np.flatnonzero(hit)
    best = idx[np.argmin(t[idx])]
    return float(t[best]), int(best)


def plane_transform(m: ArrayLike, point: ArrayLike, normal: ArrayLike) -> tuple[Array, Array]:
    """Map a plane (point, normal) through an affine 4x4 matrix; the normal comes back unit length.

    Normals transform with the inverse transpose, so this is right for scaled matrices too.
    """
    a = np.asarray(m, dtype=np.float64)
    p = transform_points(a, point)
    n = np.linalg.inv(a[:3, :3]).T @ _vec(normal)
    return p, n / max(float(np.linalg.norm(n)), 1e-12)


def model_matrix(position: ArrayLike, orientation: ArrayLike, scale: float,
                 pivot_mm: ArrayLike) -> Array:
    """World (stage, metres) <- model (patient LPS, millimetres) matrix of the heart.

    ``T(position) @ R(orientation) @ S(scale / 1000) @ LPS_TO_XR @ T(-pivot_mm)``: the model's
    ``pivot_mm`` (usually its bounding-box centre) sits at ``position``; ``scale`` 1 is life size.

    Examples
    --------
    >>> m = model_matrix((0, 1.5, -0.5), (0, 0, 0, 1), 1.0, (10, 20, 30))
    >>> np.round(transform_points(m, (10, 20, 40)), 6).tolist()   # 10 mm superior
    [0.0, 1.51, -0.5]
    """
    return (pose_matrix(position, orientation) @ scale_matrix(float(scale) / 1000.0)
            @ LPS_TO_XR @ translation_matrix(-_vec(pivot_mm)))
