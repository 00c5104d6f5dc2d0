"""Off-screen rendering of the viewer's scene (real VTK/EGL rendering of the phantom case)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image
from viewer_helpers import centroid, color_mask, exact_color_mask, make_phantom_case

from cardioplan.cli import main
from cardioplan.labels import LABELS
from cardioplan.plan import CutPlane, Plan, edit_plan
from cardioplan.viewer.camera import project_point
from cardioplan.viewer.scene import camera_for, load_scene_data
from cardioplan.viewer.slices import SliceSpec
from cardioplan.viewer.snapshot import OffscreenRenderer
from cardioplan.viewer.state import scene_state

SIZE = (320, 240)
HEART = ["left_ventricle", "right_ventricle", "left_atrium", "right_atrium", "myocardium",
         "aorta", "pulmonary_artery", "superior_vena_cava", "inferior_vena_cava"]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory):
    return make_phantom_case(tmp_path_factory.mktemp("snap") / "phantom")


@pytest.fixture(scope="module")
def data(case):
    return load_scene_data(case, with_image=True)


@pytest.fixture(scope="module")
def renderer(data):
    with OffscreenRenderer(data, size=SIZE) as r:
        yield r


def _project(data, plan: Plan, view: str, visible: list[str], point) -> tuple[float, float]:
    camera = camera_for(view, plan, data.bounds(visible))
    return project_point(camera, point, SIZE)


def test_left_ventricle_appears_on_the_viewers_right_from_anterior(renderer, data) -> None:
    plan = Plan()
    shown = ["left_ventricle", "right_ventricle"]
    rgb = renderer.render(scene_state(plan, data.structures, only=shown), plan, view="anterior")
    lv = color_mask(rgb, "left_ventricle", shown)
    rv = color_mask(rgb, "right_ventricle", shown)
    assert lv.sum() > 300 and rv.sum() > 300
    # patient's left is the viewer's right from the front
    assert centroid(lv)[0] > centroid(rv)[0] + 10
    # alone, the LV colour sits where its geometry projects
    rgb = renderer.render(scene_state(plan, data.structures, only=shown[:1]), plan,
                          view="anterior")
    expected = _project(data, plan, "anterior", shown[:1],
                        np.asarray(data.meshes["left_ventricle"].center))
    got = centroid(color_mask(rgb, "left_ventricle", shown))
    assert abs(got[0] - expected[0]) < 0.08 * SIZE[0]
    assert abs(got[1] - expected[1]) < 0.08 * SIZE[1]
    # from behind, the sides swap
    rgb = renderer.render(scene_state(plan, data.structures, only=shown), plan,
                          view="posterior")
    assert centroid(color_mask(rgb, "left_ventricle", shown))[0] < \
        centroid(color_mask(rgb, "right_ventricle", shown))[0] - 10


def test_hiding_a_structure_removes_its_colour(renderer, data) -> None:
    plan = Plan()
    before = renderer.render(scene_state(plan, data.structures), plan, view="posterior")
    plan.set_display("aorta", visible=False)
    after = renderer.render(scene_state(plan, data.structures), plan, view="posterior")
    among = [s for s in HEART if s in data.structures]
    assert color_mask(before, "aorta", among).sum() > 400
    assert color_mask(after, "aorta", among).sum() < 15  # legend entry gone too
    assert color_mask(after, "left_atrium", among).sum() > 100  # the rest is still there


def test_cut_plane_removes_pixels_on_one_side(renderer, data) -> None:
    shown = ["left_ventricle"]
    center = np.asarray(data.meshes["left_ventricle"].center)
    plan = Plan()
    full = color_mask(renderer.render(scene_state(plan, data.structures, only=shown), plan,
                                      view="anterior"), "left_ventricle", HEART)
    # keep the patient's left half (+x): the viewer's left half of the LV must vanish
    plan.cut_planes.append(CutPlane(name="sagittal", origin=tuple(center), normal=(1, 0, 0),
                                    structures=["left_ventricle"]))
    cut = color_mask(renderer.render(scene_state(plan, data.structures, only=shown), plan,
                                     view="anterior"), "left_ventricle", HEART)
    col = _project(data, plan, "anterior", shown, center)[0]
    cols = np.arange(SIZE[0])[None, :]
    left_side, right_side = cols < col - 4, cols > col + 4
    assert (full & left_side).sum() > 300
    assert (cut & left_side).sum() < 0.02 * (full & left_side).sum()
    assert (cut & right_side).sum() > 0.6 * (full & right_side).sum()
    # a plane that clips another structure leaves the LV alone; a disabled plane does nothing
    for plane in (replace(plan.cut_planes[0], structures=["aorta"]),
                  replace(plan.cut_planes[0], enabled=False)):
        plan.cut_planes[0] = plane
        again = color_mask(renderer.render(scene_state(plan, data.structures, only=shown),
                                           plan, view="anterior"), "left_ventricle", HEART)
        assert (again & left_side).sum() > 0.9 * (full & left_side).sum()


def test_slice_shows_intensities_and_outlines_in_place(renderer, data, case) -> None:
    plan = Plan()
    labels = sitk.GetArrayFromImage(data.labels)  # LPS-oriented: z=S, y=P, x=L
    image = sitk.GetArrayFromImage(data.image)
    lv_value = LABELS["left_ventricle"].value
    k = int(np.argmax((labels == lv_value).sum(axis=(1, 2))))  # the LV's largest axial slice
    lv = labels[k] == lv_value
    # the LV voxel farthest from the LV boundary on that slice: surely blood, far from edges
    dist = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
        sitk.GetImageFromArray(lv.astype(np.uint8)), insideIsPositive=True,
        squaredDistance=False, useImageSpacing=False))
    j, i = np.unravel_index(np.argmax(dist), dist.shape)
    inside = data.image.TransformIndexToPhysicalPoint((int(i), int(j), k))
    air_j, air_i = np.argwhere(image[k] < -900)[0]
    air = data.image.TransformIndexToPhysicalPoint((int(air_i), int(air_j), k))

    state = scene_state(plan, data.structures, only=[], slice=SliceSpec("axial", k))
    rgb = renderer.render(state, plan, view="inferior")
    col, row = _project(data, plan, "inferior", [], inside)
    pixel = rgb[int(round(row)), int(round(col))].astype(int)
    assert pixel.min() > 170 and np.ptp(pixel) < 10, f"blood should be bright grey: {pixel}"
    col, row = _project(data, plan, "inferior", [], air)
    assert rgb[int(round(row)), int(round(col))].max() < 30
    outline = exact_color_mask(rgb, LABELS["left_ventricle"].color)
    assert outline.sum() > 20
    ys, xs = np.nonzero(lv)
    lv_center = data.image.TransformContinuousIndexToPhysicalPoint(
        (float(xs.mean()), float(ys.mean()), float(k)))
    expected = _project(data, plan, "inferior", [], lv_center)
    got = centroid(outline)
    assert abs(got[0] - expected[0]) < 6 and abs(got[1] - expected[1]) < 6


def test_snapshot_command_writes_the_png(case, tmp_path: Path) -> None:
    out = tmp_path / "lao.png"
    assert main(["snapshot", str(case.path), "-o", str(out), "--view", "lao", "--size",
                 "300x200", "--structures", "aorta", "pulmonary_artery"]) == 0
    rgb = np.asarray(Image.open(out).convert("RGB"))
    assert rgb.shape == (200, 300, 3)
    among = ["aorta", "pulmonary_artery", "left_ventricle"]
    assert color_mask(rgb, "aorta", among).sum() > 300
    assert color_mask(rgb, "left_ventricle", among).sum() < 10


def test_snapshot_uses_the_plans_saved_view_and_step(case, tmp_path: Path) -> None:
    from cardioplan.plan import RehearsalStep, SavedView

    data = load_scene_data(case)
    camera = camera_for("left", Plan(), data.bounds())

    def change(plan: Plan) -> None:
        plan.upsert_view(SavedView(name="surgeon", camera=camera))
        plan.steps.append(RehearsalStep(title="Aorta only", view="surgeon", visible=["aorta"]))

    edit_plan(case, change)
    try:
        out = tmp_path / "step.png"
        assert main(["snapshot", str(case.path), "-o", str(out), "--step", "1",
                     "--size", "300x200"]) == 0
        rgb = np.asarray(Image.open(out).convert("RGB"))
        assert color_mask(rgb, "aorta", HEART).sum() > 300
        assert color_mask(rgb, "myocardium", HEART).sum() < 10
        assert main(["snapshot", str(case.path), "-o", str(out), "--step", "7"]) == 1
    finally:
        case.plan_path.unlink()


@pytest.mark.parametrize("argv, message", [
    (["--view", "sideways"], "unknown view 'sideways'"),
    (["--size", "12x9000"], None),  # argparse usage error: exit 2
    (["--slice", "oblique:3"], None),
])
def test_snapshot_bad_options(case, tmp_path: Path, argv, message, caplog, capsys) -> None:
    out = tmp_path / "x.png"
    if message is None:
        with pytest.raises(SystemExit) as info:
            main(["snapshot", str(case.path), "-o", str(out), *argv])
        assert info.value.code == 2
        if argv[0] == "--size":
            assert "expected WIDTHxHEIGHT in pixels (16..8192 each)" in capsys.readouterr().err
    else:
        assert main(["snapshot", str(case.path), "-o", str(out), *argv]) == 1
        assert message in caplog.text
    assert not out.exists()


def test_case_without_meshes_explains_how_to_make_them(tmp_path: Path, caplog) -> None:
    from cardioplan.case import Case

    with Case.create(tmp_path / "bare"):
        pass
    assert main(["snapshot", str(tmp_path / "bare"), "-o", str(tmp_path / "x.png")]) == 1
    assert "cardioplan mesh" in caplog.text
    assert not (tmp_path / "x.png").exists()


def test_translucent_myocardium_reveals_the_ventricle_inside(renderer, data) -> None:
    among = [s for s in HEART if s in data.structures]
    plan = Plan()
    shown = ["left_ventricle", "myocardium"]
    opaque = renderer.render(scene_state(plan, data.structures, only=shown), plan,
                             view="lao")
    plan.set_display("myocardium", opacity=0.3)
    clear = renderer.render(scene_state(plan, data.structures, only=shown), plan, view="lao")
    hidden = color_mask(opaque, "left_ventricle", among, max_angle_deg=12).sum()
    seen = color_mask(clear, "left_ventricle", among, max_angle_deg=12).sum()
    assert seen > 300 and seen > 5 * max(hidden, 1)
    assert color_mask(clear, "myocardium", among, max_angle_deg=12).sum() > 100


def test_slice_inset_shows_mesh_cut_lines_on_the_label_outlines(renderer, data) -> None:
    from cardioplan.viewer.inset import INSET_VIEWPORT

    plan = Plan()
    labels = sitk.GetArrayFromImage(data.labels)
    k = int(np.argmax((labels == LABELS["left_ventricle"].value).sum(axis=(1, 2))))
    shown = ["left_ventricle", "right_ventricle"]
    state = replace(scene_state(plan, data.structures, only=shown, slice=SliceSpec("axial", k)),
                    slice_inset=True)
    rgb = renderer.render(state, plan, view="lao")
    x0, y0, x1, y1 = INSET_VIEWPORT
    w, h = SIZE
    inset = rgb[int(round((1 - y1) * h)):int(round((1 - y0) * h)),
                int(round(x0 * w)):int(round(x1 * w))]
    outline = {s: exact_color_mask(inset, LABELS[s].color) for s in shown}
    lines = {s: exact_color_mask(inset, [0.4 * c + 0.6 * 255 for c in LABELS[s].color], tol=30)
             for s in shown}
    for s in shown:
        assert outline[s].sum() > 10 and lines[s].sum() > 10, s
        # the mesh follows the labels: its cut line runs along the outline (a few mm apart at
        # most; lines drawn over outline pixels shift the centroids a little)
        gap = np.hypot(*np.subtract(centroid(lines[s]), centroid(outline[s])))
        assert gap < 0.06 * inset.shape[1], (s, gap)
    # radiological axial: the LV (patient's left) is right of the RV
    assert centroid(outline["left_ventricle"])[0] > centroid(outline["right_ventricle"])[0]
    # without the inset flag the corner shows the 3D scene only
    rgb = renderer.render(replace(state, slice_inset=False), plan, view="lao")
    corner = rgb[int(round((1 - y1) * h)):, int(round(x0 * w)):]
    assert exact_color_mask(corner, LABELS["left_ventricle"].color).sum() < 10


def test_shared_boundaries_show_the_chamber_not_the_wall() -> None:
    """Neighbours share boundary triangles exactly; the chamber must win, without speckles."""
    import pyvista as pv

    from cardioplan.viewer.scene import SceneData

    ball = pv.Sphere(radius=20, theta_resolution=60, phi_resolution=60)
    data = SceneData({"left_ventricle": ball, "myocardium": ball.copy()})
    plan = Plan()
    with OffscreenRenderer(data, size=SIZE) as r:
        rgb = r.render(scene_state(plan, data.structures), plan, view="lao")
    among = ["left_ventricle", "myocardium"]
    lv = color_mask(rgb, "left_ventricle", among, max_angle_deg=12).sum()
    wall = color_mask(rgb, "myocardium", among, max_angle_deg=12).sum()
    assert lv > 1000 and wall < 0.05 * lv  # (without the offsets: the wall covers it all)


def test_transparent_snapshot_has_an_alpha_channel(case, tmp_path: Path) -> None:
    out = tmp_path / "t.png"
    assert main(["snapshot", str(case.path), "-o", str(out), "--transparent", "--size",
                 "200x150", "--no-annotations"]) == 0
    rgba = np.asarray(Image.open(out))
    assert rgba.shape == (150, 200, 4)
    assert rgba[0, 0, 3] == 0 and rgba[75, 100, 3] == 255  # background clear, heart opaque


def test_several_views_in_one_call(case, tmp_path: Path, caplog) -> None:
    pattern = str(tmp_path / "shots" / "{view}.png")
    assert main(["snapshot", str(case.path), "-o", pattern, "--view", "anterior", "posterior",
                 "--size", "160x120", "--structures", "left_ventricle", "right_ventricle"]) == 0
    front = np.asarray(Image.open(tmp_path / "shots" / "anterior.png").convert("RGB"))
    back = np.asarray(Image.open(tmp_path / "shots" / "posterior.png").convert("RGB"))
    among = ["left_ventricle", "right_ventricle"]
    assert centroid(color_mask(front, "left_ventricle", among))[0] > \
        centroid(color_mask(front, "right_ventricle", among))[0]
    assert centroid(color_mask(back, "left_ventricle", among))[0] < \
        centroid(color_mask(back, "right_ventricle", among))[0]
    # several views need a {view} placeholder
    assert main(["snapshot", str(case.path), "-o", str(tmp_path / "x.png"), "--view",
                 "anterior", "lao"]) == 1
    assert "{view}" in caplog.text and not (tmp_path / "x.png").exists()
