"""Loading one volume: geometry, HU and pixel type, decoders, 4D phases, gaps, tilt, real data."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from _dicom_synth import SIZE, ct_image, edit, oblique_direction, write_4d, write_ct

from cardioplan.dicom import load_volume, output_dtype, scan
from cardioplan.errors import DicomError, GeometryError, InputError

LOSSLESS = ["explicit-le", "implicit-le", "explicit-be", "rle", "jpeg2000-lossless",
            "jpeg-ls-lossless"]


@pytest.mark.parametrize("syntax", LOSSLESS)
def test_round_trip_oblique_lossless(tmp_path, syntax):
    img = ct_image(direction=oblique_direction(20))
    write_ct(tmp_path / "ct", img, transfer_syntax=syntax)
    vol = load_volume(tmp_path / "ct")
    assert vol.image.GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(sitk.GetArrayFromImage(vol.image), sitk.GetArrayFromImage(img))
    np.testing.assert_allclose(vol.image.GetOrigin(), img.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(vol.image.GetSpacing(), img.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(vol.image.GetDirection(), img.GetDirection(), atol=1e-6)
    assert vol.modality == "CT" and vol.description == "synthetic CT"


@pytest.mark.parametrize("syntax, max_err, mean_err", [("jpeg-ls-near-lossless", 2, 2),
                                                       ("jpeg2000", 2000, 40)])
def test_round_trip_lossy_within_tolerance(tmp_path, syntax, max_err, mean_err):
    img = ct_image()
    write_ct(tmp_path / "ct", img, transfer_syntax=syntax)
    vol = load_volume(tmp_path / "ct")
    diff = np.abs(sitk.GetArrayFromImage(vol.image).astype(int)
                  - sitk.GetArrayFromImage(img).astype(int))
    assert diff.max() <= max_err and diff.mean() < mean_err


def test_slices_shuffled_and_reversed_direction(tmp_path):
    """Slices sorted along the normal, whatever the file order; a flipped stack stays physical."""
    img = ct_image(direction=(1, 0, 0, 0, -1, 0, 0, 0, -1))
    files = write_ct(tmp_path / "ct", img)
    for k, f in enumerate(files):  # file names no longer follow slice order
        f.rename(f.with_name(f"x{(k * 7) % len(files):03d}.dcm"))
    vol = load_volume(tmp_path / "ct")
    for idx in [(0, 0, 0), (5, 9, 13), (31, 31, 19)]:
        p = img.TransformIndexToPhysicalPoint(idx)
        q = vol.image.TransformPhysicalPointToIndex(p)
        assert vol.image[q] == img[idx]


def test_hu_and_smallest_type(tmp_path):
    img = ct_image()
    img = sitk.Cast(img, sitk.sitkInt32) + 0
    arr = sitk.GetArrayFromImage(img)
    arr[0, 5, 5] = 3000
    big = sitk.GetImageFromArray(arr.astype(np.int32))
    big.CopyInformation(img)
    write_ct(tmp_path / "ct", big, rescale_intercept=-1024)  # stored uint16 0..4024
    vol = load_volume(tmp_path / "ct")
    a = sitk.GetArrayFromImage(vol.image)
    assert a.dtype == np.int16 and a.min() == arr.min() and a.max() == 3000
    write_ct(tmp_path / "mr", img, modality="MR", rescale_intercept=0.0, rescale_slope=0.5)
    mr = load_volume(tmp_path / "mr")
    assert mr.modality == "MR"
    assert mr.image.GetPixelID() == sitk.sitkFloat32  # non-integer slope: float32, not float64
    np.testing.assert_allclose(sitk.GetArrayFromImage(mr.image), sitk.GetArrayFromImage(img),
                               atol=0.5)


def test_output_dtype_rules():
    assert output_dtype(-1024, 3071, integral=True, stored=np.dtype("u2")) == np.int16
    assert output_dtype(0, 60000, integral=True, stored=np.dtype("u2")) == np.uint16
    assert output_dtype(0, 200, integral=True, stored=np.dtype("u1")) == np.uint8
    assert output_dtype(-1024, 70000, integral=True, stored=np.dtype("i4")) == np.int32
    assert output_dtype(0.0, 1.0, integral=False, stored=np.dtype("u2")) == np.float32


def test_bits_above_bits_stored_are_masked(tmp_path):
    img = ct_image()
    files = write_ct(tmp_path / "ct", img)
    for f in files:  # 12 bits stored; set an overlay bit above them in every pixel
        ds = pydicom.dcmread(f)
        raw = np.frombuffer(ds.PixelData, np.uint16) | np.uint16(0x8000)
        ds.PixelData = raw.tobytes()
        ds.BitsStored, ds.HighBit = 12, 11
        ds.save_as(f)
    vol = load_volume(tmp_path / "ct")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(vol.image), sitk.GetArrayFromImage(img))


def test_four_d_default_phase_is_mid_diastole(tmp_path):
    write_4d(tmp_path / "cine", phases=4)
    vol = load_volume(tmp_path / "cine")
    assert vol.image.GetSize() == (16, 16, 8)
    assert vol.phase["index"] == 4 and vol.phase["percent_rr"] == 75.0
    assert vol.phase["count"] == 4 and "mid-diastole" in vol.phase["choice"]
    assert sitk.GetArrayFromImage(vol.image)[0, 1, 1] == 300
    second = load_volume(tmp_path / "cine", phase="2")
    assert second.phase["index"] == 2 and sitk.GetArrayFromImage(second.image)[0, 1, 1] == 100
    near = load_volume(tmp_path / "cine", phase="40%")
    assert near.phase["percent_rr"] == 50.0
    with pytest.raises(InputError, match="out of range.*1..4"):
        load_volume(tmp_path / "cine", phase="9")


def test_four_d_without_percentages_defaults_to_first(tmp_path):
    write_4d(tmp_path / "cine", phases=3, percents=False, trigger=False)
    vol = load_volume(tmp_path / "cine")
    assert vol.phase["index"] == 1 and "unknown" in vol.phase["choice"]
    with pytest.raises(InputError, match="does not record the R-R percentage"):
        load_volume(tmp_path / "cine", phase="75%")


def test_missing_slice_refused_unless_allow_gaps(tmp_path):
    img = ct_image()
    files = write_ct(tmp_path / "ct", img)
    files[7].unlink()
    with pytest.raises(GeometryError, match=r"missing slices .*-88.00 and -84.00.*--allow-gaps"):
        load_volume(tmp_path / "ct")
    vol = load_volume(tmp_path / "ct", allow_gaps=True)
    assert vol.image.GetSize() == SIZE and vol.image.GetSpacing()[2] == pytest.approx(2.0)
    a, ref = sitk.GetArrayFromImage(vol.image), sitk.GetArrayFromImage(img)
    np.testing.assert_array_equal(a[6], ref[6])
    np.testing.assert_array_equal(a[8], ref[8])
    expected = np.rint((ref[6].astype(float) + ref[8]) / 2)  # interpolated halfway
    np.testing.assert_allclose(a[7], expected, atol=1)
    assert any("interpolated" in w for w in vol.warnings)


def test_mixed_orientations_refused(tmp_path):
    files = write_ct(tmp_path / "ct")
    for f in files[:6]:
        edit(f, ImageOrientationPatient=[1, 0, 0, 0, 0, -1])
    with pytest.raises(GeometryError, match="mixes 2 slice orientations"):
        load_volume(tmp_path / "ct")


def test_gantry_tilt_resampled_to_an_orthogonal_grid(tmp_path):
    img = ct_image()
    arr = sitk.GetArrayFromImage(img)
    arr[:] = -1000
    arr[:, 13:20, 16] = 1000  # a bright bar across y, 7 pixels wide
    img2 = sitk.GetImageFromArray(arr)
    img2.CopyInformation(img)
    files = write_ct(tmp_path / "ct", img2)
    shift = 2.0 * np.tan(np.radians(8))
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        edit(f, ImagePositionPatient=[x, y + k * shift, z])
    vol = load_volume(tmp_path / "ct")
    assert any("gantry tilt" in w for w in vol.warnings)
    np.testing.assert_allclose(vol.image.GetDirection(), np.eye(3).ravel(), atol=1e-9)
    shift_px = 19 * shift / 0.7  # total drift along y, in pixels: the grid is widened by it
    assert vol.image.GetSize() == (32, 32 + int(np.ceil(shift_px)), 20)
    # the rod's acquired physical position in slice k is preserved
    for k in (0, 10, 19):
        p = np.array(img2.TransformIndexToPhysicalPoint((16, 16, k))) + [0, k * shift, 0]
        idx = vol.image.TransformPhysicalPointToContinuousIndex(p.tolist())
        assert vol.image.EvaluateAtContinuousIndex(idx, sitk.sitkLinear) > 900


def test_series_choice(tmp_path):
    write_ct(tmp_path / "big", series_number=3, study_instance_uid="1.9")
    write_ct(tmp_path / "small", ct_image(size=(32, 32, 8)), series_number=5,
             study_instance_uid="1.9", uid_seed="s")
    vol = load_volume(tmp_path)
    assert vol.image.GetSize() == SIZE
    assert "largest CT volume" in vol.source["series_choice"]
    assert "--series" in vol.source["series_choice"]
    assert load_volume(tmp_path, series="5").image.GetSize()[2] == 8  # SeriesNumber
    assert load_volume(tmp_path, series="#2").image.GetSize()[2] == 8  # index
    uid = scan(tmp_path).series[1].series_uid
    assert load_volume(tmp_path, series=uid).image.GetSize()[2] == 8
    with pytest.raises(InputError, match="matches no series"):
        load_volume(tmp_path, series="42")


def test_equally_good_series_are_an_error_listing_them(tmp_path):
    write_ct(tmp_path / "a", series_number=2, series_description="soft", study_instance_uid="1")
    write_ct(tmp_path / "b", series_number=3, series_description="lung", study_instance_uid="1",
             uid_seed="b")
    with pytest.raises(DicomError, match=r"2 series are equally good.*soft.*lung.*--series"):
        load_volume(tmp_path)
    with pytest.raises(InputError, match="ambiguous"):
        load_volume(tmp_path, series="2")  # index 2 is 'lung', SeriesNumber 2 is 'soft'


def test_corrupt_file_among_good_ones_is_skipped(tmp_path, caplog):
    files = write_ct(tmp_path / "ct", ct_image(size=(32, 32, 21)))
    data = files[-1].read_bytes()
    files[-1].write_bytes(data[:-500])
    vol = load_volume(tmp_path / "ct")
    assert vol.image.GetSize() == (32, 32, 20)
    assert files[-1].name in caplog.text
    assert any(files[-1].name in w for w in vol.warnings)


def test_provenance_for_dicom_seg_export(tmp_path):
    files = write_ct(tmp_path / "ct")
    vol = load_volume(tmp_path / "ct")
    src = vol.source
    assert src["format"] == "dicom" and src["series_uid"] == vol.series_uid
    assert src["frame_of_reference_uid"] and src["study_uid"]
    assert src["sop_class_uid"] == "1.2.840.10008.5.1.4.1.1.2"
    assert src["sop_instance_uids"] == [str(pydicom.dcmread(f).SOPInstanceUID) for f in files]
    assert src["files"] == [str(f) for f in files]


# -- real data -------------------------------------------------------------------------------------
def test_real_ct_series_j2k(shared_data):
    folder = shared_data / "dicom" / "ct_series_j2k"
    vol = load_volume(folder / "series")
    img = vol.image
    a = sitk.GetArrayViewFromImage(img)
    assert img.GetSize() == (512, 512, 20) and img.GetPixelID() == sitk.sitkInt16
    assert img.GetSpacing()[2] == pytest.approx(2.0)
    assert (int(a.min()), int(a.max())) == (-1024, 1839)
    # the y-flipped segmentation shares the physical grid: resampling it is a pure index flip
    seg = sitk.ReadImage(str(folder / "example_seg_dicom.nii.gz"))
    on_ct = sitk.Resample(seg, img, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(on_ct),
                                  sitk.GetArrayViewFromImage(seg)[:, ::-1, :])
    corner = img.TransformIndexToPhysicalPoint((0, 0, 0))
    assert seg.TransformPhysicalPointToIndex(corner) == (0, 511, 0)


WG04_LOSSLESS = ["RLE", "J2KR", "JLSL", "JPLL"]


@pytest.mark.parametrize("image", ["CT1", "CT2", "MR1", "MR2", "MR3", "MR4"])
def test_real_wg04_decoders(shared_data, image):
    folder = shared_data / "dicom" / "wg04"
    ref_vol = load_volume(folder / f"{image}_UNC.dcm")
    ref = sitk.GetArrayFromImage(ref_vol.image).astype(np.float64)
    for variant in WG04_LOSSLESS:
        vol = load_volume(folder / f"{image}_{variant}.dcm")
        np.testing.assert_array_equal(sitk.GetArrayFromImage(vol.image), ref, err_msg=variant)
    span = ref.max() - ref.min()
    for variant in ("J2KI", "JLSN"):
        vol = load_volume(folder / f"{image}_{variant}.dcm")
        diff = np.abs(sitk.GetArrayFromImage(vol.image) - ref)
        assert diff.mean() < 0.02 * span, variant
        np.testing.assert_allclose(vol.image.GetOrigin(), ref_vol.image.GetOrigin())
    jply = folder / f"{image}_JPLY.dcm"
    if jply.exists():  # 12-bit lossy JPEG: decoded right (by DCMTK) or refused, never wrong
        if shutil.which("dcmdjpeg"):
            vol = load_volume(jply)
            diff = np.abs(sitk.GetArrayFromImage(vol.image) - ref)
            assert diff.mean() < 0.02 * span and np.percentile(diff, 99.9) < 0.1 * span
        else:
            with pytest.raises(DicomError, match="12-bit lossy JPEG.*apt install dcmtk"):
                load_volume(jply)


def test_jply_without_dcmtk_is_refused_clearly(shared_data, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # a machine without DCMTK
    with pytest.raises(DicomError, match="12-bit lossy JPEG.*refuses rather than risk wrong"):
        load_volume(shared_data / "dicom" / "wg04" / "MR2_JPLY.dcm")


def test_real_enhanced_ct_geometry_from_per_frame_headers(shared_data):
    path = shared_data / "dicom" / "multiframe" / "eCT_Supplemental.dcm"
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    frames = ds.PerFrameFunctionalGroupsSequence
    shared = ds.SharedFunctionalGroupsSequence[0]
    positions = [np.array(f.PlanePositionSequence[0].ImagePositionPatient, float) for f in frames]
    iop = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float)
    ps = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
    normal = np.cross(iop[:3], iop[3:])
    first = min(positions, key=lambda p: p @ normal)
    vol = load_volume(path)
    img = vol.image
    assert img.GetSize() == (512, 512, 2) and vol.modality == "CT"
    np.testing.assert_allclose(img.GetOrigin(), first)
    np.testing.assert_allclose(img.GetSpacing(), [ps[1], ps[0], abs((positions[1] - positions[0])
                                                                   @ normal)])
    np.testing.assert_allclose(np.array(img.GetDirection()).reshape(3, 3),
                               np.column_stack([iop[:3], iop[3:], normal]), atol=1e-9)
    raw = pydicom.dcmread(path).pixel_array.astype(np.int32) - 1024  # PixelValueTransformation
    order = sorted(range(2), key=lambda k: positions[k] @ normal)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), raw[order])


def test_real_enhanced_mr_all_syntaxes(shared_data):
    folder = shared_data / "dicom" / "multiframe"
    ref = load_volume(folder / "emri_small.dcm")
    assert ref.image.GetSize() == (64, 64, 10) and ref.modality == "MR"
    assert ref.image.GetSpacing() == pytest.approx((1.0, 1.0, 1.2))  # SpacingBetweenSlices
    assert any("position of the slices is unknown" in w for w in ref.warnings)
    expected = pydicom.dcmread(folder / "emri_small.dcm").pixel_array
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ref.image), expected)
    for name in ("emri_small_RLE.dcm", "emri_small_big_endian.dcm",
                 "emri_small_jpeg_2k_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm"):
        vol = load_volume(folder / name)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(vol.image), expected, err_msg=name)
        assert vol.image.GetSpacing() == ref.image.GetSpacing()
        assert vol.image.GetDirection() == ref.image.GetDirection()


def test_real_segmentation_is_not_loaded_as_an_image(shared_data):
    with pytest.raises(DicomError, match="no image series.*segmentation object"):
        load_volume(shared_data / "dicom" / "multiframe" / "liver.dcm")


def test_enhanced_multiframe_4d_per_frame_groups(tmp_path):
    from _dicom_synth import write_enhanced_4d

    path = tmp_path / "cine.dcm"
    write_enhanced_4d(path, phases=(10.0, 40.0, 70.0), slices=4)
    (s,) = scan(path).series
    assert s.multiframe and len(s.phases) == 3 and s.slices_per_phase == 4
    assert [p.percent_rr for p in s.phases] == [10.0, 40.0, 70.0]
    assert s.orientation == "sagittal PIR"
    vol = load_volume(path)  # default: closest to 75 % -> the 70 % phase
    assert vol.phase["index"] == 3 and vol.phase["percent_rr"] == 70.0
    img = vol.image
    assert img.GetSize() == (10, 12, 4)
    assert img.GetSpacing() == pytest.approx((1.25, 1.5, 6.0))
    np.testing.assert_allclose(img.GetOrigin(), [5.0, -20.0, 30.0])  # slice k=0 comes first
    np.testing.assert_allclose(np.array(img.GetDirection()).reshape(3, 3),
                               [[0, 0, -1], [1, 0, 0], [0, -1, 0]], atol=1e-12)
    a = sitk.GetArrayFromImage(img)
    # stored 100*t + k, HU-like = 2 * stored - 10, slices sorted along the normal
    np.testing.assert_array_equal(a[:, 0, 0], [2 * (200 + k) - 10 for k in range(4)])
    assert vol.source["frame_numbers"] == [12, 11, 10, 9]  # 1-based frames, in slice order
    first = load_volume(path, phase="1")
    assert sitk.GetArrayFromImage(first.image)[2, 0, 0] == 2 * 2 - 10


def test_irregular_spacing(tmp_path):
    files = write_ct(tmp_path / "ct")
    for k, f in enumerate(files):  # steps alternate 2.0 +- 0.06 mm (3 %): loads, warns
        ds = pydicom.dcmread(f)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        edit(f, ImagePositionPatient=[x, y, z + (0.06 if k % 2 else 0.0)])
    vol = load_volume(tmp_path / "ct")
    assert vol.image.GetSize() == SIZE
    assert any("irregular slice spacing" in w for w in vol.warnings)
    for k, f in enumerate(files):  # now +- 0.5 mm (25 %): refused unless --allow-gaps
        ds = pydicom.dcmread(f)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        edit(f, ImagePositionPatient=[x, y, z + (0.44 if k % 2 else 0.0)])
    with pytest.raises(GeometryError, match="irregular slice spacing.*--allow-gaps"):
        load_volume(tmp_path / "ct")
    vol = load_volume(tmp_path / "ct", allow_gaps=True)
    assert vol.image.GetSpacing()[2] == pytest.approx(2.0, abs=0.05)


def test_auto_choice_avoids_a_series_that_cannot_load(tmp_path):
    files = write_ct(tmp_path / "planes", ct_image(size=(32, 32, 30)), series_number=1,
                     study_instance_uid="7")
    for f in files[:10]:  # a 3-plane localiser without LOCALIZER in ImageType
        edit(f, ImageOrientationPatient=[1, 0, 0, 0, 0, -1])
    for f in files[10:20]:
        edit(f, ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    write_ct(tmp_path / "ct", series_number=2, study_instance_uid="7", uid_seed="ct")
    vol = load_volume(tmp_path)
    assert vol.image.GetSize() == SIZE and vol.source["series_number"] == 2


def test_per_slice_rescale_and_signed_storage(tmp_path):
    img = ct_image()
    files = write_ct(tmp_path / "ct", img, rescale_intercept=0.0)  # stored signed int16
    assert pydicom.dcmread(files[0]).PixelRepresentation == 1
    for k, f in enumerate(files[:5]):  # some slices with their own intercept and slope
        edit(f, RescaleIntercept=-1000 + k, RescaleSlope=2 if k % 2 else 1)
    vol = load_volume(tmp_path / "ct")
    a = sitk.GetArrayFromImage(vol.image)
    ref = sitk.GetArrayFromImage(img).astype(np.int32)
    assert a.dtype == np.int16
    for k in range(5):
        np.testing.assert_array_equal(a[k], ref[k] * (2 if k % 2 else 1) - 1000 + k)
    np.testing.assert_array_equal(a[5:], ref[5:])


def test_one_series_per_cardiac_phase_picks_mid_diastole(tmp_path):
    for number, pct in [(10, 0.0), (11, 40.0), (12, 70.0), (13, 90.0)]:
        write_ct(tmp_path / f"p{pct:g}", series_number=number, study_instance_uid="3",
                 uid_seed=f"p{pct}", series_description=f"CTA {pct:g}%",
                 extra={"NominalPercentageOfCardiacPhase": pct})
    vol = load_volume(tmp_path)
    assert vol.description == "CTA 70%"
    assert "closest to mid-diastole" in vol.source["series_choice"]


def test_float_image_round_trip_through_rescale(tmp_path):
    """write_series picks a slope for non-integer data; the load gives float32 back."""
    arr = np.random.default_rng(0).random((6, 16, 16)).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    files = write_ct(tmp_path / "mr", img, modality="MR")
    assert float(pydicom.dcmread(files[0]).RescaleSlope) < 1e-4
    vol = load_volume(tmp_path / "mr")
    assert vol.image.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_allclose(sitk.GetArrayFromImage(vol.image), arr, atol=1e-4)


def test_mixed_pixel_spacing_refused(tmp_path):
    files = write_ct(tmp_path / "ct")
    for f in files[10:]:
        edit(f, PixelSpacing=[0.5, 0.5])
    (s,) = scan(tmp_path / "ct").series
    assert any("mixed in-plane grids" in w for w in s.warnings)
    with pytest.raises(GeometryError, match="mixes in-plane grids"):
        load_volume(tmp_path / "ct")


def test_deflated_transfer_syntax(tmp_path):
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    img = ct_image()
    files = write_ct(tmp_path / "ct", img)
    for f in files:
        ds = pydicom.dcmread(f)
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.save_as(f, enforce_file_format=True)
    vol = load_volume(tmp_path / "ct")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(vol.image), sitk.GetArrayFromImage(img))


def test_series_by_description_words(tmp_path):
    write_ct(tmp_path / "a", series_number=2, series_description="CTA 0.6 Best Diast",
             study_instance_uid="1")
    write_ct(tmp_path / "b", series_number=3, series_description="CTA 0.6 Best Syst",
             study_instance_uid="1", uid_seed="b")
    assert load_volume(tmp_path, series="best syst").source["series_number"] == 3
    with pytest.raises(InputError, match="ambiguous.*Diast.*Syst"):
        load_volume(tmp_path, series="CTA")
