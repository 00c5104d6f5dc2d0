"""``cardioplan import SCAN -o CASE``: create a case folder from a scan."""

from __future__ import annotations

import argparse
from typing import Any

from cardioplan.cli._common import add_json_flag, add_scan_options, print_json, subparser

__all__ = ["register", "run"]


def register(sub: Any) -> argparse.ArgumentParser:
    sp = subparser(
        sub, "import", help="create a case folder (image.nii + case.json) from a scan",
        description="Read one 3D volume from SCAN and write it as a new case folder: "
                    "image.nii (LPS, CT in Hounsfield units, int16 when the values fit) and "
                    "case.json with the provenance (source path, UIDs, files; never patient "
                    "names, IDs or birth dates).  SCAN may be a DICOM folder (searched "
                    "recursively), DICOM file, DICOMDIR, NIfTI/NRRD/MetaImage file or another "
                    "case.  With several series and no --series, the largest 3D series (CT "
                    "preferred) is taken and the choice is logged; two equally good candidates "
                    "are an error that lists them.  A 4D series loads the phase closest to "
                    "75 % of the R-R interval (mid-diastole) when known, else the first.  "
                    "The case is built in a staging folder and renamed into place, so a failure "
                    "leaves nothing behind.",
        examples=["cardioplan import scans/patient1 -o cases/patient1",
                  "cardioplan import /media/cdrom/DICOMDIR -o cases/p2 --series 3 --phase 75%",
                  "cardioplan import ct.nii.gz -o cases/p3 --force --json"])
    sp.add_argument("scan", metavar="SCAN",
                    help="DICOM folder/file/DICOMDIR, NIfTI/NRRD/MetaImage file, or case folder")
    sp.add_argument("-o", "--output", metavar="CASE", required=True,
                    help="the case folder to create (must not exist unless --force)")
    add_scan_options(sp)
    sp.add_argument("--force", action="store_true",
                    help="replace CASE if it is an existing case folder (a folder that is not a "
                         "case is never replaced)")
    add_json_flag(sp)
    return sp


def run(args: argparse.Namespace) -> int:
    from cardioplan.ingest import import_case

    case = import_case(args.scan, args.output, series=args.series, phase=args.phase,
                       allow_gaps=args.allow_gaps, force=args.force)
    image = case.image_info
    record = case.inputs[-1]
    if args.json:
        print_json({"case": str(case.path), "image": image, "input": {
            k: record.get(k) for k in ("format", "path", "modality", "description",
                                       "series_uid", "series_number", "series_index",
                                       "series_choice", "phase", "warnings")}})
        return 0
    size = "x".join(str(v) for v in image["size"])
    spacing = " x ".join(f"{v:g}" for v in image["spacing"])
    print(f"Case written: {case.path}")
    print(f"  image    {size} voxels, {spacing} mm, {image['pixel_type']}, "
          f"{image.get('modality', 'OT')}")
    if record.get("series_choice"):
        print(f"  series   {record['series_choice']}")
    if image.get("phase"):
        print(f"  phase    {image['phase'].get('choice', image['phase'])}")
    if record.get("warnings"):
        print(f"  warnings {len(record['warnings'])} (logged above; kept in case.json inputs)")
    print(f"Next: cardioplan segment {case.path}")
    return 0
