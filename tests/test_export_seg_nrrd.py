"""3D Slicer ``.seg.nrrd`` export: read back with pynrrd (a different NRRD library)."""

from __future__ import annotations

import logging

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from cardioplan.errors import InputError
from cardioplan.export.seg_nrrd import read_seg_nrrd_segments, write_seg_nrrd
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
