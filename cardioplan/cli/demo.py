"""``cardioplan demo``: the whole pipeline on the bundled synthetic phantom."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cardioplan.cli._common import add_json_flag, print_json, subparser

__all__ = ["register", "run", "sample_data_dir"]

_STEPS = ("import", "segment", "evaluate", "mesh", "snapshot", "report")


def sample_data_dir() -> Path:
    """``sample_data/phantom`` of the source checkout CardioPlan runs from."""
    import cardioplan

    return Path(cardioplan.__file__).resolve().parents[1] / "sample_data" / "phantom"


def register(sub: Any) -> argparse.ArgumentParser:
    sp = subparser(
        sub, "demo", help="run the whole pipeline on the bundled phantom and say where the "
                          "results are",
        description="Run CardioPlan end to end on the bundled synthetic congenital-heart CT "
                    "(sample_data/phantom: a child-sized heart with a ventricular septal "
                    "defect, and its exact ground truth): import the DICOM series into a case, "
                    "segment it automatically, compare with the ground truth (Dice, HD95), build "
                    "the meshes for PC-VR, render an anterior snapshot and write the HTML "
                    "report.  A previous demo output in the same folder is replaced; any other "
                    "existing folder is left alone unless --force.",
        examples=["cardioplan demo",
                  "cardioplan demo -o /tmp/demo --json",
                  "cardioplan view cardioplan-demo/case      # then review it on the desktop"])
    sp.add_argument("-o", "--output", metavar="DIR", default="cardioplan-demo",
                    help="folder for the demo case (DIR/case) (default: ./cardioplan-demo)")
    sp.add_argument("--data", metavar="DIR", type=Path, default=None,
                    help="phantom folder with dicom/ and labels.nii.gz (default: the bundled "
                         "sample_data/phantom)")
    sp.add_argument("--no-report", action="store_true",
                    help="skip the snapshot and the HTML report (no rendering needed)")
    sp.add_argument("--force", action="store_true",
                    help="replace DIR/case even when it was not made by the demo")
    add_json_flag(sp)
    return sp


def run(args: argparse.Namespace) -> int:
    import SimpleITK as sitk

    from cardioplan.case import Case
    from cardioplan.errors import InputError
    from cardioplan.ingest import import_case, read_volume
    from cardioplan.progress import progress
    from cardioplan.workflow import mesh_after_segmentation, segment_volume, write_segmentation
    from segmentation.metrics import evaluate_labels

    data = args.data or sample_data_dir()
    if not (data / "dicom").is_dir() or not (data / "labels.nii.gz").is_file():
        raise InputError(f"the phantom was not found in {data} (it needs dicom/ and "
                         "labels.nii.gz); run from a source checkout installed with "
                         "`bash scripts/install.sh`, regenerate it with "
                         "`python scripts/make_sample_data.py`, or pass --data DIR")
    out = Path(args.output)
    case_dir = out / "case"
    force = args.force or (Case.is_case(case_dir) and bool(Case.open(case_dir).section("demo")))
    started = time.perf_counter()
    steps = iter(progress(_STEPS, desc="cardioplan demo", unit="step"))
    timings: dict[str, float] = {}

    def tick(name: str, t0: float) -> float:
        timings[name] = round(time.perf_counter() - t0, 2)
        next(steps, None)
        return time.perf_counter()

    t = time.perf_counter()
    case = import_case(data / "dicom", case_dir, force=force)
    case.set_section("demo", {"data": str(data.resolve())})
    t = tick("import", t)
    result = segment_volume(read_volume(case.path))
    write_segmentation(case, result, force=True)
    t = tick("segment", t)
    scores = evaluate_labels(case.read_labels(), sitk.ReadImage(str(data / "labels.nii.gz")),
                             structures=list(case.structures))
    t = tick("evaluate", t)
    meshes = mesh_after_segmentation(case, warnings=result.warnings, force=True)
    t = tick("mesh", t)
    snapshot = report = None
    if not args.no_report and meshes is not None:
        from cardioplan.report.build import build_report
        from cardioplan.viewer.snapshot import render_snapshot

        snapshot = render_snapshot(case, out / "anterior.png", view="anterior")
        t = tick("snapshot", t)
        report = build_report(case, reference=sitk.ReadImage(str(data / "labels.nii.gz")),
                              reference_name="phantom ground truth", force=True)
        t = tick("report", t)
    summary = {
        "case": str(case.path),
        "structures": {name: {"volume_ml": info.get("volume_ml"),
                              "dice": _round(scores.get(name, {}).get("dice")),
                              "hd95_mm": _round(scores.get(name, {}).get("hd95_mm"))}
                       for name, info in case.structures.items()},
        "triangles": None if meshes is None else meshes.get("triangles"),
        "snapshot": None if snapshot is None else str(snapshot.resolve()),
        "report": None if report is None else str(report),
        "warnings": list(result.warnings),
        "seconds": timings,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary)
    return 0


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _print_summary(s: dict[str, Any]) -> None:
    print(f"CardioPlan demo finished in {s['total_seconds']} s: synthetic phantom with a VSD")
    print(f"  {'structure':<20} {'volume mL':>10} {'Dice':>6} {'HD95 mm':>8}   (vs ground truth)")
    for name, row in s["structures"].items():
        dice = "-" if row["dice"] is None else f"{row['dice']:.3f}"
        hd = "-" if row["hd95_mm"] is None else f"{row['hd95_mm']:.1f}"
        vol = "-" if row["volume_ml"] is None else f"{row['volume_ml']:.1f}"
        print(f"  {name:<20} {vol:>10} {dice:>6} {hd:>8}")
    for w in s["warnings"]:
        print(f"  warning: {w}")
    print(f"Case folder:  {s['case']}   (image, labels, labels.seg.nrrd for 3D Slicer, meshes/)")
    if s["triangles"] is not None:
        print(f"Meshes:       {s['triangles']} triangles (PC-VR budget)")
    if s["snapshot"]:
        print(f"Snapshot:     {s['snapshot']}")
    if s["report"]:
        print(f"HTML report:  {s['report']}   (open it in a browser; works offline)")
    print(f"Next: cardioplan view {s['case']}   or   cardioplan vr {s['case']}")
