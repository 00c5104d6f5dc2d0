"""Headset logic that needs no runtime and no GL: session state machine, bindings, formats,
runtime diagnosis, scene assembly, menu pixels, scan windowing, mesh watching."""

from __future__ import annotations

import time

import numpy as np
import pytest
import SimpleITK as sitk
from vr_runtime import make_mesh_case, write_mesh

from cardioplan.plan import CutPlane, Landmark, ModelPose, Plan, RehearsalStep, StructureDisplay
from vr import bindings
from vr.app import percentiles, scene_frame, volume_texture
from vr.interaction import FrameInput, HandInput, Interaction, menu_layout
from vr.overlay import MENU_PIXELS, menu_image, menu_key, text_image
from vr.session import COLOR_FORMATS, DEPTH_FORMATS, Lifecycle, choose_format
from vr.xrmath import Pose


# -- session state machine --------------------------------------------------------------------
def test_lifecycle_begins_on_ready_ends_on_stopping_and_exits_on_exiting():
    lc = Lifecycle()
    assert lc.on_state("IDLE") == []
    assert lc.on_state("READY") == ["begin"] and lc.running
    assert lc.on_state("READY") == []  # never begins twice
    for s in ("SYNCHRONIZED", "VISIBLE", "FOCUSED"):
        assert lc.on_state(s) == []
    assert lc.focused
    assert lc.on_state("STOPPING") == ["end"] and not lc.running
    assert lc.on_state("IDLE") == [] and not lc.should_exit  # the runtime may restart it
    assert lc.on_state("EXITING") == ["exit"] and lc.should_exit
    assert lc.exit_reason == "the runtime ended the session"


def test_lifecycle_loss_pending_instance_loss_and_errors_stop_the_loop_with_a_reason():
    lc = Lifecycle()
    lc.on_state("READY")
    assert lc.on_state("LOSS_PENDING") == ["exit"]
    assert lc.should_exit and "going away" in lc.exit_reason
    lc2 = Lifecycle()
    assert lc2.on_instance_loss() == ["exit"] and "shutting down" in lc2.exit_reason
    lc3 = Lifecycle()
    lc3.on_error("XR_ERROR_SESSION_LOST")
    lc3.on_state("EXITING")  # the first reason is kept
    assert lc3.exit_reason == "runtime error: XR_ERROR_SESSION_LOST"


def test_lifecycle_exit_request_asks_the_runtime_only_while_running():
    lc = Lifecycle()
    assert lc.on_exit_request() == ["exit"] and lc.should_exit  # never started: quit now
    lc = Lifecycle()
    lc.on_state("READY")
    assert lc.on_exit_request() == ["request"] and not lc.should_exit
    lc.on_state("STOPPING")
    lc.on_state("IDLE")
    assert lc.should_exit and lc.exit_reason == "the user or the app asked to exit"


def test_lifecycle_requested_exit_finishes_in_idle_when_not_running():
    lc = Lifecycle()
    lc.exit_requested = True
    lc.on_state("READY")
    lc.on_state("STOPPING")
    assert lc.on_state("IDLE") == ["exit"]
    assert lc.exit_reason == "the user or the app asked to exit"


def test_swapchain_formats_prefer_srgb_then_linear_and_deep_depth():
    assert choose_format([0x881A, 0x8058, 0x8C43], COLOR_FORMATS) == 0x8C43  # not RGBA16F
    assert choose_format([0x881A, 0x8058], COLOR_FORMATS) == 0x8058
    assert choose_format([0x81A5, 0x8CAC], DEPTH_FORMATS) == 0x8CAC
    assert choose_format([0x1234], DEPTH_FORMATS) is None


def test_missing_runtime_messages_name_the_cause(monkeypatch, tmp_path):
    from vr.session import explain_missing_runtime

    monkeypatch.setenv("XR_RUNTIME_JSON", str(tmp_path / "nope.json"))
    msg = explain_missing_runtime("The loader was unable to find or load a runtime.")
    assert f"XR_RUNTIME_JSON points to {tmp_path / 'nope.json'}, which does not exist" in msg
    assert "The loader said: The loader was unable" in msg
    monkeypatch.delenv("XR_RUNTIME_JSON")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "etc"))
    msg = explain_missing_runtime("x")
    if "no active_runtime.json" in msg:  # unless /etc/openxr/1 has one on this machine
        assert str(tmp_path / "cfg" / "openxr" / "1" / "active_runtime.json") in msg
    runtime = tmp_path / "cfg" / "openxr" / "1" / "active_runtime.json"
    runtime.parent.mkdir(parents=True)
    runtime.write_text("{}")
    assert f"the active runtime {runtime} failed to load" in explain_missing_runtime("x")


