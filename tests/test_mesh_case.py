"""Case meshes and the ``cardioplan mesh`` / ``cardioplan export`` commands."""

from __future__ import annotations

import json
import logging

import nrrd
import pytest
import trimesh
from mesh_shapes import nested_spheres

from cardioplan.case import Case
from cardioplan.cli import export as cli_export
from cardioplan.cli import main
from cardioplan.cli import mesh as cli_mesh
from cardioplan.errors import CaseError, CaseExistsError
from cardioplan.export.meshes import MESH_FORMATS
from cardioplan.labels import LABELS
from cardioplan.mesh import mesh_case, read_case_meshes
from cardioplan.mesh.surfaces import SMOOTHING, TARGETS


@pytest.fixture()
def case(tmp_path):
    with Case.create(tmp_path / "case") as c:
        c.write_labels(nested_spheres(extra=6), produced_by="test")
    return Case.open(tmp_path / "case")


def test_mesh_case_writes_meshes_index_and_quality(case):
    summary = mesh_case(case, budget=8000)
    index = json.loads((case.meshes_dir / "index.json").read_text())
    assert index["space"] == "LPS" and index["units"] == "mm" and index["budget"] == 8000
    names = [e["name"] for e in index["structures"]]
    assert names == ["left_ventricle", "myocardium", "aorta"]
    for e in index["structures"]:
        assert (case.meshes_dir / e["file"]).is_file()
        assert e["color"] == list(LABELS[e["name"]].color)
    assert summary["triangles"] == sum(e["triangles"] for e in index["structures"]) <= 8000
    reopened = Case.open(case.path)
    q = reopened.structures["myocardium"]["mesh"]
    assert q["watertight"] and q["volume_ok"] and q["distance_ok"]
    assert reopened.section("mesh")["target"] == "pcvr"
    assert reopened.files["meshes"]["path"] == "meshes/index.json"


def test_read_case_meshes_returns_named_coloured_surfaces(case, caplog):
    mesh_case(case, target="print")
    meshes = read_case_meshes(case)
    assert list(meshes) == ["left_ventricle", "myocardium", "aorta"]
    assert tuple(meshes["aorta"].field_data["color"]) == LABELS["aorta"].color
    assert "Normals" in meshes["aorta"].point_data
    with caplog.at_level(logging.WARNING):
        only = read_case_meshes(case, structures=["aorta", "pulmonary_artery"])
    assert list(only) == ["aorta"] and "pulmonary_artery" in caplog.text


def test_no_meshes_tells_how_to_make_them(case):
    with pytest.raises(CaseError, match="run `cardioplan mesh"):
        read_case_meshes(case)


def test_existing_meshes_need_force_and_stale_files_go(case):
    mesh_case(case, target="standalone")
    with pytest.raises(CaseExistsError, match="--force"):
        mesh_case(case)
    mesh_case(case, structures=["aorta"], force=True)
    assert sorted(p.name for p in case.meshes_dir.iterdir()) == ["aorta.vtp", "index.json"]


