"""Pure pose, projection and picking maths of the headset (no runtime needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vr import xrmath
from vr.xrmath import Pose

RNG = np.random.default_rng(7)


def random_quat() -> np.ndarray:
    return xrmath.quat_normalize(RNG.normal(size=4))


def test_quaternion_matrix_round_trip_and_product_matches_matrix_product():
    for _ in range(20):
        a, b = random_quat(), random_quat()
        ra, rb = xrmath.quat_to_matrix(a), xrmath.quat_to_matrix(b)
        assert np.allclose(ra @ ra.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(ra), 1.0)
        q = xrmath.quat_from_matrix(ra)
        assert np.allclose(xrmath.quat_to_matrix(q), ra, atol=1e-12)
        assert np.allclose(xrmath.quat_to_matrix(xrmath.quat_multiply(a, b)), ra @ rb, atol=1e-12)


def test_axis_angle_rotates_by_right_hand_rule():
    q = xrmath.quat_from_axis_angle((0, 0, 1), math.pi / 2)
    assert np.allclose(xrmath.quat_rotate(q, (1, 0, 0)), (0, 1, 0), atol=1e-12)
    q = xrmath.quat_from_two_vectors((1, 0, 0), (0, 0, -1))
    assert np.allclose(xrmath.quat_rotate(q, (1, 0, 0)), (0, 0, -1), atol=1e-12)
    q = xrmath.quat_from_two_vectors((1, 0, 0), (-1, 0, 0))  # opposite vectors
    assert np.allclose(xrmath.quat_rotate(q, (1, 0, 0)), (-1, 0, 0), atol=1e-12)


def test_pose_inverse_compose_and_matrix_agree():
    for _ in range(10):
        a = Pose(RNG.normal(size=3), random_quat())
        b = Pose(RNG.normal(size=3), random_quat())
        p = RNG.normal(size=(5, 3))
        assert np.allclose(a.compose(b).matrix(), a.matrix() @ b.matrix(), atol=1e-12)
        assert np.allclose(a.inverse().matrix(), np.linalg.inv(a.matrix()), atol=1e-12)
        assert np.allclose(a.compose(a.inverse()).position, 0, atol=1e-12)
        assert np.allclose(a.transform_point(p), xrmath.transform_points(a.matrix(), p))
        assert np.allclose(Pose.from_dict(a.to_dict()).matrix(), a.matrix())
        assert np.allclose(Pose.from_matrix(a.matrix()).matrix(), a.matrix(), atol=1e-12)


def test_view_matrix_is_inverse_of_eye_pose():
    eye = Pose((0.03, 1.6, 0.2), xrmath.quat_from_axis_angle((0, 1, 0), 0.4))
    v = xrmath.view_matrix(eye.position, eye.orientation)
    assert np.allclose(v @ eye.matrix(), np.eye(4), atol=1e-12)
    # a point 1 m ahead of the eye lands on the eye's -Z axis
    ahead = eye.transform_point((0, 0, -1))
    assert np.allclose(xrmath.transform_points(v, ahead), (0, 0, -1), atol=1e-12)


def test_asymmetric_projection_maps_fov_edges_to_ndc_edges():
    left, right, up, down = -0.9, 0.7, 0.8, -0.85  # asymmetric, like a real headset eye
    proj = xrmath.projection_from_fov(left, right, up, down, near=0.1, far=50)
    for z in (0.5, 2.0, 10.0):
        for (ax, ay), want in (((left, 0.0), (-1, None)), ((right, 0.0), (1, None)),
                               ((0.0, up), (None, 1)), ((0.0, down), (None, -1))):
            p = np.array([math.tan(ax) * z, math.tan(ay) * z, -z, 1.0])
            c = proj @ p
            ndc = c[:3] / c[3]
            if want[0] is not None:
                assert ndc[0] == pytest.approx(want[0])
            if want[1] is not None:
                assert ndc[1] == pytest.approx(want[1])
    near = proj @ [0, 0, -0.1, 1]
    far = proj @ [0, 0, -50, 1]
    assert near[2] / near[3] == pytest.approx(-1)
    assert far[2] / far[3] == pytest.approx(1)
    with pytest.raises(ValueError, match="angle_right > angle_left"):
        xrmath.projection_from_fov(0.5, -0.5, 0.5, -0.5)


def test_project_points_and_pixels_follow_the_eye():
    eye = Pose((0.0, 1.6, 0.0))
    proj = xrmath.projection_from_fov(-0.8, 0.8, 0.7, -0.7)
    view = xrmath.view_matrix(eye.position, eye.orientation)
    ndc, front = xrmath.project_points(proj, view, [(0, 1.6, -1), (0, 1.6, 1),
                                                    (math.tan(0.8) * 2, 1.6, -2)])
    assert front.tolist() == [True, False, True]
    assert ndc[0, :2] == pytest.approx((0, 0))
    assert ndc[2, 0] == pytest.approx(1)
    px = xrmath.ndc_to_pixels(ndc[:1], 320, 240)
    assert px[0] == pytest.approx((159.5, 119.5))


def test_model_matrix_puts_patient_facing_the_user_at_the_given_scale():
    pivot = (10.0, -20.0, 5.0)
    m = xrmath.model_matrix((0, 1.5, -0.5), (0, 0, 0, 1), 2.0, pivot)
    base = xrmath.transform_points(m, pivot)
    assert base == pytest.approx((0, 1.5, -0.5))
    # patient left (+x LPS) -> +X, anterior (-y LPS) -> toward the user (+Z), superior -> +Y
    d = xrmath.transform_points(m, np.add(pivot, [[10, 0, 0], [0, -10, 0], [0, 0, 10]])) - base
    assert d[0] == pytest.approx((0.02, 0, 0))
    assert d[1] == pytest.approx((0, 0, 0.02))
    assert d[2] == pytest.approx((0, 0.02, 0))


def test_ray_plane_and_quad_hits():
    assert xrmath.ray_plane((0, 0, 0), (0, 0, -1), (0, 0, -3), (0, 0, 1)) == pytest.approx(3)
    assert xrmath.ray_plane((0, 0, 0), (0, 0, 1), (0, 0, -3), (0, 0, 1)) is None  # behind
    assert xrmath.ray_plane((0, 0, 0), (1, 0, 0), (0, 0, -3), (0, 0, 1)) is None  # parallel
    quad = Pose((0, 1, -1))
    t, u, v = xrmath.ray_quad((0.05, 1.05, 0), (0, 0, -1), quad, 0.2, 0.4)
    assert (t, u, v) == pytest.approx((1.0, 0.75, 0.375))
    assert xrmath.ray_quad((0.2, 1, 0), (0, 0, -1), quad, 0.2, 0.4) is None


def test_ray_triangles_finds_nearest_face_of_a_cube():
    import pyvista as pv

    cube = pv.Cube(center=(0, 0, -5), x_length=2, y_length=2, z_length=2).triangulate()
    faces = cube.faces.reshape(-1, 4)[:, 1:]
    t, face = xrmath.ray_triangles((0.1, 0.2, 0), (0, 0, -1), cube.points, faces)
    assert t == pytest.approx(4.0)
    assert cube.points[faces[face]][:, 2] == pytest.approx([-4, -4, -4])
    assert xrmath.ray_triangles((5, 5, 0), (0, 0, -1), cube.points, faces) is None
    assert xrmath.ray_aabb((0, 0, 0), (0, 0, -1), (-1, -1, -6), (1, 1, -4)) == pytest.approx(4)
    assert xrmath.ray_aabb((0, 0, 0), (0, 0, 1), (-1, -1, -6), (1, 1, -4)) is None


def test_plane_transform_keeps_points_on_the_same_side_under_scaling():
    m = xrmath.model_matrix((0.2, 1.3, -0.4), random_quat(), 3.0, (1, 2, 3))
    point, normal = np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.6, 0.8])
    wp, wn = xrmath.plane_transform(m, point, normal)
    assert np.linalg.norm(wn) == pytest.approx(1)
    samples = RNG.normal(scale=20, size=(50, 3)) + point
    side_model = (samples - point) @ normal
    side_world = (xrmath.transform_points(m, samples) - wp) @ wn
    assert np.array_equal(side_model > 0, side_world > 0)


def test_ray_aabbs_matches_ray_aabb_for_many_boxes():
    lo = RNG.uniform(-5, 5, size=(200, 3))
    hi = lo + RNG.uniform(0.1, 3, size=(200, 3))
    o, d = np.array([0.3, -8.0, 0.2]), np.array([0.05, 1.0, -0.02])
    many = xrmath.ray_aabbs(o, d, lo, hi)
    for i in range(200):
        one = xrmath.ray_aabb(o, d, lo[i], hi[i])
        assert (one is None and np.isinf(many[i])) or one == pytest.approx(many[i])
