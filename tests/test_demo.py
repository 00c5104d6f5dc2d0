"""``cardioplan demo``: the README's first command, end to end on the bundled phantom."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cardioplan.case import Case
from cardioplan.cli import main
from cardioplan.labels import LABELS


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["demo", "-o", str(out), "--json"]) == 0
    return out, json.loads(buf.getvalue())


def test_demo_segments_the_phantom_close_to_its_ground_truth(demo: tuple[Path, dict]) -> None:
    _, summary = demo
    dice = {name: row["dice"] for name, row in summary["structures"].items()}
    assert dice["heart"] >= 0.9
    assert dice["aorta"] >= 0.9 and dice["pulmonary_artery"] >= 0.9
    assert min(dice[n] for n in ("left_ventricle", "right_ventricle", "left_atrium")) >= 0.8


def test_demo_writes_a_complete_case_report_and_snapshot(demo: tuple[Path, dict]) -> None:
    out, summary = demo
    case = Case.open(summary["case"])
    assert case.has_labels and case.slicer_labels_path.is_file()
    assert {"left_ventricle", "aorta"} <= {p.stem for p in case.meshes_dir.glob("*.vtp")}
    assert 10_000 < summary["triangles"] <= 1_000_000, "within the PC-VR budget"
    html = Path(summary["report"]).read_text()
    assert "Left ventricle" in html and "phantom ground truth" in html
    assert "PHANTOM" not in html, "no patient name in the report"
    rgb = np.asarray(Image.open(summary["snapshot"]).convert("RGB")).astype(int)
    aorta = np.array(LABELS["aorta"].color)
    close = np.abs(rgb - aorta).sum(axis=2) < 60
    assert close.sum() > 500, "the aorta's colour is visible from the anterior view"
    assert (out / "case").resolve() == case.path.resolve()


def test_demo_replaces_its_own_output_but_not_other_folders(demo: tuple[Path, dict],
                                                             tmp_path: Path, capsys) -> None:
    other = tmp_path / "mine"
    (other / "case").mkdir(parents=True)
    (other / "case" / "notes.txt").write_text("keep me")
    assert main(["demo", "-o", str(other), "--no-report"]) == 1
    assert "--force" in capsys.readouterr().err
    assert (other / "case" / "notes.txt").read_text() == "keep me"
