"""Quality of a structure's surface against the label map it came from.

The *label boundary* is the 0.5 iso-surface of the structure's binary mask (VTK flying edges
on the voxel grid, mapped to physical space): the surface a voxel-exact segmentation implies.
The distance of every mesh vertex and triangle centre to it says how faithful smoothing and
decimation were.

Examples
--------
>>> from cardioplan.mesh import build_surfaces, mesh_quality
>>> surface = build_surfaces(labels)["aorta"]             # doctest: +SKIP
>>> q = mesh_quality(surface, labels, 6)                  # doctest: +SKIP
>>> q["volume_difference_pct"], q["mean_distance_mm"]     # doctest: +SKIP
(-0.2, 0.11)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

import numpy as np  # noqa: E402
import pyvista as pv  # noqa: E402
import SimpleITK as sitk  # noqa: E402
from vtkmodules.util.numpy_support import vtk_to_numpy  # noqa: E402
from vtkmodules.vtkFiltersCore import vtkFlyingEdges3D  # noqa: E402

from cardioplan.arrays import bounding_box  # noqa: E402
from cardioplan.errors import InputError  # noqa: E402
from cardioplan.mesh.geometry import (  # noqa: E402
    area_and_volume,
    edge_topology,
    grid_matrix,
)
from cardioplan.mesh.surfaces import vtk_image  # noqa: E402

__all__ = ["mesh_quality", "label_boundary", "VOLUME_TOLERANCE_PCT", "LARGE_STRUCTURE_ML"]

VOLUME_TOLERANCE_PCT = 3.0
"""Largest accepted |enclosed volume - voxel volume| for structures above LARGE_STRUCTURE_ML."""
LARGE_STRUCTURE_ML = 5.0


def mesh_quality(surface: pv.PolyData, labels: sitk.Image, value: int | Sequence[int], *,
                 distances: bool = True,
                 voxel_count: int | None = None) -> dict[str, float | int | bool]:
    """Measure a surface against the voxels it was built from.

    Parameters
    ----------
    surface : pyvista.PolyData
        A triangle surface in the label map's physical space.
    labels : SimpleITK.Image
        The label map.
    value : int or sequence of int
        The structure's label value(s) (a composite is a union of values).
    distances : bool
        Also compute the distances to the label boundary (the slowest part).
    voxel_count : int, optional
        The structure's voxel count when the caller has it (saves a pass over the grid).

    Returns
    -------
    dict
        ``triangles``, ``area_mm2``, ``volume_ml`` (enclosed), ``voxel_volume_ml``,
        ``volume_difference_pct``, ``watertight``, ``manifold``, ``oriented`` (consistent
        winding), ``mean_distance_mm``, ``max_distance_mm`` and ``voxel_size_mm`` (the largest
        spacing, the unit of the "within one voxel" checks), plus ``volume_ok`` (within
        :data:`VOLUME_TOLERANCE_PCT` for structures over 5 mL) and ``distance_ok`` (mean
        distance within one voxel).

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> from cardioplan.mesh import build_surfaces
    >>> z, y, x = np.mgrid[:40, :40, :40]
    >>> lab = sitk.GetImageFromArray(((x-20)**2 + (y-20)**2 + (z-20)**2 < 225).astype(np.uint8))
    >>> q = mesh_quality(build_surfaces(lab)["left_ventricle"], lab, 1)
    >>> q["watertight"], q["volume_ok"], q["distance_ok"]
    (True, True, True)
    """
    values = (int(value),) if np.isscalar(value) else tuple(int(v) for v in value)
    if not surface.is_all_triangles:
        surface = surface.triangulate()
    points = np.asarray(surface.points, dtype=float)
    faces = surface.faces.reshape(-1, 4)[:, 1:].astype(np.int64)
    matrix, _ = grid_matrix(labels)
    if voxel_count is None:
        voxel_count = _voxel_count(labels, values)
    voxel_ml = float(voxel_count * abs(np.linalg.det(matrix)) / 1000.0)
    area, volume = area_and_volume(points, faces)
    volume_ml = volume / 1000.0
    diff = 100.0 * (volume_ml / voxel_ml - 1.0) if voxel_ml > 0 else float("inf")
    voxel_size = float(max(labels.GetSpacing()))
    quality: dict[str, float | int | bool] = {
        "triangles": int(len(faces)),
        "area_mm2": round(area, 2),
        "volume_ml": round(volume_ml, 4),
        "voxel_volume_ml": round(voxel_ml, 4),
        "volume_difference_pct": round(diff, 3),
        **{k: v for k, v in edge_topology(faces).items() if k != "boundary_edges"},
        "voxel_size_mm": voxel_size,
        "volume_ok": bool(voxel_ml <= LARGE_STRUCTURE_ML or abs(diff) <= VOLUME_TOLERANCE_PCT),
    }
    if distances:
        reference = label_boundary(labels, values)
        samples = np.concatenate([points, points[faces].mean(axis=1)])  # vertices + centroids
        distance = np.abs(pv.PolyData(samples).compute_implicit_distance(reference)
                          ["implicit_distance"])
        quality["mean_distance_mm"] = round(float(distance.mean()), 4)
        quality["max_distance_mm"] = round(float(distance.max()), 4)
        quality["distance_ok"] = bool(distance.mean() <= voxel_size)
    return quality


def _voxel_count(labels: sitk.Image, values: tuple[int, ...]) -> int:
    arr = sitk.GetArrayViewFromImage(labels)
    return int(sum(np.count_nonzero(arr == v) for v in values))


def label_boundary(labels: sitk.Image, value: int | Sequence[int]) -> pv.PolyData:
    """The 0.5 iso-surface of the structure's binary mask, in physical LPS mm.

    Raises
    ------
    InputError
        The structure has no voxels.
    """
    values = [int(value)] if np.isscalar(value) else [int(v) for v in value]
    arr = sitk.GetArrayViewFromImage(labels)
    mask = arr == values[0]
    for v in values[1:]:
        mask |= arr == v
    if not mask.any():
        raise InputError(f"label value(s) {values} have no voxels in the label map")
    box = bounding_box(mask)
    crop = np.pad(mask[box].astype(np.uint8), 1)
    edges = vtkFlyingEdges3D()
    edges.SetInputData(vtk_image(crop))
    edges.SetValue(0, 0.5)
    edges.ComputeNormalsOff()
    edges.ComputeGradientsOff()
    edges.ComputeScalarsOff()
    edges.Update()
    out = pv.wrap(edges.GetOutput())
    matrix, origin = grid_matrix(labels)
    offset = np.array([s.start for s in box[::-1]], dtype=float) - 1.0
    out.points = (vtk_to_numpy(edges.GetOutput().GetPoints().GetData()) + offset) @ matrix.T \
        + origin
    return out
