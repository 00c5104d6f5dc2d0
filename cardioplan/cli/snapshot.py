"""``cardioplan snapshot``: render a case's 3D scene off-screen to a PNG (no display needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cardioplan.cli._common import add_json_flag, image_size, print_json, subparser
from cardioplan.labels import LABELS
from cardioplan.viewer.camera import PRESETS

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from cardioplan.viewer.slices import parse_slice_spec

    sp = subparser(
        sub, "snapshot", help="render the 3D scene of a case to a PNG, off-screen",
        description="Render the same scene as `cardioplan view` (meshes in their label "
                    "colours with a legend, the plan's display settings, landmarks and "
                    "measurements) to a PNG without a display (EGL).  For scripts, CI and "
                    "figures.",
        examples=["cardioplan snapshot case1 -o front.png",
                  "cardioplan snapshot case1 -o lao.png --view lao --size 1600x1200",
                  "cardioplan snapshot case1 -o 'shots/{view}.png' --view anterior lao rao",
                  "cardioplan snapshot case1 -o vsd.png --structures left_ventricle "
                  "right_ventricle --view rao",
                  "cardioplan snapshot case1 -o cut.png --clip --view surgeon",
                  "cardioplan snapshot case1 -o slice.png --slice axial:40 --view inferior",
                  "cardioplan snapshot case1 -o check.png --slice coronal --inset",
                  "cardioplan snapshot case1 -o step2.png --step 2"])
    sp.add_argument("case", type=Path, help="the case folder (it needs meshes: "
                                            "`cardioplan mesh CASE`)")
    sp.add_argument("-o", "--output", type=Path, required=True,
                    help="PNG file to write; with several views, a pattern with {view}, e.g. "
                         "shots/{view}.png")
    sp.add_argument("--view", nargs="+", default=None, metavar="VIEW",
                    help="camera preset (" + ", ".join(PRESETS) + ") or a view saved in the "
                         "plan, or several (one PNG each); default: the step's view, else "
                         "anterior")
    sp.add_argument("--size", type=image_size, default=(1024, 768), metavar="WxH",
                    help="image size in pixels (default 1024x768)")
    sp.add_argument("--structures", nargs="+", metavar="NAME", choices=LABELS.names,
                    help="show only these structures (default: as the plan shows them); "
                         "choices: " + ", ".join(LABELS.names))
    sp.add_argument("--clip", action="store_true",
                    help="apply the plan's enabled cut planes")
    sp.add_argument("--slice", type=parse_slice_spec, default=None,
                    metavar="ORIENTATION[:INDEX]",
                    help="show an image slice with label outlines: axial, coronal or sagittal, "
                         "optionally with the slice index of the LPS-oriented image "
                         "(default: the middle slice), e.g. axial:40")
    sp.add_argument("--inset", action="store_true",
                    help="with --slice: also show the slice flat in the lower right corner, "
                         "with label outlines and the meshes' cut lines")
    sp.add_argument("--step", default=None, metavar="N|TITLE",
                    help="show a rehearsal step of the plan (number from 1, or its title): "
                         "its structures, cut planes and view")
    sp.add_argument("--transparent", action="store_true",
                    help="transparent background (RGBA PNG) for figures and slides")
    sp.add_argument("--no-annotations", action="store_true",
                    help="leave out the plan's landmarks, measurements and seeds")
    add_json_flag(sp)
    return sp


def run(args: argparse.Namespace) -> int:
    from cardioplan.viewer.snapshot import render_snapshots

    written = render_snapshots(args.case, args.output, views=args.view or [None],
                               size=args.size, structures=args.structures, clip=args.clip,
                               slice=args.slice, step=args.step,
                               annotations=not args.no_annotations, inset=args.inset,
                               transparent=args.transparent)
    if args.json:
        print_json({"outputs": [str(p) for p in written], "size": list(args.size),
                    "views": args.view})
    return 0
