"""Mesh exports read back by another library: names, colours, volume, watertightness, space."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import pyvista as pv
import trimesh
from mesh_shapes import nested_spheres
from vtkmodules.vtkIOGeometry import vtkGLTFReader, vtkSTLReader
from vtkmodules.vtkIOPLY import vtkPLYReader

from cardioplan.errors import CaseExistsError, InputError, MeshError
from cardioplan.export.meshes import MESH_FORMATS, export_surfaces, read_3mf_objects
from cardioplan.labels import LABELS
from cardioplan.mesh import build_surfaces
from cardioplan.mesh.geometry import edge_topology, enclosed_volume

NAMES = ["left_ventricle", "myocardium", "aorta"]


@pytest.fixture(scope="module")
def surfaces():
    return build_surfaces(nested_spheres(extra=6), budget=12000)


def _volumes(surfaces):
    return {n: s.volume for n, s in surfaces.items()}


def _faces(poly):
    return pv.wrap(poly).faces.reshape(-1, 4)[:, 1:]


def _check_closed_volume(points, faces, expected):
    assert edge_topology(faces)["watertight"]
    assert enclosed_volume(points, faces) == pytest.approx(expected, rel=0.01)


def test_stl_per_structure_read_by_vtk(tmp_path, surfaces):
    paths = export_surfaces(surfaces, tmp_path / "stl", fmt="stl")
    assert [p.name for p in paths] == [f"{n}.stl" for n in NAMES]
    for name, path in zip(NAMES, paths, strict=True):
        header = path.read_bytes()[:80].decode("ascii")
        assert not header.startswith("solid") and name in header and "units=mm" in header
        assert "space=LPS" in header
        reader = vtkSTLReader()  # merges the duplicated corners back into a closed mesh
        reader.SetFileName(str(path))
        reader.Update()
        poly = pv.wrap(reader.GetOutput())
        _check_closed_volume(np.asarray(poly.points), _faces(poly), surfaces[name].volume)


def test_obj_merged_keeps_names_and_material_colours(tmp_path, surfaces):
    obj, mtl = export_surfaces(surfaces, tmp_path / "heart.obj", fmt="obj", merge=True)
    assert mtl.suffix == ".mtl"
    # an independent minimal OBJ/MTL parse: objects, their material, vertices and faces
    kd, current = {}, None
    for line in mtl.read_text().splitlines():
        if line.startswith("newmtl"):
            current = line.split()[1]
        elif line.startswith("Kd"):
            kd[current] = tuple(round(float(v) * 255) for v in line.split()[1:4])
    objects, verts = {}, []
    for line in obj.read_text().splitlines():
        tag, *rest = line.split() or [""]
        if tag == "o":
            name = rest[0]
            objects[name] = {"faces": []}
        elif tag == "usemtl":
            objects[name]["material"] = rest[0]
        elif tag == "v":
            verts.append([float(v) for v in rest])
        elif tag == "f":
            objects[name]["faces"].append([int(v.split("/")[0]) - 1 for v in rest])
    assert "# units: mm" in obj.read_text()[:200]
    assert list(objects) == NAMES
    verts = np.asarray(verts)
    for name, o in objects.items():
        assert kd[o["material"]] == LABELS[name].color
        _check_closed_volume(verts, np.asarray(o["faces"]), surfaces[name].volume)
    poly = pv.read(obj)  # VTK's reader sees the whole model
    assert poly.n_cells == sum(s.n_cells for s in surfaces.values())


def test_ply_vertex_colours_and_names_read_by_vtk(tmp_path, surfaces):
    (path,) = export_surfaces(surfaces, tmp_path / "heart.ply", fmt="ply", merge=True)
    reader = vtkPLYReader()
    reader.SetFileName(str(path))
    reader.Update()
    poly = pv.wrap(reader.GetOutput())
    comments = [reader.GetComments().GetValue(i)
                for i in range(reader.GetComments().GetNumberOfValues())]
    assert "units mm" in comments and "space LPS" in comments
    rgb = np.asarray(poly.point_data["RGBA"])[:, :3]
    faces = _faces(poly)
    start = 0
    for name in NAMES:
        line = next(c for c in comments if c.startswith(f"structure {NAMES.index(name)} "))
        n = int(line.split()[-1])
        assert line.split()[2] == name
        assert {tuple(c) for c in rgb[start:start + n]} == {LABELS[name].color}
        mine = faces[(faces >= start).all(axis=1) & (faces < start + n).all(axis=1)]
        _check_closed_volume(np.asarray(poly.points), mine, surfaces[name].volume)
        start += n
    assert poly.n_cells == sum(s.n_cells for s in surfaces.values())


def test_vtp_merged_keeps_labels_colours_and_metadata(tmp_path, surfaces):
    (path,) = export_surfaces(surfaces, tmp_path / "all.vtp", fmt="vtp", merge=True)
    poly = pv.read(path)
    assert list(poly.field_data["structure"]) == NAMES
    assert poly.field_data["units"][0] == "mm"
    labels = np.asarray(poly.cell_data["label"])
    for i, name in enumerate(NAMES):
        assert tuple(poly.cell_data["colors"][labels == i][0]) == LABELS[name].color
        _check_closed_volume(np.asarray(poly.points), _faces(poly)[labels == i],
                             surfaces[name].volume)


def test_glb_node_names_materials_and_metres(tmp_path, surfaces):
    (path,) = export_surfaces(surfaces, tmp_path / "heart.glb", fmt="glb")
    scene = trimesh.load(path)
    assert sorted(scene.geometry) == sorted(NAMES)
    assert sorted(scene.graph.nodes_geometry) == sorted(NAMES)
    for name in NAMES:
        geom = scene.geometry[name]
        assert tuple(geom.visual.material.baseColorFactor[:3]) == LABELS[name].color
        assert geom.visual.material.name == name
        transform, _ = scene.graph.get(name)
        # mm vertices, metres in the scene, upright: superior (+S) is glTF +Y, anterior +Z
        assert np.allclose(transform[:3, :3] @ [0, 0, 1], [0, 0.001, 0])
        assert np.allclose(transform[:3, :3] @ [0, -1, 0], [0, 0, 0.001])
        assert geom.is_watertight
        assert geom.volume == pytest.approx(surfaces[name].volume, rel=0.01)
    # a second, independent reader: VTK's glTF importer sees three meshes in metres
    reader = vtkGLTFReader()
    reader.SetFileName(str(path))
    reader.Update()
    blocks = reader.GetOutput()
    assert blocks.GetNumberOfBlocks() == 3
    total = sum(s.volume for s in surfaces.values()) * 1e-9
    it = blocks.NewIterator()
    it.InitTraversal()
    vtk_total = 0.0
    while not it.IsDoneWithTraversal():
        block = pv.wrap(it.GetCurrentDataObject())
        vtk_total += enclosed_volume(np.asarray(block.points), _faces(block))
        it.GoToNextItem()
    assert vtk_total == pytest.approx(total, rel=0.01)


def test_glb_asset_extras_record_units_and_space(tmp_path, surfaces):
    (path,) = export_surfaces(surfaces, tmp_path / "heart.glb", fmt="glb", space="ras")
    data = path.read_bytes()
    length = struct.unpack("<I", data[12:16])[0]
    tree = json.loads(data[20:20 + length])
    assert tree["asset"]["extras"]["units"] == "mm"
    assert tree["asset"]["extras"]["space"] == "RAS"


def test_3mf_names_and_colours_round_trip(tmp_path, surfaces):
    (path,) = export_surfaces(surfaces, tmp_path / "print.3mf", fmt="3mf")
    scene = trimesh.load(path)  # trimesh reads names and geometry (it ignores colours)
    assert sorted(scene.geometry) == sorted(NAMES)
    for name in NAMES:
        assert scene.geometry[name].is_watertight
        assert scene.geometry[name].volume == pytest.approx(surfaces[name].volume, rel=0.01)
    objects = read_3mf_objects(path)  # our reader: colours from the basematerials group
    assert {n: o["color"] for n, o in objects.items()} == {n: LABELS[n].color for n in NAMES}
    assert {o["unit"] for o in objects.values()} == {"millimeter"}


def test_ras_space_negates_x_and_y(tmp_path, surfaces):
    (lps,) = export_surfaces({"aorta": surfaces["aorta"]}, tmp_path / "a.stl", fmt="stl",
                             merge=True)
    (ras,) = export_surfaces({"aorta": surfaces["aorta"]}, tmp_path / "b.stl", fmt="stl",
                             merge=True, space="ras")
    a, b = trimesh.load(lps), trimesh.load(ras)
    assert np.allclose(a.vertices * [-1, -1, 1], b.vertices, atol=1e-4)
    assert b.volume == pytest.approx(a.volume, rel=1e-6)  # still outward (a rotation)
    assert b"space=RAS" in ras.read_bytes()[:80]


def test_unknown_format_lists_formats(tmp_path, surfaces):
    with pytest.raises(InputError, match=", ".join(MESH_FORMATS)):
        export_surfaces(surfaces, tmp_path / "x.fbx", fmt="fbx")


def test_existing_file_is_kept_without_force(tmp_path, surfaces):
    target = tmp_path / "heart.glb"
    target.write_bytes(b"old")
    with pytest.raises(CaseExistsError, match="--force"):
        export_surfaces(surfaces, target, fmt="glb")
    assert target.read_bytes() == b"old"
    export_surfaces(surfaces, target, fmt="glb", force=True)
    assert target.stat().st_size > 1000


def test_per_structure_formats_want_a_folder(tmp_path, surfaces):
    with pytest.raises(InputError, match="--merge"):
        export_surfaces(surfaces, tmp_path / "x.stl", fmt="stl")
    with pytest.raises(InputError, match="no surfaces"):
        export_surfaces({}, tmp_path / "x.glb", fmt="glb")


def test_empty_surface_is_an_error_and_nothing_is_written(tmp_path, surfaces):
    bad = dict(surfaces)
    bad["aorta"] = pv.PolyData()
    with pytest.raises(MeshError, match="aorta.*empty"):
        export_surfaces(bad, tmp_path / "out.glb", fmt="glb")
    with pytest.raises(MeshError, match="empty"):
        export_surfaces(bad, tmp_path / "stl", fmt="stl")
    assert list(tmp_path.iterdir()) == []


def test_3mf_model_xml_follows_the_core_spec(tmp_path, surfaces):
    import zipfile

    from lxml import etree
    (path,) = export_surfaces(surfaces, tmp_path / "p.3mf", fmt="3mf", space="ras")
    with zipfile.ZipFile(path) as z:
        root = etree.fromstring(z.read("3D/3dmodel.model"))
    ns = "{http://schemas.microsoft.com/3dmanufacturing/core/2015/02}"
    children = [c.tag.replace(ns, "") for c in root]
    assert children.index("resources") > max(i for i, t in enumerate(children) if t == "metadata")
    resources = [c.tag.replace(ns, "") for c in root.find(f"{ns}resources")]
    assert resources[0] == "basematerials" and set(resources[1:]) == {"object"}
    names = {m.get("name") for m in root.iter(f"{ns}metadata")}
    assert names <= {"Title", "Designer", "Description", "Copyright", "LicenseTerms", "Rating",
                     "CreationDate", "ModificationDate", "Application"}
    assert "patient coordinates RAS" in next(
        m.text for m in root.iter(f"{ns}metadata") if m.get("name") == "Description")
