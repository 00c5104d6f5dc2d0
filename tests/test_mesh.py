"""Surfaces from label maps: analytic shapes, shared boundaries, budgets, bad input."""

from __future__ import annotations

import logging

import fast_simplification
import numpy as np
import pytest
import pyvista as pv
import SimpleITK as sitk
from mesh_shapes import MIRRORED, ROTATED, nested_spheres
from scipy import ndimage
from vtkmodules.util.numpy_support import vtk_to_numpy

from cardioplan.arrays import bounding_box, label_counts
from cardioplan.errors import InputError, MeshError
from cardioplan.mesh import build_surfaces, mesh_quality
from cardioplan.mesh.geometry import (
    area_and_volume,
    edge_topology,
    enclosed_volume,
    group_equal_rows,
    split_quads,
    vertex_normals,
)
from cardioplan.mesh.surfaces import (
    MIN_TRIANGLES,
    _manifold_net,
    _surface_net,
    allocate_budget,
)

CENTRE = np.array((3.2, -4.1, 10.3))


def _faces(surface):
    return surface.faces.reshape(-1, 4)[:, 1:]


@pytest.fixture(scope="module")
def spheres():
    return nested_spheres()


@pytest.fixture(scope="module")
def full_res(spheres):
    return build_surfaces(spheres, target="print")


@pytest.mark.parametrize("direction", [ROTATED, MIRRORED])
def test_sphere_matches_analytic_shape_within_a_fraction_of_a_voxel(direction):
    labels = nested_spheres(direction=direction)
    surfaces = build_surfaces(labels, target="print")
    assert list(surfaces) == ["left_ventricle", "myocardium"]
    voxel = max(labels.GetSpacing())
    for name, radius in (("left_ventricle", 14.0), ("myocardium", 17.0)):
        s = surfaces[name]
        r = np.linalg.norm(s.points - CENTRE, axis=1)
        if name == "myocardium":  # the shell has an inner and an outer wall
            err = np.minimum(np.abs(r - 14.0), np.abs(r - 17.0))
        else:
            err = np.abs(r - radius)
        assert err.mean() < 0.25 * voxel and err.max() < voxel, name
        assert s.volume > 0  # outward normals even on a mirroring grid
    lv = surfaces["left_ventricle"]
    assert lv.volume / 1000 == pytest.approx(4 / 3 * np.pi * 14.0 ** 3 / 1000, rel=0.02)
    shell = 4 / 3 * np.pi * (17.0 ** 3 - 14.0 ** 3)
    assert surfaces["myocardium"].volume == pytest.approx(shell, rel=0.03)
    # point normals face away from the centre on the ball
    outward = np.einsum("ij,ij->i", lv.point_data["Normals"], lv.points - CENTRE)
    assert (outward > 0).mean() > 0.99


def test_surfaces_are_closed_manifolds_with_metadata(full_res):
    for name, s in full_res.items():
        topo = edge_topology(_faces(s))
        assert topo["watertight"] and topo["manifold"] and topo["oriented"], name
        assert s.field_data["structure"][0] == name
        assert s.field_data["space"][0] == "LPS"
    assert tuple(full_res["myocardium"].field_data["color"]) == (190, 140, 105)


def test_smoothing_keeps_volume_of_thin_shell(spheres, full_res):
    # the shell is ~3 voxels thick: Laplacian smoothing would thin it visibly
    for name, value in (("left_ventricle", 1), ("myocardium", 5)):
        q = mesh_quality(full_res[name], spheres, value)
        assert abs(q["volume_difference_pct"]) < 1.0, (name, q)
        assert abs(full_res[name].field_data["smoothing_volume_change_pct"][0]) < 1.0
        assert q["mean_distance_mm"] < 0.3 * q["voxel_size_mm"], (name, q)
        assert q["distance_ok"] and q["volume_ok"] and q["watertight"]


def test_no_smoothing_reproduces_voxel_volume_exactly(spheres):
    s = build_surfaces(spheres, smoothing="none", structures=["left_ventricle"])
    q = mesh_quality(s["left_ventricle"], spheres, 1, distances=False)
    assert abs(q["volume_difference_pct"]) < 1e-6


