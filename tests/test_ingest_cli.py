"""``read_volume`` / ``import_case`` and the ``info`` / ``import`` commands, bad input included."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from _dicom_synth import SIZE, ct_image, edit, write_4d, write_ct

from cardioplan.case import Case
from cardioplan.cli import main
from cardioplan.errors import CaseExistsError, InputError
from cardioplan.ingest import import_case, read_volume, smallest_safe_type


@pytest.fixture()
def ct_folder(tmp_path):
    folder = tmp_path / "scan"
    write_ct(folder, patient_name="DOE^JANE", patient_id="MRN-778899")
    return folder


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir())


def test_import_writes_a_case_with_provenance_and_no_phi(ct_folder, tmp_path):
    out = tmp_path / "case"
    assert main(["import", str(ct_folder), "-o", str(out)]) == 0
    case = Case.open(out)
    img = case.read_image()
    assert img.GetSize() == SIZE and img.GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img),
                                  sitk.GetArrayFromImage(ct_image()))
    record = case.inputs[0]
    assert record["format"] == "dicom" and record["modality"] == "CT"
    assert record["path"] == str(ct_folder.absolute())
    assert len(record["sop_instance_uids"]) == SIZE[2] and record["series_uid"]
    assert record["files"][0] == "IM001_00001.dcm"
    assert case.image_info["modality"] == "CT"
    text = (out / "case.json").read_text()
    assert "DOE" not in text and "MRN-778899" not in text


def test_import_json_and_phase_report(tmp_path, capsys):
    write_4d(tmp_path / "cine", phases=4)
    out = tmp_path / "case"
    assert main(["import", str(tmp_path / "cine"), "-o", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["image"]["phase"]["index"] == 4 and data["image"]["phase"]["percent_rr"] == 75.0
    assert Case.open(out).image_info["phase"]["count"] == 4


def test_read_volume_from_nifti_flipped_direction(shared_data, tmp_path):
    path = shared_data / "ct" / "abdomen_small" / "example_ct_sm.nii.gz"
    raw = sitk.ReadImage(str(path))
    vol = read_volume(path)
    assert vol.image.GetDirection() == raw.GetDirection()
    assert np.allclose(np.diag(np.array(raw.GetDirection()).reshape(3, 3)), [-1, -1, 1])
    assert vol.modality == "CT" and vol.source["format"] == "nifti"
    assert vol.image.GetPixelID() == sitk.sitkInt16
    case = import_case(path, tmp_path / "case")
    stored = case.read_image()
    for idx in [(0, 0, 0), (60, 50, 10), (121, 100, 29)]:
        p = raw.TransformIndexToPhysicalPoint(idx)
        np.testing.assert_allclose(stored.TransformIndexToPhysicalPoint(idx), p)
        assert stored[idx] == raw[idx]


def test_read_volume_from_case_folder_and_nrrd(ct_folder, tmp_path):
    case = import_case(ct_folder, tmp_path / "case")
    vol = read_volume(case.path)
    assert vol.modality == "CT" and vol.source["format"] == "case"
    assert vol.image.GetSize() == SIZE
    nrrd = tmp_path / "scan.nrrd"
    sitk.WriteImage(sitk.Cast(vol.image, sitk.sitkFloat64), str(nrrd))
    again = read_volume(nrrd)
    assert again.image.GetPixelID() == sitk.sitkInt16  # float64 of integers -> int16
    assert again.image.GetDirection() == vol.image.GetDirection()
    with pytest.raises(InputError, match="--series applies to DICOM input only"):
        read_volume(nrrd, series="2")


def test_smallest_safe_type():
    img = sitk.Image([4, 4, 4], sitk.sitkFloat64) + 0.5
    assert smallest_safe_type(img).GetPixelID() == sitk.sitkFloat32
    img = sitk.Image([4, 4, 4], sitk.sitkInt32) + 40000
    assert smallest_safe_type(img).GetPixelID() == sitk.sitkUInt16


def test_info_table_json_and_phi(ct_folder, capsys):
    assert main(["info", str(ct_folder)]) == 0
    out = capsys.readouterr().out
    assert "synthetic CT" in out and "32x32" in out and "0.8x0.7x2" in out
    assert "DOE" not in out and "MRN-778899" not in out
    assert main(["info", str(ct_folder), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    series = data["studies"][0]["series"][0]
    assert series["images"] == SIZE[2] and series["spacing"] == [0.8, 0.7, 2.0]
    assert "patient" not in data["studies"][0]
    assert main(["info", str(ct_folder), "--show-phi"]) == 0
    assert "DOE^JANE" in capsys.readouterr().out


def test_info_lists_skipped_objects(shared_data, capsys):
    assert main(["info", str(shared_data / "dicom" / "multiframe" / "liver.dcm")]) == 0
    out = capsys.readouterr().out
    assert "liver.dcm: segmentation object" in out and "No image series found" in out


def test_info_on_an_image_file_and_labels(shared_data, capsys):
    path = shared_data / "ct" / "abdomen_small" / "example_ct_sm.nii.gz"
    assert main(["info", str(path)]) == 0
    assert "122 x 101 x 30" in capsys.readouterr().out
    assert main(["info", "--labels"]) == 0
    assert "left_ventricle" in capsys.readouterr().out


# -- bad input: clear message, exit 1, nothing written -------------------------------------------
def _fails(argv, capsys, *needles):
    assert main(argv) == 1
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err, err
    return err


def test_bad_input_paths(tmp_path, capsys):
    out = tmp_path / "out"
    _fails(["import", str(tmp_path / "missing"), "-o", str(out)], capsys, "does not exist")
    (tmp_path / "empty").mkdir()
    _fails(["import", str(tmp_path / "empty"), "-o", str(out)], capsys, "is empty")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("hello")
    _fails(["import", str(tmp_path / "docs"), "-o", str(out)], capsys, "none is DICOM",
           "point to the folder")
    _fails(["info", str(tmp_path / "missing")], capsys, "does not exist")
    assert not out.exists()
    assert _leftovers(tmp_path) == ["docs", "empty"]


def test_bad_input_missing_slice_and_mixed_orientations(tmp_path, capsys):
    files = write_ct(tmp_path / "gap")
    files[5].unlink()
    out = tmp_path / "case"
    _fails(["import", str(tmp_path / "gap"), "-o", str(out)], capsys, "missing slices",
           "--allow-gaps")
    assert not out.exists()
    assert main(["import", str(tmp_path / "gap"), "-o", str(out), "--allow-gaps"]) == 0
    assert "interpolated" in json.dumps(Case.open(out).inputs[0]["warnings"])
    files = write_ct(tmp_path / "mixed")
    for f in files[:4]:
        edit(f, ImageOrientationPatient=[1, 0, 0, 0, 0, -1])
    _fails(["import", str(tmp_path / "mixed"), "-o", str(tmp_path / "c2")], capsys,
           "mixes 2 slice orientations")
    assert not (tmp_path / "c2").exists()


def test_bad_input_corrupt_file_is_skipped_with_warning(tmp_path, capsys):
    files = write_ct(tmp_path / "scan", ct_image(size=(32, 32, 21)))
    files[-1].write_bytes(files[-1].read_bytes()[:700])
    assert main(["import", str(tmp_path / "scan"), "-o", str(tmp_path / "case")]) == 0
    assert files[-1].name in capsys.readouterr().err
    assert Case.open(tmp_path / "case").read_image().GetSize() == (32, 32, 20)


def test_bad_input_two_series(tmp_path, capsys):
    write_ct(tmp_path / "scan" / "a", series_number=2, series_description="soft",
             study_instance_uid="1.5")
    write_ct(tmp_path / "scan" / "b", series_number=4, series_description="lung",
             study_instance_uid="1.5", uid_seed="b")
    out = tmp_path / "case"
    _fails(["import", str(tmp_path / "scan"), "-o", str(out)], capsys, "equally good",
           "soft", "lung", "--series")
    assert not out.exists()
    write_ct(tmp_path / "scan" / "c", ct_image(size=(32, 32, 30)), series_number=6,
             series_description="thin", study_instance_uid="1.5", uid_seed="c")
    assert main(["import", str(tmp_path / "scan"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "chose series #3" in err and "--series" in err
    assert Case.open(out).read_image().GetSize() == (32, 32, 30)
    assert main(["import", str(tmp_path / "scan"), "-o", str(tmp_path / "c2"), "--series",
                 "4"]) == 0
    assert Case.open(tmp_path / "c2").inputs[0]["description"] == "lung"


def test_bad_input_unwritable_output(ct_folder, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    _fails(["import", str(ct_folder), "-o", str(blocker / "case")], capsys, "cannot write")
    assert blocker.read_text() == "x"


def test_bad_input_existing_case(ct_folder, tmp_path, capsys):
    out = tmp_path / "case"
    assert main(["import", str(ct_folder), "-o", str(out)]) == 0
    first_id = Case.open(out).case_id
    _fails(["import", str(ct_folder), "-o", str(out)], capsys, "already exists", "--force")
    assert Case.open(out).case_id == first_id
    assert main(["import", str(ct_folder), "-o", str(out), "--force"]) == 0
    assert Case.open(out).case_id != first_id
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.docx").write_text("precious")
    with pytest.raises(CaseExistsError, match="not a CardioPlan case"):
        import_case(ct_folder, other, force=True)
    assert (other / "thesis.docx").read_text() == "precious"
    assert _leftovers(tmp_path) == ["case", "mine", "scan"]


def test_output_inside_input_refused(ct_folder):
    before = sorted(p.name for p in ct_folder.iterdir())
    with pytest.raises(InputError, match="inside the input"):
        import_case(ct_folder, ct_folder / "case")
    assert sorted(p.name for p in ct_folder.iterdir()) == before


def test_info_json_geometry_of_a_gap(tmp_path, capsys):
    files = write_ct(tmp_path / "gap")
    files[7].unlink()
    assert main(["info", str(tmp_path / "gap"), "--json"]) == 0
    series = json.loads(capsys.readouterr().out)["studies"][0]["series"][0]
    assert series["geometry"]["gaps_mm"] == [[-88.0, -84.0]]
    assert series["images"] == SIZE[2] - 1
    assert any("missing slices" in w for w in series["warnings"])


def test_source_headers_for_dicom_seg_export(tmp_path):
    from cardioplan.dicom import source_headers

    files = write_ct(tmp_path / "scan")
    for k, f in enumerate(files):  # file names in reverse slice order
        f.rename(f.with_name(f"z{len(files) - k:03d}.dcm"))
    case = import_case(tmp_path / "scan", tmp_path / "case")
    headers = source_headers(case.inputs[0])
    img = case.read_image()
    assert len(headers) == img.GetSize()[2]
    for z in (0, 7, 19):
        np.testing.assert_allclose([float(v) for v in headers[z].ImagePositionPatient],
                                   img.TransformIndexToPhysicalPoint((0, 0, z)), atol=1e-4)
    (tmp_path / "scan" / "z001.dcm").unlink()
    with pytest.raises(InputError, match="no longer at"):
        source_headers(case.inputs[0])


def test_folder_of_nifti_files_suggests_passing_the_file(tmp_path, capsys):
    sitk.WriteImage(ct_image(), str(tmp_path / "scan.nii.gz"))
    _fails(["import", str(tmp_path), "-o", str(tmp_path.parent / "nope-case")], capsys,
           "none is DICOM", "pass one directly", "scan.nii.gz")


def test_info_marks_the_series_import_would_load(tmp_path, capsys):
    write_ct(tmp_path / "a", ct_image(size=(32, 32, 8)), series_number=2, study_instance_uid="1")
    write_ct(tmp_path / "b", series_number=3, study_instance_uid="1", uid_seed="b")
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "  2*  3 " in out and "loaded by `cardioplan import` without --series" in out
    assert main(["info", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["default_series"]["index"] == 2
