"""Header-only discovery: grouping, geometry warnings, skipped objects, DICOMDIR, real data."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pydicom
import pytest
from _dicom_synth import SIZE, ct_image, edit, write_4d, write_ct, write_dicomdir

from cardioplan.dicom import orientation_label, scan
from cardioplan.errors import DicomError, InputError


def test_one_series_geometry_from_positions_not_thickness(tmp_path):
    write_ct(tmp_path / "ct", slice_thickness=3.0)
    result = scan(tmp_path / "ct")
    assert len(result.series) == 1
    s = result.series[0]
    assert (s.index, s.modality, len(s.frames), s.matrix) == (1, "CT", SIZE[2], SIZE[:2])
    assert s.geometry.spacing == pytest.approx((0.8, 0.7, 2.0))
    assert s.orientation == "axial LPS"
    assert s.transfer_syntaxes == ["Explicit VR Little Endian"]
    assert any("thickness 3 mm differs" in w for w in s.warnings)


def test_two_series_sorted_and_numbered(tmp_path):
    write_ct(tmp_path / "a", series_number=7, series_description="late",
             study_instance_uid="1.2.3.9")
    write_ct(tmp_path / "b", ct_image(size=(32, 32, 10)), series_number=2,
             series_description="early", uid_seed="other", study_instance_uid="1.2.3.9")
    result = scan(tmp_path)
    assert [(s.index, s.series_number, s.description) for s in result.series] == \
        [(1, 2, "early"), (2, 7, "late")]
    assert [len(s.frames) for s in result.series] == [10, 20]


def test_empty_series_uid_groups_by_number_and_description(tmp_path):
    write_ct(tmp_path / "a", series_instance_uid="", study_instance_uid="", series_number=1,
             frame_of_reference_uid="1.2.3")
    write_ct(tmp_path / "b", series_instance_uid="", study_instance_uid="", series_number=2,
             frame_of_reference_uid="1.2.3", uid_seed="b")
    result = scan(tmp_path)
    assert [len(s.frames) for s in result.series] == [SIZE[2], SIZE[2]]
    assert all(s.series_uid == "" for s in result.series)


def test_missing_slice_is_reported_with_its_position(tmp_path):
    files = write_ct(tmp_path / "ct")
    files[7].unlink()
    (s,) = scan(tmp_path / "ct").series
    assert s.geometry.gaps == [(-88.0, -84.0)]
    assert any("missing slices" in w and "-88.00 and -84.00" in w for w in s.warnings)


def test_duplicate_positions_and_gantry_tilt_warned(tmp_path):
    files = write_ct(tmp_path / "ct")
    for k, f in enumerate(files):  # shift each slice along y: a 10-degree gantry tilt
        ds = pydicom.dcmread(f)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        edit(f, ImagePositionPatient=[x, y + k * 2.0 * np.tan(np.radians(10)), z])
    (s,) = scan(tmp_path / "ct").series
    assert s.geometry.tilt_deg == pytest.approx(10.0, abs=0.01)
    assert any("gantry tilt" in w for w in s.warnings)
    dup = tmp_path / "dup"
    files = write_ct(dup)
    edit(files[3], ImagePositionPatient=list(pydicom.dcmread(files[2]).ImagePositionPatient))
    (s,) = scan(dup).series
    assert any("duplicate slice positions" in w for w in s.warnings)


def test_mixed_orientations_and_scout(tmp_path):
    files = write_ct(tmp_path / "ct")
    edit(files[0], ImageOrientationPatient=[1, 0, 0, 0, 0, -1])  # one coronal slice: a scout
    result = scan(tmp_path / "ct")
    assert len(result.series[0].frames) == SIZE[2] - 1
    assert [k.path for k in result.skipped] == [files[0]]
    assert "scout" in result.skipped[0].reason
    for f in files[:5]:  # five coronal slices: mixed orientations, not a scout
        edit(f, ImageOrientationPatient=[1, 0, 0, 0, 0, -1])
    (s,) = scan(tmp_path / "ct").series
    assert s.geometry.mixed_orientations == 2
    assert any("mixed orientations" in w for w in s.warnings)


def test_localizer_non_dicom_and_corrupt_files(tmp_path, caplog):
    files = write_ct(tmp_path / "ct")
    edit(files[0], ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    (tmp_path / "ct" / "notes.txt").write_text("not dicom")
    corrupt = tmp_path / "ct" / "corrupt.dcm"
    corrupt.write_bytes(files[1].read_bytes()[:600])  # header cut off mid-element
    truncated = tmp_path / "ct" / "truncated.dcm"
    data = files[2].read_bytes()
    truncated.write_bytes(data[: len(data) - 100])  # pixel data cut short
    with caplog.at_level(logging.WARNING):
        result = scan(tmp_path / "ct")
    assert result.non_dicom == 1
    assert sorted(p.name for p, _ in result.unreadable) == ["corrupt.dcm", "truncated.dcm"]
    assert "corrupt.dcm" in caplog.text and "truncated.dcm" in caplog.text
    assert "localizer" in result.skipped[0].reason
    assert len(result.series[0].frames) == SIZE[2] - 1


def test_four_d_phases_split_by_temporal_position(tmp_path):
    write_4d(tmp_path / "cine", phases=4)
    (s,) = scan(tmp_path / "cine").series
    assert len(s.phases) == 4 and s.slices_per_phase == 8
    assert [p.percent_rr for p in s.phases] == [0.0, 25.0, 50.0, 75.0]
    assert not any("duplicate" in w for w in s.warnings)
    summary = s.summary()
    assert len(summary["phases"]) == 4


def test_four_d_percent_from_trigger_time_and_rr(tmp_path):
    write_4d(tmp_path / "cine", phases=5, percents=False, rr_ms=1000.0)
    (s,) = scan(tmp_path / "cine").series
    assert [p.percent_rr for p in s.phases] == [0.0, 20.0, 40.0, 60.0, 80.0]


def test_dicomdir_lists_the_files(tmp_path):
    files = write_ct(tmp_path / "src")
    write_dicomdir(files, tmp_path / "media")
    (tmp_path / "media" / "stray.txt").write_text("x")
    result = scan(tmp_path / "media" / "DICOMDIR")
    assert result.dicomdir is not None and result.non_dicom == 0
    assert len(result.series[0].frames) == SIZE[2]
    assert scan(tmp_path / "media").dicomdir == tmp_path / "media" / "DICOMDIR"


def test_phi_only_on_request(tmp_path):
    write_ct(tmp_path / "ct", patient_name="DOE^JANE", patient_id="MRN123")
    result = scan(tmp_path / "ct")
    assert "DOE" not in str(result.summary()) and "MRN123" not in str(result.summary())
    assert result.summary(show_phi=True)["studies"][0]["patient"]["name"] == "DOE^JANE"


def test_bad_paths(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        scan(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DicomError, match="is empty"):
        scan(tmp_path / "empty")
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "a.txt").write_text("hello")
    with pytest.raises(DicomError, match="none is DICOM"):
        scan(tmp_path / "txt")


@pytest.mark.parametrize("iop, label", [
    ([1, 0, 0, 0, 1, 0], "axial LPS"),
    ([0, 1, 0, 0, 0, -1], "sagittal PIR"),
    ([1, 0, 0, 0, 0, -1], "coronal LIP"),
    ([-1, 0, 0, 0, 1, 0], "axial RPI"),
])
def test_orientation_label(iop, label):
    assert orientation_label(iop) == label


# -- real data -------------------------------------------------------------------------------------
def test_real_ct_series_with_empty_uids(shared_data):
    result = scan(shared_data / "dicom" / "ct_series_j2k" / "series")
    (s,) = result.series
    assert (s.series_uid, s.study_uid) == ("", "")
    assert len(s.frames) == 20 and s.matrix == (512, 512)
    assert s.geometry.spacing[2] == pytest.approx(2.0)
    assert s.transfer_syntaxes == ["JPEG 2000 Image Compression (Lossless Only)"]
    assert any("thickness 3 mm" in w for w in s.warnings)


def test_real_multiframe_folder_skips_the_segmentation(shared_data, tmp_path):
    src = shared_data / "dicom" / "multiframe"
    for name in ("eCT_Supplemental.dcm", "liver.dcm"):
        shutil.copy(src / name, tmp_path / name)
    result = scan(tmp_path)
    assert [s.modality for s in result.series] == ["CT"]
    assert result.series[0].multiframe and len(result.series[0].frames) == 2
    assert [(k.path.name, k.modality) for k in result.skipped] == [("liver.dcm", "SEG")]
    assert "segmentation" in result.skipped[0].reason


def test_files_without_preamble_are_read(tmp_path):
    """Old exports (ACR-NEMA style): no 128-byte preamble, no file meta, implicit VR."""
    files = write_ct(tmp_path / "ct", transfer_syntax="implicit-le")
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.file_meta
        ds.preamble = None
        pydicom.dcmwrite(f, ds, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert files[0].read_bytes()[:2] == b"\x08\x00"
    result = scan(tmp_path / "ct")
    assert result.non_dicom == 0 and len(result.series[0].frames) == SIZE[2]
    assert result.series[0].transfer_syntaxes == ["Implicit VR Little Endian"]


def test_dicomdir_with_missing_files_falls_back_to_the_folder(tmp_path, caplog):
    files = write_ct(tmp_path / "src")
    write_dicomdir(files, tmp_path / "media")
    referenced = [p for p in (tmp_path / "media").rglob("*") if p.is_file()
                  and p.name != "DICOMDIR"]
    moved = tmp_path / "media" / "moved"
    moved.mkdir()
    for p in referenced:
        p.rename(moved / p.name)
    with caplog.at_level(logging.WARNING):
        result = scan(tmp_path / "media")
    assert result.dicomdir is None and "lists no existing files" in caplog.text
    assert len(result.series[0].frames) == SIZE[2]


@pytest.mark.parametrize("modality, sop_class, reason", [
    ("SR", "1.2.840.10008.5.1.4.1.1.88.22", "structured report"),
    ("RTSTRUCT", "1.2.840.10008.5.1.4.1.1.481.3", "RT structure set"),
    ("PR", "1.2.840.10008.5.1.4.1.1.11.1", "presentation state"),
    ("KO", "1.2.840.10008.5.1.4.1.1.88.59", "key object selection"),
])
def test_non_image_objects_are_listed_as_skipped(tmp_path, modality, sop_class, reason):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    write_ct(tmp_path / "ct")
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = modality, generate_uid(), "1.2"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(tmp_path / "ct" / "OBJ0001", enforce_file_format=True)
    result = scan(tmp_path / "ct")
    assert len(result.series) == 1 and len(result.series[0].frames) == SIZE[2]
    assert [(k.path.name, k.modality) for k in result.skipped] == [("OBJ0001", modality)]
    assert reason in result.skipped[0].reason
