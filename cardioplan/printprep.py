"""3D-print preparation: hollow shells of blood pools, wall-thickness checks, mesh repair.

A printed heart model is usually the *blood pool* turned into a shell: the lumen stays empty
and a wall of a chosen thickness is built around it (outside), inside it, or centred on its
boundary, as 3D Slicer's Hollow effect does.  The shell is computed on a signed distance map
of the structure's mask (physical millimetres, any spacing), resampled onto a grid fine enough
for the wall (at least three voxels across it), and meshed watertight with
:func:`cardioplan.mesh.build_surfaces` (``print`` target: no decimation).

Examples
--------
>>> from cardioplan.printprep import hollow_structure, wall_thickness
>>> shell = hollow_structure(labels, "blood_pool", thickness_mm=2.0)   # doctest: +SKIP
>>> wall_thickness(shell)["min_mm"] >= 1.6                             # doctest: +SKIP
True
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pyvista as pv
import SimpleITK as sitk
import trimesh
from scipy import ndimage
from vtkmodules.vtkImagingStencil import vtkImageStencilToImage, vtkPolyDataToImageStencil

from cardioplan.arrays import bounding_box
from cardioplan.errors import InputError, MeshError
from cardioplan.labels import LABELS, LabelTable
from cardioplan.mesh.geometry import edge_topology
from cardioplan.mesh.select import resolve_structures
from cardioplan.mesh.surfaces import build_surfaces

__all__ = ["hollow_mask", "hollow_structure", "wall_thickness", "mask_wall_thickness",
           "repair", "MODES"]

log = logging.getLogger(__name__)

MODES = ("outside", "inside", "centred")
"""Where the wall goes relative to the structure's boundary (Slicer's Hollow options)."""


def hollow_mask(mask: sitk.Image, thickness_mm: float, *, mode: str = "outside",
                voxels_across: int = 3) -> sitk.Image:
    """A binary shell of ``thickness_mm`` around/inside/across a binary mask's boundary.

    Parameters
    ----------
    mask : SimpleITK.Image
        Binary mask (non-zero = structure).
    thickness_mm : float
        Wall thickness in millimetres.
    mode : {'outside', 'inside', 'centred'}
        Wall outside the boundary (the lumen keeps its size), inside it, or centred on it.
    voxels_across : int
        The output grid is refined until the wall is at least this many voxels thick.

    Returns
    -------
    SimpleITK.Image
        uint8 shell mask (1 = wall) with the mask's direction, on a grid cropped to the
        structure and padded to hold an outside wall.

    Raises
    ------
    InputError
        Bad thickness or mode, or an empty mask.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> ball = sitk.Cast(sitk.GaussianSource(sitk.sitkFloat32, [40] * 3, [8] * 3, [20] * 3)
    ...                  > 0.5, sitk.sitkUInt8)
    >>> shell = hollow_mask(ball, 2.0)
    >>> shell.GetSpacing()[0] <= 2.0 / 3
    True
    """
    if mode not in MODES:
        raise InputError(f"unknown hollow mode {mode!r}; choose one of {', '.join(MODES)}")
    if not thickness_mm > 0 or not math.isfinite(thickness_mm):
        raise InputError(f"the wall thickness must be a positive number of mm, got {thickness_mm}")
    binary = sitk.Cast(mask != 0, sitk.sitkUInt8)
    arr = sitk.GetArrayViewFromImage(binary) != 0
    if not arr.any():
        raise InputError("the structure to hollow has no voxels")
    outside = thickness_mm if mode == "outside" else (thickness_mm / 2 if mode == "centred"
                                                      else 0.0)
    inside = thickness_mm - outside
    box = bounding_box(arr)[::-1]  # (x, y, z): SimpleITK's slicing, which keeps the geometry
    pad = [int(math.ceil(outside / s)) + 2 for s in binary.GetSpacing()]
    binary = sitk.ConstantPad(binary[box], pad, pad, 0)
    distance = _signed_distance(binary)
    step = min(min(binary.GetSpacing()), thickness_mm / voxels_across)
    if step < min(binary.GetSpacing()):
        distance = _resample(distance, step)
    d = sitk.GetArrayViewFromImage(distance)
    shell = ((d >= -inside) & (d <= outside)).astype(np.uint8)
    out = sitk.GetImageFromArray(shell)
    out.CopyInformation(distance)
    return out


def _signed_distance(binary: sitk.Image) -> sitk.Image:
    """Signed distance (mm, negative inside) from the boundary of a binary mask.

    The boundary lies half a voxel beyond the centres of the border voxels, so the distance
    between voxel centres of the two sides (exact Euclidean transform) is shortened by half a
    voxel; on a sphere this is within a quarter voxel of the analytic distance.
    """
    arr = sitk.GetArrayViewFromImage(binary) != 0
    sampling = binary.GetSpacing()[::-1]
    half = 0.5 * min(sampling)
    d = np.where(arr, half - ndimage.distance_transform_edt(arr, sampling=sampling),
                 ndimage.distance_transform_edt(~arr, sampling=sampling) - half)
    out = sitk.GetImageFromArray(d.astype(np.float32))
    out.CopyInformation(binary)
    return out


def _resample(image: sitk.Image, step: float) -> sitk.Image:
    size = [int(math.ceil(n * s / step)) for n, s in zip(image.GetSize(), image.GetSpacing(),
                                                         strict=True)]
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    # keep the physical extent: the first voxel centre moves by half the old minus new spacing
    shift = direction @ ((step - np.asarray(image.GetSpacing())) / 2)
    origin = tuple(np.asarray(image.GetOrigin()) + shift)
    return sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, origin, [step] * 3,
                         image.GetDirection(), float(np.max(sitk.GetArrayViewFromImage(image))),
                         sitk.sitkFloat32)


def hollow_structure(labels: sitk.Image, structure: str, *, thickness_mm: float,
                     mode: str = "outside", smoothing: str = "standard",
                     table: LabelTable = LABELS) -> pv.PolyData:
    """A watertight hollow model (outer and inner wall surfaces) of one structure.

    Parameters
    ----------
    labels : SimpleITK.Image
        The label map.
    structure : str
        A structure or composite (``blood_pool`` is the union of the chambers and any voxels
        labelled blood pool).
    thickness_mm : float
        Wall thickness.
    mode : {'outside', 'inside', 'centred'}
        See :func:`hollow_mask`.
    smoothing : str
        Smoothing preset of :func:`cardioplan.mesh.build_surfaces`.

    Returns
    -------
    pyvista.PolyData
        The shell in LPS mm, named after ``structure`` (field data as from ``build_surfaces``)
        plus ``wall_thickness_mm`` and ``hollow_mode``.

    Raises
    ------
    InputError
        Unknown or empty structure, bad thickness or mode.
    MeshError
        The shell is not watertight.

    Examples
    --------
    >>> shell = hollow_structure(labels, "aorta", thickness_mm=1.5)  # doctest: +SKIP
    >>> shell.n_cells > 0                                           # doctest: +SKIP
    True
    """
    (chosen,) = resolve_structures(labels, structures=[structure], table=table)
    arr = sitk.GetArrayViewFromImage(labels)
    member = np.isin(arr, chosen.values).astype(np.uint8)
    mask = sitk.GetImageFromArray(member)
    mask.CopyInformation(labels)
    shell = hollow_mask(mask, thickness_mm, mode=mode)
    value = table[structure].value
    shell_labels = sitk.Cast(shell * value, sitk.sitkUInt8)
    surface = build_surfaces(shell_labels, structures=[table.by_value(value).name],
                             target="print", smoothing=smoothing, table=table)
    result = next(iter(surface.values()))
    result.field_data["structure"] = [structure]
    result.field_data["display_name"] = [table[structure].display_name]
    result.field_data["color"] = np.array(table[structure].color, dtype=np.uint8)
    result.field_data["wall_thickness_mm"] = np.array([thickness_mm])
    result.field_data["hollow_mode"] = [mode]
    return result


def mask_wall_thickness(mask: sitk.Image) -> np.ndarray:
    """Local wall thicknesses (mm) of a binary mask: twice the inscribed-sphere radius on its
    medial ridge (voxels whose distance to the outside is a local maximum).

    A wall of an odd number of voxels has one ridge voxel at ``(n + 1) / 2`` voxels from the
    outside, an even one two at ``n / 2``: ``2 r - s / 2`` is within half a voxel ``s`` of the
    true thickness either way, so use a voxel well below the wall thickness.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> slab = np.zeros((30, 30, 40), np.uint8); slab[:, :, 10:30] = 1
    >>> img = sitk.GetImageFromArray(slab); img.SetSpacing((0.1, 0.1, 0.1))  # 2 mm wall
    >>> round(float(np.median(mask_wall_thickness(img))), 2)
    1.95
    """
    arr = sitk.GetArrayFromImage(mask) != 0
    if not arr.any():
        raise InputError("the wall mask is empty")
    spacing = mask.GetSpacing()[::-1]
    distance = ndimage.distance_transform_edt(np.pad(arr, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    ridge = arr & (distance >= ndimage.maximum_filter(distance, size=3) - 1e-6)
    return 2.0 * distance[ridge] - 0.5 * min(spacing)


def wall_thickness(surface: pv.PolyData, *, minimum_mm: float | None = None,
                   resolution_mm: float | None = None) -> dict[str, float | bool]:
    """Wall-thickness statistics of a closed surface (a printed model), by voxelising it.

    Parameters
    ----------
    surface : pyvista.PolyData
        A watertight surface (e.g. a hollow shell).
    minimum_mm : float, optional
        The printer's minimum wall; adds ``thin_fraction`` and ``ok``.
    resolution_mm : float, optional
        Voxel size for the check (default: a fifth of the expected wall, from
        ``wall_thickness_mm`` field data when present, at most 0.4 mm; 0.25 mm otherwise).
        The estimate is within half of it.

    Returns
    -------
    dict
        ``min_mm``, ``p01_mm`` and ``p05_mm`` (1st and 5th percentiles), ``median_mm``; with
        ``minimum_mm`` also ``thin_fraction`` (share of the medial ridge thinner than it) and
        ``ok`` (the 1st percentile reaches the minimum: single ridge voxels are noisy).

    Examples
    --------
    >>> wall_thickness(shell, minimum_mm=1.0)["ok"]  # doctest: +SKIP
    True
    """
    if resolution_mm is None:
        expected = (float(surface.field_data["wall_thickness_mm"][0])
                    if "wall_thickness_mm" in surface.field_data else 1.25)
        resolution_mm = min(0.4, expected / 5)
    values = mask_wall_thickness(_voxelize(surface, resolution_mm))
    out: dict[str, float | bool] = {
        "min_mm": round(float(values.min()), 3),
        "p01_mm": round(float(np.percentile(values, 1)), 3),
        "p05_mm": round(float(np.percentile(values, 5)), 3),
        "median_mm": round(float(np.median(values)), 3),
        "resolution_mm": resolution_mm,
    }
    if minimum_mm is not None:
        thin = float(np.mean(values < minimum_mm))
        out["thin_fraction"] = round(thin, 4)
        out["ok"] = bool(out["p01_mm"] >= minimum_mm)
    return out


def _voxelize(surface: pv.PolyData, step: float) -> sitk.Image:
    """Binary image (axis-aligned, ``step`` mm) of the inside of a closed surface."""
    bounds = np.asarray(surface.bounds).reshape(3, 2)
    origin = bounds[:, 0] - 2 * step
    size = np.ceil((bounds[:, 1] - bounds[:, 0]) / step).astype(int) + 5
    if np.prod(size) > 400_000_000:
        raise InputError(f"a {step} mm grid of this model would have {np.prod(size):.0f} voxels; "
                         "pass a coarser resolution")
    stencil = vtkPolyDataToImageStencil()
    stencil.SetInputData(surface)
    stencil.SetOutputOrigin(*origin)
    stencil.SetOutputSpacing(step, step, step)
    stencil.SetOutputWholeExtent(0, size[0] - 1, 0, size[1] - 1, 0, size[2] - 1)
    to_image = vtkImageStencilToImage()
    to_image.SetInputConnection(stencil.GetOutputPort())
    to_image.SetInsideValue(1)
    to_image.SetOutsideValue(0)
    to_image.SetOutputScalarTypeToUnsignedChar()
    to_image.Update()
    arr = pv.wrap(to_image.GetOutput()).point_data.active_scalars.reshape(size[::-1])
    image = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    image.SetOrigin(tuple(origin))
    image.SetSpacing((step, step, step))
    return image


def repair(surface: pv.PolyData) -> pv.PolyData:
    """Make a triangle surface watertight where it can be done safely.

    Merges coincident vertices, drops degenerate and duplicate triangles, makes the winding
    consistent with outward normals and fills small holes (trimesh's repair functions).

    Raises
    ------
    MeshError
        The surface is still not watertight (large holes or non-manifold edges: fix the
        segmentation, or rebuild it with ``cardioplan mesh --target print``).

    Examples
    --------
    >>> fixed = repair(pv.read("model.stl"))  # doctest: +SKIP
    """
    if not surface.is_all_triangles:
        surface = surface.triangulate()
    faces = surface.faces.reshape(-1, 4)[:, 1:]
    mesh = trimesh.Trimesh(np.asarray(surface.points), faces, process=True)
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.update_faces(mesh.unique_faces())
    mesh.remove_unreferenced_vertices()
    trimesh.repair.fix_winding(mesh)
    trimesh.repair.fill_holes(mesh)
    trimesh.repair.fix_normals(mesh)
    topo = edge_topology(mesh.faces)
    if not topo["watertight"]:
        raise MeshError(f"the surface still has {topo['boundary_edges']} open edges"
                        f"{'' if topo['manifold'] else ' and non-manifold edges'} after repair; "
                        "rebuild it from the label map with `cardioplan mesh CASE --target "
                        "print`, which makes watertight surfaces")
    out = pv.PolyData.from_regular_faces(np.asarray(mesh.vertices, dtype=np.float32),
                                         np.asarray(mesh.faces))
    for key in surface.field_data:
        out.field_data[key] = surface.field_data[key]
    out.point_data["Normals"] = np.asarray(mesh.vertex_normals, dtype=np.float32)
    return out
