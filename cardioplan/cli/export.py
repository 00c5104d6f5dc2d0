"""``cardioplan export CASE --format FMT -o PATH``: meshes and label maps for other tools."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from cardioplan.case import Case
from cardioplan.cli._common import add_force_flag, add_json_flag, print_json, subparser
from cardioplan.errors import InputError, MeshError
from cardioplan.labels import LABELS

__all__ = ["register", "run", "FORMATS"]

log = logging.getLogger(__name__)

# kept equal to cardioplan.export.meshes.MESH_FORMATS (tested) without importing trimesh for --help
_MESH_FORMATS = ("stl", "obj", "ply", "vtp", "glb", "3mf")
FORMATS = (*_MESH_FORMATS, "seg.nrrd", "dicom-seg")
"""Every format ``cardioplan export`` writes."""


def register(sub: Any) -> argparse.ArgumentParser:
    sp = subparser(
        sub, "export", help="write meshes (STL/OBJ/PLY/VTP/GLB/3MF) or labels (Slicer, DICOM-SEG)",
        description="Export a case for other tools.  Mesh formats read the case's meshes "
                    "(run `cardioplan mesh CASE` first) and keep names and colours where the "
                    "format can hold them: OBJ+MTL materials, PLY vertex colours, GLB node "
                    "names and materials, 3MF object names and display colours, VTP field "
                    "data; STL keeps the name in its header only.  Units are millimetres (GLB: "
                    "millimetre vertices under a node scaled to glTF's metres).  STL, OBJ, PLY "
                    "and VTP write one file per structure into the folder -o unless --merge; "
                    "GLB and 3MF always write one file with one named object per structure.  "
                    "seg.nrrd writes the label map as a 3D Slicer segmentation; dicom-seg "
                    "writes a DICOM Segmentation referencing the DICOM series the case was "
                    "imported from.",
        examples=["cardioplan export CASE --format glb -o heart.glb",
                  "cardioplan export CASE --format stl --structures aorta "
                  "pulmonary_artery -o stl/",
                  "cardioplan export CASE --format obj --merge --space ras -o heart.obj",
                  "cardioplan export CASE --format 3mf -o print.3mf",
                  "cardioplan export CASE --format stl --merge --hollow 2 --min-wall 1.5 "
                  "-o blood_pool_shell.stl",
                  "cardioplan export CASE --format seg.nrrd -o labels.seg.nrrd",
                  "cardioplan export CASE --format dicom-seg -o seg.dcm"])
    sp.add_argument("case", metavar="CASE", help="the case folder")
    sp.add_argument("--format", "-f", required=True, choices=FORMATS, metavar="FORMAT",
                    help="output format, one of: " + ", ".join(FORMATS))
    sp.add_argument("-o", "--output", required=True, metavar="PATH",
                    help="output file, or folder for per-structure STL/OBJ/PLY/VTP files")
    sp.add_argument("--structures", nargs="+", metavar="NAME", choices=LABELS.names,
                    help="only these structures (default: all in the case's meshes); a "
                         "structure without a mesh, such as the composite heart, is built "
                         "from the label map; structures without voxels are skipped with a "
                         "warning; choices: " + ", ".join(LABELS.names))
    sp.add_argument("--merge", action="store_true",
                    help="STL/OBJ/PLY/VTP: write all structures into one file")
    sp.add_argument("--hollow", type=_positive_mm, metavar="MM",
                    help="3D printing: export hollow shells with this wall thickness (mm), "
                         "built from the label map, instead of the solid meshes (default "
                         "structure: blood_pool, the union of the chambers)")
    sp.add_argument("--hollow-mode", choices=("outside", "inside", "centred"),
                    default="outside",
                    help="where the wall goes relative to the structure's boundary: outside "
                         "(the lumen keeps its size; default), inside, or centred")
    sp.add_argument("--min-wall", type=_positive_mm, metavar="MM",
                    help="with --hollow: refuse to write shells whose walls are thinner than "
                         "this (your printer's minimum)")
    sp.add_argument("--space", choices=("lps", "ras"), default="lps",
                    help="coordinate convention of mesh vertices: lps (DICOM patient "
                         "coordinates, default) or ras (3D Slicer models, most 3D tools); "
                         "written into the file where the format allows")
    add_force_flag(sp)
    add_json_flag(sp)
    return sp


def _positive_mm(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of millimetres") from None
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError("give a thickness between 0 and 100 mm")
    return value


def run(args: argparse.Namespace) -> int:
    case = Case.open(args.case)
    if args.hollow is None and args.min_wall is not None:
        raise InputError("--min-wall checks hollow shells: add --hollow MM")
    if args.hollow is not None and args.format not in _MESH_FORMATS:
        raise InputError(f"--hollow makes meshes; choose a mesh format "
                         f"({', '.join(_MESH_FORMATS)}), not {args.format}")
    paths = export_case(case, fmt=args.format, output=Path(args.output),
                        structures=args.structures, merge=args.merge, space=args.space,
                        force=args.force, hollow=args.hollow, hollow_mode=args.hollow_mode,
                        min_wall=args.min_wall)
    result = {"format": args.format, "space": args.space if args.format in _MESH_FORMATS
              else "LPS", "files": [{"path": str(p), "bytes": p.stat().st_size} for p in paths]}
    if args.json:
        print_json(result)
    else:
        for f in result["files"]:
            print(f"{f['path']}  ({f['bytes'] / 1e6:.2f} MB)")
    return 0


def export_case(case: Case, *, fmt: str, output: Path, structures: list[str] | None,
                merge: bool, space: str, force: bool, hollow: float | None = None,
                hollow_mode: str = "outside", min_wall: float | None = None) -> list[Path]:
    """Dispatch one export of ``case`` (the library calls behind ``cardioplan export``)."""
    if fmt in _MESH_FORMATS:
        from cardioplan.export.meshes import export_surfaces

        if hollow is not None:
            surfaces = _hollow_shells(case, structures or ["blood_pool"], hollow, hollow_mode,
                                      min_wall)
        else:
            from cardioplan.mesh import read_case_meshes

            surfaces = read_case_meshes(case, structures=structures, build_missing=True)
        return export_surfaces(surfaces, output, fmt=fmt, merge=merge, space=space,
                               force=force)
    _label_options_only(fmt, merge=merge, space=space)
    if fmt == "seg.nrrd":
        from cardioplan.errors import CaseExistsError
        from cardioplan.export.seg_nrrd import write_seg_nrrd

        target = output if output.name.endswith(".nrrd") else output / "labels.seg.nrrd"
        if target.exists() and not force:
            raise CaseExistsError(f"{target} already exists; choose another -o or pass --force")
        return [write_seg_nrrd(case.read_labels(), target, structures=structures)]
    from cardioplan.export.dicom_seg import write_case_dicom_seg

    target = output if output.suffix.lower() == ".dcm" else output / "seg.dcm"
    return [write_case_dicom_seg(case, target, structures=structures, force=force)]


def _hollow_shells(case: Case, structures: list[str], thickness: float, mode: str,
                   min_wall: float | None) -> dict[str, Any]:
    from cardioplan.mesh.select import resolve_structures
    from cardioplan.printprep import hollow_structure, wall_thickness

    labels = case.read_labels()
    names = [s.name for s in resolve_structures(labels, structures=structures)]
    shells = {}
    for name in names:
        shell = hollow_structure(labels, name, thickness_mm=thickness, mode=mode)
        if min_wall is not None:
            check = wall_thickness(shell, minimum_mm=min_wall)
            if not check["ok"]:
                raise MeshError(f"the {name} shell has walls down to {check['p01_mm']} mm "
                                f"(1st percentile), thinner than --min-wall {min_wall}; "
                                "pass a thicker --hollow")
            log.info("%s shell: wall %.2f mm median, %.2f mm 5th percentile", name,
                     check["median_mm"], check["p05_mm"])
        shells[name] = shell
    return shells


def _label_options_only(fmt: str, *, merge: bool, space: str) -> None:
    if merge:
        log.warning("--merge applies to mesh formats; %s always holds every structure in one "
                    "file", fmt)
    if space != "lps":
        log.warning("--space applies to mesh vertices; %s stores its own patient (LPS) "
                    "geometry, which 3D Slicer and DICOM viewers read correctly", fmt)