# -- bindings ---------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", sorted(bindings.PROFILES))
def test_every_profile_binds_poses_trigger_and_menu_for_both_hands(profile):
    pairs = bindings.expand_bindings(profile)
    for hand in ("left", "right"):
        actions = {a for a, p in pairs if p.startswith(f"/user/hand/{hand}/")}
        assert {"grip_pose", "aim_pose", "trigger", "primary", "haptic"} <= actions, profile
    assert len(set(pairs)) == len(pairs)  # no duplicate suggestions
    assert all(p.startswith("/user/hand/") for _, p in pairs)


def test_touch_controller_uses_a_x_for_the_menu_and_b_y_for_tools():
    pairs = set(bindings.expand_bindings("/interaction_profiles/oculus/touch_controller"))
    assert ("primary", "/user/hand/left/input/x/click") in pairs
    assert ("primary", "/user/hand/right/input/a/click") in pairs
    assert ("secondary", "/user/hand/left/input/y/click") in pairs
    assert ("primary", "/user/hand/right/input/x/click") not in pairs
    assert ("primary", "/user/hand/left/input/menu/click") in pairs  # only the left has one


# -- scene assembly ---------------------------------------------------------------------------
def make_interaction(plan: Plan) -> Interaction:
    plan.model_pose = plan.model_pose or ModelPose(position=(0, 1.5, -0.5))
    return Interaction(plan, structures=["left_ventricle", "aorta"], pivot_mm=(0, 0, 0))


def test_scene_frame_applies_display_steps_and_cut_planes():
    plane = CutPlane("c", (0, 0, 0), (1, 0, 0), structures=["aorta"])
    plan = Plan(display={"left_ventricle": StructureDisplay(opacity=0.3, color=(1, 2, 3))},
                cut_planes=[plane],
                landmarks=[Landmark("apex", (0, 0, 10))],
                steps=[RehearsalStep("only aorta", visible=["aorta"])])
    it = make_interaction(plan)
    frame = scene_frame(it, FrameInput(), colors={"aorta": (200, 30, 130)})
    assert frame.styles["left_ventricle"].opacity == pytest.approx(0.3)
    assert frame.styles["left_ventricle"].color == (1, 2, 3)  # the plan's override
    assert not frame.styles["left_ventricle"].visible  # the step shows only the aorta
    assert frame.styles["aorta"].color == (200, 30, 130)
    assert len(frame.styles["aorta"].planes) == 1 and frame.styles["left_ventricle"].planes == []
    assert frame.slice_plane is not None and frame.slice_plane[1] == pytest.approx((1, 0, 0))
    assert [lab.text for lab in frame.labels] == ["apex"]
    # the landmark is placed through the model matrix: 10 mm superior = 1 cm up
    assert frame.points[0][0] == pytest.approx((0, 1.51, -0.5))


def test_scene_frame_draws_rays_measurements_and_the_held_cut_plane():
    plan = Plan()
    plan.add_measurement(kind="distance", points=[(0, 0, 0), (30, 0, 40)])
    it = make_interaction(plan)
    it.state.tool = "cut"
    aim = Pose((0.1, 1.4, -0.2))
    frame_in = FrameInput(hands={"right": HandInput(aim_pose=aim)})
    it.update(frame_in)
    frame = scene_frame(it, frame_in, colors={})
    assert any(lab.text == "M1: 50.0 mm" for lab in frame.labels)
    assert any(np.allclose(a, aim.position) for a, _b, _c in frame.lines)  # the ray
    assert len(frame.quads) == 1  # the plane in the hand
    assert all(len(s.planes) == 1 for s in frame.styles.values())  # ... clips everything


