"""Pure parts of the viewer, without a window: camera presets, slices, scene state, interaction."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import SimpleITK as sitk

from cardioplan.errors import InputError
from cardioplan.labels import LABELS
from cardioplan.plan import Camera, CutPlane, Plan, RehearsalStep, SavedView
from cardioplan.viewer.camera import (
    PRESETS,
    c_arm_direction,
    preset_camera,
    project_point,
    screen_axes,
)
from cardioplan.viewer.interaction import (
    KEYMAP,
    SEED_INSET_MM,
    Mode,
    Pick,
    ViewerLogic,
    help_text,
)
from cardioplan.viewer.slices import (
    SliceSpec,
    display_coords,
    label_outline,
    oriented_size,
    parse_slice_spec,
    slice_corners,
    slice_rgb,
    to_lps,
)
from cardioplan.viewer.state import scene_state

BOUNDS = (-40.0, 60.0, -30.0, 10.0, -200.0, -120.0)


# -- camera presets ---------------------------------------------------------------------------
@pytest.mark.parametrize("view, right, up", [
    ("anterior", (1, 0, 0), (0, 0, 1)),     # patient's left on the viewer's right
    ("posterior", (-1, 0, 0), (0, 0, 1)),
    ("left", (0, 1, 0), (0, 0, 1)),         # from the left: anterior on the viewer's left
    ("right", (0, -1, 0), (0, 0, 1)),
    ("superior", (-1, 0, 0), (0, -1, 0)),   # from the head, anterior up
    ("inferior", (1, 0, 0), (0, -1, 0)),    # from the feet: as axial CT is displayed
])
def test_presets_orient_the_patient_as_cardiologists_expect(view, right, up) -> None:
    r, u = screen_axes(preset_camera(view, BOUNDS))
    assert r == pytest.approx(right, abs=1e-9)
    assert u == pytest.approx(up, abs=1e-9)


def test_oblique_presets_follow_the_c_arm_convention() -> None:
    assert c_arm_direction(0, 0) == pytest.approx((0, -1, 0))
    assert c_arm_direction(90, 0) == pytest.approx((1, 0, 0))     # LAO 90 = left lateral
    assert c_arm_direction(-90, 0) == pytest.approx((-1, 0, 0))   # RAO 90 = right lateral
    assert c_arm_direction(0, 90) == pytest.approx((0, 0, 1))     # cranial 90 = from the head
    lao = PRESETS["lao"].direction
    assert lao[0] > 0 and lao[1] < 0 and lao[2] == pytest.approx(0)
    rao = PRESETS["rao"].direction
    assert rao[0] < 0 and rao[1] < 0
    assert PRESETS["lao-cranial"].direction[2] > 0 and PRESETS["rao-caudal"].direction[2] < 0
    assert math.degrees(math.acos(-PRESETS["lao"].direction[1])) == pytest.approx(45)


@pytest.mark.parametrize("view", list(PRESETS))
def test_every_preset_frames_the_bounds(view) -> None:
    cam = preset_camera(view, BOUNDS)
    d = np.subtract(cam.focal_point, cam.position)
    assert abs(np.dot(d, cam.view_up)) < 1e-6 * np.linalg.norm(d)
    assert np.linalg.norm(cam.view_up) == pytest.approx(1)
    size = (400, 400)
    for corner in itertools.product(*[BOUNDS[i:i + 2] for i in (0, 2, 4)]):
        col, row = project_point(cam, corner, size)
        assert 0 <= col <= size[0] and 0 <= row <= size[1], (view, corner)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match="anterior, posterior"):
        preset_camera("sideways", BOUNDS)


# -- slices -----------------------------------------------------------------------------------
def _marker_image(direction: tuple[float, ...]) -> tuple[sitk.Image, tuple[float, ...]]:
    """A 20x16x12 image, with a bright voxel at the patient's left-anterior-superior corner."""
    img = sitk.Image([20, 16, 12], sitk.sitkInt16)
    img.SetSpacing((1.0, 2.0, 3.0))
    img.SetDirection(direction)
    img.SetOrigin((5.0, -7.0, 11.0))
    # find the voxel with the largest x (left), smallest y (anterior), largest z (superior)
    best, best_score = None, -math.inf
    for idx in itertools.product(range(20), range(16), range(12)):
        if min(idx) > 0 and idx[0] < 19 and idx[1] < 15 and idx[2] < 11:
            p = img.TransformIndexToPhysicalPoint(idx)
            score = p[0] - p[1] + p[2]
            if score > best_score:
                best, best_score = idx, score
    img[best] = 1000
    return img, img.TransformIndexToPhysicalPoint(best)


