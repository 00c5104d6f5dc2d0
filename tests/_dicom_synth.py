"""Small synthetic DICOM series for the ingest tests (32x32x20, written with write_series)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from cardioplan.dicom import write_series

SIZE = (32, 32, 20)  # x, y, z
SPACING = (0.8, 0.7, 2.0)
ORIGIN = (-12.5, 30.25, -100.0)


def ct_image(*, size: tuple[int, int, int] = SIZE, spacing: tuple[float, float, float] = SPACING,
             origin: tuple[float, float, float] = ORIGIN,
             direction: tuple[float, ...] | None = None, seed: int = 0) -> sitk.Image:
    """An int16 CT-like image: air background, a bright sphere, noise; distinct per slice."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[0:size[2], 0:size[1], 0:size[0]]
    arr = np.full((size[2], size[1], size[0]), -1000, np.int16)
    ball = (x - size[0] / 2) ** 2 + (y - size[1] / 2) ** 2 + (z - size[2] / 2) ** 2 < 36
    arr[ball] = 400
    arr += rng.integers(-20, 20, arr.shape).astype(np.int16)
    arr[:, 0, 0] = np.arange(size[2]) * 10  # a ramp that identifies each slice
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    return img


def oblique_direction(angle_deg: float = 20.0) -> tuple[float, ...]:
    """A rotation about an oblique axis (rows of the 3x3 matrix, as SimpleITK wants)."""
    a = math.radians(angle_deg)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    return tuple(float(v) for v in (rz @ rx).ravel())


def write_ct(folder: Path, image: sitk.Image | None = None, **kwargs) -> list[Path]:
    kwargs.setdefault("uid_seed", f"test-{folder.name}")
    kwargs.setdefault("series_description", "synthetic CT")
    return write_series(image if image is not None else ct_image(), folder, **kwargs)


def write_4d(folder: Path, *, phases: int = 4, percents: bool = True,
             trigger: bool = True, rr_ms: float | None = None) -> list[list[Path]]:
    """A cardiac 4D series: ``phases`` volumes at the same positions in one series."""
    out = []
    for p in range(phases):
        extra: dict[str, object] = {"TemporalPositionIdentifier": p + 1,
                                    "NumberOfTemporalPositions": phases}
        pct = 100.0 * p / phases
        if percents:
            extra["NominalPercentageOfCardiacPhase"] = pct
        if trigger:
            extra["TriggerTime"] = pct * (rr_ms or 800.0) / 100.0
        if rr_ms:
            extra["NominalInterval"] = rr_ms
        img = ct_image(size=(16, 16, 8), seed=p)
        arr = sitk.GetArrayFromImage(img)
        arr[:, 1, 1] = p * 100  # identifies the phase
        phase_img = sitk.GetImageFromArray(arr)
        phase_img.CopyInformation(img)
        out.append(write_series(phase_img, folder, uid_seed="4d", series_instance_uid="1.2.3.4",
                                extra=extra, instance_offset=p * 8, modality="CT"))
    return out


def edit(path: Path, **attrs: object) -> None:
    """Change attributes of one written file (to fabricate traps)."""
    ds = pydicom.dcmread(path)
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.save_as(path)


def write_enhanced_4d(path: Path, *, phases: tuple[float, ...] = (10.0, 40.0, 70.0),
                      slices: int = 4) -> np.ndarray:
    """An Enhanced MR Image Storage file holding ``phases`` x ``slices`` frames (cine).

    Per-frame PlanePosition, FrameContent (TemporalPositionIndex) and CardiacSynchronization
    (NominalPercentageOfCardiacPhase); shared PixelMeasures, PlaneOrientation and
    PixelValueTransformation (slope 2, intercept -10).  Frames are written phase by phase with
    the slices in reverse order.  Returns the stored frames ``[frame, y, x]``.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rows, cols = 12, 10
    iop = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]  # sagittal
    normal = np.cross(iop[:3], iop[3:])
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "MR", 9, "cine enhanced"
    ds.PatientName, ds.PatientID = "PHANTOM^CINE", "CINE-1"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing, pm.SliceThickness = [1.5, 1.25], 6.0
    po = Dataset()
    po.ImageOrientationPatient = iop
    pvt = Dataset()
    pvt.RescaleIntercept, pvt.RescaleSlope, pvt.RescaleType = -10, 2, "US"
    shared.PixelMeasuresSequence = Sequence([pm])
    shared.PlaneOrientationSequence = Sequence([po])
    shared.PixelValueTransformationSequence = Sequence([pvt])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame, frames = [], []
    for t, pct in enumerate(phases):
        for k in reversed(range(slices)):
            item = Dataset()
            pp = Dataset()
            pp.ImagePositionPatient = [float(v) for v in np.array([5.0, -20, 30]) + 6.0 * k
                                       * normal]
            fc = Dataset()
            fc.TemporalPositionIndex = t + 1
            fc.InStackPositionNumber = k + 1
            cs = Dataset()
            cs.NominalPercentageOfCardiacPhase = pct
            cs.NominalCardiacTriggerDelayTime = pct * 10.0
            item.PlanePositionSequence = Sequence([pp])
            item.FrameContentSequence = Sequence([fc])
            item.CardiacSynchronizationSequence = Sequence([cs])
            per_frame.append(item)
            frames.append(np.full((rows, cols), 100 * t + k, np.uint16))
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.NumberOfFrames = len(frames)
    stack = np.stack(frames)
    ds.PixelData = stack.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return stack


def write_dicomdir(files: list[Path], folder: Path) -> Path:
    """Copy ``files`` into a DICOM File-set with a DICOMDIR (pydicom's FileSet)."""
    from pydicom.fileset import FileSet

    fs = FileSet()
    for f in files:
        fs.add(f)
    fs.write(folder)
    fs._stage["t"].cleanup()  # FileSet keeps a staging TemporaryDirectory; remove it now
    return folder / "DICOMDIR"
