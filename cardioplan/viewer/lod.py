"""Fewer triangles for the same shapes: decimation to a total budget (pure: surfaces in and out).

Used by the window's level of detail (decimated stand-ins drawn while the camera moves) and by
the report's 3D page (a web-sized model).

Examples
--------
>>> import pyvista as pv
>>> small = decimate_to_budget({"aorta": pv.Sphere(theta_resolution=90, phi_resolution=90)},
...                            budget=2000)
>>> small["aorta"].n_cells <= 2000
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["decimate_to_budget", "MIN_TRIANGLES"]

MIN_TRIANGLES = 400
"""Fewest triangles a structure keeps, however small its share of the budget."""


def decimate_to_budget(surfaces: Mapping[str, Any], *, budget: int) -> dict[str, Any]:
    """Surfaces decimated so that together they have at most about ``budget`` triangles.

    The budget is shared in proportion to each surface's triangles (at least
    :data:`MIN_TRIANGLES` each) with quadric edge collapse (``fast-simplification``); surfaces
    already small enough are kept as they are.  Field data (names, colours) is kept and normals
    are recomputed.
    """
    import fast_simplification

    total = sum(s.n_cells for s in surfaces.values())
    if total <= budget:
        return dict(surfaces)
    out = {}
    for name, surface in surfaces.items():
        target = max(MIN_TRIANGLES, int(budget * surface.n_cells / total))
        if surface.n_cells <= target:
            out[name] = surface
            continue
        small = fast_simplification.simplify_mesh(surface.triangulate(), target_count=target)
        small = small.compute_normals(cell_normals=False, split_vertices=False,
                                      auto_orient_normals=False)
        for key in surface.field_data:
            small.field_data[key] = surface.field_data[key]
        out[name] = small
    return out
