#!/usr/bin/env python3
"""Render what the headset shows for a case, off-screen, from a fixed eye (docs figures).

Uses the headset's own code path (plan -> :class:`vr.interaction.Interaction` ->
:func:`vr.app.scene_frame` -> :class:`vr.render.Renderer`) on an EGL context, without an OpenXR
runtime, at a chosen resolution; the eye looks at the model from 45 cm.

Usage::

    .venv/bin/python scripts/vr_figure.py CASE out.png [--size 800 600] [--menu] [--names]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("case")
    ap.add_argument("out")
    ap.add_argument("--size", type=int, nargs=2, default=(800, 600))
    ap.add_argument("--menu", action="store_true", help="show the menu panel on the left hand")
    ap.add_argument("--names", action="store_true", help="label the structures with their names")
    args = ap.parse_args()

    import moderngl
    import numpy as np
    from PIL import Image

    from cardioplan.case import Case
    from cardioplan.plan import ModelPose, load_plan
    from vr import xrmath
    from vr.app import scene_frame, volume_texture
    from vr.graphics import create_context, prepare_platform
    from vr.interaction import FrameInput, HandInput, Interaction, MeshPicker
    from vr.live import load_meshes
    from vr.overlay import menu_image, menu_key
    from vr.render import MenuImage, Renderer
    from vr.xrmath import Pose

    case = Case.open(args.case)
    up = load_meshes(case)
    plan = load_plan(case)
    pts = np.vstack([v[:, :3] for v, _ in up.meshes.values()]).astype(float)
    pivot = (pts.min(0) + pts.max(0)) / 2
    head = Pose((0.0, 1.6, 0.0))
    plan.model_pose = ModelPose(position=(0.07, 1.6, -0.36), scale=1.5)
    it = Interaction(plan, structures=list(up.meshes), pivot_mm=pivot,
                     picker=MeshPicker({n: (v[:, :3], f) for n, (v, f) in up.meshes.items()}))
    left = Pose((-0.22, 1.36, -0.47), xrmath.quat_multiply(
        xrmath.quat_from_axis_angle((0, 1, 0), 0.5), xrmath.quat_from_axis_angle((1, 0, 0), 0.5)))
    right = Pose((0.12, 1.45, -0.2), xrmath.quat_from_two_vectors(
        (0, 0, -1), np.subtract(it.model_pose.position, (0.12, 1.45, -0.2))))
    frame_in = FrameInput(hands={"left": HandInput(aim_pose=left, grip_pose=left),
                                 "right": HandInput(aim_pose=right, grip_pose=right)},
                          head=head)
    it.state.menu_open = args.menu
    it.state.show_names = args.names
    it.label_points = {n: v[np.argmax(np.linalg.norm(v[:, :3] - pivot, axis=1)), :3]
                       for n, (v, _f) in up.meshes.items()}
    it.update(frame_in)
    menu = None
    if args.menu:
        from vr.interaction import MENU_SIZE_M, menu_pose

        buttons = it.menu_buttons()
        menu = MenuImage(menu_pose(left), MENU_SIZE_M,
                         menu_image(buttons, hover=it.state.menu_hover),
                         menu_key(buttons, it.state.menu_hover, ""))
    scene = scene_frame(it, frame_in, colors=up.colors, menu=menu, head=head.position)

    prepare_platform("egl")
    gl = create_context("egl")
    moderngl.init_context()
    ctx = moderngl.get_context()
    r = Renderer(ctx, srgb=True)
    r.set_meshes(up.meshes)
    if case.has_image:
        r.set_volume(*volume_texture(case.read_image(),
                                     modality=str(case.image_info.get("modality", "CT"))))
    w, h = args.size
    fbo = r.offscreen((w, h))
    half = 0.55
    proj = xrmath.projection_from_fov(-half * w / h, half * w / h, half, -half)
    r.draw(fbo, proj, xrmath.view_matrix(head.position, head.orientation), head.position, scene)
    Image.fromarray(r.read_pixels(fbo)[:, :, :3]).save(args.out)
    r.release()
    ctx.release()
    gl.destroy()
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
