"""The headset app against a real OpenXR runtime: Monado, headless (null compositor).

Monado is installed by ``scripts/install_monado.sh`` (CI runs it); these tests start and stop
``monado-service`` themselves, with simulated devices or with the remote driver for scripted
controllers.  Without the runtime they skip (saying how to install it), except the test of the
error message for a missing runtime, which needs no runtime at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # before anything imports PyOpenGL

from vr_runtime import MonadoService, RemoteControllers, find_runtime, make_mesh_case, write_mesh

from cardioplan.plan import CutPlane, ModelPose, edit_plan, load_plan
from vr import xrmath

RUNTIME = find_runtime()


def needs_runtime(test):
    """Mark a test ``openxr`` and skip it, saying how to install Monado, without the runtime."""
    skip = pytest.mark.skipif(RUNTIME is None, reason="the Monado OpenXR runtime is not "
                              "installed; run `sudo bash scripts/install_monado.sh` (CI does)")
    return pytest.mark.openxr(skip(test))


LV_CENTRE, LV_R = (-15.0, 0.0, 0.0), 11.0
AO_CENTRE, AO_R = (15.0, 0.0, 0.0), 8.0


@pytest.fixture(scope="module")
def monado():
    if RUNTIME is None:
        pytest.skip("the Monado OpenXR runtime is not installed; run "
                    "`sudo bash scripts/install_monado.sh`")
    service = MonadoService(*RUNTIME)
    saved = {k: os.environ.get(k) for k in service.env()}
    os.environ.update(service.env())
    yield service
    service.close()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def simulated(monado):
    monado.ensure("simulated")
    return monado


@pytest.fixture
def remote(monado):
    monado.ensure("remote")
    ctl = RemoteControllers()
    ctl.set(head=((0.0, 1.6, 0.0), (0, 0, 0, 1)),
            left={"position": (-0.3, 1.2, -0.3)}, right={"position": (0.3, 1.2, -0.3)})
    yield ctl
    ctl.close()


@pytest.fixture
def case(tmp_path):
    return make_mesh_case(tmp_path / "case", {"left_ventricle": (LV_CENTRE, LV_R),
                                              "aorta": (AO_CENTRE, AO_R)})


def run_app(case, *, frames, on_frame=None, **opts):
    from vr.app import VrApp, VrOptions

    app = VrApp(case, VrOptions(frames=frames, slice=False, **opts), on_frame=on_frame)
    return app, app.run()


def project(capture, point_mm):
    """Pixel (column, row from the top) where a patient-space point lands in a captured eye,
    computed here from the view the runtime located (eye pose and field of view)."""
    eye = capture["eye"]
    proj = xrmath.projection_from_fov(*capture["fov"], near=capture["near"], far=capture["far"])
    view = xrmath.view_matrix(eye.position, eye.orientation)
    world = xrmath.transform_points(capture["model"], point_mm)
    ndc, front = xrmath.project_points(proj, view, world)
    assert front[0]
    h, w = capture["pixels"].shape[:2]
    col, row = xrmath.ndc_to_pixels(ndc, w, h)[0]
    return int(round(col)), int(round(h - 1 - row))


def patch(pixels, col, row, r=2):
    return pixels[row - r:row + r + 1, col - r:col + r + 1, :3].reshape(-1, 3).astype(int)


def is_lv(rgb):  # (221, 72, 72) lit: red well above green and blue
    return (rgb[:, 0] > rgb[:, 1] + 50).all() and (rgb[:, 0] > rgb[:, 2] + 50).all()


def is_aorta(rgb):  # (200, 30, 130): red and blue above green
    return (rgb[:, 0] > rgb[:, 1] + 60).all() and (rgb[:, 2] > rgb[:, 1] + 30).all()


def is_background(rgb):
    return (rgb.max(axis=1) < 60).all()


# -- no runtime ----------------------------------------------------------------------------------
def test_check_without_a_runtime_says_what_is_missing(tmp_path):
    env = dict(os.environ, XR_RUNTIME_JSON=str(tmp_path / "missing.json"))
    r = subprocess.run([sys.executable, "-m", "cardioplan", "vr", "--check"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert f"XR_RUNTIME_JSON points to {tmp_path / 'missing.json'}, which does not exist" \
        in r.stderr
    assert "install_monado.sh" in r.stderr


# -- simulated headset --------------------------------------------------------------------------
@needs_runtime
def test_check_reports_runtime_headset_views_and_bindings(simulated, capsys):
    from cardioplan.cli import main

    assert main(["vr", "--check", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["runtime"].startswith("Monado")
    assert "Simulated" in info["system"]
    assert info["graphics"]["egl"] and info["depth_layers"]
    assert len(info["views"]) == 2 and info["views"][0]["width"] > 0
    assert "STAGE" in info["reference_spaces"]
    assert "XR_MNDX_egl_enable" in info["extensions"]


@needs_runtime
def test_headless_session_reaches_focused_and_exits_cleanly(simulated):
    from vr.actions import Controls
    from vr.session import XrSession

    for _ in range(2):  # a second session after a clean exit works too
        with XrSession(graphics="headless", input_setup=Controls) as xs:
            deadline = time.monotonic() + 10
            ticks = 0
            while not xs.lifecycle.should_exit and time.monotonic() < deadline:
                xs.poll_events()
                if xs.lifecycle.focused:
                    frame = xs.input.read(xs.space, xs.now())
                    ticks += 1
                    if ticks == 3:
                        xs.request_exit()
                time.sleep(0.005)
            history = xs.lifecycle.history
        assert xs.session is None and xs.instance is None  # everything destroyed
        order = [history.index(s) for s in ("READY", "FOCUSED", "STOPPING", "EXITING")]
        assert order == sorted(order), history
        assert xs.lifecycle.exit_reason == "the user or the app asked to exit"
        assert frame.hand("right").grip_pose is not None  # the simulated controllers are tracked


@needs_runtime
def test_gl_session_draws_the_heart_where_the_view_puts_it_and_a_cut_plane_removes_one_side(
        simulated, case, tmp_path):
    events = {}

    def on_frame(app, i):
        if i == 3:
            app.capture = True
        elif i == 4:
            events["before"] = app.captured
            # keep x >= 0 (patient left... the aorta); the left ventricle lies at x < 0
            edit_plan(case, lambda p: p.upsert_cut_plane(CutPlane("test", (0, 0, 0),
                                                                  (1, 0, 0))), author="desktop")
        elif i >= 6 and "after" not in events and app.interaction.active_cut_planes():
            # the plan edit was picked up: capture the next frame
            if app.captured and app.captured is not events["before"]:
                events["after"] = app.captured
            else:
                app.capture = True

    mirror = tmp_path / "spectator.png"
    app, stats = run_app(case, frames=14, on_frame=on_frame, mirror=str(mirror))
    assert stats.frames == 14 and stats.error is None
    assert stats.color_format == "0x8c43"  # GL_SRGB8_ALPHA8, chosen explicitly
    assert stats.gl_renderer  # the GL renderer is reported in --json
    assert stats.depth_format is not None  # depth layers submitted
    before, after = events["before"], events["after"]
    for eye in (0, 1):
        px = before[eye]["pixels"]
        lv, ao = project(before[eye], LV_CENTRE), project(before[eye], AO_CENTRE)
        assert is_lv(patch(px, *lv)), patch(px, *lv)
        assert is_aorta(patch(px, *ao)), patch(px, *ao)
        # well outside both spheres: background
        far = project(before[eye], (0.0, 0.0, 60.0))
        assert is_background(patch(px, *far))
        px2 = after[eye]["pixels"]
        lv2, ao2 = project(after[eye], LV_CENTRE), project(after[eye], AO_CENTRE)
        assert not is_lv(patch(px2, *lv2)), "the cut plane should remove the left ventricle"
        assert is_aorta(patch(px2, *ao2))
    # the two eyes see the model with a disparity (stereo)
    assert project(before[0], LV_CENTRE)[0] != project(before[1], LV_CENTRE)[0]
    # the spectator mirror (headless: a PNG of the left eye) shows the aorta, not the cut LV
    from PIL import Image

    shot = np.asarray(Image.open(mirror).convert("RGB")).astype(int)
    assert shot.shape == after[0]["pixels"].shape[:2] + (3,)
    magenta = (shot[..., 0] > shot[..., 1] + 60) & (shot[..., 2] > shot[..., 1] + 30)
    assert magenta.sum() > 20


@needs_runtime
def test_mesh_changed_on_disk_appears_in_the_headset_within_one_second(simulated, case):
    import pyvista as pv

    new_centre = (15.0, 0.0, 30.0)  # the aorta moves 30 mm superior
    events = {}

    def on_frame(app, i):
        if i == 3:
            moved = pv.Sphere(radius=AO_R, center=new_centre).compute_normals()
            events["t0"] = time.monotonic()
            write_mesh(case, "aorta", moved)
        if "t0" in events and "seen" not in events:
            if app.captured:
                cap = app.captured[0]
                if is_aorta(patch(cap["pixels"], *project(cap, new_centre))):
                    events["seen"] = time.monotonic() - events["t0"]
                    events["old"] = patch(cap["pixels"], *project(cap, AO_CENTRE))
            app.capture = True

    app, stats = run_app(case, frames=40, on_frame=on_frame, msaa=4)  # + the multisampled path
    assert stats.msaa == 4
    assert "seen" in events, "the changed mesh never appeared"
    assert events["seen"] < 1.0
    assert not is_aorta(events["old"])  # and it left its old place
    assert stats.mesh_reloads >= 1


# -- scripted controllers (remote driver) -------------------------------------------------------
def _script(steps):
    """on_frame driver: a list of (frames to wait, action) run in order, counting frames from
    the first one with input focus (controllers are read only while FOCUSED)."""
    state = {"i": 0, "wait": steps[0][0] if steps else 0}

    def on_frame(app, _frame):
        if not app.session.lifecycle.focused:
            return
        while state["i"] < len(steps):
            if state["wait"] > 0:
                state["wait"] -= 1
                return
            steps[state["i"]][1](app)
            state["i"] += 1
            if state["i"] < len(steps):
                state["wait"] = steps[state["i"]][0]
    return on_frame, state


@needs_runtime
def test_grip_and_move_moves_the_model_by_the_hand_motion(remote, case):
    start = (0.0, 1.5, -0.6)
    edit_plan(case, lambda p: setattr(p, "model_pose", ModelPose(position=start, scale=2.0)),
              author="desktop")
    p0, p1 = np.array([0.1, 1.3, -0.4]), np.array([0.25, 1.45, -0.5])
    on_frame, state = _script([
        (3, lambda app: remote.set(right={"position": tuple(p0)})),
        (3, lambda app: remote.set(right={"squeeze": 1.0})),
        (3, lambda app: remote.set(right={"position": tuple((p0 + p1) / 2)})),
        (2, lambda app: remote.set(right={"position": tuple(p1)})),
        (3, lambda app: remote.set(right={"squeeze": 0.0})),
        (4, lambda app: None),
    ])
    app, stats = run_app(case, frames=30, on_frame=on_frame)
    assert state["i"] == 6
    pose = load_plan(case).model_pose
    assert pose.position == pytest.approx(tuple(np.add(start, p1 - p0)), abs=2e-3)
    assert pose.scale == pytest.approx(2.0)
    assert pose.orientation_xyzw == pytest.approx((0, 0, 0, 1), abs=1e-3)
    assert stats.controllers["right"].endswith("valve/index_controller")


@needs_runtime
def test_two_trigger_presses_store_a_measurement_in_the_plan(remote, case):
    edit_plan(case, lambda p: setattr(p, "model_pose", ModelPose(position=(0, 1.5, -0.6),
                                                                 scale=2.0)), author="desktop")
    a, b = np.array([0.0, 1.3, -0.4]), np.array([0.06, 1.38, -0.4])  # 10 cm apart in the room
    on_frame, state = _script([
        (3, lambda app: remote.set(right={"position": tuple(a)})),
        (2, lambda app: remote.set(right={"trigger": 1.0})),
        (2, lambda app: remote.set(right={"trigger": 0.0})),
        # meanwhile an engineer adds a landmark at the desk: both edits must survive
        (1, lambda app: edit_plan(case, lambda p: p.add_landmark((1, 2, 3), name="desk"),
                                  author="desktop")),
        (1, lambda app: remote.set(right={"position": tuple(b)})),
        (2, lambda app: remote.set(right={"trigger": 1.0})),
        (2, lambda app: remote.set(right={"trigger": 0.0})),
        (4, lambda app: None),
    ])
    app, stats = run_app(case, frames=30, on_frame=on_frame, tool="measure")
    assert state["i"] == 8
    plan = load_plan(case)  # the desktop's plan module reads what the headset wrote
    assert [lm.name for lm in plan.landmarks] == ["desk"]
    assert [lm.name for lm in app.interaction.plan.landmarks] == ["desk"]  # seen in the headset
    assert len(plan.measurements) == 1
    m = plan.measurements[0]
    assert m.kind == "distance" and m.unit == "mm"
    assert m.value == pytest.approx(100.0 / 2.0, abs=0.5)  # 10 cm at 2x magnification = 50 mm
    assert plan.modified_by == "vr"


@needs_runtime
def test_newer_plan_is_refused_and_kept(simulated, case):
    from cardioplan.errors import SchemaVersionError

    plan_path = Path(case) / "plan.json"
    plan_path.write_text(json.dumps({"schema": "cardioplan.plan", "schema_version": 99}))
    with pytest.raises(SchemaVersionError, match="newer CardioPlan"):
        run_app(case, frames=2)
    assert json.loads(plan_path.read_text())["schema_version"] == 99
    assert list(Path(case).glob("plan.json.bak-*"))


def test_case_without_meshes_gets_a_clear_message(tmp_path, capsys):
    from cardioplan.case import Case
    from cardioplan.cli import main

    with Case.create(tmp_path / "empty"):
        pass
    assert main(["vr", str(tmp_path / "empty"), "--frames", "1"]) == 1
    err = capsys.readouterr().err
    assert "no meshes yet" in err and "cardioplan mesh" in err


@needs_runtime
def test_runtime_dying_mid_session_ends_cleanly_with_the_plan_saved(remote, monado, case):
    edit_plan(case, lambda p: setattr(p, "model_pose", ModelPose(position=(0, 1.5, -0.6))),
              author="desktop")
    p0, p1 = np.array([0.1, 1.3, -0.4]), np.array([0.1, 1.4, -0.4])
    on_frame, state = _script([
        (3, lambda app: remote.set(right={"position": tuple(p0)})),
        (2, lambda app: remote.set(right={"squeeze": 1.0})),
        (3, lambda app: remote.set(right={"position": tuple(p1)})),
        (3, lambda app: monado.stop()),  # the runtime goes away while the heart is held
    ])
    app, stats = run_app(case, frames=200, on_frame=on_frame)
    assert state["i"] == 4
    assert stats.frames < 200
    assert stats.error and "runtime" in stats.error
    pose = load_plan(case).model_pose  # the pose the surgeon left it in was saved
    assert pose.position == pytest.approx((0.0, 1.6, -0.6), abs=2e-3)


@pytest.mark.skipif(not shutil.which("xvfb-run"), reason="xvfb-run (Debian xvfb) is not installed")
@needs_runtime
def test_glx_binding_with_a_spectator_window_under_xvfb(simulated, case):
    env = {k: v for k, v in os.environ.items() if k not in ("PYOPENGL_PLATFORM", "EGL_PLATFORM")}
    r = subprocess.run(["xvfb-run", "-a", sys.executable, "-m", "cardioplan", "vr", str(case),
                        "--graphics", "glx", "--mirror", "--frames", "6", "--no-slice", "--json"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)  # the runtime logs to stderr: stdout is pure JSON
    assert out["graphics"] == "glx" and out["frames"] == 6 and out["error"] is None
    assert out["color_format"] == "0x8c43"


@needs_runtime
def test_unsupported_graphics_binding_is_a_clear_error(simulated, case, capsys):
    from cardioplan.cli import main

    assert main(["vr", str(case), "--graphics", "wgl", "--frames", "1"]) == 1
    assert "the WGL binding needs Windows" in capsys.readouterr().err


@needs_runtime
def test_pointing_and_triggering_twice_hides_a_structure(remote, case):
    start = (0.0, 1.5, -0.6)
    edit_plan(case, lambda p: setattr(p, "model_pose", ModelPose(position=start, scale=2.0)),
              author="desktop")
    hand = np.array([0.2, 1.3, -0.2])
    # the aorta's centre in the room: 15 mm patient-left of the pivot, at 2x
    pivot = np.mean([LV_CENTRE, AO_CENTRE], axis=0)
    target = np.array(start) + xrmath.LPS_TO_XR[:3, :3] @ (np.array(AO_CENTRE) - pivot) * 0.002
    aim = tuple(xrmath.quat_from_two_vectors((0, 0, -1), target - hand))
    seen = {}
    on_frame, state = _script([
        (3, lambda app: remote.set(right={"position": tuple(hand), "orientation": aim})),
        (2, lambda app: remote.set(right={"trigger": 1.0})),
        (2, lambda app: remote.set(right={"trigger": 0.0})),
        (1, lambda app: seen.setdefault("selected", app.interaction.state.selected)),
        (1, lambda app: remote.set(right={"trigger": 1.0})),
        (2, lambda app: remote.set(right={"trigger": 0.0})),
        (4, lambda app: None),
    ])
    app, stats = run_app(case, frames=30, on_frame=on_frame)
    assert state["i"] == 7
    assert seen["selected"] == "aorta"
    plan = load_plan(case)
    assert plan.display_of("aorta").visible is False
    assert plan.display_of("left_ventricle").visible is True


@needs_runtime
def test_both_grips_scale_the_model_by_the_change_in_hand_distance(remote, case):
    edit_plan(case, lambda p: setattr(p, "model_pose", ModelPose(position=(0, 1.5, -0.6),
                                                                 scale=1.0)), author="desktop")
    on_frame, state = _script([
        (3, lambda app: remote.set(left={"position": (-0.1, 1.4, -0.5)},
                                   right={"position": (0.1, 1.4, -0.5)})),
        (2, lambda app: remote.set(left={"squeeze": 1.0}, right={"squeeze": 1.0})),
        (3, lambda app: remote.set(left={"position": (-0.25, 1.4, -0.5)},
                                   right={"position": (0.25, 1.4, -0.5)})),
        (3, lambda app: remote.set(left={"squeeze": 0.0}, right={"squeeze": 0.0})),
        (4, lambda app: None),
    ])
    app, stats = run_app(case, frames=30, on_frame=on_frame)
    assert state["i"] == 5
    pose = load_plan(case).model_pose
    assert pose.scale == pytest.approx(0.5 / 0.2, rel=0.01)  # hands 20 cm -> 50 cm apart
    # scaled about the hands' midpoint (0, 1.4, -0.5): the model centre moved away from it
    assert pose.position == pytest.approx((0.0, 1.4 + 0.1 * 2.5, -0.5 - 0.1 * 2.5), abs=2e-3)


@pytest.fixture(scope="module")
def phantom_case(tmp_path_factory, sample_data):
    """The bundled phantom's ground-truth labels, meshed to 20k triangles (software GL)."""
    import SimpleITK as sitk

    from cardioplan.case import Case
    from cardioplan.mesh import mesh_case

    path = tmp_path_factory.mktemp("phantom") / "case"
    with Case.create(path):
        pass
    case = Case.open(path)
    case.write_labels(sitk.ReadImage(str(sample_data / "phantom" / "labels.nii.gz")),
                      produced_by="test")
    mesh_case(case, budget=20_000)
    return path