@pytest.mark.parametrize("direction", [
    (1, 0, 0, 0, 1, 0, 0, 0, 1),
    (-1, 0, 0, 0, -1, 0, 0, 0, 1),       # as the real abdomen CT is stored
    (0, 0, 1, 1, 0, 0, 0, 1, 0),         # permuted axes
])
def test_slices_are_displayed_radiologically_whatever_the_file_direction(direction) -> None:
    img, marker = _marker_image(direction)
    lps = to_lps(img)
    i, j, k = lps.TransformPhysicalPointToIndex(marker)
    assert lps.GetSize() == oriented_size(img.GetSize(), img.GetDirection())
    window = (0.0, 1000.0)
    for orientation, index, (row_top, col_right) in [
        ("axial", k, (True, True)),       # anterior at top, patient's left on the right
        ("coronal", j, (True, True)),     # superior at top, patient's left on the right
        ("sagittal", i, (True, False)),   # superior at top, anterior on the left
    ]:
        rgb = slice_rgb(lps, None, orientation, index, window=window)
        rows, cols = np.nonzero(rgb[..., 0] == 255)
        assert rows.size == 1, orientation
        h, w = rgb.shape[:2]
        assert (rows[0] < h / 2) == row_top, orientation
        assert (cols[0] >= w / 2) == col_right, orientation
        # the picture's corners are where the marker pixel says
        tl, tr, bl = slice_corners(lps, orientation, index)
        p = tl + (tr - tl) * cols[0] / (w - 1) + (bl - tl) * rows[0] / (h - 1)
        assert p == pytest.approx(marker, abs=1e-6)
        # and physical points map back to the picture (as mesh cut lines are drawn)
        xy = display_coords(lps, orientation, np.array([marker, tl, tr, bl]))
        expected = np.array([[cols[0], rows[0]], [0, 0], [w - 1, 0], [0, h - 1]], float)
        np.testing.assert_allclose(xy, expected, atol=1e-6)


def test_label_outlines_are_drawn_in_label_colours() -> None:
    img = sitk.Image([12, 12, 3], sitk.sitkInt16)
    lab = sitk.Image([12, 12, 3], sitk.sitkUInt8)
    arr = np.zeros((3, 12, 12), np.uint8)
    arr[1, 3:9, 3:9] = LABELS["aorta"].value
    lab = sitk.GetImageFromArray(arr)
    rgb = slice_rgb(img, lab, "axial", 1, window=(0, 100))
    aorta = (rgb == LABELS["aorta"].color).all(-1)
    assert aorta.sum() == 20  # the 6x6 square's border
    assert not aorta[4:8, 4:8].any()  # the inside keeps the image
    only_lv = slice_rgb(img, lab, "axial", 1, window=(0, 100), structures=["left_ventricle"])
    assert not (only_lv == LABELS["aorta"].color).all(-1).any()
    assert label_outline(np.full((3, 3), 2)).sum() == 0
    with pytest.raises(InputError, match="outside the image"):
        slice_rgb(img, lab, "axial", 3, window=(0, 1))


def test_parse_slice_spec() -> None:
    assert parse_slice_spec("sagittal") == SliceSpec("sagittal")
    assert parse_slice_spec("axial:mid") == SliceSpec("axial")
    with pytest.raises(InputError, match="axial, coronal, sagittal"):
        parse_slice_spec("oblique:3")
    with pytest.raises(InputError, match="ORIENTATION"):
        parse_slice_spec("axial:x")


