"""The interactive viewer window: off-screen (real rendering and picking, events called
directly) and in a real X window under Xvfb (key events through the VTK interactor)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from viewer_helpers import make_phantom_case

from cardioplan.cli import main
from cardioplan.labels import LABELS
from cardioplan.plan import edit_plan, load_plan
from cardioplan.viewer.camera import project_point
from cardioplan.viewer.slices import SliceSpec
from cardioplan.viewer.window import ViewerWindow

REPO = Path(__file__).resolve().parents[1]
SIZE = (400, 300)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory):
    return make_phantom_case(tmp_path_factory.mktemp("window") / "phantom")


@pytest.fixture()
def window(case):
    case.plan_path.unlink(missing_ok=True)
    w = ViewerWindow(case, structures=["left_ventricle", "aorta"], off_screen=True, size=SIZE)
    w.plotter.render()
    yield w
    w.plotter.close()
    case.plan_path.unlink(missing_ok=True)


def _display_xy(window: ViewerWindow, point) -> tuple[int, int]:
    """Display coordinates (origin bottom-left, as VTK events give) of a world point."""
    col, row = project_point(window.scene.current_camera(), point, SIZE)
    return int(round(col)), SIZE[1] - 1 - int(round(row))


def _label_at(case, point) -> int:
    labels = case.read_labels()
    return int(labels[labels.TransformPhysicalPointToIndex(point)])


def test_picks_on_the_surface_make_landmarks_seeds_and_measurements(window, case) -> None:
    lv = window.data.meshes["left_ventricle"]
    x, y = _display_xy(window, lv.center)
    pick = window.pick_at(x, y)
    assert pick is not None and pick.structure == "left_ventricle"
    # the picked point lies on the LV surface, on the side facing the viewer (anterior)
    closest = lv.points[lv.find_closest_point(pick.point)]
    assert np.linalg.norm(np.subtract(closest, pick.point)) < 1.5
    assert pick.point[1] < lv.center[1]

    window.on_key("l")
    window.on_pick(pick)
    plan = load_plan(case)
    assert plan.modified_by == "desktop"
    assert plan.landmarks[0].structure == "left_ventricle"
    assert plan.landmarks[0].point == pytest.approx(pick.point)

    window.on_key("s")
    window.on_pick(pick)
    seed = load_plan(case).seeds[0]
    assert seed.structure == "left_ventricle"
    assert _label_at(case, seed.point) == LABELS["left_ventricle"].value  # inside the LV

    window.on_key("m")
    other = window.pick_at(x + 8, y - 8)
    assert other is not None and other.structure == "left_ventricle"
    window.on_pick(pick)
    window.on_pick(other)
    m = load_plan(case).measurements[0]
    assert m.value == pytest.approx(np.linalg.norm(np.subtract(pick.point, other.point)))
    assert "mm" in window._status

    window.on_key("u")  # undo the measurement only
    plan = load_plan(case)
    assert plan.measurements == [] and len(plan.seeds) == 1 and len(plan.landmarks) == 1


def test_clipped_away_geometry_is_not_picked(window, case) -> None:
    lv = window.data.meshes["left_ventricle"]
    x, y = _display_xy(window, lv.center)
    front = window.pick_at(x, y).point
    # a plane keeping only the posterior half: the pick now hits the LV's inner back wall
    window.apply(window.logic.cut_plane_moved(lv.center, (0, 1, 0)))
    assert load_plan(case).cut_planes[0].structures == []
    window.plotter.render()
    back = window.pick_at(x, y)
    assert back is not None and back.point[1] > lv.center[1] > front[1]


def test_slice_pick_seeds_the_labelled_structure(window, case) -> None:
    window.on_key("1")  # hide the LV surface
    window.on_key("2")  # and the aorta
    assert not load_plan(case).display_of("left_ventricle").visible
    window.on_key("i")
    assert window.data.image is not None  # loaded on first use
    labels = window.data.labels
    arr = (np.asarray(__import__("SimpleITK").GetArrayViewFromImage(labels))
           == LABELS["left_ventricle"].value)
    k = int(np.argmax(arr.sum(axis=(1, 2))))
    window.logic.slice = SliceSpec("axial", k)
    window.apply(window.logic.handle_key("v"))  # any redraw; then look from the feet
    window.scene.show_view("inferior", window.logic.plan)
    window.redraw()
    window.plotter.render()
    jj, ii = np.argwhere(arr[k])[len(np.argwhere(arr[k])) // 2]
    inside = labels.TransformIndexToPhysicalPoint((int(ii), int(jj), k))
    pick = window.pick_at(*_display_xy(window, inside))
    assert pick is not None and pick.structure == "left_ventricle"
    assert pick.point == pytest.approx(inside, abs=2.5)
    window.on_key("s")
    window.on_pick(pick)
    seed = load_plan(case).seeds[0]
    assert _label_at(case, seed.point) == LABELS["left_ventricle"].value


def test_reloads_edits_from_the_headset_and_saves_views_and_screenshots(window, case) -> None:
    window.on_key("k")
    assert load_plan(case).views[0].name == "View 1"
    edit_plan(case, lambda p: p.add_landmark((1, 2, 3), name="from VR"), author="vr")
    window._on_timer(None, "TimerEvent")
    assert [lm.name for lm in window.logic.plan.landmarks] == ["from VR"]
    assert "reloaded" in window._status and "vr" in window._status
    assert load_plan(case).views[0].name == "View 1"  # both edits kept
    window.on_key("g")
    shots = list((case.path / "screenshots").glob("screenshot-*.png"))
    assert len(shots) == 1
    assert np.asarray(Image.open(shots[0])).shape[:2] == (SIZE[1], SIZE[0])
    shots[0].unlink()


def test_view_without_display_points_to_snapshot_and_report(case, monkeypatch, caplog) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["view", str(case.path)]) == 1
    assert "no display" in caplog.text
    assert "cardioplan snapshot" in caplog.text and "cardioplan report" in caplog.text


def test_view_with_a_stale_display_points_to_snapshot(case, monkeypatch, caplog) -> None:
    monkeypatch.setenv("DISPLAY", ":97")  # set, but no X server answers there
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["view", str(case.path)]) == 1
    assert "does not answer" in caplog.text and "cardioplan snapshot" in caplog.text


def test_view_without_meshes_explains_cardioplan_mesh(tmp_path, monkeypatch, caplog) -> None:
    from cardioplan.case import Case

    monkeypatch.delenv("DISPLAY", raising=False)  # the meshes are checked first
    with Case.create(tmp_path / "bare"):
        pass
    assert main(["view", str(tmp_path / "bare")]) == 1
    assert "cardioplan mesh" in caplog.text and "display" not in caplog.text


_XVFB_SCRIPT = textwrap.dedent("""
    import sys
    from cardioplan.case import Case
    from cardioplan.plan import load_plan
    from cardioplan.viewer.window import ViewerWindow

    case = Case.open(sys.argv[1])
    w = ViewerWindow(case, size=(500, 400))
    w.bind()
    w.plotter.show(interactive_update=True, auto_close=False)
    iren = w.plotter.iren.interactor

    def press(key):
        iren.SetKeySym(key)
        iren.SetKeyCode(key if len(key) == 1 else chr(0))
        iren.InvokeEvent("KeyPressEvent")
        iren.InvokeEvent("CharEvent")
        w.plotter.update()

    press("2")        # hide the right ventricle
    press("h")        # help overlay
    press("s")        # seed mode (VTK's own 's' = surface mode must not fire)
    rep = w.scene.actors["aorta"].GetProperty().GetRepresentation()
    press("w")        # VTK's wireframe key: must do nothing here
    assert w.scene.actors["aorta"].GetProperty().GetRepresentation() == rep
    assert w.logic.show_help and w.logic.mode.value == "seed"
    assert not load_plan(case).display_of("right_ventricle").visible
    assert w.plotter.ren_win.GetClassName() != "vtkEGLRenderWindow"

    # a click (press and release without moving) in landmark mode places a landmark
    press("Escape"); press("l")
    w.plotter.render()
    x, y = w.plotter.window_size[0] // 2, w.plotter.window_size[1] // 2
    iren.SetEventInformation(x, y, 0, 0)
    iren.InvokeEvent("LeftButtonPressEvent")
    iren.InvokeEvent("LeftButtonReleaseEvent")
    assert len(load_plan(case).landmarks) == 1, "click did not place a landmark"
    # a drag rotates the camera and places nothing
    iren.SetEventInformation(x, y, 0, 0)
    iren.InvokeEvent("LeftButtonPressEvent")
    iren.SetEventInformation(x + 60, y + 20, 0, 0)
    iren.InvokeEvent("MouseMoveEvent")
    iren.InvokeEvent("LeftButtonReleaseEvent")
    assert len(load_plan(case).landmarks) == 1

    press("c")        # the cut-plane widget appears ...
    widgets = w.plotter.widgets.plane_widgets
    assert w._clip_widget_on and len(widgets) == 1
    widget = widgets[0]
    widget.SetNormal(1.0, 0.0, 0.0)
    widget.InvokeEvent("EndInteractionEvent")  # releasing the widget saves its plane
    cut = load_plan(case).cut_plane("Desktop cut")
    assert cut is not None and abs(cut.normal[0] - 1.0) < 1e-6, cut
    assert w.scene.actors["aorta"].GetMapper().GetNumberOfClippingPlanes() == 1
    press("c")        # ... and goes
    assert not w._clip_widget_on and not w.plotter.widgets.plane_widgets
    press("i")        # the slice faces the camera
    first = w.logic.slice.orientation
    press("Up"); press("y")
    order = ["axial", "coronal", "sagittal"]
    assert w.logic.slice.orientation == order[(order.index(first) + 1) % 3]
    assert w.plotter.actors.get("slice") is not None
    press("v")
    press("k")
    assert load_plan(case).views[0].name == "View 1"
    press("n")
    assert load_plan(case).steps[0].view == "Step 1"
    # level of detail: stand-ins while the camera moves (forced on this small case)
    assert w.scene.build_proxies(max_triangles=10_000)
    style = iren.GetInteractorStyle()
    style.InvokeEvent("StartInteractionEvent")
    assert w.scene.lod
    style.InvokeEvent("EndInteractionEvent")
    assert not w.scene.lod
    press("q")
    print("OK")
