"""``cardioplan view``: the interactive desktop viewer of a case."""

from __future__ import annotations

import argparse
from pathlib import Path

from cardioplan.cli._common import subparser
from cardioplan.labels import LABELS

__all__ = ["register", "run"]


def _keys_epilog() -> str:
    from cardioplan.viewer.interaction import help_text

    return "Keys:\n" + "\n".join(f"  {line}" for line in help_text().splitlines())


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from cardioplan.viewer.camera import PRESETS

    sp = subparser(
        sub, "view", help="review a case in an interactive 3D window",
        description="Open the case's meshes in a 3D window: structures in their label colours "
                    "with a legend, show/hide and opacity per structure, a cut-plane widget, "
                    "an image slice with label outlines, landmarks, seeds and measurements "
                    "picked on the surfaces, camera presets, saved views and rehearsal steps.  "
                    "Every change is saved at once in CASE/plan.json, which the VR headset "
                    "shares (edits from both are kept).  Needs a display; without one use "
                    "`cardioplan snapshot` or `cardioplan report`.\n\n" + _keys_epilog(),
        examples=["cardioplan view case1",
                  "cardioplan view case1 --view lao",
                  "cardioplan view case1 --structures left_ventricle right_ventricle "
                  "myocardium"])
    sp.add_argument("case", type=Path, help="the case folder (it needs meshes: "
                                            "`cardioplan mesh CASE`)")
    sp.add_argument("--view", default="anterior",
                    help="first camera preset (" + ", ".join(PRESETS) + ") or a view saved "
                         "in the plan (default anterior)")
    sp.add_argument("--structures", nargs="+", metavar="NAME", choices=LABELS.names,
                    help="load only these structures (default: every mesh of the case)")
    return sp


def run(args: argparse.Namespace) -> int:
    from cardioplan.viewer.window import open_viewer

    open_viewer(args.case, structures=args.structures, view=args.view)
    return 0