# -- scene state ------------------------------------------------------------------------------
STRUCTS = ["left_ventricle", "right_ventricle", "aorta"]


def test_scene_state_from_plan_filter_and_step() -> None:
    plan = Plan()
    plan.set_display("aorta", opacity=0.3, color=(1, 2, 3))
    plan.set_display("right_ventricle", visible=False)
    a = plan.upsert_cut_plane(CutPlane(name="a", origin=(0, 0, 0), normal=(1, 0, 0),
                                       structures=["aorta"]))
    b = plan.upsert_cut_plane(CutPlane(name="b", origin=(0, 0, 0), normal=(0, 1, 0),
                                       enabled=False))
    state = scene_state(plan, STRUCTS)
    assert state.visible_structures() == ["left_ventricle", "aorta"]
    assert state.styles["aorta"].color == (1, 2, 3) and state.styles["aorta"].opacity == 0.3
    assert state.styles["left_ventricle"].color == LABELS["left_ventricle"].color
    assert [c.name for c in state.planes_for("aorta")] == ["a"]
    assert state.planes_for("left_ventricle") == []
    assert scene_state(plan, STRUCTS, clip=False).cut_planes == ()
    assert scene_state(plan, STRUCTS, only=["right_ventricle"]).visible_structures() == \
        ["right_ventricle"]
    step = RehearsalStep(title="RV", view="rao", visible=["right_ventricle", "aorta"],
                         cut_planes=[b.id])
    state = scene_state(plan, STRUCTS, step=step)
    assert state.visible_structures() == ["right_ventricle", "aorta"]
    assert [c.name for c in state.cut_planes] == ["b"]  # the step enables its own planes
    assert state.planes_for("left_ventricle")[0].enabled and state.view == "rao"
    assert a.id not in [c.id for c in state.cut_planes]
    with pytest.raises(InputError, match="no mesh for pulmonary_artery"):
        scene_state(plan, STRUCTS, only=["pulmonary_artery"])
    with pytest.raises(InputError, match="neither a camera preset nor a saved view"):
        scene_state(plan, STRUCTS, step=RehearsalStep(title="x", view="nowhere"))


# -- interaction ------------------------------------------------------------------------------
def _apply(logic: ViewerLogic, outcome) -> Plan:
    """What the window does with an outcome: save the edit (here: in memory)."""
    import copy

    plan = copy.deepcopy(logic.plan)
    if outcome.edit is not None:
        outcome.edit(plan)
    logic.plan_changed(plan)
    return plan


def test_keymap_is_complete_and_unambiguous() -> None:
    logic = ViewerLogic(Plan(), STRUCTS)
    keys = [k for b in KEYMAP for k in b.keys]
    assert len(keys) == len(set(keys))
    for b in KEYMAP:
        assert callable(getattr(logic, f"_on_{b.action}"))
    text = help_text()
    assert len(text.splitlines()) == len(KEYMAP)
    for word in ("landmark", "seed", "distance", "angle", "screenshot", "step", "opacity",
                 "cut-plane", "slice", "view"):
        assert word in text
    assert logic.handle_key("F5") is None  # unbound keys are ignored


def test_two_picks_make_a_distance_and_three_an_angle() -> None:
    logic = ViewerLogic(Plan(), STRUCTS)
    assert logic.handle_key("m").message == "Distance: click the first point"
    out = logic.handle_pick(Pick((0, 0, 0), "aorta"))
    assert out.edit is None and "second point" in out.message and logic.pending == [(0, 0, 0)]
    out = logic.handle_pick(Pick((0, 30, 40), "aorta"))
    assert "50.0 mm" in out.message and logic.pending == []
    plan = _apply(logic, out)
    assert plan.measurements[0].kind == "distance" and plan.measurements[0].value == 50.0
    logic.handle_key("a")
    for p in [(1, 0, 0), (0, 0, 0)]:
        assert logic.handle_pick(Pick(p, None)).edit is None
    plan = _apply(logic, logic.handle_pick(Pick((0, 2, 0), None)))
    assert plan.measurements[1].value == pytest.approx(90.0)
    # a degenerate angle is refused with a message, nothing saved
    for p in [(1, 0, 0), (1, 0, 0)]:
        logic.handle_pick(Pick(p, None))
    out = logic.handle_pick(Pick((1, 0, 0), None))
    assert out.edit is None and "not measured" in out.message


