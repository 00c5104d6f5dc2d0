"""``cardioplan segment INPUT -o CASE``: label the heart structures of a scan."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cardioplan.cli._common import (
    add_force_flag,
    add_json_flag,
    add_scan_options,
    print_json,
    subparser,
)
from cardioplan.errors import InputError
from cardioplan.labels import LABELS

__all__ = ["register", "run"]

_STEPS = ("read", "segment", "write", "mesh")


def register(sub: Any) -> argparse.ArgumentParser:
    sp = subparser(
        sub, "segment", help="label the heart structures of a scan (CT automatic, MR from seeds)",
        description="Segment the heart in a scan and write the result into a case folder: "
                    "labels.nii.gz (uint8 on the image grid, values of the CardioPlan label "
                    "table), labels.seg.nrrd (opens in 3D Slicer with segment names, colours "
                    "and SNOMED-CT codes), per-structure volumes (mL) and the method in "
                    "case.json, then the meshes (unless --no-mesh).  INPUT is a DICOM "
                    "folder/file, a NIfTI/NRRD/MetaImage file, or an existing case (then the "
                    "results go into that case and -o is not needed).  Contrast CT/CTA is "
                    "segmented automatically: whole heart, blood pool, myocardium, aorta, "
                    "pulmonary artery, caval veins and the four chambers; when a chamber is "
                    "missed or misnamed, give one seed per chamber.  MR needs one seed per "
                    "structure.  Seeds are LPS millimetres (as the viewer shows them); the "
                    "seeds file format is {\"schema\": \"cardioplan.seeds\", \"seeds\": "
                    "[{\"structure\": NAME, \"point\": [x, y, z]}, ...]} and a case's plan.json "
                    "works too.  Nothing is written when segmentation fails (e.g. 'no heart "
                    "found', exit status 1).",
        examples=["cardioplan segment scans/patient1 -o cases/patient1",
                  "cardioplan segment ct.nii.gz -o cases/p2 --structures heart aorta "
                  "pulmonary_artery",
                  "cardioplan segment cases/p2 --seeds seeds.json --force",
                  "cardioplan segment cases/p3 --modality mr --seed left_ventricle=12.5,-40,88 "
                  "--seed right_ventricle=-20,-55,90",
                  "cardioplan segment sample_data/phantom/dicom -o /tmp/phantom --json"])
    sp.add_argument("input", metavar="INPUT",
                    help="DICOM folder/file/DICOMDIR, NIfTI/NRRD/MetaImage file, or a case folder")
    sp.add_argument("-o", "--output", metavar="CASE",
                    help="the case folder to create (required unless INPUT is a case; must not "
                         "exist unless --force)")
    sp.add_argument("--modality", choices=("auto", "ct", "mr"), default="auto",
                    help="which pipeline to run; auto uses the DICOM modality, else the "
                         "intensities (Hounsfield air means CT) (default: auto)")
    sp.add_argument("--structures", nargs="+", metavar="NAME", choices=LABELS.names,
                    help="only keep these structures (default: every structure found); "
                         "heart and blood_pool keep their parts; choices: "
                         + ", ".join(LABELS.names))
    sp.add_argument("--seeds", metavar="FILE",
                    help="seeds file (cardioplan.seeds JSON, or a case's plan.json)")
    sp.add_argument("--seed", action="append", default=[], metavar="NAME=x,y,z",
                    type=_seed_arg,
                    help="one seed in LPS millimetres, e.g. --seed left_ventricle=12.5,-40,88; "
                         "repeat for more; added to --seeds")
    sp.add_argument("--bias-correction", action="store_true",
                    help="MR: N4 bias-field correction before segmenting; use it when a surface "
                         "coil leaves strong shading (one side of the heart much brighter than "
                         "the other); adds a few seconds (default: off)")
    add_scan_options(sp)
    sp.add_argument("--no-mesh", action="store_true",
                    help="do not build meshes afterwards (run `cardioplan mesh CASE` later)")
    add_force_flag(sp)
    add_json_flag(sp)
    sp.set_defaults(_parser=sp)
    return sp


def _seed_arg(text: str) -> Any:
    from cardioplan.seeds import parse_seed_arg

    try:
        return parse_seed_arg(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from cardioplan.case import Case
    from cardioplan.progress import progress
    from cardioplan.seeds import read_seeds

    src = Path(args.input)
    existing = Case.is_case(src)
    if not existing and not args.output:
        args._parser.error("-o CASE is required when INPUT is a scan (it is optional only "
                           "when INPUT is already a case folder)")
    if existing and args.output and Path(args.output).absolute() != src.absolute():
        args._parser.error(f"INPUT {src} is already a case; omit -o to segment it in place, "
                           f"or import the scan again into {args.output}")
    seeds = (read_seeds(args.seeds) if args.seeds else []) + list(args.seed)
    ticks: Iterator[str] = iter(progress(_STEPS, desc="cardioplan segment", unit="step"))
    started = time.perf_counter()
    case = Case.open(src) if existing else None
    if case is not None:
        case.check_writable(case.labels_path, force=args.force)
        case.check_writable(case.slicer_labels_path, force=args.force)
    else:
        # the checks of `cardioplan import`, before the slow read: never write into the input,
        # --force replaces only a case, the parent folder must be writable
        from cardioplan.ingest import check_output

        check_output(src.absolute(), Path(args.output).absolute(), force=args.force)

    from cardioplan.workflow import mesh_after_segmentation, segment_volume

    next(ticks, None)
    volume = _read(src, args)
    next(ticks, None)
    result = segment_volume(volume, modality=args.modality, structures=args.structures,
                            seeds=seeds, bias_correction=args.bias_correction)
    next(ticks, None)
    case = _write(case, src, volume, result, args)
    next(ticks, None)
    meshes = None if args.no_mesh else mesh_after_segmentation(
        case, warnings=result.warnings, force=args.force)
    next(ticks, None)
    summary = _summary(case, result, meshes, seconds=time.perf_counter() - started)
    if args.json:
        print_json(summary)
    else:
        _print_table(summary)
    return 0


def _read(src: Path, args: argparse.Namespace) -> Any:
    from cardioplan.ingest import read_volume

    return read_volume(src, series=args.series, phase=args.phase, allow_gaps=args.allow_gaps)


def _write(case: Any, src: Path, volume: Any, result: Any, args: argparse.Namespace) -> Any:
    """Write labels, the Slicer file and case.json; a new case is committed only when complete."""
    from cardioplan.case import Case
    from cardioplan.ingest import input_record
    from cardioplan.workflow import write_segmentation

    if case is None:
        with Case.create(args.output, force=args.force) as new:
            new.write_image(volume.image, produced_by="cardioplan segment",
                            modality=volume.modality, phase=volume.phase)
            new.add_input(input_record(volume, src.absolute()))
            write_segmentation(new, result, force=True)
        return Case.open(new.path)
    write_segmentation(case, result, force=args.force)
    return case


def _summary(case: Any, result: Any, meshes: dict[str, Any] | None, *,
             seconds: float) -> dict[str, Any]:
    return {
        "case": str(case.path),
        "modality": result.modality,
        "structures": result.structures,
        "warnings": result.warnings,
        "method": result.method,
        "files": {"labels": str(case.labels_path), "slicer": str(case.slicer_labels_path)},
        "meshes": None if meshes is None else {
            "target": meshes.get("target"), "triangles": meshes.get("triangles"),
            "files": meshes.get("files")},
        "seconds": round(seconds, 2),
    }


def _print_table(summary: dict[str, Any]) -> None:
    method = summary["method"]
    print(f"Segmented ({summary['modality']}, {method.get('chambers_from', 'seeds')} "
          f"chambers) in {summary['seconds']:.1f} s: {summary['case']}")
    print(f"  {'structure':<22} {'label':>5} {'volume mL':>10} {'voxels':>10}")
    for name, info in summary["structures"].items():
        tag = " (union)" if info.get("composite") else ""
        print(f"  {name + tag:<22} {info['value']:>5} {info['volume_ml']:>10.1f} "
              f"{info['voxels']:>10}")
    print(f"  labels   {summary['files']['labels']}")
    print(f"  Slicer   {summary['files']['slicer']}")
    if summary["meshes"]:
        print(f"  meshes   {summary['meshes']['triangles']} triangles "
              f"({summary['meshes']['target']})")
    for w in summary["warnings"]:
        print(f"  warning  {w}")
    print(f"Next: cardioplan view {summary['case']}")
