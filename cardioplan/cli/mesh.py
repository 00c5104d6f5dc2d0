"""``cardioplan mesh CASE``: surfaces of a case's label map, checked, written to ``meshes/``."""

from __future__ import annotations

import argparse
from typing import Any

from cardioplan.case import Case
from cardioplan.cli._common import (
    add_force_flag,
    add_json_flag,
    positive_int,
    print_json,
    subparser,
)
from cardioplan.labels import LABELS

__all__ = ["register", "run", "format_quality_table"]

# kept in step with cardioplan.mesh.surfaces.TARGETS / SMOOTHING (tested), without importing VTK
# when only --help is asked for
_TARGETS = {"desktop": "3,000,000", "pcvr": "1,000,000", "standalone": "250,000",
            "print": "no decimation, watertight required"}
_SMOOTHING = ["none", "light", "standard", "strong"]


def register(sub: Any) -> argparse.ArgumentParser:
    sp = subparser(
        sub, "mesh", help="build checked 3D surfaces of the labelled structures",
        description="Build one closed surface per labelled structure of a case (physical LPS "
                    "millimetres, outward normals): multi-label surface nets so that "
                    "neighbouring structures share their boundary without gaps or overlaps, "
                    "volume-preserving windowed-sinc smoothing, and decimation to the "
                    "target's triangle budget, shared across structures in proportion to "
                    "their surface area.  Writes CASE/meshes/<structure>.vtp and "
                    "CASE/meshes/index.json, stores the quality of every surface in "
                    "case.json and prints it: triangles, area, enclosed volume vs voxel "
                    "volume, watertightness, and mean/max distance to the label boundary.  "
                    "Targets (total triangles): "
                    + "; ".join(f"{k} = {v}" for k, v in _TARGETS.items()) + ".",
        examples=["cardioplan mesh CASE",
                  "cardioplan mesh CASE --target standalone --force",
                  "cardioplan mesh CASE --target print --structures heart aorta",
                  "cardioplan mesh CASE --budget 400000 --json"])
    sp.add_argument("case", metavar="CASE", help="the case folder (with labels.nii.gz)")
    sp.add_argument("--target", choices=list(_TARGETS), default="pcvr",
                    help="what the meshes are for, which sets the total triangle budget "
                         "(default: pcvr)")
    sp.add_argument("--budget", type=positive_int, metavar="N",
                    help="total triangle budget instead of the target's; too small a budget "
                         "is refused with the minimum that keeps every structure")
    sp.add_argument("--structures", nargs="+", metavar="NAME", choices=LABELS.names,
                    help="only these structures (default: every labelled structure); the "
                         "composites heart and blood_pool mesh the union of their parts; "
                         "choices: " + ", ".join(LABELS.names))
    sp.add_argument("--smoothing", choices=_SMOOTHING, default="standard",
                    help="smoothing strength; none keeps the voxel steps (default: standard, "
                         "which changes volumes by well under 1 %%)")
    add_force_flag(sp)
    add_json_flag(sp)
    return sp


def run(args: argparse.Namespace) -> int:
    from cardioplan.mesh import mesh_case

    case = Case.open(args.case)
    summary = mesh_case(case, target=args.target, budget=args.budget,
                        structures=args.structures, smoothing=args.smoothing, force=args.force)
    if args.json:
        print_json(summary)
    else:
        print(format_quality_table(summary))
    return 0


def format_quality_table(summary: dict[str, Any]) -> str:
    """The quality table ``cardioplan mesh`` prints.

    Examples
    --------
    >>> q = {"triangles": 10, "area_mm2": 5.0, "volume_ml": 1.0, "voxel_volume_ml": 1.01,
    ...      "volume_difference_pct": -1.0, "watertight": True, "manifold": True,
    ...      "mean_distance_mm": 0.1, "max_distance_mm": 0.4, "smoothing_volume_change_pct": -1}
    >>> print(format_quality_table({"target": "pcvr", "budget": 100, "triangles": 10,
    ...                             "seconds": 0.5, "quality": {"aorta": q}}))
    ... # doctest: +NORMALIZE_WHITESPACE
    structure  triangles  area mm2  volume mL  voxels mL  diff %  watertight  mean mm  max mm
    aorta             10         5      1.000      1.010   -1.00         yes     0.10    0.40
    total 10 triangles (target pcvr, budget 100) in 0.5 s
    """
    header = ["structure", "triangles", "area mm2", "volume mL", "voxels mL", "diff %",
              "watertight", "mean mm", "max mm"]
    rows = []
    for name, q in summary["quality"].items():
        rows.append([
            name, f"{q['triangles']}", f"{q['area_mm2']:.0f}", f"{q['volume_ml']:.3f}",
            f"{q['voxel_volume_ml']:.3f}", f"{q['volume_difference_pct']:+.2f}",
            "yes" if q["watertight"] and q["manifold"] else "NO",
            f"{q.get('mean_distance_mm', float('nan')):.2f}",
            f"{q.get('max_distance_mm', float('nan')):.2f}",
        ])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                       for i, (h, w) in enumerate(zip(header, widths, strict=True)))]
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    budget = "none" if summary.get("budget") is None else f"{summary['budget']}"
    lines.append(f"total {summary['triangles']} triangles (target {summary['target']}, "
                 f"budget {budget}) in {summary['seconds']} s")
    return "\n".join(lines)