# -- pixels for the menu and labels -----------------------------------------------------------
def test_menu_image_highlights_the_active_tool_and_hover_and_changes_key():
    it = make_interaction(Plan())
    buttons = menu_layout(it.structures, it.state, it.plan)
    img = menu_image(buttons, hover="tool:cut")
    assert img.shape == (MENU_PIXELS[1], MENU_PIXELS[0], 4)
    w, h = MENU_PIXELS
    grab = next(b for b in buttons if b.action == "tool:grab")
    cut = next(b for b in buttons if b.action == "tool:cut")

    def colour_at(b):
        u0, v0, u1, v1 = b.rect
        return img[int((v0 + v1) / 2 * h) - 12, int(u0 * w) + 6, :3].astype(int)

    assert colour_at(grab)[2] > colour_at(cut)[2] + 60  # active: blue fill
    edge = img[int(cut.rect[1] * h) + 1, int((cut.rect[0] + cut.rect[2]) / 2 * w), :3]
    assert edge[0] > 200 and edge[1] > 150  # hovered: yellow outline
    assert menu_key(buttons, "tool:cut", "") != menu_key(buttons, None, "")


def test_text_image_is_wider_for_longer_text():
    a, b = text_image("8 mm"), text_image("VSD diameter 8.2 mm")
    assert a.shape[0] == b.shape[0] and b.shape[1] > 2 * a.shape[1]
    assert (a[..., 3] > 0).any()


# -- scan for the slice plane -----------------------------------------------------------------
def test_volume_texture_windows_ct_and_keeps_geometry():
    arr = np.full((40, 50, 60), -1000, dtype=np.int16)
    arr[:, :, 30:] = 400  # contrast blood
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.5, 0.6, 1.0))
    img.SetOrigin((10.0, 20.0, 30.0))
    vox, m = volume_texture(img, modality="CT", max_size=32)
    assert vox.dtype == np.uint8 and max(vox.shape) <= 32
    assert vox[..., 0].max() == 0 and vox[..., -1].min() > 200
    # index (0, 0, 0) of the 2x shrunk image is the centre of the first 2x2x2 block
    centre = m @ [0, 0, 0, 1]
    assert centre[:3] == pytest.approx((10.25, 20.3, 30.5), abs=1e-6)


def test_percentiles_skip_warm_up_frames():
    p = percentiles([100.0] * 5 + [1.0] * 95 + [3.0])
    assert p["median"] == 1.0 and p["max"] == 3.0 and p["n"] == 96


# -- live updates -----------------------------------------------------------------------------
def test_mesh_watcher_reloads_only_the_changed_structure_quickly(tmp_path):
    import pyvista as pv

    from cardioplan.case import Case
    from vr.live import MeshWatcher

    path = make_mesh_case(tmp_path / "case", {"left_ventricle": ((0, 0, 0), 10),
                                              "aorta": ((20, 0, 0), 5)}, resolution=8)
    with MeshWatcher(Case.open(path), interval_s=0.05) as w:
        w.set_known(["left_ventricle", "aorta"])
        time.sleep(0.2)
        assert w.take() is None  # nothing changed
        t0 = time.monotonic()
        write_mesh(path, "aorta", pv.Sphere(radius=7, center=(20, 0, 0)))
        up = None
        while up is None and time.monotonic() - t0 < 3:
            time.sleep(0.02)
            up = w.take()
        elapsed = time.monotonic() - t0
    assert up is not None and list(up.meshes) == ["aorta"]
    vertices = up.meshes["aorta"][0]
    radius = np.linalg.norm(vertices[:, :3] - (20, 0, 0), axis=1)
    assert radius == pytest.approx(7, abs=1e-4)
    assert elapsed < 3


def test_cli_refuses_a_mirror_window_without_a_display_binding(tmp_path, capsys):
    from cardioplan.cli import main

    assert main(["vr", str(tmp_path), "--graphics", "egl", "--mirror"]) == 1
    assert "a mirror window needs a display" in capsys.readouterr().err
    assert main(["vr"]) == 1  # neither a case nor --check
    assert "give a case folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["vr", str(tmp_path), "--frames", "0"])
    assert exc.value.code == 2


def test_names_toggle_labels_every_visible_structure_at_its_point():
    plan = Plan(display={"aorta": StructureDisplay(visible=False)})
    it = make_interaction(plan)
    it.label_points = {"left_ventricle": np.array([0.0, 0.0, 10.0]),
                       "aorta": np.array([0.0, 0.0, 0.0])}
    assert not [lab for lab in scene_frame(it, FrameInput(), colors={}).labels]
    changes: list = []
    it._menu_action("names", changes)
    labels = scene_frame(it, FrameInput(), colors={}).labels
    assert [lab.text for lab in labels] == ["Left ventricle"]  # the hidden aorta is not named
    assert labels[0].position == pytest.approx((0, 1.51, -0.5))
