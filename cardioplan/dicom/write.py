"""Write a SimpleITK image as a DICOM series: one CT/MR Image Storage file per slice.

Used to build the bundled phantom's sample data, the ingest benchmark and the synthetic traps in
the tests (gaps, tilted or mixed orientations, 4D phases...).  The geometry written
(ImagePositionPatient, ImageOrientationPatient, PixelSpacing) is the image's own, whatever its
direction, so reading the files back gives the same physical grid.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    JPEG2000,
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)

from cardioplan import __version__
from cardioplan.errors import InputError
from cardioplan.fileio import atomic_path

__all__ = ["write_series", "TRANSFER_SYNTAXES", "SOP_CLASSES", "make_uid"]

TRANSFER_SYNTAXES: dict[str, UID] = {
    "explicit-le": ExplicitVRLittleEndian,
    "implicit-le": ImplicitVRLittleEndian,
    "explicit-be": ExplicitVRBigEndian,
    "rle": RLELossless,
    "jpeg2000-lossless": JPEG2000Lossless,
    "jpeg2000": JPEG2000,
    "jpeg-ls-lossless": JPEGLSLossless,
    "jpeg-ls-near-lossless": JPEGLSNearLossless,
}
"""Names accepted by ``write_series(transfer_syntax=...)``."""

SOP_CLASSES: dict[str, str] = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def make_uid(seed: str | None, *parts: object) -> UID:
    """A DICOM UID, deterministic when ``seed`` is given (``2.25.<hash>`` form), else random.

    Examples
    --------
    >>> make_uid("phantom", "series", 1) == make_uid("phantom", "series", 1)
    True
    """
    if seed is None:
        return generate_uid()
    digest = hashlib.sha256("|".join(str(p) for p in (seed, *parts)).encode()).digest()
    return UID(f"2.25.{int.from_bytes(digest[:16], 'big')}")


def write_series(image: sitk.Image, folder: str | os.PathLike[str], *, modality: str = "CT",
                 series_description: str = "", transfer_syntax: str = "explicit-le",
                 rescale_intercept: float | None = None, rescale_slope: float | None = None,
                 series_number: int = 1, series_instance_uid: str | None = None,
                 study_instance_uid: str | None = None,
                 frame_of_reference_uid: str | None = None,
                 uid_seed: str | None = None,
                 patient_name: str = "PHANTOM^CARDIOPLAN", patient_id: str = "CP-PHANTOM",
                 study_date: str = "20000101",
                 extra: Mapping[str, Any] | None = None,
                 slice_thickness: float | None = None,
                 instance_offset: int = 0,
                 file_prefix: str | None = None,
                 lossy_ratio: float = 10.0) -> list[Path]:
    """Write ``image`` as a DICOM series, one file per slice, atomically.

    Parameters
    ----------
    image : SimpleITK.Image
        A 3D scalar image (any direction, any pixel type).  CT values are Hounsfield units.
    folder : path-like
        Output folder (created).  Files are named ``<prefix>_<instance>.dcm``.
    modality : str
        ``"CT"`` or ``"MR"`` (CT/MR Image Storage); anything else is Secondary Capture.
    series_description : str
        SeriesDescription (0008,103E).
    transfer_syntax : str
        One of :data:`TRANSFER_SYNTAXES`: ``"explicit-le"``, ``"implicit-le"``,
        ``"explicit-be"``, ``"rle"``, ``"jpeg2000-lossless"``, ``"jpeg2000"`` (lossy),
        ``"jpeg-ls-lossless"``, ``"jpeg-ls-near-lossless"``.
    rescale_intercept, rescale_slope : float, optional
        Stored value = (value - intercept) / slope, rounded.  Defaults: slope 1 and intercept
        -1024 for CT (stored values then fit uint16 for HU >= -1024), 0 otherwise; for
        non-integer values (e.g. a normalised MR) the intercept is the minimum and the slope
        spreads the range over 0..65535.
    series_number : int
        SeriesNumber (0020,0011).
    series_instance_uid, study_instance_uid, frame_of_reference_uid : str, optional
        UIDs to use; generated (deterministically from ``uid_seed`` when given) otherwise.
        Pass ``""`` to write an empty UID (a trap real data contains).
    uid_seed : str, optional
        Makes every generated UID (and so the files) reproducible.
    patient_name, patient_id, study_date : str
        Identity of the synthetic patient (never real data).
    extra : mapping, optional
        DICOM keywords set on every slice, e.g. ``{"TriggerTime": 350.0}``.
    slice_thickness : float, optional
        SliceThickness; defaults to the slice spacing.
    instance_offset : int
        Added to InstanceNumber (1-based) so several calls can share one series (4D phases).
    file_prefix : str, optional
        File name prefix; defaults to ``IM<series_number>``.
    lossy_ratio : float
        Compression ratio for ``"jpeg2000"``; the allowed error for ``"jpeg-ls-near-lossless"``
        is 2.

    Returns
    -------
    list of pathlib.Path
        The files, in slice order (index ``z`` of the image).

    Examples
    --------
    >>> img = sitk.Image([32, 32, 20], sitk.sitkInt16)
    >>> img.SetSpacing([0.8, 0.8, 2.0])
    >>> files = write_series(img, tmp_path / "ct", uid_seed="doc")   # doctest: +SKIP
    >>> len(files)                                                  # doctest: +SKIP
    20
    """
    arr = sitk.GetArrayViewFromImage(image)
    rescale_intercept, rescale_slope = _default_rescale(arr, modality, rescale_intercept,
                                                        rescale_slope)
    syntax = _check_args(image, transfer_syntax, rescale_slope)
    stored, signed = _stored_values(arr, rescale_intercept, rescale_slope)
    uids = {
        "StudyInstanceUID": study_instance_uid,
        "SeriesInstanceUID": series_instance_uid,
        "FrameOfReferenceUID": frame_of_reference_uid,
    }
    for key, value in uids.items():
        if value is None:
            uids[key] = make_uid(uid_seed, key, series_number if key == "SeriesInstanceUID"
                                 else "")
    spacing = image.GetSpacing()
    d = image.GetDirection()
    row_dir = (d[0], d[3], d[6])  # direction of increasing x index (along a row)
    col_dir = (d[1], d[4], d[7])  # direction of increasing y index (down a column)
    common = {
        "modality": modality, "series_description": series_description,
        "series_number": series_number, "patient_name": patient_name,
        "patient_id": patient_id, "study_date": study_date, "uids": uids,
        "iop": [round(float(v), 8) for v in (*row_dir, *col_dir)],
        "pixel_spacing": [float(spacing[1]), float(spacing[0])],
        "thickness": float(slice_thickness if slice_thickness is not None else spacing[2]),
        "intercept": float(rescale_intercept), "slope": float(rescale_slope),
        "signed": signed, "extra": dict(extra or {}),
    }
    out = Path(folder)
    prefix = file_prefix if file_prefix is not None else f"IM{series_number:03d}"
    paths: list[Path] = []
    for k in range(arr.shape[0]):
        instance = instance_offset + k + 1
        ds = _slice_dataset(stored[k], common, position=image.TransformIndexToPhysicalPoint(
            (0, 0, k)), instance=instance, sop_uid=make_uid(uid_seed, uids["SeriesInstanceUID"],
                                                          "sop", instance) if uid_seed
                            else generate_uid())
        path = out / f"{prefix}_{instance:05d}.dcm"
        _save(ds, path, syntax, lossy_ratio)
        paths.append(path)
    return paths


def _check_args(image: sitk.Image, transfer_syntax: str, slope: float) -> UID:
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("write_series needs a 3D scalar image, got "
                         f"{image.GetDimension()}D with "
                         f"{image.GetNumberOfComponentsPerPixel()} components")
    if transfer_syntax not in TRANSFER_SYNTAXES:
        raise InputError(f"unknown transfer_syntax {transfer_syntax!r}; use one of "
                         f"{', '.join(TRANSFER_SYNTAXES)}")
    if slope == 0:
        raise InputError("rescale_slope must not be 0")
    return TRANSFER_SYNTAXES[transfer_syntax]


def _default_rescale(arr: np.ndarray, modality: str, intercept: float | None,
                     slope: float | None) -> tuple[float, float]:
    """Intercept -1024 for CT (else 0) and slope 1, unless the values are not integers: then
    the slope spreads them over 0..65535 so that they survive the round trip to integers."""
    integral = np.issubdtype(arr.dtype, np.integer) or bool(np.all(np.mod(arr, 1) == 0))
    if slope is None and not integral and arr.size:
        lo, hi = float(arr.min()), float(arr.max())
        if intercept is None:
            intercept = lo
        slope = max(hi - intercept, abs(lo - intercept), 1e-12) / 65535.0
    if intercept is None:
        intercept = -1024.0 if modality == "CT" else 0.0
    return float(intercept), float(slope if slope is not None else 1.0)


def _stored_values(arr: np.ndarray, intercept: float, slope: float) -> tuple[np.ndarray, bool]:
    """Stored integers for ``arr`` (uint16 when all >= 0, else int16); error when out of range."""
    if np.issubdtype(arr.dtype, np.integer) and slope == 1 and float(intercept).is_integer():
        values = arr.astype(np.int32) - int(intercept)
    else:
        values = np.rint((arr.astype(np.float32) - np.float32(intercept)) / np.float32(slope))
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0 and hi <= 65535:
        return values.astype(np.uint16), False
    if lo >= -32768 and hi <= 32767:
        return values.astype(np.int16), True
    raise InputError(f"stored values {lo:g}..{hi:g} do not fit 16 bits with intercept "
                     f"{intercept:g} and slope {slope:g}; choose another rescale_slope")


def _slice_dataset(pixels: np.ndarray, c: dict[str, Any], *, position: tuple[float, ...],
                   instance: int, sop_uid: str) -> Dataset:
    sop_class = SOP_CLASSES.get(c["modality"], _SECONDARY_CAPTURE)
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = c["study_date"]
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = ""
    ds.Modality = c["modality"]
    ds.Manufacturer = "CardioPlan"
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = c["series_description"]
    ds.ManufacturerModelName = "cardioplan.dicom.write_series"
    ds.SoftwareVersions = __version__
    ds.PatientName = c["patient_name"]
    ds.PatientID = c["patient_id"]
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = c["uids"]["StudyInstanceUID"]
    ds.SeriesInstanceUID = c["uids"]["SeriesInstanceUID"]
    ds.FrameOfReferenceUID = c["uids"]["FrameOfReferenceUID"]
    ds.StudyID = "1"
    ds.SeriesNumber = c["series_number"]
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance
    ds.PatientPosition = "HFS"
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [round(float(v), 6) for v in position]
    ds.ImageOrientationPatient = c["iop"]
    ds.SliceThickness = round(c["thickness"], 6)
    ds.SliceLocation = round(float(position[2]), 6)
    ds.PixelSpacing = [round(v, 8) for v in c["pixel_spacing"]]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = (int(n) for n in pixels.shape)
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if c["signed"] else 0
    ds.RescaleIntercept = c["intercept"]
    ds.RescaleSlope = c["slope"]
    if c["modality"] == "CT":
        ds.RescaleType = "HU"
        ds.KVP = ""
        ds.WindowCenter, ds.WindowWidth = 40, 400
    elif c["modality"] == "MR":
        ds.ScanningSequence = "GR"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D"
        ds.EchoTime = ds.RepetitionTime = ""
        ds.EchoTrainLength = ""
        ds.MagneticFieldStrength = 1.5
    for keyword, value in c["extra"].items():
        setattr(ds, keyword, value)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def _save(ds: Dataset, path: Path, syntax: UID, lossy_ratio: float) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"CARDIOPLAN_{__version__}"[:16]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    if syntax.is_compressed:
        kwargs: dict[str, Any] = {}
        if syntax == JPEG2000:
            kwargs["j2k_cr"] = [lossy_ratio]
        elif syntax == JPEGLSNearLossless:
            kwargs["jls_error"] = 2
        ds.compress(syntax, generate_instance_uid=False, **kwargs)  # keep our (seeded) UIDs
    elif syntax == ExplicitVRBigEndian:
        ds.PixelData = np.frombuffer(ds.PixelData, dtype=np.uint16).byteswap().tobytes()
        meta.TransferSyntaxUID = syntax
    else:
        meta.TransferSyntaxUID = syntax
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True,
                   implicit_vr=syntax.is_implicit_VR, little_endian=syntax.is_little_endian)
