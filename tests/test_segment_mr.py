"""The MR pipeline on real cine, LGE and congenital MR and on a synthetic stack.

Floors are conservative (below the validation figures in docs/evaluation.md) so that a
regression fails CI without making the suite flaky.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from cardioplan.errors import InputError, SegmentationError
from cardioplan.labels import LABELS
from cardioplan.seeds import Seed
from segmentation.metrics import dice, evaluate_labels, structure_mask
from segmentation.mr import segment_mr
from segmentation.seeded import deepest_point, grow_from_seeds, seed_indices

ACDC_MAP = {1: "right_ventricle", 2: "myocardium", 3: "left_ventricle"}


def _clicks(ref: sitk.Image, ref_map: dict[int, str]) -> list[Seed]:
    return [Seed(name, deepest_point(structure_mask(ref, name, ref_map)))
            for name in dict.fromkeys(ref_map.values())
            if np.any(sitk.GetArrayViewFromImage(structure_mask(ref, name, ref_map)))]


def _synthetic_stack(scale: float = 1.0, offset: float = 0.0) -> tuple[sitk.Image, sitk.Image]:
    """A short-axis-like stack: bright LV cylinder in a dark wall ring, bright RV beside it."""
    rng = np.random.default_rng(0)
    nz, ny, nx = 10, 96, 96
    z, y, x = np.mgrid[:nz, :ny, :nx]
    r_lv = np.hypot(y - 48, x - 44)
    lv = (r_lv < 14 - 0.6 * z) & (z < 9)
    wall = (r_lv < 21 - 0.6 * z) & ~lv & (z < 9)
    rv = (np.hypot(y - 48, (x - 72) * 1.6) < 13) & ~wall & ~lv & (z < 7)
    img = np.full((nz, ny, nx), 0.25)
    img[wall] = 0.3
    img[np.hypot(y - 48, x - 48) > 40] = 0.05          # lung-like dark
    img[lv | rv] = 0.9
    img += rng.normal(0, 0.04, img.shape)
    image = sitk.GetImageFromArray((img * scale + offset).astype(np.float32))
    image.SetSpacing((1.5, 1.5, 8.0))
    ref = np.zeros(img.shape, np.uint8)
    ref[lv], ref[rv], ref[wall] = 3, 1, 2
    ref_img = sitk.GetImageFromArray(ref)
    ref_img.CopyInformation(image)
    return image, ref_img


def test_synthetic_stack_is_segmented_in_any_intensity_scale():
    image, ref = _synthetic_stack()
    seeds = _clicks(ref, ACDC_MAP)
    labels = segment_mr(image, seeds=seeds)
    assert labels.GetPixelID() == sitk.sitkUInt8
    assert labels.GetSize() == image.GetSize() and labels.GetSpacing() == image.GetSpacing()
    res = evaluate_labels(labels, ref, ref_map=ACDC_MAP)
    assert res["left_ventricle"]["dice"] > 0.9
    assert res["right_ventricle"]["dice"] > 0.85
    assert res["myocardium"]["dice"] > 0.7
    # raw scanner units or z-scores: the same answer
    scaled, _ = _synthetic_stack(scale=2500.0, offset=-700.0)
    again = segment_mr(scaled, seeds=seeds)
    assert dice(labels == 1, again == 1) > 0.99


@pytest.fixture(scope="module")
def acdc(shared_data):
    folder = shared_data / "mri" / "acdc"
    return {frame: (sitk.ReadImage(str(folder / f"patient001_{frame}.nii.gz")),
                    sitk.ReadImage(str(folder / f"patient001_{frame}_gt.nii.gz")))
            for frame in ("frame01", "frame02")}


@pytest.mark.parametrize("frame, floors", [
    ("frame01", {"left_ventricle": 0.9, "right_ventricle": 0.8, "myocardium": 0.77}),
    ("frame02", {"left_ventricle": 0.84, "right_ventricle": 0.68, "myocardium": 0.67}),
])
def test_acdc_one_click_per_structure(acdc, frame, floors):
    image, ref = acdc[frame]
    labels = segment_mr(image, seeds=_clicks(ref, ACDC_MAP))
    res = evaluate_labels(labels, ref, ref_map=ACDC_MAP)
    for name, floor in floors.items():
        assert res[name]["dice"] >= floor, (name, res[name])
    present = set(np.unique(sitk.GetArrayViewFromImage(labels))) - {0}
    assert present == {LABELS.value_of(n) for n in floors}


@pytest.mark.parametrize("case, floors", [
    # end-systolic frames that failed before: blood strands through the wall spanned by the
    # LV's hull (LV 0.78), a bright wall read as blood (myocardium 0.48), a thin right
    # ventricle whose click level dropped the threshold into the myocardium (myocardium 0.40)
    ("patient045_frame02", {"left_ventricle": 0.88}),
    ("patient019_frame01", {"myocardium": 0.7,
                            # its apical slice leaked out of an open wall (LV 0.93)
                            "left_ventricle": 0.94}),
    ("patient030_frame02", {"myocardium": 0.8}),
    # the RV ran on into the right atrium and outflow tract of two basal slices (RV 0.52)
    # ... and its LV ran into the atrium of the basal slice (LV 0.61)
    ("patient033_frame02", {"right_ventricle": 0.7, "left_ventricle": 0.68}),
    # its RV drifted into apical fat away from the septum (RV 0.64)
    ("patient024_frame02", {"right_ventricle": 0.78}),
    # its apical RV blood against the septum, split off by trabeculae, was never grown into
    # (RV 0.64)
    ("patient045_frame01", {"right_ventricle": 0.78}),
])
def test_acdc_hard_frames_keep_their_fixes(shared_data, case, floors):
    folder = shared_data / "mri" / "acdc"
    image = sitk.ReadImage(str(folder / f"{case}.nii.gz"))
    ref = sitk.ReadImage(str(folder / f"{case}_gt.nii.gz"))
    labels = segment_mr(image, seeds=_clicks(ref, ACDC_MAP))
    res = evaluate_labels(labels, ref, ref_map=ACDC_MAP)
    for name, floor in floors.items():
        assert res[name]["dice"] >= floor, (name, res[name])


def test_acdc_clicks_one_slice_off_keep_every_structure(shared_data):
    """Clicks one slice towards the base (a user's ordinary miss): the RV carried over from
    its own slice covered the LV's click there, and the LV and its wall were lost (0.000)."""
    folder = shared_data / "mri" / "acdc"
    image = sitk.ReadImage(str(folder / "patient019_frame01.nii.gz"))
    ref = sitk.ReadImage(str(folder / "patient019_frame01_gt.nii.gz"))
    # this stack's base lies towards slice 0 (its LV's area falls towards the last slice)
    step = -np.asarray(image.GetDirection()).reshape(3, 3)[:, 2] * image.GetSpacing()[2]
    seeds = [Seed(s.structure, tuple(np.asarray(s.point) + step)) for s in _clicks(ref, ACDC_MAP)]
    for seed in seeds:  # each moved click still lies in its own structure
        index = ref.TransformPhysicalPointToIndex(seed.point)
        assert structure_mask(ref, seed.structure, ACDC_MAP)[index], seed
    res = evaluate_labels(segment_mr(image, seeds=seeds), ref, ref_map=ACDC_MAP)
    assert res["left_ventricle"]["dice"] >= 0.93, res["left_ventricle"]
    assert res["right_ventricle"]["dice"] >= 0.88, res["right_ventricle"]
    assert res["myocardium"]["dice"] >= 0.6, res["myocardium"]


def test_acdc_left_ventricle_found_without_a_click(acdc):
    image, ref = acdc["frame01"]
    labels = segment_mr(image, seeds=[])
    res = evaluate_labels(labels, ref, ref_map=ACDC_MAP, structures=["left_ventricle"])
    assert res["left_ventricle"]["dice"] >= 0.87


@pytest.mark.parametrize("case, floor", [
    # a round bright vessel ringed by lung or fat outscored the LV before its wall had to be
    # mid-grey myocardium; they scored Dice 0
    ("patient022_frame02", 0.8), ("patient039_frame01", 0.8),
    # hypertrophied systole: clicked at the winning blob's own deepest point (a papillary-
    # crowded slice) the blood threshold fell into the wall and the LV took the heart (0.23)
    ("patient028_frame02", 0.7),
])
def test_acdc_automatic_left_ventricle_is_not_a_vessel(shared_data, case, floor):
    folder = shared_data / "mri" / "acdc"
    image = sitk.ReadImage(str(folder / f"{case}.nii.gz"))
    ref = sitk.ReadImage(str(folder / f"{case}_gt.nii.gz"))
    labels = segment_mr(image, seeds=[])
    res = evaluate_labels(labels, ref, ref_map=ACDC_MAP, structures=["left_ventricle"])
    assert res["left_ventricle"]["dice"] >= floor


def test_la2018_left_atrium_from_one_click(shared_data):
    folder = shared_data / "mri" / "la2018"
    image = sitk.ReadImage(str(folder / "V0MZOWJ6MU3RMRCV9EXR_image.nii.gz"))
    ref = sitk.ReadImage(str(folder / "V0MZOWJ6MU3RMRCV9EXR_label.nii.gz"))
    seeds = _clicks(ref, {1: "left_atrium"})
    labels = segment_mr(image, seeds=seeds)          # default: the seeded structures only
    res = evaluate_labels(labels, ref, ref_map={1: "left_atrium"})
    assert res["left_atrium"]["dice"] >= 0.80
    assert set(np.unique(sitk.GetArrayViewFromImage(labels))) == {0, LABELS["left_atrium"].value}


def test_la2018_left_atrium_does_not_depend_on_where_the_click_lies(shared_data):
    """A click 6 mm off the atrium's centre (in-plane, every direction that stays inside it)
    still finds the atrium: its size is measured from the blood around the click, not at it."""
    folder = shared_data / "mri" / "la2018"
    image = sitk.ReadImage(str(folder / "V0MZOWJ6MU3RMRCV9EXR_image.nii.gz"))
    ref = sitk.ReadImage(str(folder / "V0MZOWJ6MU3RMRCV9EXR_label.nii.gz"))
    centre = np.asarray(_clicks(ref, {1: "left_atrium"})[0].point)
    inside = sitk.GetArrayViewFromImage(ref)
    scores = []
    for axis in range(2):                            # in-plane: x and y
        for sign in (-1.0, 1.0):
            point = centre.copy()
            point[axis] += sign * 6.0
            x, y, z = ref.TransformPhysicalPointToIndex(point.tolist())
            if not inside[z, y, x]:
                continue
            labels = segment_mr(image, seeds=[Seed("left_atrium", tuple(point))])
            scores.append(evaluate_labels(labels, ref, ref_map={1: "left_atrium"})
                          ["left_atrium"]["dice"])
    assert len(scores) >= 3, scores
    assert min(scores) >= 0.75, scores


def test_hvsmr_slice_with_six_structures(shared_data, validation_script):
    v = validation_script
    folder = shared_data / "mri" / "hvsmr2_png"
    image, ref = v.hvsmr_slice(folder / "images" / "10001_121.png",
                               folder / "masks" / "10001_121.png")
    assert image.GetSize() == (512, 512, 1)
    seeds = v.simulated_clicks(ref, {lab.value: lab.name for lab in LABELS})
    names = [s.structure for s in seeds]
    assert {"right_atrium", "aorta", "pulmonary_artery"} <= set(names)
    labels = segment_mr(image, seeds=seeds, structures=names)
    res = evaluate_labels(labels, ref, structures=[n for n in names if n in v.HVSMR_SCORED])
    assert np.mean([r["dice"] for r in res.values()]) >= 0.81
    assert res["aorta"]["dice"] >= 0.92


def test_bad_input_is_refused_with_a_message():
    image, ref = _synthetic_stack()
    lv = _clicks(ref, {3: "left_ventricle"})
    with pytest.raises(InputError, match="3D image"):
        segment_mr(sitk.Image([32, 32], sitk.sitkFloat32), seeds=[])
    with pytest.raises(InputError, match="seed left_ventricle .* outside the image"):
        segment_mr(image, seeds=[Seed("left_ventricle", (500.0, 0.0, 0.0))])
    with pytest.raises(InputError, match="MR pipeline segments"):
        segment_mr(image, seeds=[*lv, Seed("heart", lv[0].point)])
    with pytest.raises(InputError, match="needs one seed each"):
        segment_mr(image, seeds=lv, structures=["left_ventricle", "aorta"])
    iso = sitk.Image([40, 40, 40], sitk.sitkFloat32)
    iso[10:30, 10:30, 10:30] = 1.0
    with pytest.raises(SegmentationError, match="click the left ventricle"):
        segment_mr(iso, seeds=[])


def test_seed_indices_convert_physical_points_once():
    img = sitk.Image([10, 20, 30], sitk.sitkUInt8)
    img.SetSpacing((2.0, 1.0, 0.5))
    img.SetOrigin((-10.0, 5.0, 0.0))
    (name, zyx), = seed_indices(img, [Seed("aorta", (-6.0, 8.0, 2.0))])
    assert name == "aorta" and zyx == (4, 3, 2)


def test_grow_from_seeds_splits_one_cavity_fairly_and_stops_at_edges():
    feature = np.ones((1, 21, 41), np.float32)
    feature[0, :, 30] = 50.0                          # a strong edge at x = 30
    lab = grow_from_seeds(feature, {1: [(0, 10, 5)], 2: [(0, 10, 25)]}, spacing_zyx=(1, 1, 1))
    # two clicks in one flat region split it half-way; the edge holds the second front
    assert lab[0, 10, 14] == 1 and lab[0, 10, 16] == 2
    assert (lab[0, :, 31:] == 2).all()          # behind the edge, still the nearest front
    bg = np.zeros_like(feature, bool)
    bg[0, :, 38:] = True
    lab = grow_from_seeds(feature, {1: [(0, 10, 5)], 2: [(0, 10, 25)]}, spacing_zyx=(1, 1, 1),
                          background=bg)
    assert (lab[0, :, 32:] == 0).all()          # background wins beyond the edge


def test_mr_phantom_whole_heart_one_click_per_chamber():
    """The bright-blood MR phantom (bias field, Rician noise; fat as bright as blood): one
    click per chamber gives all four; the ventricles do not run into the great arteries nor the
    right atrium into the caval veins (measured 0.971 / 0.955 / 0.877 / 0.889 at 1.5 mm)."""
    from cardioplan.phantom import make_mr_phantom

    image, ref = make_mr_phantom(spacing=(1.5, 1.5, 1.5))
    names = ["left_ventricle", "right_ventricle", "left_atrium", "right_atrium"]
    seeds = [Seed(n, deepest_point(ref == LABELS.value_of(n))) for n in names]
    labels = segment_mr(image, seeds=seeds)
    res = evaluate_labels(labels, ref, structures=names)
    floors = {"left_ventricle": 0.94, "right_ventricle": 0.93, "left_atrium": 0.92,
              "right_atrium": 0.85}
    assert {n: res[n]["dice"] >= f for n, f in floors.items()} == dict.fromkeys(names, True), res
    out = sitk.GetArrayViewFromImage(labels)
    truth = sitk.GetArrayViewFromImage(ref)
    for vessel in ("aorta", "pulmonary_artery", "superior_vena_cava", "inferior_vena_cava"):
        leaked = np.count_nonzero((truth == LABELS.value_of(vessel)) & (out > 0))
        assert leaked * 1.5 ** 3 / 1000 < 2.0, (vessel, leaked)
