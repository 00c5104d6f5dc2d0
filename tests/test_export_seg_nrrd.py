"""3D Slicer ``.seg.nrrd`` export: read back with pynrrd (a different NRRD library)."""

from __future__ import annotations

import logging

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from cardioplan.errors import InputError
from cardioplan.export.seg_nrrd import read_seg_nrrd, read_seg_nrrd_segments, write_seg_nrrd
from cardioplan.labels import LABELS


def _label_map() -> sitk.Image:
    arr = np.zeros((30, 40, 50), np.uint8)  # z, y, x
    arr[5:20, 10:30, 10:40] = LABELS.value_of("left_ventricle")
    arr[22:28, 2:8, 3:9] = LABELS.value_of("aorta")
    arr[1:3, 35:38, 45:48] = LABELS.value_of("myocardium")
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 0.9, 2.0))
    img.SetOrigin((-100.0, 50.0, 20.0))
    img.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))  # RAS-stored, as many scanners write
    return img


def test_cropped_seg_nrrd_holds_the_same_labels_in_physical_space(tmp_path):
    labels = _label_map()
    path = write_seg_nrrd(labels, tmp_path / "labels.seg.nrrd", crop=True)
    data, header = nrrd.read(str(path))
    assert data.shape == (47, 38, 29), "only the labelled box plus one voxel is written"
    # the box starts at index (x, y, z) = (2, 1, 0): its origin is that voxel's position
    np.testing.assert_allclose(header["space origin"],
                               labels.TransformIndexToPhysicalPoint((2, 1, 0)))
    back = read_seg_nrrd(path, reference=labels)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(labels))


def test_seg_nrrd_round_trip_keeps_voxels_geometry_names_colours(tmp_path):
    labels = _label_map()
    path = write_seg_nrrd(labels, tmp_path / "labels.seg.nrrd")
    data, header = nrrd.read(str(path))
    # pynrrd returns x, y, z order
    np.testing.assert_array_equal(data.transpose(2, 1, 0), sitk.GetArrayFromImage(labels))
    assert header["space"] == "left-posterior-superior"
    np.testing.assert_allclose(header["space origin"], labels.GetOrigin())
    np.testing.assert_allclose(header["space directions"],
                               np.diag([-0.8, -0.9, 2.0]), atol=1e-9)
    segs = {header[f"Segment{i}_ID"]: i for i in range(3)}
    assert set(segs) == {"left_ventricle", "myocardium", "aorta"}
    for name, i in segs.items():
        lab = LABELS[name]
        assert header[f"Segment{i}_Name"] == lab.display_name
        assert int(header[f"Segment{i}_LabelValue"]) == lab.value
        assert header[f"Segment{i}_Layer"] == "0"
        rgb = [round(float(c) * 255) for c in header[f"Segment{i}_Color"].split()]
        assert tuple(rgb) == lab.color
        assert f"SCT^{lab.snomed_code}^{lab.snomed_meaning}" in header[f"Segment{i}_Tags"]
    # the aorta occupies x 3..8, y 2..7, z 22..27 (inclusive)
    assert header[f"Segment{segs['aorta']}_Extent"] == "3 8 2 7 22 27"


def test_seg_nrrd_reader_returns_cardioplan_names(tmp_path):
    path = write_seg_nrrd(_label_map(), tmp_path / "l.seg.nrrd")
    segs = read_seg_nrrd_segments(path)
    assert [s["name"] for s in segs] == ["left_ventricle", "myocardium", "aorta"]
    assert segs[2]["color"] == LABELS["aorta"].color


def test_seg_nrrd_structures_subset_and_missing_structure_warns(tmp_path, caplog):
    labels = _label_map()
    with caplog.at_level(logging.WARNING):
        path = write_seg_nrrd(labels, tmp_path / "sub.seg.nrrd",
                              structures=["aorta", "pulmonary_artery"])
    assert "pulmonary_artery" in caplog.text
    data, header = nrrd.read(str(path))
    assert set(np.unique(data)) == {0, LABELS.value_of("aorta")}
    assert header["Segment0_ID"] == "aorta" and "Segment1_ID" not in header


