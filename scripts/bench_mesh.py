#!/usr/bin/env python
"""Benchmark: label map -> smoothed, decimated, checked surfaces, against a per-structure baseline.

A synthetic 512 x 512 x 320 label map (0.4 x 0.4 x 0.5 mm, a cardiac CT grid) holds 7 structures
(four chambers, myocardium around the left ventricle, aorta, pulmonary artery).  Both pipelines
produce smoothed surfaces decimated to the ``pcvr`` budget (1M triangles in all) and check each
(triangles, enclosed volume vs voxels, watertightness):

* **CardioPlan**: :func:`cardioplan.mesh.build_surfaces` (one multi-label SurfaceNets3D pass on
  the cropped map, windowed-sinc smoothing of the whole quad net, border-locked decimation) and
  :func:`cardioplan.mesh.mesh_quality` (with the voxel counts the surfaces carry).
* **baseline**: per structure, scikit-image ``marching_cubes`` on the structure's mask
  (``labels == value`` on the whole grid, as scripts usually do), the same windowed-sinc smoothing,
  the same fast-simplification decimation to the same per-structure share, the same check.
  A second baseline crops each mask to its bounding box first and is reported too.

Both run in this process, one after the other, ``--repeat`` times; the best time of each is
compared, by wall time and by CPU time (the process's, all threads: steadier on a shared
machine).  Goal: CardioPlan <= 3 s wall on 2 cores and >= 5x faster than the baseline.

Usage::

    python scripts/bench_mesh.py            # full size
    python scripts/bench_mesh.py --scale 0.5 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

import fast_simplification  # noqa: E402
import numpy as np  # noqa: E402
import pyvista as pv  # noqa: E402
import SimpleITK as sitk  # noqa: E402
from skimage.measure import marching_cubes  # noqa: E402
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy  # noqa: E402
from vtkmodules.vtkCommonCore import vtkPoints  # noqa: E402
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData  # noqa: E402

from cardioplan.arrays import bounding_box  # noqa: E402
from cardioplan.labels import LABELS  # noqa: E402
from cardioplan.mesh import build_surfaces, mesh_quality  # noqa: E402
from cardioplan.mesh.surfaces import SMOOTHING, TARGETS, _smooth  # noqa: E402

STRUCTURES = ["left_ventricle", "right_ventricle", "left_atrium", "right_atrium", "myocardium",
              "aorta", "pulmonary_artery"]


def make_labels(scale: float = 1.0) -> sitk.Image:
    """The benchmark label map: ellipsoids, a myocardial shell and two tubes."""
    size = (int(512 * scale), int(512 * scale), int(320 * scale))  # x, y, z
    spacing = (0.4 / scale, 0.4 / scale, 0.5 / scale)
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) * s
                            for n, s in zip(size[::-1], spacing[::-1], strict=True)),
                          indexing="ij", sparse=True)
    arr = np.zeros(size[::-1], np.uint8)

    def ellipsoid(c, r):
        return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2

    def tube(c, r, axis):
        d = {"x": ((y - c[1]) ** 2 + (z - c[2]) ** 2), "y": ((x - c[0]) ** 2 + (z - c[2]) ** 2),
             "z": ((x - c[0]) ** 2 + (y - c[1]) ** 2)}[axis]
        return d / r ** 2

    v = LABELS.value_of
    arr[ellipsoid((110, 100, 75), (36, 30, 42)) < 1] = v("myocardium")
    arr[ellipsoid((110, 100, 75), (28, 22, 34)) < 1] = v("left_ventricle")
    arr[(ellipsoid((80, 80, 78), (28, 22, 36)) < 1) & (arr == 0)] = v("right_ventricle")
    arr[(ellipsoid((120, 125, 115), (22, 18, 16)) < 1) & (arr == 0)] = v("left_atrium")
    arr[(ellipsoid((70, 110, 118), (22, 20, 18)) < 1) & (arr == 0)] = v("right_atrium")
    arr[(tube((100, 100, 0), 13, "z") < 1) & (z > 110) & (arr == 0)] = v("aorta")
    arr[(tube((0, 70, 125), 11, "x") < 1) & (x > 60) & (x < 150) & (arr == 0)] = \
        v("pulmonary_artery")
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin((-100.0, -110.0, -80.0))
    return img


def cardioplan_pipeline(labels: sitk.Image, budget: int) -> dict[str, dict]:
    surfaces = build_surfaces(labels, structures=STRUCTURES, budget=budget)
    return {name: mesh_quality(s, labels, list(s.field_data["label_values"]), distances=False,
                               voxel_count=int(s.field_data["voxels"][0]))
            for name, s in surfaces.items()}


def baseline_pipeline(labels: sitk.Image, shares: dict[str, int], *,
                      crop: bool = False) -> dict[str, dict]:
    """Per structure: marching cubes on its mask (the whole grid, or its box with ``crop``)."""
    arr = sitk.GetArrayViewFromImage(labels)
    spacing = labels.GetSpacing()[::-1]
    iterations, pass_band = SMOOTHING["standard"]
    out = {}
    for name in STRUCTURES:
        mask = arr == LABELS.value_of(name)
        origin = np.asarray(labels.GetOrigin())  # identity direction in this benchmark
        if crop:
            box = bounding_box(mask)
            volume = np.pad(mask[box], 1)
            origin = origin + (np.asarray([s.start for s in box[::-1]]) - 1) * labels.GetSpacing()
        else:
            volume = mask
        verts, faces, _, _ = marching_cubes(volume.astype(np.uint8), 0.5, spacing=spacing)
        poly = _smooth(_polydata(verts, faces), iterations, pass_band)
        verts = vtk_to_numpy(poly.GetPoints().GetData()).astype(np.float64)
        if len(faces) > shares[name]:
            verts, faces = fast_simplification.simplify(verts, faces.astype(np.int32),
                                                        target_count=shares[name])
        # the same check; marching cubes works in (z, y, x) index order: mirror to (x, y, z)
        surface = pv.PolyData.from_regular_faces(np.asarray(verts)[:, ::-1] + origin,
                                                 np.asarray(faces))
        out[name] = mesh_quality(surface, labels, LABELS.value_of(name), distances=False,
                                 voxel_count=int(np.count_nonzero(mask)))
    return out


def _polydata(verts: np.ndarray, faces: np.ndarray) -> vtkPolyData:
    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(verts, dtype=np.float32), deep=True))
    cells = vtkCellArray()
    cells.SetData(3, numpy_to_vtk(np.ascontiguousarray(faces.ravel(), dtype=np.int64),
                                  deep=True))
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetPolys(cells)
    return poly


def _timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - wall, time.process_time() - cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="grid scale (1 = 512x512x320)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each pipeline")
    args = parser.parse_args(argv)
    budget = TARGETS["pcvr"]
    t = time.perf_counter()
    labels = make_labels(args.scale)
    print(f"label map {labels.GetSize()} made in {time.perf_counter() - t:.1f} s; "
          f"{os.cpu_count()} CPUs; budget {budget} triangles")

    ours, base, cropped = [], [], []  # (wall s, CPU s) per run
    result = baseline = None
    for _ in range(args.repeat):
        result, t = _timed(cardioplan_pipeline, labels, budget)
        ours.append(t)
        shares = {n: q["triangles"] for n, q in result.items()}
        baseline, t = _timed(baseline_pipeline, labels, shares)
        base.append(t)
        _, t = _timed(baseline_pipeline, labels, shares, crop=True)
        cropped.append(t)
    print(f"{'structure':18s} {'triangles':>9s} {'vol diff %':>10s} {'watertight':>10s}   "
          f"baseline: {'triangles':>9s} {'vol diff %':>10s} {'watertight':>10s}")
    for name in STRUCTURES:
        q, b = result[name], baseline[name]
        print(f"{name:18s} {q['triangles']:9d} {q['volume_difference_pct']:+10.2f} "
              f"{str(q['watertight']):>10s}             {b['triangles']:9d} "
              f"{b['volume_difference_pct']:+10.2f} {str(b['watertight']):>10s}")
    print(f"total triangles {sum(q['triangles'] for q in result.values())} (budget {budget})")
    for what, runs in (("cardioplan", ours), ("baseline", base),
                       ("baseline, masks cropped", cropped)):
        print(f"{what:24s} best wall {min(w for w, _ in runs):6.2f} s, best CPU "
              f"{min(c for _, c in runs):6.2f} s   (wall runs: "
              f"{', '.join(f'{w:.2f}' for w, _ in runs)})")
    for i, unit in ((0, "wall"), (1, "CPU")):
        mine = min(r[i] for r in ours)
        naive, boxed = min(r[i] for r in base), min(r[i] for r in cropped)
        print(f"speed-up by {unit:4s}: baseline / cardioplan {naive / mine:5.1f}x (goal >= 5x); "
              f"cropped baseline / cardioplan {boxed / mine:5.1f}x")
    print(f"cardioplan best wall / 3 s goal: {min(w for w, _ in ours) / 3.0:.2f} (goal <= 1; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
