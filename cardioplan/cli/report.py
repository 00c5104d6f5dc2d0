"""``cardioplan report``: a self-contained HTML review report (and an interactive 3D page)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cardioplan.cli._common import add_force_flag, add_json_flag, image_size, print_json, subparser

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from cardioplan.cli.evaluate import parse_ref_map
    from cardioplan.viewer.camera import PRESETS

    sp = subparser(
        sub, "report", help="write an HTML review report of a case (opens offline)",
        description="Write CASE/report/index.html: scan summary (no patient identifiers), "
                    "structure table (volume, surface area, triangles, watertight), snapshots "
                    "from the standard views and of the plan's cut planes and rehearsal steps, "
                    "slice montages with label outlines, the plan's measurements and "
                    "landmarks, and validation metrics against a reference label map.  "
                    "Images are embedded, so the file opens offline and can be sent as is.  "
                    "Also writes model.html, an interactive 3D model (WebGL, no install, no "
                    "network).",
        examples=["cardioplan report case1",
                  "cardioplan report case1 -o review/case1 --force",
                  "cardioplan report case1 --reference truth/labels.nii.gz",
                  "cardioplan report acdc_case --reference patient001_frame01_gt.nii.gz "
                  "--ref-map 1=right_ventricle,2=myocardium,3=left_ventricle",
                  "cardioplan report case1 --views anterior lao rao --size 800x600"])
    sp.add_argument("case", type=Path, help="the case folder (it needs meshes: "
                                            "`cardioplan mesh CASE`)")
    sp.add_argument("-o", "--output", type=Path, default=None, metavar="DIR",
                    help="output folder (default CASE/report)")
    sp.add_argument("--reference", type=Path, default=None, metavar="LABELS",
                    help="reference label map (NIfTI/NRRD/MHA) for Dice, HD95 and ASSD per "
                         "structure; resampled onto the case grid if needed")
    sp.add_argument("--ref-map", type=parse_ref_map, default=None, metavar="V=NAME,...",
                    help="reference value -> structure name when the reference does not use "
                         "CardioPlan's label values, e.g. 1=right_ventricle,3=left_ventricle")
    sp.add_argument("--views", nargs="+", default=None, choices=list(PRESETS), metavar="VIEW",
                    help="camera presets to render (default: anterior posterior left right "
                         "lao rao superior inferior); choices: " + ", ".join(PRESETS))
    sp.add_argument("--size", type=image_size, default=(640, 480), metavar="WxH",
                    help="snapshot size in pixels (default 640x480)")
    sp.add_argument("--slices", type=int, default=6, metavar="N",
                    help="slices per montage (default 6)")
    sp.add_argument("--no-model", action="store_true",
                    help="do not write the interactive 3D page model.html")
    sp.add_argument("--web-triangles", type=int, default=150_000, metavar="N",
                    help="triangles of the 3D page's model in all (default 150000, about 4 MB; "
                         "more detail, larger file)")
    add_force_flag(sp)
    add_json_flag(sp)
    return sp


def run(args: argparse.Namespace) -> int:
    from cardioplan.case import Case
    from cardioplan.errors import InputError
    from cardioplan.ingest import read_label_map
    from cardioplan.report import REPORT_VIEWS, build_report

    if not 1 <= args.slices <= 24:
        raise InputError(f"--slices {args.slices}: choose 1..24 slices per montage")
    if not 1_000 <= args.web_triangles <= 5_000_000:
        raise InputError(f"--web-triangles {args.web_triangles}: choose 1000..5000000")
    case = Case.open(args.case)
    reference = (read_label_map(args.reference, what="reference", allow_case=False)
                 if args.reference else None)
    index = build_report(case, args.output, reference=reference,
                         reference_name=args.reference.name if args.reference else "reference",
                         ref_map=args.ref_map, views=args.views or REPORT_VIEWS,
                         size=args.size, montage_slices=args.slices, model=not args.no_model,
                         web_triangles=args.web_triangles, force=args.force)
    if args.json:
        print_json({"report": str(index),
                    "model": None if args.no_model else str(index.with_name("model.html"))})
    else:
        print(index)
    return 0