def test_landmark_and_seed_picks() -> None:
    logic = ViewerLogic(Plan(), STRUCTS)
    assert logic.handle_pick(Pick((1, 2, 3), "aorta")).edit is None  # navigation: info only
    logic.handle_key("l")
    plan = _apply(logic, logic.handle_pick(Pick((1, 2, 3), "aorta")))
    assert plan.landmarks[0].point == (1, 2, 3) and plan.landmarks[0].structure == "aorta"
    assert plan.landmarks[0].name == "L1"
    logic.handle_key("s")
    # a surface pick is moved inside along the inward normal
    plan = _apply(logic, logic.handle_pick(Pick((10, 0, 0), "left_ventricle", (2, 0, 0))))
    assert plan.seeds[0].structure == "left_ventricle"
    assert plan.seeds[0].point == pytest.approx((10 - SEED_INSET_MM, 0, 0))
    out = logic.handle_pick(Pick((0, 0, 0), None))
    assert out.edit is None and "inside a structure" in out.message
    # undo removes the seed, then the landmark
    plan = _apply(logic, logic.handle_key("u"))
    assert plan.seeds == [] and len(plan.landmarks) == 1
    plan = _apply(logic, logic.handle_key("u"))
    assert plan.landmarks == []
    assert logic.handle_key("u").message == "nothing to undo"
    assert logic.handle_key("Escape").message == "navigation" and logic.mode is Mode.NAVIGATE


def test_visibility_opacity_and_selection_keys() -> None:
    logic = ViewerLogic(Plan(), STRUCTS)
    plan = _apply(logic, logic.handle_key("2"))
    assert not plan.display_of("right_ventricle").visible
    assert logic.selected_structure == "right_ventricle"
    assert logic.legend_marker("right_ventricle") == ">" and logic.legend_marker("aorta") == "3"
    plan = _apply(logic, logic.handle_key("2"))
    assert plan.display_of("right_ventricle").visible
    for _ in range(12):
        plan = _apply(logic, logic.handle_key("bracketleft"))
    assert plan.display_of("right_ventricle").opacity == 0.0
    plan = _apply(logic, logic.handle_key("bracketright"))
    assert plan.display_of("right_ventricle").opacity == pytest.approx(0.1)
    logic.handle_key("Tab")
    assert logic.selected_structure == "aorta"
    assert "no structure 9" in logic.handle_key("9").message
    _apply(logic, logic.handle_key("1"))
    plan = _apply(logic, logic.handle_key("0"))
    assert all(plan.display_of(s).visible for s in STRUCTS)


def test_cut_plane_widget_and_clip_selection() -> None:
    logic = ViewerLogic(Plan(), STRUCTS)
    assert "place a cut plane first" in logic.handle_key("x").message
    plan = _apply(logic, logic.cut_plane_moved((1, 2, 3), (0, 0, 2)))
    plane = plan.cut_planes[0]
    assert plane.origin == (1, 2, 3) and plane.normal == (0, 0, 1) and plane.structures == []
    logic.handle_key("Tab")  # select right_ventricle
    plan = _apply(logic, logic.handle_key("x"))
    assert plan.cut_planes[0].structures == ["right_ventricle"]
    plan = _apply(logic, logic.cut_plane_moved((0, 0, 0), (1, 0, 0)))
    assert len(plan.cut_planes) == 1 and plan.cut_planes[0].id == plane.id
    assert plan.cut_planes[0].structures == ["right_ventricle"]  # kept when moved
    assert logic.state().planes_for("right_ventricle")
    logic.handle_key("b")
    assert logic.state().cut_planes == ()