@needs_runtime
def test_phantom_heart_is_drawn_where_the_located_views_put_it(simulated, phantom_case):
    from cardioplan.case import Case
    from cardioplan.labels import LABELS
    from cardioplan.mesh import read_case_meshes

    meshes = read_case_meshes(Case.open(phantom_case))
    pts = np.vstack([m.points for m in meshes.values()])
    pivot = (pts.min(axis=0) + pts.max(axis=0)) / 2
    events = {}

    def on_frame(app, i):
        if i == 3:
            app.capture = True
        elif i == 4:
            events["before"] = app.captured
            edit_plan(phantom_case, lambda p: p.upsert_cut_plane(
                CutPlane("sagittal", tuple(pivot), (1, 0, 0))), author="desktop")
        elif i >= 5 and "after" not in events and app.interaction.active_cut_planes():
            if app.captured and app.captured is not events["before"]:
                events["after"] = app.captured
            else:
                app.capture = True

    app, stats = run_app(phantom_case, frames=12, on_frame=on_frame)
    assert stats.error is None and stats.triangles > 10_000
    colours = {n: np.array(LABELS[n].color, float) for n in meshes}
    for eye in (0, 1):
        cap = events["before"][eye]
        img = cap["pixels"][..., :3].astype(float)
        h, w = img.shape[:2]
        world = xrmath.transform_points(cap["model"], pts)
        proj = xrmath.projection_from_fov(*cap["fov"], near=cap["near"], far=cap["far"])
        view = xrmath.view_matrix(cap["eye"].position, cap["eye"].orientation)
        ndc, _ = xrmath.project_points(proj, view, world)
        cols, rows = xrmath.ndc_to_pixels(ndc, w, h).T
        rows = h - 1 - rows
        c0, c1 = int(cols.min()) - 2, int(cols.max()) + 3
        r0, r1 = int(rows.min()) - 2, int(rows.max()) + 3
        assert 0 <= c0 < c1 <= w and 0 <= r0 < r1 <= h  # the heart is in view
        inside = img[r0:r1, c0:c1].reshape(-1, 3)
        heart = inside[inside.max(axis=1) > 70]
        assert len(heart) > 0.3 * len(inside)  # the projected box is mostly heart
        # several structures show in their label colours (chromaticity, whatever the shading)
        chroma = heart / heart.sum(axis=1, keepdims=True)
        seen = [n for n, c in colours.items()
                if (np.linalg.norm(chroma - c / c.sum(), axis=1) < 0.04).mean() > 0.01]
        assert len(seen) >= 4, seen
        # outside the projected box only thin controller rays: almost nothing
        outside = img.max(axis=2) > 70
        outside[r0:r1, c0:c1] = False
        assert outside.sum() < 0.02 * w * h
        # the sagittal cut keeps patient-left (image right of the pivot): the left side empties
        after = events["after"][eye]
        a_img = after["pixels"][..., :3].max(axis=2) > 70
        b_img = img.max(axis=2) > 70
        pc, _pr = project(after, pivot)
        left_before, left_after = b_img[r0:r1, c0:pc - 3].sum(), a_img[r0:r1, c0:pc - 3].sum()
        right_before, right_after = b_img[r0:r1, pc + 3:c1].sum(), a_img[r0:r1, pc + 3:c1].sum()
        assert left_after < 0.1 * left_before
        assert right_after > 0.5 * right_before


