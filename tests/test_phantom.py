"""The synthetic congenital-heart CTA phantom and the bundled sample data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from cardioplan.errors import InputError
from cardioplan.labels import LABELS
from cardioplan.phantom import make_phantom
from cardioplan.seeds import read_seeds

V = {name: LABELS.value_of(name) for name in LABELS.names}


@pytest.fixture(scope="module")
def phantom() -> tuple[np.ndarray, np.ndarray, sitk.Image]:
    image, labels = make_phantom()
    return sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(labels), image


def _centroid(labels: np.ndarray, name: str, image: sitk.Image) -> np.ndarray:
    z, y, x = ndimage.center_of_mass(labels == V[name])
    return np.asarray(image.TransformContinuousIndexToPhysicalPoint((x, y, z)))


def test_types_geometry_and_label_values(phantom):
    arr, lab, image = phantom
    assert image.GetPixelID() == sitk.sitkInt16
    assert image.GetSize() == (160, 160, 130)
    assert image.GetSpacing() == (1.0, 1.0, 1.0)
    assert image.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert lab.dtype == np.uint8 and lab.shape == arr.shape
    present = set(np.unique(lab)) - {0}
    assert present == {V[n] for n in ("left_ventricle", "right_ventricle", "left_atrium",
                                      "right_atrium", "myocardium", "aorta", "pulmonary_artery",
                                      "superior_vena_cava", "inferior_vena_cava")}


def test_deterministic_and_seeded_noise():
    a1, l1 = make_phantom(spacing=(2.0, 2.0, 2.0), seed=3)
    a2, l2 = make_phantom(spacing=(2.0, 2.0, 2.0), seed=3)
    a3, _ = make_phantom(spacing=(2.0, 2.0, 2.0), seed=4)
    assert np.array_equal(sitk.GetArrayViewFromImage(a1), sitk.GetArrayViewFromImage(a2))
    assert np.array_equal(sitk.GetArrayViewFromImage(l1), sitk.GetArrayViewFromImage(l2))
    assert not np.array_equal(sitk.GetArrayViewFromImage(a1), sitk.GetArrayViewFromImage(a3))


def test_realistic_hounsfield_units(phantom):
    arr, lab, _ = phantom
    lv = np.median(arr[lab == V["left_ventricle"]])
    rv = np.median(arr[lab == V["right_ventricle"]])
    assert 380 <= lv <= 450 and 300 <= rv <= 380 and lv - rv >= 50  # bolus: left brighter
    assert 80 <= np.median(arr[lab == V["myocardium"]]) <= 120
    # air outside the body, lungs, fat, bone
    assert arr[0, 0, 0] < -900
    assert np.percentile(arr, 99.9) > 700  # ribs, sternum, spine
    assert np.count_nonzero((arr > -880) & (arr < -760)) > 100_000  # lungs
    assert np.count_nonzero((arr > -130) & (arr < -60)) > 50_000  # fat
    # noise: ~15 HU standard deviation inside the LV core
    core = ndimage.binary_erosion(lab == V["left_ventricle"], iterations=3)
    assert 10 <= arr[core].std() <= 20


def test_partial_volume_at_boundaries(phantom):
    arr, lab, _ = phantom
    lv = lab == V["left_ventricle"]
    rim = lv & ~ndimage.binary_erosion(lv)
    # blood voxels at the edge are pulled towards the myocardium by the blur
    assert np.median(arr[rim]) < np.median(arr[ndimage.binary_erosion(lv, iterations=3)]) - 40


def test_anatomy_orientation_in_lps(phantom):
    _, lab, image = phantom
    lv, rv = _centroid(lab, "left_ventricle", image), _centroid(lab, "right_ventricle", image)
    la, ra = _centroid(lab, "left_atrium", image), _centroid(lab, "right_atrium", image)
    assert lv[0] > rv[0] and lv[1] > rv[1]  # LV left (+x) and posterior (+y) of the RV
    assert la[1] == max(c[1] for c in (lv, rv, la, ra))  # LA most posterior
    assert ra[0] == min(c[0] for c in (lv, rv, la, ra))  # RA rightmost
    assert la[2] > lv[2] and ra[2] > rv[2]  # atria above the ventricles
    ao = lab == V["aorta"]
    assert ao[0].any()  # the descending aorta leaves the field of view below
    assert np.nonzero(ao.any(axis=(1, 2)))[0].max() >= ao.shape[0] - 20  # the arch on top
    heart = np.isin(lab, [V[n] for n in ("left_ventricle", "right_ventricle", "left_atrium",
                                          "right_atrium", "myocardium")])
    zz, yy, xx = np.nonzero(heart)
    assert 65 <= max(np.ptp(xx), np.ptp(yy), np.ptp(zz)) <= 95  # a child's heart, mm


def test_ventricular_septal_defect_joins_the_ventricles(phantom):
    _, lab, _ = phantom
    touching = ndimage.binary_dilation(lab == V["left_ventricle"]) & (lab == V["right_ventricle"])
    assert 10 <= touching.sum() <= 200  # a 7 mm hole: LV and RV blood meet only there
    _, intact = make_phantom(spacing=(1.0, 1.0, 1.0), vsd_diameter_mm=0)
    il = sitk.GetArrayFromImage(intact)
    assert not (ndimage.binary_dilation(il == V["left_ventricle"])
                & (il == V["right_ventricle"])).any()


def test_great_vessels_leave_their_ventricles(phantom):
    _, lab, _ = phantom
    for chamber, vessel in (("left_ventricle", "aorta"), ("right_ventricle", "pulmonary_artery"),
                            ("right_atrium", "superior_vena_cava"),
                            ("right_atrium", "inferior_vena_cava")):
        joined = ndimage.binary_dilation(lab == V[chamber]) & (lab == V[vessel])
        assert joined.any(), f"{vessel} does not open into {chamber}"
    # the aorta and the pulmonary artery never touch the wrong chamber
    assert not (ndimage.binary_dilation(lab == V["aorta"]) & (lab == V["right_ventricle"])).any()


def test_spacing_shape_and_scale():
    img, lab = make_phantom(spacing=(0.8, 0.8, 2.0), shape=(64, 64, 40), noise_hu=0)
    assert img.GetSize() == (64, 64, 40) and img.GetSpacing() == (0.8, 0.8, 2.0)
    full = sitk.GetArrayFromImage(make_phantom(noise_hu=0, blur_voxels=0)[1])
    small = sitk.GetArrayFromImage(make_phantom(scale=0.7, noise_hu=0, blur_voxels=0)[1])
    ratio = np.count_nonzero(small == V["left_ventricle"]) / \
        np.count_nonzero(full == V["left_ventricle"])
    assert 0.7 ** 3 * 0.9 < ratio < 0.7 ** 3 * 1.1
    with pytest.raises(InputError, match="spacing"):
        make_phantom(spacing=(1.0, -1.0, 1.0))
    with pytest.raises(InputError, match="scale"):
        make_phantom(scale=10)


def test_sample_data_matches_the_generator(sample_data):
    folder = sample_data / "phantom"
    files = sorted((folder / "dicom").glob("*.dcm"))
    assert len(files) == 130
    total = sum(f.stat().st_size for f in files)
    assert total < 6_000_000  # a few MB, losslessly compressed
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    series = reader.Execute()
    image, labels = make_phantom()
    assert series.GetSize() == image.GetSize()
    assert np.allclose(series.GetOrigin(), image.GetOrigin())
    assert np.array_equal(sitk.GetArrayViewFromImage(series),
                          sitk.GetArrayViewFromImage(image))  # lossless
    truth = sitk.ReadImage(str(folder / "labels.nii.gz"))
    assert np.array_equal(sitk.GetArrayViewFromImage(truth), sitk.GetArrayViewFromImage(labels))
    seeds = read_seeds(folder / "seeds.json")
    assert {s.structure for s in seeds} == {"left_ventricle", "right_ventricle", "left_atrium",
                                            "right_atrium"}
    arr = sitk.GetArrayViewFromImage(labels)
    for s in seeds:
        x, y, z = labels.TransformPhysicalPointToIndex(s.point)
        assert arr[z, y, x] == V[s.structure]
    assert json.loads((folder / "seeds.json").read_text())["schema"] == "cardioplan.seeds"
    readme = (sample_data / "README.md").read_text()
    assert "VSD" in readme and "Apache-2.0" in readme


def test_mr_phantom_has_bright_blood_contrast_and_the_ct_anatomy():
    from cardioplan.phantom import make_mr_phantom

    mr, mr_labels = make_mr_phantom(spacing=(2.0, 2.0, 2.0), seed=1)
    again, _ = make_mr_phantom(spacing=(2.0, 2.0, 2.0), seed=1)
    _, ct_labels = make_phantom(spacing=(2.0, 2.0, 2.0))
    assert mr.GetPixelID() == sitk.sitkFloat32
    assert np.array_equal(sitk.GetArrayViewFromImage(mr), sitk.GetArrayViewFromImage(again))
    lab = sitk.GetArrayViewFromImage(mr_labels)
    assert np.array_equal(lab, sitk.GetArrayViewFromImage(ct_labels))
    assert mr.GetOrigin() == ct_labels.GetOrigin()
    arr = sitk.GetArrayViewFromImage(mr)
    lv, rv = (np.median(arr[lab == V[n]]) for n in ("left_ventricle", "right_ventricle"))
    myo = np.median(arr[lab == V["myocardium"]])
    assert lv > 2.5 * myo and rv > 2.5 * myo       # bSSFP: blood bright, muscle dark grey
    assert arr.min() >= 0.0                         # a magnitude image (Rician noise)
    with pytest.raises(InputError, match="bias"):
        make_mr_phantom(bias=1.5)