@pytest.mark.parametrize("budget", [None, 6000])
def test_neighbours_share_their_boundary_exactly(spheres, budget):
    surfaces = build_surfaces(spheres, budget=budget)
    lv, myo = surfaces["left_ventricle"], surfaces["myocardium"]
    lv_pts = {tuple(p) for p in np.asarray(lv.points)}
    myo_pts = {tuple(p) for p in np.asarray(myo.points)}
    assert lv_pts <= myo_pts  # the LV wall IS the myocardium's inner wall: no gap, no overlap
    lv_tris = {frozenset(map(tuple, lv.points[f])) for f in _faces(lv)}
    myo_tris = {frozenset(map(tuple, myo.points[f])) for f in _faces(myo)}
    assert lv_tris <= myo_tris


def test_decimated_borders_stay_shared_even_if_the_simplifier_reorders_its_points(
        spheres, monkeypatch):
    expected = build_surfaces(spheres, budget=6000)
    real = fast_simplification.simplify

    def reversed_order(points, faces, **kwargs):
        new_points, new_faces, collapses = real(points, faces, **kwargs)
        return new_points[::-1], len(new_points) - 1 - new_faces, collapses

    monkeypatch.setattr(fast_simplification, "simplify", reversed_order)
    surfaces = build_surfaces(spheres, budget=6000)
    lv, myo = surfaces["left_ventricle"], surfaces["myocardium"]
    lv_tris = {frozenset(map(tuple, lv.points[f])) for f in _faces(lv)}
    assert lv_tris <= {frozenset(map(tuple, myo.points[f])) for f in _faces(myo)}
    for name, s in surfaces.items():
        assert edge_topology(_faces(s))["watertight"], name
        assert s.n_cells == expected[name].n_cells
        assert s.volume == pytest.approx(expected[name].volume, rel=1e-9)


def test_mild_decimation_in_spread_blocks_keeps_shared_walls_and_accuracy(spheres, full_res):
    full = sum(s.n_cells for s in full_res.values())
    budget = int(0.96 * full)  # like the pcvr budget on a cardiac CT: a few % to remove
    surfaces = build_surfaces(spheres, budget=budget)
    assert 0.98 * budget <= sum(s.n_cells for s in surfaces.values()) <= budget
    lv, myo = surfaces["left_ventricle"], surfaces["myocardium"]
    lv_tris = {frozenset(map(tuple, lv.points[f])) for f in _faces(lv)}
    assert lv_tris <= {frozenset(map(tuple, myo.points[f])) for f in _faces(myo)}
    for name, s in surfaces.items():
        assert edge_topology(_faces(s))["watertight"], name
        assert s.volume == pytest.approx(full_res[name].volume, rel=1e-3), name
    err = np.abs(np.linalg.norm(lv.points - CENTRE, axis=1) - 14.0)
    assert err.mean() < 0.1 * max(spheres.GetSpacing())


def test_budget_holds_and_is_shared_by_area():
    labels = nested_spheres(extra=6)
    surfaces = build_surfaces(labels, budget=5000)
    total = sum(s.n_cells for s in surfaces.values())
    assert 0.9 * 5000 <= total <= 5000
    lv, myo = surfaces["left_ventricle"], surfaces["myocardium"]
    density = [s.n_cells / s.area for s in (lv, myo)]
    assert density[0] == pytest.approx(density[1], rel=0.35)
    full = build_surfaces(labels, target="print", structures=["aorta"])["aorta"].n_cells
    assert surfaces["aorta"].n_cells >= min(MIN_TRIANGLES, full)  # the small box keeps its floor
    for s in surfaces.values():
        assert edge_topology(_faces(s))["watertight"]


def test_budget_too_small_names_the_minimum(spheres):
    with pytest.raises(MeshError, match=r"minimum that works is (\d+)") as info:
        build_surfaces(spheres, budget=100)
    minimum = int(info.value.args[0].split("minimum that works is ")[1].split()[0])
    surfaces = build_surfaces(spheres, budget=minimum)
    assert sum(s.n_cells for s in surfaces.values()) <= minimum
    assert all(edge_topology(_faces(s))["watertight"] for s in surfaces.values())


def test_allocate_budget_is_proportional_with_floors():
    sizes = {(0, 1): 1000, (0, 2): 9000, (1, 2): 100}
    members = {"a": [(0, 1), (1, 2)], "b": [(0, 2), (1, 2)]}
    plan = allocate_budget(sizes, members, 2000, floor=50)
    total = sum(plan[p] for ps in members.values() for p in ps)
    assert total <= 2000 and total > 1900
    assert plan[(0, 2)] / 9000 == pytest.approx(plan[(0, 1)] / 1000, rel=0.05)
    assert allocate_budget(sizes, members, 10**6) == sizes
    # a: 1100 triangles, floor 50 -> 4.5 %: 46 + 5 (shared); b: 50 + the same shared 5
    with pytest.raises(MeshError, match="minimum that works is 106"):
        allocate_budget(sizes, members, 99, floor=50)


