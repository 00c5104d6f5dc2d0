"""The shared plan: schema round trips, validation, concurrent writers, corrupt/newer files."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cardioplan.errors import CaseError, InputError, SchemaVersionError
from cardioplan.plan import (
    PLAN_SCHEMA_VERSION,
    Camera,
    CutPlane,
    Measurement,
    ModelPose,
    Plan,
    PlanWatcher,
    RehearsalStep,
    SavedView,
    StructureDisplay,
    angle_deg,
    distance_mm,
    edit_plan,
    load_plan,
    plan_from_json,
    plan_to_json,
    save_plan,
)
from cardioplan.seeds import read_seeds

REPO = Path(__file__).resolve().parents[1]


def _full_plan() -> Plan:
    plan = Plan()
    plan.set_display("aorta", opacity=0.4, color=(10, 20, 30))
    plan.set_display("right_atrium", visible=False)
    plan.add_landmark((1.5, -2.0, 30.25), name="VSD centre", structure="myocardium")
    plan.add_measurement(kind="distance", points=[(0, 0, 0), (0, 6, 8)], name="VSD")
    plan.add_measurement(kind="angle", points=[(1, 0, 0), (0, 0, 0), (1, 1, 0)])
    cut = plan.upsert_cut_plane(CutPlane(name="4ch", origin=(0, 0, 10), normal=(0, 0, 2),
                                         structures=["myocardium"]))
    plan.add_seed("left_ventricle", (12.5, -40.0, 88.0))
    cam = Camera(position=(0, -500, 0), focal_point=(0, 0, 0), view_up=(0, 0, 1))
    plan.upsert_view(SavedView(name="surgeon", camera=cam))
    plan.upsert_view(SavedView(name="vr-table", model_pose=ModelPose(
        position=(0, 1.0, -0.5), orientation_xyzw=(0, 0, 1, 1), scale=0.002)))
    plan.steps.append(RehearsalStep(title="Open the RA", note="incision", view="surgeon",
                                    visible=["myocardium"], cut_planes=[cut.id]))
    plan.model_pose = ModelPose(position=(0.1, 1.2, -0.4))
    return plan


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    plan = _full_plan()
    saved = save_plan(tmp_path / "plan.json", plan, author="desktop")
    loaded = load_plan(tmp_path / "plan.json")
    assert loaded == saved
    assert loaded.revision == 1 and loaded.modified_by == "desktop"
    assert loaded.display["aorta"] == StructureDisplay(visible=True, opacity=0.4,
                                                       color=(10, 20, 30))
    assert loaded.landmarks[0].point == (1.5, -2.0, 30.25)
    assert loaded.cut_planes[0].normal == (0.0, 0.0, 1.0)  # normalised
    q = loaded.view("vr-table").model_pose.orientation_xyzw
    assert q == pytest.approx((0, 0, math.sqrt(0.5), math.sqrt(0.5)))
    data = json.loads((tmp_path / "plan.json").read_text())
    assert data["schema"] == "cardioplan.plan" and data["schema_version"] == PLAN_SCHEMA_VERSION
    assert data["measurements"][0]["value"] == pytest.approx(10.0)
    assert data["measurements"][0]["unit"] == "mm"
    assert data["measurements"][1]["value"] == pytest.approx(45.0)


def test_plan_seeds_are_readable_by_segment(tmp_path: Path) -> None:
    save_plan(tmp_path / "plan.json", _full_plan())
    seeds = read_seeds(tmp_path / "plan.json")
    assert [(s.structure, s.point) for s in seeds] == [("left_ventricle", (12.5, -40.0, 88.0))]


def test_unknown_keys_survive_an_edit(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    data = plan_to_json(Plan())
    data["x_vendor"] = {"keep": [1, 2]}
    path.write_text(json.dumps(data))
    edit_plan(path, lambda p: p.add_landmark((0, 0, 0)))
    assert json.loads(path.read_text())["x_vendor"] == {"keep": [1, 2]}


def test_measurement_values() -> None:
    assert distance_mm((1, 2, 3), (4, 6, 3)) == pytest.approx(5.0)
    assert angle_deg((1, 0, 0), (0, 0, 0), (-1, 0, 0)) == pytest.approx(180.0)
    assert angle_deg((2, 0, 0), (1, 0, 0), (1, 3, 0)) == pytest.approx(90.0)
    m = Measurement(kind="angle", points=[(1, 0, 0), (0, 0, 0), (0, 0, 5)], name="a")
    assert m.unit == "deg" and m.label() == "a: 90.0\N{DEGREE SIGN}"
    with pytest.raises(InputError, match="distinct"):
        Measurement(kind="angle", points=[(0, 0, 0), (0, 0, 0), (1, 0, 0)])
    with pytest.raises(InputError, match="needs 2 points"):
        Measurement(kind="distance", points=[(0, 0, 0)])


def test_model_pose_matrix_rotates_and_scales() -> None:
    # 90 degrees about +z: x -> y
    pose = ModelPose(position=(1, 2, 3), orientation_xyzw=(0, 0, math.sin(math.pi / 4),
                                                            math.cos(math.pi / 4)), scale=2)
    m = pose.matrix()
    x = [sum(m[i][j] * v for j, v in enumerate((1, 0, 0, 1))) for i in range(4)]
    assert x == pytest.approx([1, 4, 3, 1])


@pytest.mark.parametrize("bad, message", [
    ({"display": {"aorta": {"opacity": 2}}}, "opacity"),
    ({"landmarks": [{"name": "x", "point": [0, "a", 0]}]}, "landmark 'x' point"),
    ({"cut_planes": [{"name": "c", "origin": [0, 0, 0], "normal": [0, 0, 0]}]}, "zero vector"),
    ({"seeds": [{"structure": "liver", "point": [0, 0, 0]}]}, "unknown structure"),
    ({"steps": [{"title": "s", "cut_planes": ["nope"]}]}, "unknown cut plane"),
    ({"views": [{"name": "v"}]}, "camera or a model pose"),
    ({"landmarks": {}}, "'landmarks' must be a list"),
])
def test_schema_validation_names_the_field(bad: dict, message: str) -> None:
    data = plan_to_json(Plan())
    data.update(bad)
    with pytest.raises(InputError, match=message):
        plan_from_json(data)


def test_missing_plan_is_empty_and_first_edit_creates_it(tmp_path: Path) -> None:
    assert load_plan(tmp_path).revision == 0
    plan = edit_plan(tmp_path, lambda p: p.set_display("aorta", visible=False), author="vr")
    assert plan.revision == 1 and plan.modified_by == "vr"
    assert not load_plan(tmp_path).display_of("aorta").visible
    assert load_plan(tmp_path).display_of("left_ventricle").visible  # default


def test_a_missing_case_folder_is_an_error_not_a_new_file(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="case folder not found"):
        edit_plan(tmp_path / "no_such_case", lambda p: p.add_landmark((0, 0, 0)))
    assert list(tmp_path.iterdir()) == []


def test_failed_change_writes_nothing(tmp_path: Path) -> None:
    edit_plan(tmp_path, lambda p: p.add_landmark((0, 0, 0), name="keep"))
    before = (tmp_path / "plan.json").read_bytes()

    def bad(plan: Plan) -> None:
        plan.add_landmark((1, 1, 1), name="half-done")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        edit_plan(tmp_path, bad)
    # an edit that breaks a cross-reference is refused before writing
    with pytest.raises(InputError, match="not saved"):
        edit_plan(tmp_path, lambda p: p.steps.append(RehearsalStep(title="s",
                                                                   cut_planes=["missing"])))
    assert (tmp_path / "plan.json").read_bytes() == before


@pytest.mark.parametrize("content, error", [
    ("{ not json", CaseError),
    (json.dumps({"schema": "cardioplan.plan", "schema_version": 99}), SchemaVersionError),
    (json.dumps({"schema": "cardioplan.plan", "schema_version": 1, "landmarks": 3}), CaseError),
])
def test_corrupt_or_newer_plan_is_kept_and_backed_up(tmp_path: Path, content: str,
                                                     error: type) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(error) as info:
        load_plan(path)
    backups = list(tmp_path.glob("plan.json.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == content
    assert backups[0].name in str(info.value)
    for attempt in (lambda: edit_plan(path, lambda p: p.add_landmark((0, 0, 0))),
                    lambda: save_plan(path, Plan())):
        with pytest.raises(error):
            attempt()
    assert path.read_text() == content  # never overwritten
    assert len(list(tmp_path.glob("plan.json.bak-*"))) == 1  # same content backed up once


def test_corrupt_plan_on_a_full_disk_still_names_the_problem(tmp_path: Path,
                                                              monkeypatch) -> None:
    import errno
    import shutil

    path = tmp_path / "plan.json"
    path.write_text("{ not json")

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", full_disk)
    with pytest.raises(CaseError, match="corrupt.*no backup copy could be written: no space"):
        load_plan(path)
    assert path.read_text() == "{ not json"


def test_watcher_sees_saves_from_elsewhere(tmp_path: Path) -> None:
    watcher = PlanWatcher(tmp_path)
    assert watcher.reload_if_changed() == Plan()  # first call: the (empty) current plan
    assert watcher.reload_if_changed() is None
    edit_plan(tmp_path, lambda p: p.add_landmark((1, 2, 3), name="apex"), author="vr")
    assert watcher.changed()
    plan = watcher.reload_if_changed()
    assert plan is not None and plan.landmarks[0].name == "apex"
    assert not watcher.changed()


_WRITER = textwrap.dedent("""
    import pathlib, sys, time
    from cardioplan.plan import edit_plan
    path, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    folder = pathlib.Path(path)
    (folder / f"ready-{who}").touch()
    while not (folder / "go").exists():  # start together, whatever the start-up times
        time.sleep(0.001)
    for i in range(n):
        def change(plan, i=i):
            plan.add_landmark((i, 0, 0), name=f"{who}-{i}")
            time.sleep(0.002)  # widen the read-modify-write window
        edit_plan(path, change, author=who)
        time.sleep(0.001)