@needs_runtime
def test_real_cta_slice_on_the_cut_plane_shows_the_scan(simulated, shared_data, tmp_path):
    """Real chest CTA (TotalSegmentator test data): the slice drawn on a coronal cut plane shows
    the contrast-filled aorta bright and grey where the scan says so."""
    import SimpleITK as sitk

    from cardioplan.case import Case
    from cardioplan.labels import LABELS
    from cardioplan.mesh import mesh_case

    cta = shared_data / "ct" / "chest_cta"
    ct = sitk.ReadImage(str(cta / "aorta_ct_cropped.nii.gz"))
    aorta = sitk.ReadImage(str(cta / "aorta_mask.nii.gz")) > 0
    heart = sitk.Resample(sitk.ReadImage(str(cta / "heart_mask.nii.gz")) > 0, ct,
                          sitk.Transform(), sitk.sitkNearestNeighbor)
    labels = sitk.Cast(heart, sitk.sitkUInt8) * LABELS.value_of("heart")
    labels = sitk.Mask(labels, aorta == 0) + sitk.Cast(aorta, sitk.sitkUInt8) * \
        LABELS.value_of("aorta")
    path = tmp_path / "cta"
    with Case.create(path) as case:
        case.write_image(ct, produced_by="test", modality="CT")
        case.write_labels(labels, produced_by="test")
    mesh_case(Case.open(path), budget=20_000)
    # a coronal plane through the aorta's centre, keeping what lies behind it (posterior)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(aorta, sitk.sitkUInt8))
    centre = np.array(stats.GetCentroid(1))
    edit_plan(path, lambda p: p.upsert_cut_plane(CutPlane("coronal", tuple(centre), (0, 1, 0))),
              author="desktop")
    # sample points on that plane: deep inside the contrast lumen, and in the lungs (air)
    lumen = sitk.BinaryErode(aorta, [2, 2, 2])
    arr_lumen = sitk.GetArrayViewFromImage(lumen)
    arr_ct = sitk.GetArrayViewFromImage(ct)
    j = ct.TransformPhysicalPointToIndex(tuple(centre))[1]
    bright = [ct.TransformIndexToPhysicalPoint((int(i), j, int(k))) for k, i in
              zip(*np.nonzero(arr_lumen[:, j, :]), strict=True)][::7]
    assert len(bright) > 5
    assert float(np.median(arr_ct[:, j, :][arr_lumen[:, j, :] > 0])) > 250  # contrast blood
    events = {}

    def on_frame(app, i):
        if app.renderer._volume is not None and "cap" not in events:
            if app.captured:
                events["cap"] = app.captured
                app.session.request_exit()
            else:
                app.capture = True

    from vr.app import VrApp, VrOptions

    app = VrApp(path, VrOptions(frames=60), on_frame=on_frame)
    app_stats = app.run()
    assert app_stats.error is None and "cap" in events, "the scan never reached the renderer"
    for cap in events["cap"]:
        img = cap["pixels"][..., :3].astype(int)
        values = []
        for p in bright:
            col, row = project(cap, p)
            if 0 <= col < img.shape[1] and 0 <= row < img.shape[0]:
                values.append(img[row, col])
        values = np.array(values)
        assert len(values) > 5
        # contrast-filled lumen: bright and grey (the slice, at 85 % over the magenta aorta)
        assert np.median(values.mean(axis=1)) > 150
        assert np.median(values.max(axis=1) - values.min(axis=1)) < 70