""")


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (Debian xvfb)")
def test_real_window_key_bindings_under_xvfb(case) -> None:
    case.plan_path.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "VTK_DEFAULT_OPENGL_WINDOW"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 800x600x24", sys.executable,
                           "-c", _XVFB_SCRIPT, str(case.path)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK" in proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]  # errors inside VTK callbacks
    case.plan_path.unlink(missing_ok=True)


def test_level_of_detail_while_the_camera_moves(window, case) -> None:
    """Decimated stand-ins replace the full meshes during interaction and look the same."""
    from viewer_helpers import centroid, color_mask

    scene = window.scene
    assert not scene.build_proxies()  # 2 meshes of the phantom: below the default threshold
    assert scene.build_proxies(max_triangles=3000)
    assert sum(p.GetMapper().GetInput().GetNumberOfCells() for p in scene.proxies.values()) \
        < 4000
    among = ["left_ventricle", "aorta"]
    full = window.plotter.screenshot(return_img=True)[..., :3]
    scene.set_lod(True)
    assert all(p.GetVisibility() for p in scene.proxies.values())
    assert not any(a.GetVisibility() for a in scene.actors.values())
    moving = window.plotter.screenshot(return_img=True)[..., :3]
    for name in among:
        a, b = color_mask(full, name, among), color_mask(moving, name, among)
        assert abs(int(b.sum()) - int(a.sum())) < 0.15 * a.sum()
        assert np.hypot(*np.subtract(centroid(a), centroid(b))) < 3
    # styles follow: a hidden structure stays hidden in the stand-ins
    window.on_key("1")
    assert not scene.proxies["left_ventricle"].GetVisibility()
    scene.set_lod(False)
    assert not any(p.GetVisibility() for p in scene.proxies.values())
    assert scene.actors["aorta"].GetVisibility() and not \
        scene.actors["left_ventricle"].GetVisibility()