""")


def test_two_processes_interleaving_edits_keep_every_change(tmp_path: Path) -> None:
    n = 40
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), who, str(n)],
                              env=env) for who in ("desktop", "vr")]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{w}").exists() for w in ("desktop", "vr")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    (tmp_path / "go").touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    plan = load_plan(tmp_path)
    names = {lm.name for lm in plan.landmarks}
    assert names == {f"{who}-{i}" for who in ("desktop", "vr") for i in range(n)}
    assert plan.revision == 2 * n
    order = [lm.name.split("-")[0] for lm in plan.landmarks]
    switches = sum(a != b for a, b in zip(order, order[1:], strict=False))
    assert switches > 1, "the two writers did not interleave; the test proves nothing"


def test_json_schema_accepts_library_output_and_rejects_what_the_library_rejects() -> None:
    import jsonschema

    from cardioplan.plan_schema import PLAN_JSON_SCHEMA

    validator = jsonschema.Draft202012Validator(PLAN_JSON_SCHEMA)
    validator.check_schema(PLAN_JSON_SCHEMA)
    full = plan_to_json(_full_plan())
    assert list(validator.iter_errors(full)) == []
    assert list(validator.iter_errors(plan_to_json(Plan()))) == []
    for bad in ({"display": {"aorta": {"opacity": 2}}},
                {"landmarks": [{"name": "x", "point": [0, 0]}]},
                {"measurements": [{"kind": "distance", "points": [[0, 0, 0]] * 3}]},
                {"views": [{"name": "v"}]},
                {"schema_version": 2}):
        data = dict(full, **bad)
        assert list(validator.iter_errors(data)), bad
        with pytest.raises((InputError, SchemaVersionError)):
            plan_from_json(data)