@needs_runtime
def test_menu_opened_with_a_and_pressed_with_the_ray_hides_a_structure(remote, case):
    from vr.interaction import MENU_SIZE_M, menu_pose
    from vr.xrmath import Pose

    left_pos, right_pos = np.array([-0.2, 1.3, -0.4]), np.array([0.2, 1.3, -0.1])
    seen = {}

    def aim_at_toggle(app):
        seen["menu_open"] = app.interaction.state.menu_open
        button = next(b for b in app.interaction.menu_buttons() if b.action == "toggle:aorta")
        u, v = (button.rect[0] + button.rect[2]) / 2, (button.rect[1] + button.rect[3]) / 2
        target = menu_pose(Pose(left_pos)).transform_point(
            ((u - 0.5) * MENU_SIZE_M[0], (0.5 - v) * MENU_SIZE_M[1], 0.0))
        q = xrmath.quat_from_two_vectors((0, 0, -1), target - right_pos)
        remote.set(right={"position": tuple(right_pos), "orientation": tuple(q)})

    on_frame, state = _script([
        (3, lambda app: remote.set(left={"position": tuple(left_pos)},
                                   right={"position": tuple(right_pos)})),
        (2, lambda app: remote.set(left={"a": True})),   # A on the left hand: the menu opens
        (2, lambda app: remote.set(left={"a": False})),
        (2, aim_at_toggle),
        (2, lambda app: seen.setdefault("hover", app.interaction.state.menu_hover)),
        (1, lambda app: remote.set(right={"trigger": 1.0})),
        (2, lambda app: remote.set(right={"trigger": 0.0})),
        (4, lambda app: None),
    ])
    app, stats = run_app(case, frames=40, on_frame=on_frame)
    assert state["i"] == 8
    assert seen["menu_open"] and seen["hover"] == "toggle:aorta"
    assert load_plan(case).display_of("aorta").visible is False
