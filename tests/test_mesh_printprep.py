"""3D-print preparation: hollow shells of known thickness, wall checks, repair."""

from __future__ import annotations

import numpy as np
import pytest
from mesh_shapes import nested_spheres

from cardioplan.errors import InputError, MeshError
from cardioplan.mesh import build_surfaces
from cardioplan.mesh.geometry import edge_topology
from cardioplan.printprep import hollow_structure, repair, wall_thickness

CENTRE = np.array((3.2, -4.1, 10.3))


@pytest.fixture(scope="module")
def labels():
    return nested_spheres(inner_mm=14.0, outer_mm=17.0)


@pytest.mark.parametrize(("mode", "inner", "outer"), [("outside", 14.0, 16.0),
                                                      ("inside", 12.0, 14.0),
                                                      ("centred", 13.0, 15.0)])
def test_hollow_shell_has_the_asked_wall(labels, mode, inner, outer):
    shell = hollow_structure(labels, "left_ventricle", thickness_mm=2.0, mode=mode)
    topo = edge_topology(shell.faces.reshape(-1, 4)[:, 1:])
    assert topo["watertight"] and topo["manifold"]
    r = np.linalg.norm(shell.points - CENTRE, axis=1)
    middle = (inner + outer) / 2
    # voxels of ~1 mm: both walls within 0.3 mm of where they belong
    assert r[r < middle].mean() == pytest.approx(inner, abs=0.3)
    assert r[r > middle].mean() == pytest.approx(outer, abs=0.3)
    assert shell.field_data["structure"][0] == "left_ventricle"
    assert shell.field_data["hollow_mode"][0] == mode


def test_wall_thickness_check(labels):
    shell = hollow_structure(labels, "left_ventricle", thickness_mm=2.0)
    check = wall_thickness(shell, minimum_mm=1.5)
    assert check["median_mm"] == pytest.approx(2.0, abs=0.3)
    assert check["ok"]
    assert not wall_thickness(shell, minimum_mm=3.0)["ok"]


def test_composite_blood_pool_hollow(labels):
    shell = hollow_structure(labels, "heart", thickness_mm=1.5)
    r = np.linalg.norm(shell.points - CENTRE, axis=1)
    assert r.max() == pytest.approx(18.5, abs=0.5)  # outside the 17 mm heart


def test_hollow_rejects_bad_options(labels):
    with pytest.raises(InputError, match="outside, inside, centred"):
        hollow_structure(labels, "left_ventricle", thickness_mm=2.0, mode="both")
    with pytest.raises(InputError, match="positive"):
        hollow_structure(labels, "left_ventricle", thickness_mm=0)
    with pytest.raises(InputError, match="none of the requested"):
        hollow_structure(labels, "aorta", thickness_mm=2.0)


def test_repair_closes_small_holes_and_refuses_hopeless_ones(labels):
    surface = build_surfaces(labels, structures=["left_ventricle"], budget=2000)[
        "left_ventricle"]
    holed = surface.remove_cells([10, 500])
    assert not edge_topology(holed.faces.reshape(-1, 4)[:, 1:])["watertight"]
    fixed = repair(holed)
    assert edge_topology(fixed.faces.reshape(-1, 4)[:, 1:])["watertight"]
    assert fixed.volume == pytest.approx(surface.volume, rel=0.01)
    half = surface.clip("z", origin=CENTRE)  # a hemisphere: too big a hole to fill
    with pytest.raises(MeshError, match="open edges"):
        repair(half)