def test_cli_mesh_json_and_table(case, capsys):
    assert main(["mesh", str(case.path), "--target", "standalone", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["budget"] == 250_000 and set(out["quality"]) == {"left_ventricle",
                                                                "myocardium", "aorta"}
    assert main(["mesh", str(case.path), "--force", "--budget", "6000"]) == 0
    table = capsys.readouterr().out
    assert "myocardium" in table and "watertight" in table and "budget 6000" in table


def test_cli_mesh_budget_too_small_is_exit_1_with_minimum(case, caplog):
    assert main(["mesh", str(case.path), "--budget", "50"]) == 1
    assert "minimum that works is" in caplog.text
    assert not case.meshes_dir.exists()


def test_cli_choices_match_library_tables():
    assert list(cli_mesh._TARGETS) == list(TARGETS)
    assert list(SMOOTHING) == cli_mesh._SMOOTHING
    assert cli_export._MESH_FORMATS == MESH_FORMATS


def test_cli_export_glb_stl_and_seg_nrrd(case, tmp_path, capsys):
    assert main(["mesh", str(case.path), "--budget", "8000", "-q"]) == 0
    glb = tmp_path / "heart.glb"
    assert main(["export", str(case.path), "-f", "glb", "-o", str(glb)]) == 0
    assert sorted(trimesh.load(glb).geometry) == ["aorta", "left_ventricle", "myocardium"]
    capsys.readouterr()
    assert main(["export", str(case.path), "-f", "stl", "--structures", "aorta",
                 "-o", str(tmp_path / "stl"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files"][0]["path"] == str(tmp_path / "stl" / "aorta.stl")
    assert out["files"][0]["bytes"] == (tmp_path / "stl" / "aorta.stl").stat().st_size
    seg = tmp_path / "labels.seg.nrrd"
    assert main(["export", str(case.path), "-f", "seg.nrrd", "-o", str(seg)]) == 0
    _, header = nrrd.read(str(seg))
    assert header["Segment2_ID"] == "aorta"


def test_cli_export_unknown_format_lists_formats(case, capsys):
    with pytest.raises(SystemExit) as info:
        main(["export", str(case.path), "-f", "fbx", "-o", "x"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert all(f in err for f in ("stl", "glb", "3mf", "seg.nrrd", "dicom-seg"))


def test_cli_export_without_meshes_says_run_mesh(case, tmp_path, caplog):
    assert main(["export", str(case.path), "-f", "glb", "-o", str(tmp_path / "h.glb")]) == 1
    assert "cardioplan mesh" in caplog.text
    assert not (tmp_path / "h.glb").exists()


def test_cli_export_hollow_shell_for_printing(case, tmp_path, caplog):
    out = tmp_path / "shell.3mf"
    assert main(["export", str(case.path), "-f", "3mf", "--hollow", "2", "--structures",
                 "left_ventricle", "--min-wall", "1.5", "-o", str(out)]) == 0
    shell = trimesh.load(out).geometry["left_ventricle"]
    assert shell.is_watertight
    # a 2 mm wall outside a 14 mm ball: 4/3 pi (16^3 - 14^3) = 5.65 mL
    assert shell.volume / 1000 == pytest.approx(5.65, rel=0.1)
    assert main(["export", str(case.path), "-f", "stl", "--merge", "--hollow", "1",
                 "--structures", "left_ventricle", "--min-wall", "2",
                 "-o", str(tmp_path / "thin.stl")]) == 1
    assert "thinner than --min-wall" in caplog.text
    assert not (tmp_path / "thin.stl").exists()


def test_corrupt_mesh_file_is_a_clear_error(case):
    mesh_case(case, budget=8000)
    (case.meshes_dir / "aorta.vtp").write_text("not a mesh")
    with pytest.raises(CaseError, match="cardioplan mesh .* --force"):
        read_case_meshes(case, structures=["aorta"])
    (case.meshes_dir / "aorta.vtp").unlink()
    with pytest.raises(CaseError, match="missing"):
        read_case_meshes(case)


def test_meshes_older_than_the_labels_are_flagged(case, caplog):
    mesh_case(case, budget=8000)
    with caplog.at_level(logging.WARNING):
        read_case_meshes(case)
    assert "earlier label map" not in caplog.text
    case.write_labels(nested_spheres(extra=7), produced_by="test", force=True)
    with caplog.at_level(logging.WARNING):
        read_case_meshes(case)
    assert "earlier label map" in caplog.text and "--force" in caplog.text


def test_export_builds_a_composite_the_case_has_no_mesh_for(case, tmp_path):
    mesh_case(case, budget=8000)
    out = tmp_path / "heart.glb"
    assert main(["export", str(case.path), "-f", "glb", "--structures", "heart", "aorta",
                 "-o", str(out)]) == 0
    scene = trimesh.load(out)
    assert sorted(scene.geometry) == ["aorta", "heart"]
    heart = scene.geometry["heart"]
    assert heart.is_watertight
    assert heart.volume / 1000 == pytest.approx(4 / 3 * 3.14159 * 17.0 ** 3 / 1000, rel=0.03)
    assert sorted(e["name"] for e in json.loads(
        (case.meshes_dir / "index.json").read_text())["structures"]) == [
        "aorta", "left_ventricle", "myocardium"]  # the case's meshes are unchanged
