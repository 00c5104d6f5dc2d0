"""DICOM-SEG export read back with highdicom and pydicom: segments, codes, colours, voxels."""

from __future__ import annotations

import shutil

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from mesh_shapes import ROTATED, nested_spheres

from cardioplan.case import Case
from cardioplan.dicom.write import write_series
from cardioplan.errors import CaseError, DicomError, InputError
from cardioplan.export.dicom_seg import write_case_dicom_seg, write_dicom_seg
from cardioplan.ingest import import_case
from cardioplan.labels import LABELS


@pytest.fixture(scope="module")
def dicom_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("dseg")
    labels = nested_spheres(direction=ROTATED, extra=6)
    ct = sitk.Cast(labels, sitk.sitkInt16) * 100 - 50
    ct.CopyInformation(labels)
    write_series(ct, root / "dicom", modality="CT", series_description="test")
    case = import_case(root / "dicom", root / "case")
    on_grid = sitk.Resample(labels, case.read_image(), sitk.Transform(),
                            sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    case.write_labels(on_grid, produced_by="test")
    return case


def test_dicom_seg_references_source_and_round_trips_voxels(dicom_case, tmp_path):
    path = write_case_dicom_seg(dicom_case, tmp_path / "seg.dcm")
    record = dicom_case.inputs[0]
    ds = pydicom.dcmread(path)
    assert ds.Modality == "SEG"
    assert ds.FrameOfReferenceUID == record["frame_of_reference_uid"]
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == record["series_uid"]
    seg = hd.seg.segread(path)
    descs = list(seg.SegmentSequence)
    assert [d.TrackingID for d in descs] == ["left_ventricle", "myocardium", "aorta"]
    for d in descs:
        lab = LABELS[d.TrackingID]
        assert d.SegmentLabel == lab.display_name
        assert d.SegmentedPropertyTypeCodeSequence[0].CodeValue == lab.snomed_code
        rgb = hd.color.CIELabColor.from_dicom_value(
            d.RecommendedDisplayCIELabValue).to_rgb()
        assert np.allclose(rgb, lab.color, atol=2)
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=record["sop_instance_uids"], combine_segments=True)
    numbers_to_values = np.array([0] + [LABELS[d.TrackingID].value for d in descs])
    labels = sitk.GetArrayFromImage(dicom_case.read_labels())
    np.testing.assert_array_equal(numbers_to_values[pixels], labels)


def test_dicom_seg_subset_of_structures(dicom_case, tmp_path):
    path = write_case_dicom_seg(dicom_case, tmp_path / "aorta.dcm", structures=["aorta"])
    seg = hd.seg.segread(path)
    assert [d.TrackingID for d in seg.SegmentSequence] == ["aorta"]


def test_dicom_seg_needs_dicom_input(tmp_path):
    with Case.create(tmp_path / "nifti_case") as case:
        case.write_labels(nested_spheres(), produced_by="test")
    with pytest.raises(CaseError, match="seg.nrrd"):
        write_case_dicom_seg(Case.open(tmp_path / "nifti_case"), tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_dicom_seg_refuses_labels_off_the_source_grid(dicom_case, tmp_path):
    labels = dicom_case.read_labels()
    flipped = sitk.Flip(labels, [False, False, True])
    files = [dicom_case.inputs[0]["path"] + "/" + f for f in dicom_case.inputs[0]["files"]]
    cropped = labels[:, :, 1:]
    with pytest.raises(InputError, match="seg.nrrd"):
        write_dicom_seg(cropped, files, tmp_path / "x.dcm")
    # a flipped copy has the same slice positions, so it is accepted and stays consistent
    write_dicom_seg(flipped, files, tmp_path / "f.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_dicom_seg_with_moved_source_files_is_a_clear_error(dicom_case, tmp_path):
    moved = tmp_path / "moved_case"
    shutil.copytree(dicom_case.path, moved)
    case = Case.open(moved)
    case.update(lambda m: m["inputs"][0].__setitem__("path", str(tmp_path / "gone")))
    with pytest.raises(DicomError, match="re-import"):
        write_case_dicom_seg(case, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()
