"""``cardioplan vr CASE``: the case on a VR headset (OpenXR); ``cardioplan vr --check``."""

from __future__ import annotations

import argparse
import logging
import os
import textwrap
from typing import Any

from cardioplan.cli._common import add_json_flag, positive_int, print_json, subparser
from cardioplan.errors import InputError

__all__ = ["register", "run"]

log = logging.getLogger(__name__)

_TOOLS = ("grab", "cut", "measure", "angle", "landmark")


def register(sub: Any) -> argparse.ArgumentParser:
    sp = subparser(
        sub, "vr", help="review and rehearse the case on a VR headset (OpenXR)",
        description=textwrap.fill(
            "Show the case's meshes on a VR headset through the OpenXR runtime (SteamVR, "
            "Monado, WiVRn, Meta Link...).  Grip to grab and turn the heart, both grips to "
            "scale it; the trigger uses the current tool (select/hide a structure, place a cut "
            "plane, measure a distance in mm or an angle, place a landmark); the thumbstick "
            "steps through the plan's rehearsal steps; A/X or the menu button opens the menu "
            "panel.  Every change is saved to the case's plan.json at once, and changes made "
            "on disk (re-meshed structures, the desktop viewer's plan edits) appear in the "
            "headset within a second.", width=88),
        examples=["cardioplan vr --check",
                  "cardioplan vr CASE",
                  "cardioplan vr CASE --mirror            # spectator window (desktop)",
                  "cardioplan vr CASE --mirror eye.png    # left eye saved every second",
                  "cardioplan vr CASE --frames 300 --json # timings for scripts and benchmarks"])
    sp.add_argument("case", metavar="CASE", nargs="?",
                    help="the case folder (needs meshes: `cardioplan mesh CASE`)")
    sp.add_argument("--check", action="store_true",
                    help="report the OpenXR runtime, headset, view sizes, supported extensions "
                         "and graphics bindings, or exactly what is missing; exit 1 when no "
                         "runtime or headset is usable")
    sp.add_argument("--frames", type=positive_int, metavar="N",
                    help="end after N frames (default: run until you quit in the headset or "
                         "the runtime ends the session)")
    sp.add_argument("--mirror", nargs="?", const="window", metavar="PNG",
                    help="spectator mirror of the left eye: a desktop window (no value; needs "
                         "a display and --graphics glx/wgl), or a PNG file rewritten every "
                         "second (headless)")
    sp.add_argument("--graphics", choices=("egl", "glx", "wgl"),
                    help="OpenGL binding: egl (headless, Monado; XR_MNDX_egl_enable), glx "
                         "(Linux desktop), wgl (Windows); default: wgl on Windows, glx with a "
                         "DISPLAY, else egl")
    sp.add_argument("--tool", choices=_TOOLS, default="grab",
                    help="the trigger's tool at start (default: grab = select/hide; measure = "
                         "distance in mm from two points; angle = three points, the second "
                         "is the vertex)")
    sp.add_argument("--reference", choices=("stage", "local"), default="stage",
                    help="reference space: stage (room-scale, floor at 0; falls back to local "
                         "when the runtime has none) or local (seated)")
    sp.add_argument("--no-depth", dest="depth", action="store_false",
                    help="do not submit depth layers (XR_KHR_composition_layer_depth)")
    sp.add_argument("--no-slice", dest="slice", action="store_false",
                    help="do not load the scan for the image slice on the cut plane")
    sp.add_argument("--msaa", type=int, choices=(0, 2, 4, 8), metavar="N",
                    help="multisample anti-aliasing, samples per pixel: 0 (off), 2, 4, 8 "
                         "(default: 4 on a GPU, off with software GL)")
    add_json_flag(sp)
    return sp


def run(args: argparse.Namespace) -> int:
    if not args.verbose:  # our messages explain a missing runtime; the loader's log is for -v
        os.environ.setdefault("XR_LOADER_DEBUG", "none")
    if args.check:
        return _check(args)
    if not args.case:
        raise InputError("give a case folder (`cardioplan vr CASE`) or --check")
    from vr.app import VrApp, VrOptions
    from vr.graphics import default_graphics

    if args.mirror == "window" and (args.graphics or default_graphics()) == "egl":
        raise InputError("a mirror window needs a display and --graphics glx (or wgl); for a "
                         "headless session give --mirror a PNG path instead")

    opts = VrOptions(frames=args.frames, graphics=args.graphics, mirror=args.mirror,
                     tool=args.tool, reference=args.reference, depth=args.depth,
                     slice=args.slice, msaa=args.msaa)
    stats = VrApp(args.case, opts).run()
    summary = stats.summary()
    if args.json:
        print_json(summary)
    else:
        cpu = summary["cpu_ms"]
        print(f"{stats.system} on {stats.runtime}: {stats.frames} frames, "
              f"{stats.triangles:,} triangles, {stats.eye_size[0]}x{stats.eye_size[1]} per eye; "
              f"our CPU time per frame median {cpu['median']:.2f} ms, p99 {cpu['p99']:.2f} ms; "
              f"first frame after {stats.startup_s:.2f} s; {stats.plan_writes} plan write(s). "
              f"Ended: {stats.exit_reason or 'done'}")
    if stats.error:
        log.error("%s", stats.error)
        return 1
    return 0


def _check(args: argparse.Namespace) -> int:
    from vr.graphics import prepare_platform
    from vr.session import check_runtime

    prepare_platform("egl")
    info = check_runtime()  # RuntimeMissingError -> exit 1 with the diagnosis
    if args.json:
        print_json(info)
        return 0
    views = ", ".join(f"{v['width']}x{v['height']}" for v in info["views"])
    usable = [k + (" (needs a display)" if k == "glx" and not os.environ.get("DISPLAY") else "")
              for k, ok in info["graphics"].items() if ok]
    print(f"runtime:   {info['runtime']}")
    print(f"headset:   {info['system']} (views {views})")
    print(f"graphics:  {', '.join(usable) or 'none usable'}"
          f"{'' if info['depth_layers'] else ' (no depth layers)'}")
    if info["reference_spaces"]:
        print(f"spaces:    {', '.join(info['reference_spaces'])}")
    print(f"extensions ({len(info['extensions'])}): {', '.join(info['extensions'])}")
    return 0
