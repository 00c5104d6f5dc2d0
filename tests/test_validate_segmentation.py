"""The validation script's protocol on one small real case: clicks, scoring, tables, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk


@pytest.fixture(scope="module")
def v(validation_script):
    return validation_script


def test_simulated_clicks_are_the_deepest_interior_points(v):
    ref = sitk.Image([40, 30, 20], sitk.sitkUInt8)
    ref.SetSpacing((1.0, 1.0, 2.0))
    ref[2:12, 5:25, 2:18] = 3                    # 10 x 20 x 16 voxels: thinnest along x
    ref[20:38, 5:25, 2:18] = 1
    seeds = v.simulated_clicks(ref, {1: "right_ventricle", 3: "left_ventricle"})
    assert [s.structure for s in seeds] == ["right_ventricle", "left_ventricle"]
    for seed in seeds:
        idx = ref.TransformPhysicalPointToIndex(seed.point)
        assert ref[idx] == {"right_ventricle": 1, "left_ventricle": 3}[seed.structure]
    lv = seeds[1].point
    assert 6.0 <= lv[0] <= 7.0                   # mid-way across the 10-voxel width


def test_one_acdc_case_in_both_modes(v, shared_data):
    samples = list(v.load_acdc(shared_data))
    assert len(samples) >= 2 and samples[0].name == "patient001_frame01"
    click = v.run_sample(samples[0], "click")
    auto = v.run_sample(samples[0], "auto")
    assert set(click["metrics"]) == {"left_ventricle", "right_ventricle", "myocardium"}
    assert set(auto["metrics"]) == {"left_ventricle"}
    assert click["metrics"]["left_ventricle"]["dice"] >= 0.9
    assert auto["metrics"]["left_ventricle"]["dice"] >= 0.87
    assert click["metrics"]["left_ventricle"]["hd95_mm"] < 15
    table = v.format_dataset("acdc", {"auto": [auto], "click": [click]})
    assert "left_ventricle" in table and "s/case" in table
    summary = v.summarise([click])
    assert summary["myocardium"]["n"] == 1
    assert summary["myocardium"]["dice_worst"] == pytest.approx(
        click["metrics"]["myocardium"]["dice"])


def test_hvsmr_colours_become_project_labels(v, shared_data):
    folder = shared_data / "mri" / "hvsmr2_png"
    _, ref = v.hvsmr_slice(folder / "images" / "10000_85.png", folder / "masks" / "10000_85.png")
    values = set(np.unique(sitk.GetArrayViewFromImage(ref))) - {0}
    assert values == {2, 3, 4, 6, 7, 9}          # RV, LA, RA, aorta, PA, IVC


def test_command_line_writes_json(v, shared_data, tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "mri" / "la2018").mkdir(parents=True)
    for suffix in ("image", "label"):
        name = f"V0MZOWJ6MU3RMRCV9EXR_{suffix}.nii.gz"
        (data / "mri" / "la2018" / name).symlink_to(shared_data / "mri" / "la2018" / name)
    out = tmp_path / "val.json"
    assert v.main(["--data", str(data), "--datasets", "la2018", "--json", str(out), "-q"]) == 0
    saved = json.loads(out.read_text())
    summary = saved["la2018"]["click"]["summary"]["left_atrium"]
    assert summary["n"] == 1 and summary["dice_mean"] >= 0.65
    assert saved["la2018"]["auto"]["cases"] == []       # no automatic LA: the mode is skipped
