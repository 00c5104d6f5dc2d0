"""The same anatomy in another equally valid form gives the same segmentation.

Real scans arrive stored feet-first, in RAS or sagittal voxel order, as oblique reformats with
zero-filled corners, in arbitrary MR units: none of that may change the labels (see
docs/evaluation.md, "Robustness to storage and scale").
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from cardioplan.labels import LABELS
from cardioplan.phantom import make_phantom
from cardioplan.seeds import Seed
from cardioplan.volume import Volume
from segmentation.metrics import dice, structure_mask
from segmentation.pipeline import segment
from segmentation.seeded import deepest_point


def _on_grid(labels: sitk.Image, grid: sitk.Image) -> np.ndarray:
    """``labels`` brought back onto ``grid`` (nearest neighbour: exact for a re-stored grid)."""
    back = sitk.Resample(labels, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                         sitk.sitkUInt8)
    return sitk.GetArrayFromImage(back)


@pytest.mark.parametrize("storage", ["SRA", "PIL"])
def test_ct_phantom_stored_slice_axis_first_gives_the_same_labels(storage):
    """A CT stored with the body axis as its first index axis (a sagittal or coronal series,
    read in another order): voxel-for-voxel the labels of the axial storage.  Before the CT
    pipeline re-stored its input axially, the slice-by-slice vessel rules ran across the body
    and the pulmonary artery fell from Dice 0.99 to 0.13."""
    image = make_phantom(spacing=(2.0, 2.0, 2.0))[0]
    axial = segment(Volume(image, modality="CT")).labels
    other = sitk.DICOMOrient(image, storage)
    assert other.GetSize() != image.GetSize()
    result = segment(Volume(other, modality="CT")).labels
    assert result.GetSize() == other.GetSize() and result.GetDirection() == other.GetDirection()
    np.testing.assert_array_equal(_on_grid(result, image), sitk.GetArrayViewFromImage(axial))


def test_chest_cta_stored_sagittally_keeps_its_pulmonary_artery(shared_data):
    """The real chest CTA crop re-stored sagittally (x slowest): the same pulmonary artery as
    the axial file (Dice 0.857 vs TotalSegmentator both ways; 0.0 before the fix)."""
    folder = shared_data / "ct" / "chest_cta"
    ct = sitk.ReadImage(str(folder / "pulm_ct_cropped.nii.gz"))
    sagittal = sitk.DICOMOrient(ct, "PSL")
    assert sagittal.GetSize()[2] == ct.GetSize()[0]
    labels = segment(Volume(sagittal, modality="CT"), structures=["pulmonary_artery"]).labels
    pa_ref = sitk.ReadImage(str(folder / "pulmonary_artery_mask.nii.gz")) > 0
    pa = _on_grid(structure_mask(labels, "pulmonary_artery"), ct).astype(bool)
    truth = sitk.GetArrayViewFromImage(pa_ref).astype(bool)
    assert 2 * np.count_nonzero(pa & truth) / (pa.sum() + truth.sum()) >= 0.83


def test_mr_oblique_reformat_with_zero_corners(shared_data):
    """An LA2018 volume resampled onto an oblique grid (zero outside the scan, as oblique MR
    reformats are) is segmented without error.  The flat zero fill used to set the front
    speed's gradient scale, and fast marching failed ("discriminant of quadratic equation is
    negative") on 4 of the 5 LA2018 cases.  Its accuracy is lower than on the original grid
    (0.53 vs 0.75 here): an open finding, see docs/evaluation.md."""
    folder = shared_data / "mri" / "la2018"
    image = sitk.ReadImage(str(folder / "VDOF02M8ZHEAADFMS6NP_image.nii.gz"))
    label = sitk.ReadImage(str(folder / "VDOF02M8ZHEAADFMS6NP_label.nii.gz"))
    oblique = _oblique_reformat(image, sitk.sitkLinear)
    ref = sitk.Cast(_oblique_reformat(label, sitk.sitkNearestNeighbor) == 1, sitk.sitkUInt8)
    labels = segment(Volume(oblique, modality="MR"),
                     seeds=[Seed("left_atrium", deepest_point(ref))]).labels
    assert dice(labels == LABELS.value_of("left_atrium"), ref) >= 0.45


def _oblique_reformat(image: sitk.Image, interpolator: int) -> sitk.Image:
    """``image`` resampled onto a grid turned 20/-15/25 degrees about x/y/z that covers the
    whole scan, 0 outside it (same spacing)."""
    rot = sitk.Euler3DTransform()
    rot.SetRotation(*np.deg2rad([20.0, -15.0, 25.0]))
    direction = np.asarray(rot.GetMatrix()).reshape(3, 3)
    size = image.GetSize()
    corners = np.array([image.TransformIndexToPhysicalPoint(
        [int(i * (n - 1)) for i, n in zip(idx, size, strict=True)])
        for idx in np.ndindex(2, 2, 2)]) @ direction
    spacing = image.GetSpacing()
    grid = [int(np.ceil(extent / s)) + 1
            for extent, s in zip(np.ptp(corners, axis=0), spacing, strict=True)]
    return sitk.Resample(image, grid, sitk.Transform(), interpolator,
                         (direction @ corners.min(axis=0)).tolist(), spacing,
                         direction.ravel().tolist(), 0, image.GetPixelID())


def test_mr_3d_working_grid_does_not_depend_on_slice_order(shared_data):
    """An LA2018 volume with its slice order reversed (same voxels at the same places, as a
    series read feet-first is): the same left atrium.  Its 0.625 mm voxels are segmented on a
    1.25 mm working grid; that grid used to start at the region's first voxel, so the reversed
    order sampled the other half of the slices (Dice 0.827 -> 0.781 on this case).  It now
    runs through the click."""
    folder = shared_data / "mri" / "la2018"
    image = sitk.ReadImage(str(folder / "V0MZOWJ6MU3RMRCV9EXR_image.nii.gz"))
    ref = sitk.ReadImage(str(folder / "V0MZOWJ6MU3RMRCV9EXR_label.nii.gz")) == 1
    seeds = [Seed("left_atrium", deepest_point(ref))]
    scores = []
    for stored in (image, _reverse_slices(image)):
        labels = segment(Volume(stored, modality="MR"), seeds=seeds).labels
        la = _on_grid(structure_mask(labels, "left_atrium"), image).astype(bool)
        truth = sitk.GetArrayViewFromImage(ref).astype(bool)
        scores.append(2 * np.count_nonzero(la & truth) / (la.sum() + truth.sum()))
    assert scores[0] >= 0.80
    assert abs(scores[1] - scores[0]) <= 0.002, scores


def _reverse_slices(image: sitk.Image) -> sitk.Image:
    """``image`` stored with its last index axis reversed, every voxel at its physical place."""
    out = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(image)[::-1].copy())
    direction = np.asarray(image.GetDirection()).reshape(3, 3).copy()
    out.SetOrigin(image.TransformIndexToPhysicalPoint([0, 0, image.GetSize()[2] - 1]))
    direction[:, 2] *= -1
    out.SetDirection(direction.ravel().tolist())
    out.SetSpacing(image.GetSpacing())
    return out


def _cta_vessel_dice(image: sitk.Image, mask_name: str, structure: str,
                     shared_data) -> float:
    """Dice of the automatic ``structure`` on ``image`` (a chest CTA crop, padded or cut)
    against TotalSegmentator's mask on the same grid."""
    mask = sitk.ReadImage(str(shared_data / "ct" / "chest_cta" / f"{mask_name}.nii.gz")) > 0
    truth = _on_grid(mask, image).astype(bool)
    labels = segment(Volume(image, modality="CT"), structures=[structure]).labels
    pred = sitk.GetArrayViewFromImage(structure_mask(labels, structure)).astype(bool)
    return 2 * np.count_nonzero(pred & truth) / (pred.sum() + truth.sum())


