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