@pytest.mark.parametrize("structures", [None, ["aorta", "myocardium"]])
def test_seg_nrrd_with_given_counts_writes_the_same_file(tmp_path, structures):
    labels = _label_map()
    before = sitk.GetArrayFromImage(labels)
    counts = np.bincount(before.ravel(), minlength=256)
    paths = [write_seg_nrrd(labels, tmp_path / f"{i}.seg.nrrd", structures=structures, crop=True,
                            counts=c) for i, c in enumerate((None, counts))]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    data, header = nrrd.read(str(paths[1]))
    assert header["Segment0_ID"] == ("left_ventricle" if structures is None else "myocardium")
    if structures:  # cropped to what is left after the unwanted left ventricle is cleared
        assert set(np.unique(data)) == {0, LABELS.value_of("aorta"), LABELS.value_of("myocardium")}
    np.testing.assert_array_equal(sitk.GetArrayFromImage(labels), before)  # input unchanged


def test_seg_nrrd_empty_map_is_an_error_and_writes_nothing(tmp_path):
    empty = sitk.Image(10, 10, 10, sitk.sitkUInt8)
    with pytest.raises(InputError, match="none of the requested structures"):
        write_seg_nrrd(empty, tmp_path / "e.seg.nrrd")
    assert list(tmp_path.iterdir()) == []


def test_seg_nrrd_unknown_structure_lists_known_ones(tmp_path):
    with pytest.raises(InputError, match="left_ventricle"):
        write_seg_nrrd(_label_map(), tmp_path / "u.seg.nrrd", structures=["liver"])


def test_seg_nrrd_rejects_float_image(tmp_path):
    with pytest.raises(InputError, match="integers"):
        write_seg_nrrd(sitk.Image(5, 5, 5, sitk.sitkFloat32), tmp_path / "f.seg.nrrd")


def test_read_back_our_own_file(tmp_path):
    labels = _label_map()
    path = write_seg_nrrd(labels, tmp_path / "l.seg.nrrd")
    back = read_seg_nrrd(path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(labels))
    assert back.GetDirection() == labels.GetDirection()


def test_read_slicer_style_cropped_two_layer_file(tmp_path, caplog):
    """A file as Slicer writes it: cropped, overlapping segments in two layers, Slicer names."""
    layers = np.zeros((2, 6, 5, 4), np.uint8)  # pynrrd order: list, x, y, z
    layers[0, 1:3, 1:3, 1:3] = 1   # "Left Ventricle"
    layers[0, 4:6, 0:2, 0:2] = 2   # "Liver": not ours
    layers[1, 2:4, 2:4, 2:4] = 1   # "Segment_4", typed SNOMED aorta
    header = {
        "type": "unsigned char", "dimension": 4, "space": "left-posterior-superior",
        "kinds": ["list", "domain", "domain", "domain"],
        "space directions": [[np.nan] * 3, [2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0]],
        "space origin": [10.0, 20.0, 30.0], "encoding": "gzip",
        "Segment0_ID": "Segment_1", "Segment0_Name": "Left Ventricle",
        "Segment0_LabelValue": "1", "Segment0_Layer": "0", "Segment0_Color": "1 0 0",
        "Segment1_ID": "Segment_2", "Segment1_Name": "Liver",
        "Segment1_LabelValue": "2", "Segment1_Layer": "0", "Segment1_Color": "0 1 0",
        "Segment2_ID": "Segment_4", "Segment2_Name": "my vessel",
        "Segment2_LabelValue": "1", "Segment2_Layer": "1", "Segment2_Color": "0 0 1",
        "Segment2_Tags": "TerminologyEntry:Segmentation category and type - 3D Slicer General "
                         "Anatomy list~SCT^123037004^Anatomical Structure~SCT^15825003^Aorta~"
                         "^^~Anatomic codes - DICOM master list~^^~^^|",
    }
    path = tmp_path / "slicer.seg.nrrd"
    nrrd.write(str(path), layers, header)
    reference = sitk.Image(30, 30, 30, sitk.sitkInt16)  # 2 mm grid from 0: file voxel
    reference.SetSpacing((2.0, 2.0, 2.0))                # (i, j, k) -> (5+i, 10+j, 15+k)
    with caplog.at_level(logging.WARNING):
        labels = read_seg_nrrd(path, reference=reference)
    assert "Liver" in caplog.text and "overlaps" in caplog.text
    arr = sitk.GetArrayFromImage(labels)
    lv, aorta = LABELS.value_of("left_ventricle"), LABELS.value_of("aorta")
    assert np.count_nonzero(arr == aorta) == 8
    assert np.count_nonzero(arr == lv) == 7  # one voxel lost to the later, overlapping aorta
    assert arr[16, 11, 6] == lv and arr[17, 12, 7] == aorta and arr[18, 13, 8] == aorta
    assert set(np.unique(arr)) == {0, lv, aorta}
