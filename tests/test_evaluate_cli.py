"""``cardioplan evaluate``: case folders and label files, reference maps, table and JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from cardioplan.case import Case
from cardioplan.cli import main

ACDC_MAP = "1=right_ventricle,2=myocardium,3=left_ventricle"


def _acdc_to_project(gt: sitk.Image) -> sitk.Image:
    arr = sitk.GetArrayFromImage(gt)
    lut = np.array([0, 2, 5, 1], np.uint8)      # ACDC 1 RV, 2 myo, 3 LV -> project values
    out = sitk.GetImageFromArray(lut[arr])
    out.CopyInformation(gt)
    return out


@pytest.fixture()
def acdc_gt(shared_data):
    return shared_data / "mri" / "acdc" / "patient001_frame01_gt.nii.gz"


def test_case_folder_against_acdc_reference_json(tmp_path, acdc_gt, capsys):
    pred = _acdc_to_project(sitk.ReadImage(str(acdc_gt)))
    arr = sitk.GetArrayFromImage(pred)
    arr[arr == 2] = 0                               # no RV in the prediction
    damaged = sitk.GetImageFromArray(arr)
    damaged.CopyInformation(pred)
    with Case.create(tmp_path / "case") as case:
        case.write_labels(damaged, produced_by="test")
    rc = main(["evaluate", str(tmp_path / "case"), str(acdc_gt), "--ref-map", ACDC_MAP,
               "--structures", "left_ventricle", "right_ventricle", "myocardium", "heart",
               "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    s = out["structures"]
    assert s["left_ventricle"]["dice"] == 1.0 and s["myocardium"]["hd95_mm"] == 0.0
    assert s["right_ventricle"]["dice"] == 0.0
    assert s["right_ventricle"]["hd95_mm"] is None           # NaN -> null
    assert "missing" in s["right_ventricle"]["note"]
    assert 0.5 < s["heart"]["dice"] < 1.0
    # the volumes are real millilitres: ACDC patient001 ED LV cavity is ~ 295 mL
    assert 250 < s["left_ventricle"]["ref_volume_ml"] < 340


def test_label_file_table_lists_every_reference_structure(tmp_path, acdc_gt, capsys):
    pred = _acdc_to_project(sitk.ReadImage(str(acdc_gt)))
    pred_path = tmp_path / "pred.nrrd"
    sitk.WriteImage(pred, str(pred_path))
    assert main(["evaluate", str(pred_path), str(acdc_gt), "--ref-map", ACDC_MAP]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["structure", "Dice"]
    names = [ln.split()[0] for ln in lines[1:]]
    assert names == ["left_ventricle", "right_ventricle", "myocardium"]
    assert all(ln.split()[1] == "1.000" for ln in lines[1:])


def test_bad_inputs_fail_with_a_message(tmp_path, acdc_gt, capsys):
    assert main(["evaluate", str(tmp_path / "nope.nii.gz"), str(acdc_gt)]) == 1
    assert "prediction not found" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), str(acdc_gt)]) == 1
    assert "not a CardioPlan case" in capsys.readouterr().err
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not an image")
    assert main(["evaluate", str(acdc_gt), str(junk)]) == 1
    assert "cannot read the reference" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(acdc_gt), str(acdc_gt), "--ref-map", "1=left_ventrcle"])
    assert exc.value.code == 2
    assert "unknown structure 'left_ventrcle'" in capsys.readouterr().err