def test_area_and_volume_of_a_cube_far_from_the_origin():
    cube = pv.Cube(center=(5e4, -3e4, 2e4), x_length=10, y_length=20, z_length=30).triangulate()
    points, faces = np.asarray(cube.points, float), cube.faces.reshape(-1, 4)[:, 1:]
    area, volume = area_and_volume(points, faces)
    assert area == pytest.approx(2 * (200 + 300 + 600), rel=1e-6)
    assert volume == pytest.approx(6000, rel=1e-6)
    assert volume == pytest.approx(enclosed_volume(points, faces), rel=1e-9)
    assert area_and_volume(points, faces[:, ::-1])[1] == pytest.approx(-6000, rel=1e-6)


def test_label_counts_match_a_plain_bincount():
    rng = np.random.default_rng(2)
    arr = np.zeros((31, 40, 37), dtype=np.uint8)
    arr[3:20, 5:32, 7:30] = rng.integers(1, 256, (17, 27, 23))  # an odd-sized box
    assert np.array_equal(label_counts(arr), np.bincount(arr.ravel(), minlength=256))
    assert np.array_equal(label_counts(arr.astype(np.int16)), label_counts(arr))
    assert label_counts(np.zeros((3, 3, 3), np.uint8))[0] == 27


def test_bounding_box_pads_clips_and_reports_empty_masks():
    mask = np.zeros((6, 7, 8), dtype=bool)
    mask[1, 2:4, 7] = True
    assert bounding_box(mask) == (slice(1, 2), slice(2, 4), slice(7, 8))
    assert bounding_box(mask, pad=2) == (slice(0, 4), slice(0, 6), slice(5, 8))  # clipped
    assert bounding_box(mask, pad=[0, 1, 0]) == (slice(1, 2), slice(1, 5), slice(7, 8))
    assert bounding_box(np.zeros((4, 4), np.uint8)) is None
    rng = np.random.default_rng(5)
    for _ in range(20):  # the same box as scipy's on random 2D and 3D label maps
        arr = np.zeros(rng.integers(3, 12, rng.integers(2, 4)), np.uint8)
        corners = np.sort(rng.integers(0, arr.shape, (2, arr.ndim)), axis=0)
        arr[tuple(slice(lo, hi + 1) for lo, hi in corners.T)] = 3
        assert bounding_box(arr) == ndimage.find_objects((arr > 0).astype(np.uint8))[0]


def test_edge_topology_flags_open_non_manifold_and_inconsistently_wound_meshes():
    tet = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    assert edge_topology(tet) == {"watertight": True, "manifold": True, "oriented": True,
                                  "boundary_edges": 0}
    flipped = tet.copy()
    flipped[0] = flipped[0, ::-1]
    assert edge_topology(flipped)["watertight"] and not edge_topology(flipped)["oriented"]
    assert edge_topology(tet[1:]) == {"watertight": False, "manifold": True, "oriented": True,
                                      "boundary_edges": 3}
    # a second tetrahedron on the edge 0-1: four triangles share it
    fin = np.concatenate([tet, np.array([[0, 1, 4], [1, 0, 5], [0, 4, 5], [1, 5, 4]])])
    assert not edge_topology(fin)["manifold"] and not edge_topology(fin)["watertight"]


def test_split_quads_takes_the_shorter_diagonal_and_counts_each_quads_volume():
    rng = np.random.default_rng(1)
    points = rng.random((50, 3))
    quads = np.array([rng.choice(50, 4, replace=False) for _ in range(200)])
    triangles, volumes = split_quads(points, quads)
    centre = points.mean(axis=0)
    for i, q in enumerate(quads):
        pair = triangles[2 * i:2 * i + 2]
        diagonal = sorted(set(pair[0]) & set(pair[1]))
        other = sorted(set(q) - set(diagonal))
        length = np.linalg.norm(points[diagonal[0]] - points[diagonal[1]])
        assert length <= np.linalg.norm(points[other[0]] - points[other[1]]) + 1e-12
        assert volumes[i] == pytest.approx(enclosed_volume(points, pair, centre=centre),
                                           abs=1e-12)


