"""The headset interaction state machine, driven with scripted controller frames (no runtime)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pyvista as pv

from cardioplan.plan import CutPlane, ModelPose, Plan, RehearsalStep
from vr import xrmath
from vr.interaction import (
    MENU_SIZE_M,
    FrameInput,
    HandInput,
    Interaction,
    MeshPicker,
    menu_hit,
    menu_layout,
    menu_pose,
)
from vr.xrmath import Pose

PIVOT = (0.0, 0.0, 0.0)


def sphere_picker() -> MeshPicker:
    meshes = {}
    for name, centre in (("left_ventricle", (-15, 0, 0)), ("aorta", (15, 0, 0))):
        s = pv.Sphere(radius=10, center=centre).triangulate()
        meshes[name] = (s.points, s.faces.reshape(-1, 4)[:, 1:])
    return MeshPicker(meshes)


def make(plan: Plan | None = None, **kw) -> Interaction:
    it = Interaction(plan or Plan(), structures=["left_ventricle", "aorta"], pivot_mm=PIVOT,
                     extent_mm=60.0, picker=sphere_picker(), **kw)
    # a fixed, life-size placement: model origin 1 m ahead of the user at 1.5 m
    it.plan.model_pose = it.plan.model_pose or ModelPose(position=(0.0, 1.5, -1.0), scale=1.0)
    return it


def frame(**hands: HandInput) -> FrameInput:
    return FrameInput(hands=dict(hands), head=Pose((0, 1.6, 0)))


def aim_at(world_target, origin=(0.0, 1.5, 0.0)) -> Pose:
    q = xrmath.quat_from_two_vectors((0, 0, -1), np.subtract(world_target, origin))
    return Pose(origin, q)


def press(it: Interaction, side: str, **fields) -> tuple:
    """A full trigger click (press frame + release frame) of one hand."""
    down = it.update(frame(**{side: HandInput(trigger=1.0, **fields)}))
    up = it.update(frame(**{side: HandInput(trigger=0.0, **fields)}))
    return down[0] + up[0], down[1] + up[1]


def test_one_hand_grab_moves_and_rotates_the_model_with_the_hand():
    it = make()
    start = it.model_matrix()
    hand0 = Pose((0.1, 1.4, -0.6))
    it.update(frame(right=HandInput(grip_pose=hand0, grip=1.0)))
    rot = xrmath.quat_from_axis_angle((0, 1, 0), math.radians(30))
    hand1 = Pose((0.15, 1.5, -0.7), rot)
    changes, _ = it.update(frame(right=HandInput(grip_pose=hand1, grip=1.0)))
    assert changes == []  # nothing written while the heart is held
    # the model moved rigidly with the hand: model->hand offset unchanged
    delta = hand1.matrix() @ np.linalg.inv(hand0.matrix())
    assert np.allclose(it.model_matrix(), delta @ start, atol=1e-9)
    changes, haptics = it.update(frame(right=HandInput(grip_pose=hand1, grip=0.0)))
    assert [c.kind for c in changes] == ["model_pose"]
    assert changes[0].data["position"] == pytest.approx(it.plan.model_pose.position)
    assert haptics and haptics[0].hand == "right"


def test_two_hand_grab_scales_by_hand_distance_about_the_midpoint():
    it = make()
    left0, right0 = Pose((-0.1, 1.5, -1.0)), Pose((0.1, 1.5, -1.0))
    it.update(frame(left=HandInput(grip_pose=left0, grip=1), right=HandInput(grip_pose=right0,
                                                                               grip=1)))
    left1, right1 = Pose((-0.2, 1.5, -1.0)), Pose((0.2, 1.5, -1.0))
    it.update(frame(left=HandInput(grip_pose=left1, grip=1), right=HandInput(grip_pose=right1,
                                                                               grip=1)))
    assert it.plan.model_pose.scale == pytest.approx(2.0)
    assert it.state.status == "2.0x life size"
    assert it.plan.model_pose.position == pytest.approx((0, 1.5, -1.0))
    # rotating the hands' axis by 90 degrees about Y rotates the model likewise
    left2, right2 = Pose((0, 1.5, -0.8)), Pose((0, 1.5, -1.2))
    it.update(frame(left=HandInput(grip_pose=left2, grip=1), right=HandInput(grip_pose=right2,
                                                                               grip=1)))
    r = xrmath.quat_to_matrix(it.plan.model_pose.orientation_xyzw)
    assert r @ [1, 0, 0] == pytest.approx([0, 0, -1], abs=1e-9)


def test_two_trigger_presses_measure_a_distance_in_millimetres_whatever_the_scale():
    it = make()
    it.plan.model_pose.scale = 2.0  # twice life size: 1 cm in the room is 5 mm of heart
    it._set_tool("measure")
    c1, h1 = press(it, "right", aim_pose=Pose((0.0, 1.5, -0.5)))
    assert c1 == [] and h1
    c2, _ = press(it, "right", aim_pose=Pose((0.03, 1.54, -0.5)))
    assert [c.kind for c in c2] == ["measurement"]
    m = it.plan.measurements[-1]
    assert m.value == pytest.approx(50.0 / 2.0)  # 5 cm in the room at 2x -> 25 mm
    assert m.kind == "distance" and m.unit == "mm"


def test_landmark_is_stored_at_the_tip_in_patient_coordinates():
    it = make()
    it._set_tool("landmark")
    # model origin at (0, 1.5, -1); 10 mm to the user's right is patient left (+x LPS)
    press(it, "right", aim_pose=Pose((0.01, 1.5, -1.0)))
    assert it.plan.landmarks[-1].point == pytest.approx((10.0, 0.0, 0.0), abs=1e-9)


def test_ray_trigger_selects_then_hides_the_pointed_structure():
    it = make()
    # the aorta sphere is at +15 mm LPS x -> 1.5 cm to the right of the model origin
    target = (0.015, 1.5, -1.0)
    aim = aim_at(target)
    changes, haptics = press(it, "right", aim_pose=aim)
    assert it.state.selected == "aorta" and changes == [] and haptics
    changes, _ = press(it, "right", aim_pose=aim)
    assert [(c.kind, c.data) for c in changes] == [("display", {"structure": "aorta",
                                                                "visible": False})]
    assert not it.is_visible("aorta")
    # hidden structures are not picked: the ray now hits nothing
    press(it, "right", aim_pose=aim)
    assert it.state.selected is None


def test_cut_tool_holds_a_plane_ahead_of_the_hand_and_places_it_in_patient_space():
    it = make()
    it._set_tool("cut")
    aim = Pose((0.0, 1.5, -0.9))  # pointing at the model (-Z)
    it.update(frame(right=HandInput(aim_pose=aim)))
    origin, normal = it.state.held_plane
    # 5 cm ahead of the hand = 5 cm in front of the model origin (toward the user is anterior)
    assert origin == pytest.approx((0, -50, 0), abs=1e-6)
    assert normal == pytest.approx((0, 1, 0), abs=1e-9)  # pointing posterior
    changes, _ = press(it, "right", aim_pose=aim)
    assert [c.kind for c in changes] == ["cut_plane"]
    plane = it.plan.cut_planes[-1]
    assert plane.keeps((0, 0, 0)) and not plane.keeps((0, -60, 0))


def test_menu_opens_and_its_buttons_switch_tools_toggle_structures_and_steps():
    plan = Plan(steps=[RehearsalStep("Inspect"), RehearsalStep("Open RA", visible=["aorta"])])
    it = make(plan)
    left_aim = Pose((-0.2, 1.3, -0.4))
    it.update(frame(left=HandInput(aim_pose=left_aim, primary=True)))
    assert it.state.menu_open
    panel = menu_pose(left_aim)

    def click(action: str) -> list:
        button = next(b for b in it.menu_buttons() if b.action == action)
        u = (button.rect[0] + button.rect[2]) / 2
        v = (button.rect[1] + button.rect[3]) / 2
        target = panel.transform_point(((u - 0.5) * MENU_SIZE_M[0], (0.5 - v) * MENU_SIZE_M[1],
                                        0.0))
        aim = aim_at(target, origin=(0.2, 1.3, -0.1))
        hands = {"left": HandInput(aim_pose=left_aim)}
        down = it.update(frame(**hands, right=HandInput(aim_pose=aim, trigger=1.0)))
        assert it.state.menu_hover == action
        up = it.update(frame(**hands, right=HandInput(aim_pose=aim)))
        return down[0] + up[0]

    click("tool:measure")
    assert it.state.tool == "measure"
    changes = click("toggle:aorta")
    assert [(c.kind, c.data["visible"]) for c in changes] == [("display", False)]
    assert not it.is_visible("aorta")
    click("step:+1")
    assert it.state.step == 1
    assert it.is_visible("aorta") is False  # hidden in the plan, even though the step shows it
    click("show_all")
    assert it.is_visible("aorta") and not it.is_visible("left_ventricle")  # step 2 shows aorta
    click("close")
    assert not it.state.menu_open


def test_thumbstick_steps_through_rehearsal_steps_with_hysteresis():
    plan = Plan(cut_planes=[CutPlane("c1", (0, 0, 0), (0, 0, 1)),
                            CutPlane("free", (0, 0, 0), (1, 0, 0))])
    plan.steps = [RehearsalStep("A"), RehearsalStep("B", cut_planes=[plan.cut_planes[0].id]),
                  RehearsalStep("C")]
    it = make(plan)
    for x in (0.9, 0.95, 0.5, 0.9):  # stays pushed -> one step; 0.5 is not a release
        it.update(frame(right=HandInput(thumbstick=(x, 0.0))))
    assert it.state.step == 1
    assert [c.name for c in it.active_cut_planes()] == ["c1", "free"]
    for x in (0.0, 0.9, 0.0, 0.9, 0.0, 0.9):  # three more clicks: clamped at the last step
        it.update(frame(right=HandInput(thumbstick=(x, 0.0))))
    assert it.state.step == 2
    # c1 belongs to step B only; a plane no step lists stays on
    assert [c.name for c in it.active_cut_planes()] == ["free"]
    it.update(frame(right=HandInput(thumbstick=(-0.9, 0.0))))
    assert it.state.step == 1


def test_plan_changes_apply_to_another_copy_of_the_plan():
    it = make()
    it._set_tool("landmark")
    changes, _ = press(it, "right", aim_pose=Pose((0.0, 1.5, -1.0)))
    other = Plan()
    for c in changes:
        c.apply(other)
    assert other.landmarks[0].point == pytest.approx(it.plan.landmarks[0].point)


def test_menu_layout_lists_every_structure_with_its_label_colour():
    from cardioplan.labels import LABELS

    it = make()
    buttons = menu_layout(["left_ventricle", "aorta"], it.state, it.plan)
    toggles = [b for b in buttons if b.action.startswith("toggle:")]
    assert [b.color for b in toggles] == [LABELS["left_ventricle"].color, LABELS["aorta"].color]
    for b in buttons:  # buttons never overlap and stay on the panel
        assert 0 <= b.rect[0] < b.rect[2] <= 1 and 0 <= b.rect[1] < b.rect[3] <= 1
        if b.action != "noop":
            assert menu_hit(buttons, (b.rect[0] + b.rect[2]) / 2,
                            (b.rect[1] + b.rect[3]) / 2).action == b.action


def test_undo_removes_exactly_the_last_item_placed_in_the_headset():
    it = make()
    left_aim = Pose((-0.2, 1.3, -0.4))
    saved = Plan()  # what the app saves: the same changes applied to another copy

    def record(result):
        for c in result[0]:
            c.apply(saved)
        return result[0]

    it._set_tool("landmark")
    record(press(it, "right", aim_pose=Pose((0.0, 1.5, -1.0))))
    it._set_tool("measure")
    record(press(it, "right", aim_pose=Pose((0.0, 1.5, -1.0))))
    record(press(it, "right", aim_pose=Pose((0.01, 1.5, -1.0))))
    assert len(it.plan.measurements) == 1 and len(it.plan.landmarks) == 1
    assert it.plan.measurements[0].id == saved.measurements[0].id  # same ids in both copies
    it.state.menu_open = True
    undo = next(b for b in it.menu_buttons() if b.action == "undo")
    u = (undo.rect[0] + undo.rect[2]) / 2
    v = (undo.rect[1] + undo.rect[3]) / 2
    target = menu_pose(left_aim).transform_point(((u - 0.5) * MENU_SIZE_M[0],
                                                  (0.5 - v) * MENU_SIZE_M[1], 0.0))
    aim = aim_at(target, origin=(0.2, 1.3, -0.1))
    hands = {"left": HandInput(aim_pose=left_aim)}
    down = record(it.update(frame(**hands, right=HandInput(aim_pose=aim, trigger=1.0))))
    it.update(frame(**hands, right=HandInput(aim_pose=aim)))
    assert [c.kind for c in down] == ["remove"]
    assert it.plan.measurements == [] and saved.measurements == []
    assert len(it.plan.landmarks) == 1 and len(saved.landmarks) == 1  # only the last item went


def test_block_picker_agrees_with_brute_force_on_nested_meshes():
    rng = np.random.default_rng(3)
    meshes = {}
    for name, c, r in (("myocardium", (0, 0, 0), 30), ("left_ventricle", (3, 0, 0), 18),
                       ("aorta", (0, 0, 40), 10)):
        s = pv.Sphere(radius=r, center=c, theta_resolution=60, phi_resolution=60)
        meshes[name] = (s.points, s.faces.reshape(-1, 4)[:, 1:])
    picker = MeshPicker(meshes)
    hidden = {"myocardium"}
    for _ in range(40):
        o = rng.normal(size=3) * 100
        d = -o + rng.normal(size=3) * 15
        for vis in (lambda n: True, lambda n: n not in hidden):
            got = picker.pick(o, d, visible=vis)
            best = None
            for name, (v, f) in meshes.items():
                if not vis(name):
                    continue
                hit = xrmath.ray_triangles(o, d / np.linalg.norm(d), v, f)
                if hit and (best is None or hit[0] < best[0]):
                    best = (hit[0], name)
            assert (got is None) == (best is None)
            if best:
                assert got.structure == best[1] and got.distance_mm == pytest.approx(best[0])


def test_add_step_records_the_pose_visible_structures_and_cut_planes_and_steps_restore_them():
    plan = Plan(cut_planes=[CutPlane("c1", (0, 0, 0), (0, 0, 1))])
    plan.set_display("aorta", visible=False)
    it = make(plan)
    it.state.menu_open = True
    changes: list = []
    it._menu_action("add_step", changes)
    saved = Plan(cut_planes=list(plan.cut_planes))
    saved.set_display("aorta", visible=False)
    for c in changes:
        c.apply(it.plan)
        c.apply(saved)
    step = saved.steps[-1]
    assert step.title == "VR step 1" and step.visible == ["left_ventricle"]
    assert step.cut_planes == [plan.cut_planes[0].id]
    assert saved.view("VR step 1").model_pose.position == pytest.approx((0, 1.5, -1.0))
    # move the model away, show the aorta, then step back to the recorded step
    it.plan.model_pose = ModelPose(position=(1.0, 1.0, 1.0))
    it.plan.set_display("aorta", visible=True)
    it.go_to_step(0)
    assert it.plan.model_pose.position == pytest.approx((0, 1.5, -1.0))
    assert not it.is_visible("aorta")  # the step shows only what was visible


def test_recentre_puts_the_model_back_in_front_of_the_head_keeping_its_scale():
    it = make()
    it.plan.model_pose = ModelPose(position=(5.0, 0.2, 3.0), scale=3.0)
    it.update(FrameInput(head=Pose((1.0, 1.7, 0.0), xrmath.quat_from_axis_angle((0, 1, 0),
                                                                               math.pi / 2))))
    changes: list = []
    it._menu_action("recentre", changes)
    pose = it.plan.model_pose
    assert [c.kind for c in changes] == ["model_pose"]
    assert pose.scale == pytest.approx(3.0)
    # the head looks along -X (turned left by 90 degrees): 45 cm ahead, 10 cm lower
    assert pose.position == pytest.approx((1.0 - 0.45, 1.6, 0.0), abs=1e-9)


def test_losing_tracking_while_holding_the_heart_ends_the_grab_and_saves_the_pose():
    it = make()
    it.update(frame(right=HandInput(grip_pose=Pose((0.1, 1.4, -0.6)), grip=1.0)))
    it.update(frame(right=HandInput(grip_pose=Pose((0.2, 1.4, -0.6)), grip=1.0)))
    changes, _ = it.update(frame(right=HandInput(grip_pose=None, grip=1.0)))  # tracking lost
    assert [c.kind for c in changes] == ["model_pose"]
    assert it.plan.model_pose.position == pytest.approx((0.1, 1.5, -1.0))
    # tracking back with the grip still held: a new grab starts from there, no jump
    it.update(frame(right=HandInput(grip_pose=Pose((0.5, 1.0, 0.0)), grip=1.0)))
    assert it.plan.model_pose.position == pytest.approx((0.1, 1.5, -1.0))


def test_default_placement_magnifies_small_hearts_only():
    from vr.interaction import default_model_pose

    head = Pose((0.0, 1.7, 0.0))
    assert default_model_pose(head, extent_mm=50.0).scale == pytest.approx(5.0)
    assert default_model_pose(head, extent_mm=400.0).scale == pytest.approx(1.0)
    pose = default_model_pose(head, extent_mm=100.0)
    assert pose.position == pytest.approx((0.0, 1.6, -0.45))
    # looking down at the floor still places it level in front, not below the feet
    down = Pose((0.0, 1.7, 0.0), xrmath.quat_from_axis_angle((1, 0, 0), -1.2))
    assert default_model_pose(down, extent_mm=100.0).position == pytest.approx((0.0, 1.6, -0.45))


def test_unknown_plan_change_is_refused():
    from vr.interaction import PlanChange

    with pytest.raises(ValueError, match="unknown plan change"):
        PlanChange("teleport", {}).apply(Plan())