def test_chest_cta_padded_with_air_keeps_its_aorta(shared_data):
    """30 mm of air added on every face of the aorta crop is not anatomy: the descending aorta
    is still tracked and the aorta keeps Dice 0.885 (0.889 unpadded).  The padded file's
    lowest slice, blurred with the air, fell out of the 20 mm track and the aorta fell to
    0.70."""
    ct = sitk.ReadImage(str(shared_data / "ct" / "chest_cta" / "aorta_ct_cropped.nii.gz"))
    padded = sitk.ConstantPad(ct, [20, 20, 20], [20, 20, 20], -1024)
    assert _cta_vessel_dice(padded, "aorta_mask", "aorta", shared_data) >= 0.87


def test_chest_cta_cut_below_and_above_keeps_its_pulmonary_artery(shared_data):
    """The pulmonary crop with 15 mm less at the top and the bottom (a cardiac CTA that ends
    just below the heart, without the arch): pulmonary artery Dice 0.859 (0.857 uncut).  The
    descending aorta, no longer joined to the heart through the arch, was not tracked, and the
    pulmonary trunk was named aorta (0.000)."""
    ct = sitk.ReadImage(str(shared_data / "ct" / "chest_cta" / "pulm_ct_cropped.nii.gz"))
    cut = sitk.Crop(ct, [0, 0, 10], [0, 0, 10])
    assert _cta_vessel_dice(cut, "pulmonary_artery_mask", "pulmonary_artery",
                            shared_data) >= 0.83


def test_neonate_size_phantom_keeps_its_aorta():
    """The phantom at 0.6 scale (a neonate's heart, descending aorta about 3.5 mm in radius):
    the descending aorta passes the roundness test relative to the heart's size and the aorta
    keeps Dice 0.98.  With the former absolute 3.5 mm bound the inferior vena cava was tracked
    instead (aorta 0.50)."""
    image, truth = make_phantom(spacing=(1.0, 1.0, 1.0), scale=0.6)
    labels = segment(Volume(image, modality="CT")).labels
    aorta = LABELS.value_of("aorta")
    assert dice(labels == aorta, truth == aorta) >= 0.95