def test_vertex_normals_point_outward_and_weight_by_area():
    cube = pv.Cube(x_length=10, y_length=20, z_length=30).triangulate()
    points, faces = np.asarray(cube.points, float), cube.faces.reshape(-1, 4)[:, 1:]
    normals = vertex_normals(points, faces)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0)
    assert (np.einsum("ij,ij->i", normals, points) > 0).all()  # outward from the centre
    corner = np.flatnonzero((points > 0).all(axis=1))[0]  # the (+x, +y, +z) corner
    # faces meeting there have areas 600 (x), 300 (y), 200 (z), split by the triangulation
    assert np.all(normals[corner] > 0)
    assert normals[corner, 0] > normals[corner, 2]


def test_hashed_grouping_finds_the_same_vertex_groups_even_when_hashes_collide():
    rng = np.random.default_rng(0)
    points = rng.random((5000, 3))
    points = np.concatenate([points, points[:700], [[0.0, -0.0, 0.0], [0.0, 0.0, 0.0]]])
    # two different rows with the same hash: bits (0, 1, c - K) and (0, 0, c), K the y factor
    one = np.float64(1.0).view(np.int64)
    colliding = np.array([[0, 1, one - 0x27D4EB2F165667C5], [0, 0, one]], dtype=np.int64)
    for rows in (points, np.concatenate([points, colliding.view(np.float64)])):
        first, inverse = group_equal_rows(rows)
        fast_first, fast_inverse = group_equal_rows(rows, sorted_groups=False)
        assert len(fast_first) == len(first) == len(rows) - 701
        assert np.array_equal(rows[fast_first][fast_inverse], rows + 0.0)
        # the same partition: every sorted group is exactly one hashed group
        assert len(set(zip(inverse.tolist(), fast_inverse.tolist(), strict=True))) == len(first)


def test_composite_is_union_of_members(spheres):
    s = build_surfaces(spheres, structures=["heart"], target="print")
    assert list(s) == ["heart"]
    assert s["heart"].volume == pytest.approx(4 / 3 * np.pi * 17.0 ** 3, rel=0.02)
    assert list(s["heart"].field_data["label_values"]) == [1, 5]


def test_pinched_voxels_are_repaired_to_watertight_surfaces():
    arr = np.zeros((12, 12, 12), np.uint8)
    arr[2:6, 2:6, 2:6] = 6
    arr[6:10, 6:10, 6:10] = 6  # touches the first cube only at a corner
    arr[2:6, 6:10, 2:6] = 7    # and a neighbour touching along an edge
    img = sitk.GetImageFromArray(arr)
    surfaces = build_surfaces(img, target="print")
    for name, s in surfaces.items():
        assert edge_topology(_faces(s))["watertight"], name
        assert edge_topology(_faces(s))["manifold"], name


def test_repaired_net_is_the_net_of_the_repaired_labels():
    # the repair splices locally rebuilt quads into the first net instead of rebuilding it all
    rng = np.random.default_rng(3)
    crop = np.zeros((34, 30, 32), np.uint8)
    crop[4:30, 4:26, 4:28] = (rng.random((26, 22, 24)) < 0.6) * rng.integers(1, 4, (26, 22, 24))
    crop[10:20, 10:20, 10:20] = 2
    values = [1, 2, 3]
    net, relabelled = _manifold_net(crop, values, [(1,), (2,), (3,), (1, 2)])
    assert relabelled > 0

    def quads(poly):
        points = vtk_to_numpy(poly.GetPoints().GetData())
        cells = vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 4)
        labels = vtk_to_numpy(poly.GetCellData().GetArray("BoundaryLabels"))
        return sorted((points[q].tobytes(), tuple(lab)) for q, lab in zip(cells, labels,
                                                                          strict=True))

    assert quads(net) == quads(_surface_net(crop, values))


def test_phantom_surfaces_meet_the_quality_goals(sample_data):
    path = sample_data / "phantom" / "labels.nii.gz"
    if not path.is_file():
        pytest.skip("phantom labels not generated")
    labels = sitk.ReadImage(str(path))
    surfaces = build_surfaces(labels, target="standalone")
    assert sum(s.n_cells for s in surfaces.values()) <= 250_000
    for name, s in surfaces.items():
        q = mesh_quality(s, labels, list(s.field_data["label_values"]))
        assert q["watertight"] and q["manifold"], name
        assert q["volume_ok"] and abs(q["volume_difference_pct"]) < 3.0, (name, q)
        assert q["mean_distance_mm"] <= q["voxel_size_mm"], (name, q)