def test_slice_keys_scroll_and_clamp() -> None:
    logic = ViewerLogic(Plan(), STRUCTS, slice_counts={"axial": 30, "coronal": 20,
                                                       "sagittal": 10})
    logic.handle_key("i")
    assert logic.slice == SliceSpec("axial", 15)
    logic.handle_key("Up")
    assert logic.slice.index == 16
    for _ in range(3):
        logic.handle_key("Prior")
    assert logic.slice.index == 29
    logic.handle_key("y")
    assert logic.slice == SliceSpec("coronal", 10)
    assert logic.state().slice == SliceSpec("coronal", 10)
    assert logic.state().slice_inset  # the 2D inset comes with the slice ...
    logic.handle_key("o")
    assert not logic.state().slice_inset  # ... and can be switched off
    logic.handle_key("i")
    assert logic.slice is None
    assert "no image" in ViewerLogic(Plan(), STRUCTS).handle_key("i").message
    # a new slice faces the camera: from the front, a coronal slice
    logic.view_direction = (0.1, 0.9, -0.2)
    logic.handle_key("i")
    assert logic.slice == SliceSpec("coronal", 10)


def test_views_and_rehearsal_steps() -> None:
    plan = Plan()
    cam = Camera(position=(0, -100, 0), focal_point=(0, 0, 0), view_up=(0, 0, 1))
    plan.upsert_view(SavedView(name="surgeon", camera=cam))
    plan.steps += [RehearsalStep(title="Open RA", view="surgeon", visible=["aorta"]),
                   RehearsalStep(title="Close VSD", note="patch", view="lao")]
    logic = ViewerLogic(plan, STRUCTS)
    names = [logic.handle_key("v").view for _ in range(len(PRESETS))]
    assert names[0] == "posterior" and names[-1] == "surgeon"
    assert logic.handle_key("V").view == list(PRESETS)[-1]
    out = logic.handle_key("Right")
    assert out.view == "surgeon" and "1/2" in out.message
    assert logic.state().visible_structures() == ["aorta"]
    assert logic.state().title.startswith("Step 1/2: Open RA")
    out = logic.handle_key("Right")
    assert out.view == "lao" and "patch" in logic.state().title
    assert logic.handle_key("Right").view == "lao"  # stays on the last step
    logic.handle_key("Escape")
    assert logic.current_step() is None
    assert logic.state().visible_structures() == STRUCTS
    out = _apply(logic, logic.save_view(cam))
    assert out.view("View 2") is not None
    assert "no rehearsal steps" in ViewerLogic(Plan(), STRUCTS).handle_key("Right").message
    # a step whose saved view was deleted (e.g. in VR) still shows its structures
    plan.views.clear()
    logic = ViewerLogic(plan, STRUCTS)
    logic.handle_key("Right")
    assert logic.state().visible_structures() == ["aorta"]


def test_record_a_rehearsal_step_from_the_screen() -> None:
    plan = Plan()
    plane = plan.upsert_cut_plane(CutPlane(name="c", origin=(0, 0, 0), normal=(0, 0, 1)))
    plan.set_display("aorta", visible=False)
    logic = ViewerLogic(plan, STRUCTS)
    assert logic.handle_key("n").command == "record_step"
    cam = Camera(position=(0, -100, 0), focal_point=(0, 0, 0), view_up=(0, 0, 1))
    out = logic.record_step(cam)
    assert "Step 1 recorded: 2 structures, 1 cut plane" in out.message
    plan = _apply(logic, out)
    step = plan.steps[0]
    assert step.title == "Step 1" and step.view == "Step 1"
    assert step.visible == ["left_ventricle", "right_ventricle"]
    assert step.cut_planes == [plane.id] and plan.view("Step 1").camera == cam
    plan = _apply(logic, logic.record_step(cam))
    assert [s.title for s in plan.steps] == ["Step 1", "Step 2"]
    plan = _apply(logic, logic.handle_key("u"))
    assert [s.title for s in plan.steps] == ["Step 1"]
    # replaying the recorded step shows what was recorded
    logic.handle_key("Right")
    assert logic.state().visible_structures() == ["left_ventricle", "right_ventricle"]
