"""Surfaces in the formats other tools read: STL, OBJ (+MTL), PLY, VTP, GLB and 3MF.

What each format keeps (``docs/meshes.md`` has the full table):

===========  ==================================  ==========================================
format       names and colours                   units and coordinate convention
===========  ==================================  ==========================================
``stl``      name in the 80-byte header          header text ``units=mm space=LPS``
``obj``      ``o <name>`` + ``usemtl`` / MTL Kd  ``# units: mm`` / ``# space: LPS`` comments
``ply``      RGBA per vertex, names in comments  ``comment units mm`` / ``comment space LPS``
``vtp``      field data (merged: cell ``label``  field data ``units`` / ``space``
             + per-cell RGB ``colors``)
``glb``      node, mesh and material names,      glTF is metres, +Y up: vertices in mm under
             PBR base colours                    nodes scaled 0.001 and turned upright
                                                 (superior +Y, anterior +Z); asset.extras
``3mf``      object names, ``basematerials``     ``unit="millimeter"``, ``Description``
             display colours (written here:
             trimesh's 3MF export has none)
===========  ==================================  ==========================================

Surfaces are in LPS (DICOM patient) millimetres; ``space="ras"`` writes RAS (3D Slicer's
convention for models, x and y negated, a rotation so triangle winding is unchanged).

Files are written atomically.  Formats that hold one object per file (STL, OBJ, PLY, VTP) write
one file per structure into a folder, or everything into one file with ``merge=True``; GLB and
3MF always hold every structure as a named node/object of one file.

Examples
--------
>>> from cardioplan.export.meshes import export_surfaces
>>> export_surfaces(surfaces, "out/heart.glb", fmt="glb")              # doctest: +SKIP
[PosixPath('out/heart.glb')]
>>> export_surfaces(surfaces, "out/stl", fmt="stl", space="ras")       # doctest: +SKIP
[PosixPath('out/stl/left_ventricle.stl'), ...]
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyvista as pv
import trimesh
from lxml import etree

from cardioplan import __version__
from cardioplan.errors import CaseExistsError, InputError, MeshError
from cardioplan.fileio import atomic_path

__all__ = ["MESH_FORMATS", "SPACES", "export_surfaces", "read_3mf_objects", "Part"]

log = logging.getLogger(__name__)

MESH_FORMATS = ("stl", "obj", "ply", "vtp", "glb", "3mf")
"""Surface formats, in the order the CLI lists them."""
SPACES = ("lps", "ras")
_SINGLE_FILE = ("glb", "3mf")  # hold several named objects in one file
_NS_3MF = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
_MM_TO_M = 0.001


@dataclass
class Part:
    """One structure ready to write: triangles in the output space, name and colour."""

    name: str
    display_name: str
    color: tuple[int, int, int]
    points: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None

    def trimesh(self, **kwargs: Any) -> trimesh.Trimesh:
        return trimesh.Trimesh(self.points, self.faces, vertex_normals=self.normals,
                               process=False, **kwargs)


def export_surfaces(surfaces: dict[str, pv.PolyData], path: str | os.PathLike[str], *,
                    fmt: str, merge: bool = False, space: str = "lps",
                    force: bool = False) -> list[Path]:
    """Write surfaces (from :func:`cardioplan.mesh.build_surfaces` or a case) to ``path``.

    Parameters
    ----------
    surfaces : dict of str to pyvista.PolyData
        Surfaces in LPS mm with field data ``structure``, ``display_name`` and ``color``
        (as CardioPlan writes them); missing metadata falls back to the key and grey.
    path : path-like
        Output file (``glb``, ``3mf``, or any format with ``merge``) or folder (``stl``,
        ``obj``, ``ply``, ``vtp`` without ``merge``: one ``<structure>.<ext>`` each).
    fmt : {'stl', 'obj', 'ply', 'vtp', 'glb', '3mf'}
        The format.
    merge : bool
        One file for all structures (STL/OBJ/PLY/VTP).
    space : {'lps', 'ras'}
        Coordinate convention of the written vertices.
    force : bool
        Replace existing files.

    Returns
    -------
    list of pathlib.Path
        The files written (an OBJ's MTL included).

    Raises
    ------
    InputError
        Unknown format or space, or no surfaces.
    CaseExistsError
        An output exists and ``force`` is False.
    MeshError, OutputError
        A surface is empty, or writing failed (nothing half-written is left).

    Examples
    --------
    >>> paths = export_surfaces(surfaces, tmp_path / "model.3mf", fmt="3mf")  # doctest: +SKIP
    """
    fmt = fmt.lower().lstrip(".")
    if fmt not in MESH_FORMATS:
        raise InputError(f"unknown mesh format {fmt!r}; formats: {', '.join(MESH_FORMATS)}")
    if space not in SPACES:
        raise InputError(f"unknown space {space!r}; choose lps or ras")
    if not surfaces:
        raise InputError("there are no surfaces to export; run `cardioplan mesh CASE` first")
    parts = [_part(name, s, space) for name, s in surfaces.items()]
    out = Path(path)
    if fmt in _SINGLE_FILE or merge:
        target = out if out.suffix.lower() == f".{fmt}" else out.with_name(out.name + f".{fmt}")
        jobs = [(target, parts)]
    else:
        if out.suffix.lower() == f".{fmt}":
            raise InputError(f"{out} looks like a file, but {fmt} holds one structure per file: "
                             "give a folder with -o, or pass --merge for one file")
        jobs = [(out / f"{p.name}.{fmt}", [p]) for p in parts]
    written: list[Path] = []
    for target, _group in jobs:
        _check_free(target, fmt, force)
    for target, group in jobs:
        written += _WRITERS[fmt](target, group, space)
    log.info("wrote %d %s file(s) in %s space", len(written), fmt.upper(), space.upper())
    return written


def _part(name: str, surface: pv.PolyData, space: str) -> Part:
    if not surface.is_all_triangles:
        surface = surface.triangulate()
    if surface.n_cells == 0:
        raise MeshError(f"the surface of {name} is empty; nothing was written")
    fd = surface.field_data
    points = np.asarray(surface.points, dtype=np.float64).copy()
    normals = surface.point_data.get("Normals")
    normals = None if normals is None else np.asarray(normals, dtype=np.float64).copy()
    if space == "ras":
        points[:, :2] *= -1.0
        if normals is not None:
            normals[:, :2] *= -1.0
    color = tuple(int(c) for c in fd["color"]) if "color" in fd else (200, 200, 200)
    return Part(
        name=str(fd["structure"][0]) if "structure" in fd else name,
        display_name=str(fd["display_name"][0]) if "display_name" in fd else name,
        color=(color[0], color[1], color[2]),
        points=points,
        faces=surface.faces.reshape(-1, 4)[:, 1:].astype(np.int64),
        normals=normals,
    )


def _check_free(target: Path, fmt: str, force: bool) -> None:
    paths = [target] + ([target.with_suffix(".mtl")] if fmt == "obj" else [])
    for p in paths:
        if p.exists() and not force:
            raise CaseExistsError(f"{p} already exists; choose another -o or pass --force")


def _header(space: str) -> str:
    return f"CardioPlan {__version__} units=mm space={space.upper()}"


def _merged(parts: list[Part]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated points, faces, per-point and per-face part index."""
    offsets = np.cumsum([0] + [len(p.points) for p in parts])
    points = np.concatenate([p.points for p in parts])
    faces = np.concatenate([p.faces + o for p, o in zip(parts, offsets, strict=False)])
    point_part = np.repeat(np.arange(len(parts)), [len(p.points) for p in parts])
    face_part = np.repeat(np.arange(len(parts)), [len(p.faces) for p in parts])
    return points, faces, point_part, face_part


def _write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


# -- STL ---------------------------------------------------------------------------------------
def _write_stl(target: Path, parts: list[Part], space: str) -> list[Path]:
    points, faces, _, _ = _merged(parts)
    data = bytearray(trimesh.exchange.stl.export_stl(
        trimesh.Trimesh(points, faces, process=False)))
    names = ",".join(p.name for p in parts)
    header = f"{_header(space)} {names}".encode("ascii", "replace")[:80]
    data[:80] = header.ljust(80, b" ")  # a binary STL header must not start with "solid"
    _write_bytes(target, bytes(data))
    return [target]


# -- OBJ + MTL ---------------------------------------------------------------------------------
def _write_obj(target: Path, parts: list[Part], space: str) -> list[Path]:
    scene = trimesh.Scene()
    for p in parts:
        # no ambient = diffuse: trimesh's material hash XORs them and would merge materials
        material = trimesh.visual.material.SimpleMaterial(
            name=p.name, diffuse=(*p.color, 255), specular=(60, 60, 60, 255))
        scene.add_geometry(p.trimesh(visual=trimesh.visual.TextureVisuals(material=material)),
                           node_name=p.name, geom_name=p.name)
    mtl_path = target.with_suffix(".mtl")
    text, files = trimesh.exchange.obj.export_obj(
        scene, include_normals=all(p.normals is not None for p in parts), include_texture=True,
        return_texture=True, mtl_name=mtl_path.name, digits=4,
        header=f"{_header(space)}\n# units: mm\n# space: {space.upper()}")
    _write_bytes(mtl_path, files[mtl_path.name])
    _write_bytes(target, text.encode("utf-8"))
    return [target, mtl_path]


# -- PLY ---------------------------------------------------------------------------------------
def _write_ply(target: Path, parts: list[Part], space: str) -> list[Path]:
    points, faces, point_part, _ = _merged(parts)
    colors = np.array([(*p.color, 255) for p in parts], dtype=np.uint8)[point_part]
    normals = (np.concatenate([p.normals for p in parts])
               if all(p.normals is not None for p in parts) else None)
    mesh = trimesh.Trimesh(points, faces, vertex_colors=colors, vertex_normals=normals,
                           process=False)
    data = trimesh.exchange.ply.export_ply(mesh, encoding="binary",
                                           vertex_normal=normals is not None)
    comments = [_header(space), "units mm", f"space {space.upper()}"]
    comments += [f"structure {i} {p.name} {p.color[0]} {p.color[1]} {p.color[2]} "
                 f"vertices {len(p.points)}" for i, p in enumerate(parts)]
    head, sep, body = data.partition(b"end_header\n")
    lines = head.split(b"\n")
    lines = lines[:2] + [f"comment {c}".encode("ascii", "replace") for c in comments] + lines[2:]
    _write_bytes(target, b"\n".join(lines) + sep + body)
    return [target]


# -- VTP ---------------------------------------------------------------------------------------
def _write_vtp(target: Path, parts: list[Part], space: str) -> list[Path]:
    points, faces, _, face_part = _merged(parts)
    poly = pv.PolyData.from_regular_faces(points.astype(np.float32), faces)
    if all(p.normals is not None for p in parts):
        poly.point_data["Normals"] = np.concatenate([p.normals for p in parts]).astype(
            np.float32)
    poly.cell_data["label"] = face_part.astype(np.int32)
    poly.cell_data["colors"] = np.array([p.color for p in parts], dtype=np.uint8)[face_part]
    poly.field_data["structure"] = [p.name for p in parts]
    poly.field_data["display_name"] = [p.display_name for p in parts]
    poly.field_data["color"] = np.array([p.color for p in parts], dtype=np.uint8).ravel()
    poly.field_data["units"] = ["mm"]
    poly.field_data["space"] = [space.upper()]
    with atomic_path(target) as tmp:
        poly.save(tmp, binary=True)
    return [target]


# -- GLB ---------------------------------------------------------------------------------------
def _write_glb(target: Path, parts: list[Part], space: str) -> list[Path]:
    scene = trimesh.Scene()
    node = _gltf_node_transform(space)
    for p in parts:
        material = trimesh.visual.material.PBRMaterial(
            name=p.name, baseColorFactor=(*p.color, 255), metallicFactor=0.0,
            roughnessFactor=0.6, doubleSided=False)
        scene.add_geometry(p.trimesh(visual=trimesh.visual.TextureVisuals(material=material)),
                           node_name=p.name, geom_name=p.name, transform=node)
    extras = {"generator": f"CardioPlan {__version__}", "units": "mm",
              "space": space.upper(), "node_transform": node.tolist(),
              "node_transform_meaning": f"{space.upper()} millimetres -> glTF metres, +Y "
                                        "superior, +Z anterior (anatomical position facing "
                                        "the viewer)",
              "structures": {p.name: p.display_name for p in parts}}
    data = trimesh.exchange.gltf.export_glb(scene, include_normals=True,
                                            tree_postprocessor=_glb_extras(extras))
    _write_bytes(target, data)
    return [target]


def _gltf_node_transform(space: str) -> np.ndarray:
    """4x4 node matrix: patient millimetres -> glTF metres, +Y up (superior), +Z anterior.

    glTF scenes are metres with +Y up; this keeps the vertices in patient millimetres (so the
    numbers match the case) and lets every glTF viewer show the heart at true size, upright and
    facing the viewer.  A rotation, so normals stay outward.
    """
    if space == "lps":  # (L, P, S) -> (x, y, z) = (L, S, -P)
        rotation = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    else:               # (R, A, S) -> (x, y, z) = (-R, S, A)
        rotation = np.array([[-1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    node = np.eye(4)
    node[:3, :3] = rotation * _MM_TO_M
    return node


def _glb_extras(extras: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def post(tree: dict[str, Any]) -> None:
        tree.setdefault("asset", {})["extras"] = extras
    return post


# -- 3MF ---------------------------------------------------------------------------------------
def _write_3mf(target: Path, parts: list[Part], space: str) -> list[Path]:
    scene = trimesh.Scene()
    for p in parts:
        scene.add_geometry(p.trimesh(), node_name=p.name, geom_name=p.name)
    data = trimesh.exchange.threemf.export_3MF(scene)
    _write_bytes(target, _add_3mf_colours(data, parts, space))
    return [target]


def _add_3mf_colours(data: bytes, parts: list[Part], space: str) -> bytes:
    """Add a ``basematerials`` group (one display colour per structure) to a 3MF package."""
    src = zipfile.ZipFile(io.BytesIO(data))
    model_name = next(n for n in src.namelist() if n.endswith(".model"))
    root = etree.fromstring(src.read(model_name))
    ns = {"m": _NS_3MF}
    if root.get("unit") != "millimeter":
        raise MeshError("the 3MF writer did not write millimetres")
    resources = root.find("m:resources", ns)
    objects = resources.findall("m:object", ns)
    ids = [int(o.get("id")) for o in objects]
    group_id = str(max(ids) + 1)
    group = etree.Element(f"{{{_NS_3MF}}}basematerials", id=group_id)
    by_name = {p.name: i for i, p in enumerate(parts)}
    for p in parts:
        etree.SubElement(group, f"{{{_NS_3MF}}}base", name=p.display_name,
                         displaycolor="#{:02X}{:02X}{:02X}FF".format(*p.color))
    resources.insert(0, group)  # resources must be defined before they are referenced
    for obj in objects:
        index = by_name.get(obj.get("name", ""))
        if index is not None:
            obj.set("pid", group_id)
            obj.set("pindex", str(index))
    # well-known metadata names only: a prefixed name would need its own XML namespace
    for key, value in (("Application", f"CardioPlan {__version__}"),
                       ("Description", f"CardioPlan model; units mm; patient coordinates "
                                       f"{space.upper()}")):
        meta = etree.Element(f"{{{_NS_3MF}}}metadata", name=key)
        meta.text = value
        root.insert(0, meta)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            if name == model_name:
                dst.writestr(name, etree.tostring(root, xml_declaration=True,
                                                  encoding="UTF-8"))
            else:
                dst.writestr(name, src.read(name))
    return out.getvalue()


def read_3mf_objects(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Objects of a 3MF file with their mesh and display colour (a small independent reader).

    Returns
    -------
    dict
        Object name -> ``{"vertices": (n, 3) array, "triangles": (m, 3) array,
        "color": (r, g, b) or None, "unit": str}``.

    Examples
    --------
    >>> read_3mf_objects("heart.3mf")["aorta"]["color"]  # doctest: +SKIP
    (200, 30, 130)
    """
    with zipfile.ZipFile(path) as z:
        model_name = next(n for n in z.namelist() if n.endswith(".model"))
        root = etree.fromstring(z.read(model_name))
    ns = {"m": _NS_3MF}
    groups = {}
    for g in root.iterfind("m:resources/m:basematerials", ns):
        groups[g.get("id")] = [b.get("displaycolor") for b in g.iterfind("m:base", ns)]
    out = {}
    for obj in root.iterfind("m:resources/m:object", ns):
        verts = np.array([[float(v.get(a)) for a in "xyz"]
                          for v in obj.iterfind("m:mesh/m:vertices/m:vertex", ns)])
        tris = np.array([[int(t.get(a)) for a in ("v1", "v2", "v3")]
                         for t in obj.iterfind("m:mesh/m:triangles/m:triangle", ns)])
        color = None
        if obj.get("pid") in groups:
            hex_ = groups[obj.get("pid")][int(obj.get("pindex", "0"))].lstrip("#")
            color = (int(hex_[0:2], 16), int(hex_[2:4], 16), int(hex_[4:6], 16))
        out[obj.get("name", obj.get("id"))] = {"vertices": verts, "triangles": tris,
                                               "color": color, "unit": root.get("unit")}
    return out


_WRITERS: dict[str, Callable[[Path, list[Part], str], list[Path]]] = {
    "stl": _write_stl,
    "obj": _write_obj,
    "ply": _write_ply,
    "vtp": _write_vtp,
    "glb": _write_glb,
    "3mf": _write_3mf,
}