def test_missing_structure_is_skipped_with_warning(spheres, caplog):
    with caplog.at_level(logging.WARNING):
        s = build_surfaces(spheres, structures=["aorta", "left_ventricle"])
    assert list(s) == ["left_ventricle"]
    assert "aorta" in caplog.text


def test_empty_label_map_is_a_clear_error():
    with pytest.raises(InputError, match="empty"):
        build_surfaces(sitk.Image(10, 10, 10, sitk.sitkUInt8))


def test_bad_options_are_clear_errors(spheres):
    with pytest.raises(InputError, match="desktop, pcvr, standalone, print"):
        build_surfaces(spheres, target="phone")
    with pytest.raises(InputError, match="strong"):
        build_surfaces(spheres, smoothing="extreme")
    with pytest.raises(InputError, match="positive"):
        build_surfaces(spheres, budget=0)
    with pytest.raises(InputError, match="known structures"):
        build_surfaces(spheres, structures=["liver"])


def test_real_ct_masks_heart_and_aorta(shared_data):
    """TotalSegmentator heart and aorta masks (1.5 mm CT): closed, accurate, gap-free."""
    folder = shared_data / "ct" / "chest_cta"
    aorta = sitk.ReadImage(str(folder / "aorta_mask.nii.gz"))
    heart = sitk.Resample(sitk.ReadImage(str(folder / "heart_mask.nii.gz")), aorta,
                          sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    arr = np.where(sitk.GetArrayViewFromImage(heart) > 0, 11, 0).astype(np.uint8)
    arr[sitk.GetArrayViewFromImage(aorta) > 0] = 6
    labels = sitk.GetImageFromArray(arr)
    labels.CopyInformation(aorta)
    surfaces = build_surfaces(labels, target="standalone")
    assert sorted(surfaces) == ["aorta", "heart"]
    for name, s in surfaces.items():
        q = mesh_quality(s, labels, list(s.field_data["label_values"]))
        assert q["watertight"] and q["manifold"] and q["oriented"], name
        assert abs(q["volume_difference_pct"]) < 1.0, (name, q)
        assert q["mean_distance_mm"] < 0.5 * q["voxel_size_mm"], (name, q)
    assert surfaces["heart"].volume / 1000 == pytest.approx(669, rel=0.01)  # data README


def test_real_mri_with_10_mm_slices(shared_data):
    """ACDC expert labels (1.56 x 1.56 x 10 mm): thick slices still give closed surfaces."""
    gt = sitk.ReadImage(str(shared_data / "mri" / "acdc" / "patient001_frame01_gt.nii.gz"))
    lut = np.array([0, 2, 5, 1], dtype=np.uint8)  # ACDC 1 RV, 2 myocardium, 3 LV
    labels = sitk.GetImageFromArray(lut[sitk.GetArrayViewFromImage(gt)])
    labels.CopyInformation(gt)
    surfaces = build_surfaces(labels, target="print")
    assert sorted(surfaces) == ["left_ventricle", "myocardium", "right_ventricle"]
    for name, s in surfaces.items():
        q = mesh_quality(s, labels, list(s.field_data["label_values"]))
        assert q["watertight"] and q["manifold"], name
        assert abs(q["volume_difference_pct"]) < 3.0, (name, q)
        assert q["distance_ok"], (name, q)


def test_tiny_islands_keep_their_voxels_instead_of_collapsing():
    z, y, x = np.mgrid[:30, :30, :30]
    arr = (((x - 14.6) ** 2 + (y - 15.2) ** 2 + (z - 14.8) ** 2) < 64).astype(np.uint8)
    arr[2, 2, 2] = arr[27, 3, 25] = 1  # two one-voxel islands of the same structure
    arr[25:27, 25:27, 3:5] = 1         # and a 2x2x2 one
    img = sitk.GetImageFromArray(arr)
    s = build_surfaces(img, target="print")["left_ventricle"]
    q = mesh_quality(s, img, 1, distances=False)
    assert abs(q["volume_difference_pct"]) < 1.0, q
    assert s.n_points > 0 and q["watertight"]
