"""Label map -> surfaces: one closed, outward-facing mesh per structure in physical LPS mm.

Public API (imported on first use, so ``cardioplan.mesh.select`` stays free of VTK):

* :func:`build_surfaces` -- multi-label surface extraction, non-shrinking smoothing and
  decimation to a triangle budget (:mod:`cardioplan.mesh.surfaces`).
* :func:`mesh_quality` -- triangles, area, volume vs voxels, watertightness and distance to the
  label boundary (:mod:`cardioplan.mesh.quality`).
* :func:`mesh_case` / :func:`read_case_meshes` -- the case folder's ``meshes/``
  (:mod:`cardioplan.mesh.case_meshes`).
* :data:`TARGETS`, :data:`SMOOTHING` -- triangle budgets per target and smoothing presets.

Examples
--------
>>> from cardioplan.mesh import build_surfaces, mesh_quality
>>> surfaces = build_surfaces(labels, target="standalone")          # doctest: +SKIP
>>> mesh_quality(surfaces["aorta"], labels, 6)["mean_distance_mm"]  # doctest: +SKIP
0.21
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["build_surfaces", "mesh_quality", "mesh_case", "write_meshes", "read_case_meshes",
           "TARGETS", "SMOOTHING", "resolve_structures"]

_WHERE = {
    "build_surfaces": "surfaces",
    "TARGETS": "surfaces",
    "SMOOTHING": "surfaces",
    "mesh_quality": "quality",
    "mesh_case": "case_meshes",
    "write_meshes": "case_meshes",
    "read_case_meshes": "case_meshes",
    "resolve_structures": "select",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
