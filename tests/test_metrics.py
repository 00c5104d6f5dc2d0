"""Dice, HD95 and ASSD against analytic ground truth, and evaluate_labels on label maps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import SimpleITK as sitk

from cardioplan.errors import InputError
from segmentation.metrics import assd, dice, evaluate_labels, hd95, resample_like


def _sphere(centre_mm, radius_mm, *, size=(64, 64, 64), spacing=(1.0, 1.0, 1.0),
            origin=(0.0, 0.0, 0.0), value=1) -> sitk.Image:
    img = sitk.Image(list(size), sitk.sitkUInt8)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    z, y, x = np.mgrid[:size[2], :size[1], :size[0]]
    pts = [origin[0] + x * spacing[0], origin[1] + y * spacing[1], origin[2] + z * spacing[2]]
    inside = sum((p - c) ** 2 for p, c in zip(pts, centre_mm, strict=True)) <= radius_mm ** 2
    out = sitk.GetImageFromArray((inside * value).astype(np.uint8))
    out.CopyInformation(img)
    return out


def _lens_dice(r: float, d: float) -> float:
    """Dice of two spheres of radius r whose centres are d apart (lens volume / sphere)."""
    lens = math.pi * (4 * r + d) * (2 * r - d) ** 2 / 12
    return lens / (4 / 3 * math.pi * r ** 3)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.7, 0.7, 1.5)])
def test_offset_spheres_match_the_analytic_figures(spacing):
    r, d = 15.0, 4.0
    size = tuple(int(64 / s) for s in spacing)
    a = _sphere((32, 32, 32), r, size=size, spacing=spacing)
    b = _sphere((32 + d, 32, 32), r, size=size, spacing=spacing)
    assert dice(a, b) == pytest.approx(_lens_dice(r, d), abs=0.01)
    # Surface distance from A to B at polar angle t is ~ d|cos t|, uniform in [0, d] over a
    # sphere: the 95th percentile is 0.95 d and the mean d / 2.
    voxel = max(spacing)
    assert hd95(a, b) == pytest.approx(0.95 * d, abs=voxel)
    assert assd(a, b) == pytest.approx(d / 2, abs=voxel / 2)


def test_concentric_spheres_distance_is_the_radius_difference():
    a = _sphere((32, 32, 32), 12)
    b = _sphere((32, 32, 32), 15)
    assert dice(a, b) == pytest.approx(2 * 12 ** 3 / (12 ** 3 + 15 ** 3), abs=0.01)
    assert hd95(a, b) == pytest.approx(3.0, abs=1.0)
    assert assd(a, b) == pytest.approx(3.0, abs=0.5)


def test_identical_masks_are_perfect_and_disjoint_are_zero():
    a = _sphere((20, 20, 20), 8)
    assert dice(a, a) == 1.0
    assert hd95(a, a) == 0.0 and assd(a, a) == 0.0
    b = _sphere((45, 45, 45), 8)
    assert dice(a, b) == 0.0
    centre_gap = math.dist((20, 20, 20), (45, 45, 45))
    assert hd95(a, b) > centre_gap - 16 - 1


def test_distances_use_the_physical_spacing():
    """The same voxel shift costs twice the millimetres on a twice-coarser axis."""
    fine = sitk.Image([30, 30, 30], sitk.sitkUInt8)
    fine[5:20, 5:20, 5:20] = 1
    shifted = sitk.Image([30, 30, 30], sitk.sitkUInt8)
    shifted[5:20, 5:20, 7:22] = 1          # 2 voxels along z
    assert hd95(fine, shifted) == pytest.approx(2.0)
    for img in (fine, shifted):
        img.SetSpacing((1.0, 1.0, 2.0))
    assert hd95(fine, shifted) == pytest.approx(4.0)


def test_empty_masks_give_nan_distances():
    a = _sphere((20, 20, 20), 8)
    empty = sitk.Image(a.GetSize(), sitk.sitkUInt8)
    assert dice(a, empty) == 0.0
    assert math.isnan(hd95(a, empty)) and math.isnan(assd(empty, a))
    assert math.isnan(dice(empty, empty))


def test_different_grids_are_refused_by_the_pairwise_metrics():
    a = _sphere((20, 20, 20), 8)
    b = _sphere((20, 20, 20), 8, size=(40, 40, 40))
    with pytest.raises(InputError, match="different grids"):
        dice(a, b)


def _acdc_like(offset_mm=0.0, *, spacing=(1.5, 1.5, 8.0), size=(60, 60, 10)) -> sitk.Image:
    """RV cavity=1, myocardium=2, LV cavity=3 (ACDC values) as concentric cylinders."""
    z, y, x = np.mgrid[:size[2], :size[1], :size[0]]
    xm, ym = x * spacing[0] - offset_mm, y * spacing[1]
    r_lv = np.hypot(xm - 45, ym - 45)
    arr = np.zeros(x.shape, np.uint8)
    arr[(r_lv < 22) & (z > 1) & (z < 9)] = 2
    arr[(r_lv < 15) & (z > 1) & (z < 9)] = 3
    arr[(np.hypot(xm - 75, ym - 45) < 12) & (r_lv >= 22) & (z > 1) & (z < 8)] = 1
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    return img


ACDC_MAP = {1: "right_ventricle", 2: "myocardium", 3: "left_ventricle"}


def _to_project_values(img: sitk.Image) -> sitk.Image:
    arr = sitk.GetArrayFromImage(img)
    out = np.zeros_like(arr)
    out[arr == 1], out[arr == 2], out[arr == 3] = 2, 5, 1
    res = sitk.GetImageFromArray(out)
    res.CopyInformation(img)
    return res


def test_evaluate_labels_maps_reference_values_and_composites():
    ref = _acdc_like()
    pred = _to_project_values(ref)
    res = evaluate_labels(pred, ref, ref_map=ACDC_MAP,
                          structures=["left_ventricle", "right_ventricle", "myocardium",
                                      "heart", "blood_pool"])
    for name, row in res.items():
        assert row["dice"] == 1.0, name
        assert row["hd95_mm"] == 0.0
        assert row["pred_volume_ml"] == pytest.approx(row["ref_volume_ml"])
    heart = res["heart"]["ref_volume_ml"]
    parts = sum(res[n]["ref_volume_ml"] for n in ("left_ventricle", "right_ventricle",
                                                   "myocardium"))
    assert heart == pytest.approx(parts)
    assert res["blood_pool"]["ref_volume_ml"] == pytest.approx(
        res["left_ventricle"]["ref_volume_ml"] + res["right_ventricle"]["ref_volume_ml"])


def test_evaluate_labels_defaults_to_the_reference_structures_and_notes_missing_ones():
    ref = _acdc_like()
    pred_arr = sitk.GetArrayFromImage(_to_project_values(ref))
    pred_arr[pred_arr == 2] = 0                     # the RV was not segmented
    pred = sitk.GetImageFromArray(pred_arr)
    pred.CopyInformation(ref)
    res = evaluate_labels(pred, ref, ref_map=ACDC_MAP)
    assert list(res) == ["left_ventricle", "right_ventricle", "myocardium"]
    rv = res["right_ventricle"]
    assert rv["dice"] == 0.0 and math.isnan(rv["hd95_mm"]) and "missing" in rv["note"]
    assert json.loads(json.dumps(rv["pred_volume_ml"])) == 0.0


def test_evaluate_labels_resamples_a_reference_on_another_grid():
    """A shifted 1 mm reference grid covering the same anatomy scores like the native one."""
    pred = _to_project_values(_acdc_like())
    fine = _acdc_like(spacing=(0.75, 0.75, 8.0), size=(120, 120, 10))
    res = evaluate_labels(pred, fine, ref_map=ACDC_MAP)
    assert res["left_ventricle"]["dice"] > 0.97
    assert res["left_ventricle"]["hd95_mm"] <= 1.5
    # the reference volume is measured on its own grid
    assert res["left_ventricle"]["ref_volume_ml"] == pytest.approx(
        res["left_ventricle"]["pred_volume_ml"], rel=0.05)


def test_evaluate_labels_refuses_disjoint_physical_spaces_and_unknown_names():
    ref = _acdc_like()
    far = sitk.Image(ref)
    far.SetOrigin((1000.0, 0.0, 0.0))
    with pytest.raises(InputError, match="physical space"):
        evaluate_labels(_to_project_values(ref), far, ref_map=ACDC_MAP)
    with pytest.raises(InputError, match="unknown structure"):
        evaluate_labels(ref, ref, ref_map={1: "left_ventrcle"})


def test_resample_like_is_exact_for_whole_voxel_offsets():
    big = sitk.Image([40, 40, 40], sitk.sitkUInt8)
    big[10:20, 12:22, 14:24] = 3
    crop = sitk.RegionOfInterest(big, [30, 30, 30], [5, 5, 5])
    back = resample_like(big, crop)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(crop))
