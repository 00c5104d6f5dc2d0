"""CT segmentation: accuracy on the phantom and on real chest CTA, errors, post-processing.

Floors are conservative (a few points below the figures in docs/segmentation.md) so that a
regression fails CI while machine-to-machine noise does not.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from cardioplan.errors import InputError, SegmentationError
from cardioplan.labels import LABELS
from cardioplan.phantom import make_phantom
from cardioplan.seeds import Seed, read_seeds
from cardioplan.volume import Volume
from segmentation.metrics import dice, hd95, structure_mask
from segmentation.pipeline import detect_modality, looks_like_ct, segment
from segmentation.postprocess import clean_labels, smooth_labels

CHAMBERS = ("left_ventricle", "right_ventricle", "left_atrium", "right_atrium")


def _dice(pred: sitk.Image, ref: sitk.Image, name: str) -> float:
    return dice(structure_mask(pred, name), structure_mask(ref, name))


@pytest.fixture(scope="module")
def phantom_15() -> tuple[sitk.Image, sitk.Image]:
    return make_phantom(spacing=(1.5, 1.5, 1.5))


@pytest.fixture(scope="module")
def auto_result(phantom_15):
    return segment(Volume(phantom_15[0], modality="CT"))


def test_phantom_automatic_accuracy(phantom_15, auto_result):
    truth = phantom_15[1]
    floors = {"heart": 0.87, "blood_pool": 0.88, "aorta": 0.90, "pulmonary_artery": 0.90,
              "myocardium": 0.72, "left_ventricle": 0.82, "right_ventricle": 0.88,
              "left_atrium": 0.93, "right_atrium": 0.93,  # 0.85 / 0.88 before the AV grooves
              "superior_vena_cava": 0.93, "inferior_vena_cava": 0.93}
    scores = {n: _dice(auto_result.labels, truth, n) for n in floors}
    failed = {n: round(s, 3) for n, s in scores.items() if s < floors[n]}
    assert not failed, f"Dice below floor: {failed} (all: {scores})"
    assert auto_result.method["chambers_from"] == "automatic"
    assert auto_result.labels.GetPixelID() == sitk.sitkUInt8
    assert auto_result.labels.GetSize() == phantom_15[0].GetSize()
    assert np.allclose(auto_result.labels.GetOrigin(), phantom_15[0].GetOrigin())


def test_phantom_volumes_in_result(phantom_15, auto_result):
    truth = sitk.GetArrayViewFromImage(phantom_15[1])
    voxel_ml = 1.5 ** 3 / 1000
    for name in ("aorta", "pulmonary_artery", "right_ventricle"):
        true_ml = np.count_nonzero(truth == LABELS.value_of(name)) * voxel_ml
        got = auto_result.structures[name]["volume_ml"]
        assert abs(got - true_ml) / true_ml < 0.15, (name, got, true_ml)
    heart = auto_result.structures["heart"]
    assert heart["composite"] and heart["volume_ml"] > 100


def test_voxel_counts_match_a_count_of_the_label_map(auto_result):
    # the case writer passes these to the .seg.nrrd export instead of counting again
    from cardioplan.arrays import label_counts

    np.testing.assert_array_equal(auto_result.voxel_counts(),
                                  label_counts(sitk.GetArrayViewFromImage(auto_result.labels)))


def test_phantom_vsd_keeps_ventricles_apart(auto_result):
    """The VSD joins LV and RV blood, yet the ventricles come out as two structures."""
    arr = sitk.GetArrayViewFromImage(auto_result.labels)
    lv, rv = arr == LABELS.value_of("left_ventricle"), arr == LABELS.value_of("right_ventricle")
    assert lv.sum() > 5000 and rv.sum() > 5000


def test_phantom_chambers_from_seeds(phantom_15, sample_data):
    image, truth = phantom_15
    seeds = read_seeds(sample_data / "phantom" / "seeds.json")
    result = segment(Volume(image, modality="CT"), seeds=seeds)
    assert result.method["chambers_from"] == "seeds"
    for name in CHAMBERS:
        assert _dice(result.labels, truth, name) >= 0.75, name


@pytest.mark.parametrize("flip", [(False, True, False), (True, False, True)])
def test_orientation_does_not_change_the_result(phantom_15, auto_result, flip):
    """Same physical anatomy stored with flipped axes (e.g. y-flipped NIfTI): same labels."""
    image, truth = (sitk.Flip(im, flip) for im in phantom_15)
    result = segment(Volume(image, modality="CT"))
    for name in ("heart", "aorta", "pulmonary_artery", "left_ventricle"):
        flipped = _dice(result.labels, truth, name)
        assert abs(flipped - _dice(auto_result.labels, phantom_15[1], name)) < 0.03, name


def test_thick_slices():
    image, truth = make_phantom(spacing=(0.8, 0.8, 3.0))
    result = segment(Volume(image, modality="CT"))
    assert result.labels.GetSize() == image.GetSize()
    for name, floor in (("heart", 0.85), ("aorta", 0.85), ("pulmonary_artery", 0.8),
                        ("left_ventricle", 0.85)):
        assert _dice(result.labels, truth, name) >= floor, name


def test_structures_option_keeps_only_those(phantom_15):
    result = segment(Volume(phantom_15[0], modality="CT"), structures=["heart", "aorta"])
    values = set(np.unique(sitk.GetArrayViewFromImage(result.labels))) - {0}
    allowed = {LABELS.value_of(n) for n in (*CHAMBERS, "myocardium", "blood_pool", "heart",
                                            "aorta")}
    assert values and values <= allowed
    assert "pulmonary_artery" not in result.structures


def test_chest_cta_heart_and_pulmonary_artery(shared_data):
    """Agreement with TotalSegmentator on a real adult chest CTA crop (floors, see docs)."""
    folder = shared_data / "ct" / "chest_cta"
    ct = sitk.ReadImage(str(folder / "pulm_ct_cropped.nii.gz"))
    heart_ref = sitk.Resample(sitk.ReadImage(str(folder / "heart_mask.nii.gz")), ct,
                              sitk.Transform(), sitk.sitkNearestNeighbor)
    pa_ref = sitk.ReadImage(str(folder / "pulmonary_artery_mask.nii.gz"))
    result = segment(Volume(ct, modality="CT"))
    # dense inflow is blood, not bone (0.80 before); epicardial edge, caval flare: 0.871
    assert dice(structure_mask(result.labels, "heart"), heart_ref) >= 0.85
    assert dice(structure_mask(result.labels, "pulmonary_artery"), pa_ref) >= 0.83


def test_chest_cta_aorta(shared_data):
    """The descending aorta of this aneurysm is lined with mural thrombus, which the reference
    includes: the thrombus step recovers most of it (floor just below the figure, see docs)."""
    folder = shared_data / "ct" / "chest_cta"
    ct = sitk.ReadImage(str(folder / "aorta_ct_cropped.nii.gz"))
    ref = sitk.ReadImage(str(folder / "aorta_mask.nii.gz"))
    result = segment(Volume(ct, modality="CT"))
    aorta = structure_mask(result.labels, "aorta")
    assert dice(aorta, ref) >= 0.88  # 0.72 before the lowest slices were kept, 0.889 now (docs)
    assert hd95(aorta, ref) <= 5.0  # 4.50 mm now, 4.97 before the in-plane lumen radius (docs)
    # what is labelled aorta lies in the reference aorta (no chamber or PA labelled aorta)
    ours = sitk.GetArrayViewFromImage(aorta).astype(bool)
    truth = sitk.GetArrayViewFromImage(ref).astype(bool)
    assert np.count_nonzero(ours & truth) >= 0.8 * np.count_nonzero(ours)
    # the lowest (abdominal) slices: the aorta's own lumen, not the visceral artery beside it
    low_ours, low_truth = ours[:9], truth[:9]
    assert np.count_nonzero(low_ours & low_truth) >= 0.6 * np.count_nonzero(low_truth)
    assert np.count_nonzero(low_ours & low_truth) >= 0.9 * np.count_nonzero(low_ours)


@pytest.mark.parametrize("name", ["example_ct.nii.gz", "example_ct_sm.nii.gz"])
def test_no_heart_in_abdomen(shared_data, name):
    image = sitk.ReadImage(str(shared_data / "ct" / "abdomen_small" / name))
    with pytest.raises(SegmentationError, match="no heart found"):
        segment(Volume(image, modality="CT"))


def test_two_dimensional_image_is_refused():
    with pytest.raises(InputError, match="3D volume"):
        segment(Volume(sitk.Image([64, 64], sitk.sitkInt16)))
    with pytest.raises(InputError, match="3D volume"):
        segment(Volume(sitk.Image([64, 64, 1], sitk.sitkInt16)))


def test_seed_outside_image_or_in_air_names_the_seed(phantom_15):
    volume = Volume(phantom_15[0], modality="CT")
    with pytest.raises(InputError, match="left_atrium.*outside the image"):
        segment(volume, seeds=[Seed("left_atrium", (500.0, 0.0, 0.0))])
    corner = phantom_15[0].TransformIndexToPhysicalPoint((1, 1, 1))
    with pytest.raises(InputError, match="right_ventricle.*in air"):
        segment(volume, seeds=[Seed("right_ventricle", corner)])


def test_modality_detection_and_ct_warning_on_mr(phantom_15, caplog):
    image = phantom_15[0]
    assert looks_like_ct(image)
    assert detect_modality(Volume(image, modality="OT"))[0] == "CT"
    # an MR-like image: positive intensities, no Hounsfield air
    mr = sitk.Cast(sitk.RescaleIntensity(sitk.Cast(image, sitk.sitkFloat32), 0, 1000),
                   sitk.sitkInt16)
    assert not looks_like_ct(mr)
    assert detect_modality(Volume(mr))[0] == "MR"
    with caplog.at_level(logging.WARNING, logger="segmentation"), \
            pytest.raises(SegmentationError):
        segment(Volume(mr), modality="ct")
    assert any("do not look like Hounsfield" in r.getMessage() for r in caplog.records)


def test_unknown_modality_and_structure_refused(phantom_15):
    volume = Volume(phantom_15[0])
    with pytest.raises(InputError, match="modality"):
        segment(volume, modality="pet")
    with pytest.raises(InputError, match="unknown structure"):
        segment(volume, structures=["spleen"])


# -- post-processing ----------------------------------------------------------------------------
def test_clean_labels_islands_holes_and_missing_structures():
    lab = np.zeros((30, 30, 30), np.uint8)
    lab[5:20, 5:20, 5:20] = 1
    lab[10:13, 10:13, 10:13] = 0  # an enclosed hole
    lab[25, 25, 25] = 1  # a stray island
    lab[2, 2, 2] = 6  # a structure too small to keep
    warnings: list[str] = []
    out = clean_labels(lab, spacing=(1.0, 1.0, 1.0), warnings=warnings,
                       expected=["left_ventricle", "pulmonary_artery"], sigma_mm=0)
    assert out[11, 11, 11] == 1 and out[25, 25, 25] == 0 and not (out == 6).any()
    assert any("aorta" in w and "removed" in w for w in warnings)
    assert any("pulmonary_artery was not found" in w for w in warnings)


def test_label_aware_smoothing_keeps_shared_boundaries():
    lab = np.zeros((40, 40, 40), np.uint8)
    lab[8:32, 8:32, 8:20] = 1
    lab[8:32, 8:32, 20:32] = 2  # touching neighbour
    noisy = lab.copy()
    rng = np.random.default_rng(0)
    flip = rng.random(lab.shape) < 0.02
    noisy[flip & (lab > 0)] = 0
    out = smooth_labels(noisy, spacing=(1.0, 1.0, 1.0), sigma_mm=1.0)
    inner = np.zeros_like(lab, bool)
    inner[10:30, 10:30, 10:30] = True
    assert (out[inner] > 0).all()  # no gaps opened inside or between the structures
    assert (out[inner & (lab == 1)] == 1).mean() > 0.98
    assert (out[inner & (lab == 2)] == 2).mean() > 0.98


def test_block_upsampling_matches_nearest_neighbour():
    """Working-grid labels go back to the scan grid exactly (BinShrink blocks, far-edge rest)."""
    from segmentation.ct import _upsample

    image = sitk.Image([13, 11, 10], sitk.sitkUInt8)
    image.SetSpacing([0.5, 0.5, 0.7])
    image.SetOrigin([-3.0, 2.0, 100.0])
    small = sitk.BinShrink(image, [3, 2, 2])
    arr = np.random.default_rng(0).integers(1, 9, small.GetSize()[::-1]).astype(np.uint8)
    coarse = sitk.GetImageFromArray(arr)
    coarse.CopyInformation(small)
    nearest = sitk.GetArrayFromImage(sitk.Resample(coarse, image, sitk.Transform(),
                                                   sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8))
    full = tuple(slice(0, n) for n in arr.shape)
    mine = _upsample(arr, full, [3, 2, 2], image.GetSize()[::-1])
    covered = nearest > 0  # SimpleITK leaves the incomplete last block empty
    assert np.array_equal(mine[covered], nearest[covered])
    assert (mine > 0).all()  # ... which the block upsampling fills from its neighbour
    roi = (slice(1, 4), slice(2, 5), slice(1, 4))
    part = _upsample(arr[roi], roi, [3, 2, 2], image.GetSize()[::-1])
    assert np.array_equal(part[2:8, 4:10, 3:12], mine[2:8, 4:10, 3:12])
    assert not part[:2].any() and not part[:, :4].any()


DIM_HU = 160.0
"""Partially opacified blood is brighter than this (half-way between a 60-85 HU wall and a
~230 HU blood threshold, as :func:`segmentation.ct.segment_ct` sets it)."""
BLOOD_CUT = 240.0
"""The blood threshold: thrombus and wall are darker, the contrast of a vessel brighter."""
WALL = {"dim_hu": DIM_HU, "blood_cut": BLOOD_CUT}


def _aorta_in_fat(wall_mm: float) -> tuple[np.ndarray, np.ndarray, sitk.Image]:
    """A vertical aorta: 8 mm contrast lumen, off-centre, inside a ring of 60 HU tissue whose
    outer radius is 8 + ``wall_mm`` mm, in fat (1 mm voxels)."""
    work = sitk.Image([60, 60, 30], sitk.sitkFloat32)
    z, y, x = np.mgrid[0:30, 0:60, 0:60].astype(float)
    arr = np.full((30, 60, 60), -100.0, np.float32)
    arr[np.hypot(x - 30, y - 30) <= 8.0 + wall_mm] = 60.0
    lumen = np.hypot(x - 30 - 0.5 * wall_mm, y - 30) <= 8.0
    arr[lumen] = 400.0
    labels = np.where(lumen, LABELS.value_of("aorta"), 0).astype(np.uint8)
    return labels, arr, work


def test_mural_thrombus_is_added_to_the_aorta():
    """A 10 mm thrombus ring bounded by fat becomes aorta; its fitted wall is the true one."""
    from segmentation.ct import _vessel_wall

    labels, arr, work = _aorta_in_fat(10.0)
    added = _vessel_wall(labels, arr, np.zeros(arr.shape, bool), work, **WALL)
    truth = arr > 0
    aorta = labels == LABELS.value_of("aorta")
    assert added > 0
    mid = slice(5, 25)  # the ends have fewer neighbours to agree with
    overlap = 2 * (aorta[mid] & truth[mid]).sum() / (aorta[mid].sum() + truth[mid].sum())
    assert overlap > 0.95
    assert not (aorta & (arr < 0)).any()  # no fat


def test_vessel_beside_the_aorta_is_not_thrombus():
    """A contrast-filled vessel (an intercostal artery, a hemiazygos vein) inside the fitted
    outer wall is another vessel: the thrombus joins, its contrast does not."""
    from segmentation.ct import _vessel_wall

    labels, arr, work = _aorta_in_fat(10.0)
    z, y, x = np.mgrid[0:30, 0:60, 0:60].astype(float)
    vessel = np.hypot(x - 30, y - 14.5) <= 1.5  # in the ring, 2 mm from its edge
    arr[vessel] = 400.0
    _vessel_wall(labels, arr, np.zeros(arr.shape, bool), work, **WALL)
    aorta = labels == LABELS.value_of("aorta")
    assert aorta[5:25][(arr[5:25] == 60.0)].mean() > 0.9  # the thrombus joins
    assert not aorta[vessel].any()


def test_normal_aortic_wall_is_left_to_the_lumen():
    """A 2 mm wall is not thrombus (the phantom's and a healthy aorta's): nothing is added."""
    from segmentation.ct import _vessel_wall

    labels, arr, work = _aorta_in_fat(2.0)
    before = labels.copy()
    assert _vessel_wall(labels, arr, np.zeros(arr.shape, bool), work, **WALL) == 0
    assert np.array_equal(labels, before)


def test_dim_false_lumen_behind_a_flap_joins_the_aorta():
    """A dissected aorta against soft tissue (crus, vertebra; no ring of fat): the bright
    true lumen, a 3 mm flap, then a 200 HU false lumen.  The rays cross the flap and stop
    where the dim blood meets the 60 HU tissue: the false lumen joins, the tissue does not."""
    from segmentation.ct import _vessel_wall

    work = sitk.Image([60, 60, 30], sitk.sitkFloat32)
    z, y, x = np.mgrid[0:30, 0:60, 0:60].astype(float)
    arr = np.full((30, 60, 60), 60.0, np.float32)  # soft tissue all round
    sac = np.hypot(x - 30, y - 30) <= 14.0
    arr[sac] = 200.0  # false lumen
    lumen = sac & (y < 24)  # true lumen: the front crescent
    arr[lumen] = 450.0
    arr[sac & (y >= 24) & (y < 27)] = 60.0  # the flap (and its partial volume)
    labels = np.where(lumen, LABELS.value_of("aorta"), 0).astype(np.uint8)
    added = _vessel_wall(labels, arr, np.zeros(arr.shape, bool), work, **WALL)
    aorta = labels == LABELS.value_of("aorta")
    mid = slice(5, 25)
    assert added > 0
    overlap = 2 * (aorta[mid] & sac[mid]).sum() / (aorta[mid].sum() + sac[mid].sum())
    assert overlap > 0.9
    assert (aorta & ~sac).sum() < 0.02 * sac.sum()  # the tissue around stays out


def test_rays_cross_a_septum_thinner_than_the_gap():
    """A ray through lumen, a 3-sample septum, dim blood, then tissue stops at the tissue when
    the septum is shorter than ``gap``, at the septum otherwise."""
    from segmentation.ct import _ray_stops

    through = np.array([[1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0]], bool)
    closing = ~through
    py = np.zeros((1, 14))
    px = np.arange(14, dtype=float)[None, :]
    assert _ray_stops(py, px, through, closing, gap=0)[2].tolist() == [4.0]
    assert _ray_stops(py, px, through, closing, gap=4)[2].tolist() == [11.0]


def test_dim_wall_ring_is_not_a_false_lumen():
    """Without dim blood (a 60 HU wall against 60 HU tissue) nothing is added."""
    from segmentation.ct import _vessel_wall

    labels, arr, work = _aorta_in_fat(10.0)
    arr[arr < 0] = 60.0  # no fat: the ring is not closed
    assert _vessel_wall(labels, arr, np.zeros(arr.shape, bool), work, **WALL) == 0


def test_wall_is_bridged_across_a_few_unfitted_slices():
    """A thrombus ring whose fat ring is broken for 3 slices (soft tissue touching it, so
    its rays run on) still gets its outer wall there, blended from the slices either side."""
    from segmentation.ct import _vessel_wall

    labels, arr, work = _aorta_in_fat(10.0)
    z, y, x = np.mgrid[0:30, 0:60, 0:60].astype(float)
    arr[14:17][(np.hypot(x - 30, y - 30) > 18.0)[14:17]] = 60.0  # tissue all round there
    _vessel_wall(labels, arr, np.zeros(arr.shape, bool), work, **WALL)
    ring = np.hypot(x - 30, y - 30) <= 18.0
    aorta = labels == LABELS.value_of("aorta")
    got = aorta[14:17] & ring[14:17]
    assert got.sum() > 0.9 * ring[14:17].sum()


def _rising_branch(rejoin: bool) -> tuple[np.ndarray, np.ndarray, sitk.Image]:
    """An aorta (9 mm tube along z, 1 mm voxels) with a 3 mm branch that parts from it
    upwards at z = 20 (running beside it, 2 mm apart); with ``rejoin`` the branch meets the
    aorta again at z = 32 (a lumen channel, not a branch).  The lowest slices are the tracked
    descending aorta."""
    work = sitk.Image([50, 50, 40], sitk.sitkUInt8)
    z, y, x = np.mgrid[0:40, 0:50, 0:50].astype(float)
    aorta = np.hypot(x - 20, y - 25) <= 9.0
    branch = (np.hypot(x - 35, y - 25) <= 3.0) & (z >= 20)
    aorta |= branch | ((z < 20) & (np.hypot(x - 26, y - 25) <= 9.0) & (x < 35))
    if rejoin:
        aorta |= (z >= 32) & (x >= 20) & (x <= 35) & (np.abs(y - 25) <= 3)
    labels = np.where(aorta, LABELS.value_of("aorta"), 0).astype(np.uint8)
    descending = np.zeros(aorta.shape, bool)
    descending[:3] = np.hypot(x - 20, y - 25)[:3] <= 4.0
    return labels, descending, work


def test_rising_branch_is_cut_where_it_parts():
    """A narrow dead end that parts upwards is a branch: unlabelled above the split only."""
    from segmentation.ct import _cut_rising_branches

    labels, descending, work = _rising_branch(rejoin=False)
    before = labels.copy()
    _cut_rising_branches(labels, descending, work, lumen_mm=6.0)
    cut = (before > 0) & (labels == 0)
    z, y, x = np.mgrid[0:40, 0:50, 0:50].astype(float)
    assert cut.any()
    assert (np.hypot(x - 35, y - 25)[cut] <= 3.0).all()  # only the branch
    assert (z[cut] >= 20).all()
    assert labels[np.hypot(x - 20, y - 25) <= 8.0].all()  # the aorta itself stays


def test_split_that_rejoins_is_not_a_branch():
    """A channel that meets the aorta again above (a sac split by thrombus) stays."""
    from segmentation.ct import _cut_rising_branches

    labels, descending, work = _rising_branch(rejoin=True)
    before = labels.copy()
    _cut_rising_branches(labels, descending, work, lumen_mm=6.0)
    assert np.array_equal(labels, before)


def _outflow(valve_mm: float, *, border_x: int = 78) -> tuple[np.ndarray, sitk.Image]:
    """A right ventricle (sphere) and its 9 mm outflow tract, narrowing to ``valve_mm`` at the
    valve (x = 58), then a 10 mm trunk tapering to 7 mm branches; the watershed's border is at
    ``border_x`` (pulmonary artery beyond).  1 mm voxels, tube along x."""
    work = sitk.Image([100, 40, 40], sitk.sitkUInt8)
    z, y, x = np.mgrid[0:40, 0:40, 0:100].astype(float)
    radius = np.interp(x, [0, 50, 58, 64, 70, 78, 100], [9, 9, valve_mm, 10, 10, 7, 7])
    tube = np.hypot(y - 20, z - 20) <= radius
    labels = np.zeros((40, 40, 100), np.uint8)
    labels[tube | (np.hypot(x - 15, np.hypot(y - 20, z - 20)) <= 15)] = \
        LABELS.value_of("right_ventricle")
    labels[tube & (x >= border_x)] = LABELS.value_of("pulmonary_artery")
    return labels, work


def test_pulmonary_valve_moves_the_border_back_to_the_narrowing():
    from segmentation.ct import _pulmonary_valve

    labels, work = _outflow(6.0)
    moved = _pulmonary_valve(labels, work)
    assert moved is not None and 15.0 <= moved <= 25.0  # border at x = 78, valve at x = 58
    pa_x = np.nonzero(labels == LABELS.value_of("pulmonary_artery"))[2]
    assert 54 <= pa_x.min() <= 62


def test_thick_dense_contrast_is_not_bone():
    """A ball of undiluted contrast (800 HU, 8 mm radius) in blood is not bone; a vertebra-like
    ring of cortex (800 HU, 1.5 mm) is, with the marrow it encloses."""
    from segmentation.ct import _bone_mask

    zz, yy, xx = np.mgrid[0:40, 0:60, 0:100].astype(float)
    arr = np.full(zz.shape, -100.0, np.float32)
    r_inflow = np.sqrt((zz - 20) ** 2 + (yy - 30) ** 2 + (xx - 25) ** 2)
    arr[r_inflow <= 14] = 450.0  # blood pool
    arr[r_inflow <= 8] = 800.0  # dense inflow
    r_bone = np.sqrt((yy - 30) ** 2 + (xx - 75) ** 2)  # a column of bone along z
    arr[r_bone <= 12] = 800.0
    arr[r_bone <= 10.5] = 250.0  # cancellous marrow
    bone = _bone_mask(arr, 450.0, spacing=(1.0, 1.0, 1.0))
    assert not bone[r_inflow <= 8].any()
    assert bone[r_bone <= 12].mean() > 0.95


def test_pulmonary_valve_without_a_narrowing_changes_nothing():
    """The border already at the valve (a narrow branch border, wider behind): unchanged."""
    from segmentation.ct import _pulmonary_valve

    labels, work = _outflow(9.0, border_x=58)
    before = labels.copy()
    assert _pulmonary_valve(labels, work) is None
    assert np.array_equal(labels, before)


def _valve_channel(plate_hu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, sitk.Image]:
    """An atrium (12 mm ball, 3 mm wall of ``plate_hu``) whose 6 mm valve channel runs 20 mm
    through fat, then through a ventricle's 4 mm wall of ``plate_hu`` (x = 48..52) into its
    14 mm cavity; the watershed's border is where the channel leaves the atrium (x = 28).
    1 mm voxels, channel along x."""
    work = sitk.Image([100, 44, 44], sitk.sitkUInt8)
    z, y, x = np.mgrid[0:44, 0:44, 0:100].astype(float)
    r_axis = np.hypot(y - 22, z - 22)
    r_atrium, r_ventricle = np.hypot(x - 16, r_axis), np.hypot(x - 66, r_axis)
    arr = np.full(x.shape, -100.0, np.float32)
    arr[(r_atrium <= 15) | (r_ventricle <= 18)] = plate_hu
    atrium, channel = r_atrium <= 12, (r_axis <= 6) & (x >= 20) & (x <= 60)
    ventricle = (r_ventricle <= 14) | channel & ~atrium
    arr[atrium | ventricle] = 300.0
    labels = np.zeros(x.shape, np.uint8)
    labels[atrium] = LABELS.value_of("left_atrium")
    labels[ventricle] = LABELS.value_of("left_ventricle")
    dist = ndimage.distance_transform_edt(atrium | ventricle).astype(np.float32)
    return labels, arr, dist, work


def test_valve_channel_through_fat_joins_the_atrium():
    """The channel's stretch through the atrioventricular groove's fat goes to the atrium: the
    border moves to where the channel enters the ventricle's myocardium (x = 48)."""
    from segmentation.ct import _atrioventricular_grooves

    labels, arr, dist, work = _valve_channel(100.0)
    moved = _atrioventricular_grooves(labels, arr, dist, np.zeros(arr.shape, bool), work,
                                      threshold=200.0)
    assert "left_atrium/left_ventricle" in moved
    lv_x = np.nonzero(labels == LABELS.value_of("left_ventricle"))[2]
    assert 45 <= lv_x.min() <= 51


def test_fat_walled_ventricle_is_left_alone():
    """A ventricle walled by fat throughout (a wall too thin to see): no border moves."""
    from segmentation.ct import _atrioventricular_grooves

    labels, arr, dist, work = _valve_channel(-100.0)
    before = labels.copy()
    assert _atrioventricular_grooves(labels, arr, dist, np.zeros(arr.shape, bool), work,
                                     threshold=200.0) == {}
    assert np.array_equal(labels, before)
