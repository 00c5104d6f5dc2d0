"""The :class:`Volume`: one 3D image in physical space plus the few attributes the rest needs.

Axis convention (the one place it is spelled out): SimpleITK images are indexed ``(x, y, z)``;
``sitk.GetArrayFromImage`` returns NumPy arrays indexed ``[z, y, x]``.  Physical coordinates are
LPS millimetres, as in DICOM and ITK.  Convert between index and physical space with the image's
own ``TransformIndexToPhysicalPoint`` / ``TransformPhysicalPointToIndex`` or
:func:`physical_to_index` below, never by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import SimpleITK as sitk

__all__ = ["Volume", "physical_to_index", "index_to_physical", "geometry_summary"]


@dataclass
class Volume:
    """A 3D scan in physical (LPS, mm) space.

    Attributes
    ----------
    image : SimpleITK.Image
        The voxels with origin, spacing and direction; CT in Hounsfield units.
    modality : str
        DICOM modality (``"CT"``, ``"MR"``...), ``"OT"`` when unknown.
    description : str
        Series description (no patient identity).
    series_uid : str or None
        SeriesInstanceUID when the input was DICOM and had one.
    phase : dict or None
        The cardiac phase chosen from a 4D series: ``{"index": int, "count": int,
        "percent_rr": float | None, "trigger_time_ms": float | None}``.
    source : dict
        Provenance: ``{"format": "dicom" | "nifti" | ..., "path": str, ...}``.  Never holds patient
        names, IDs or birth dates.
    warnings : list of str
        Geometry and decoding warnings raised while loading (also logged).
    """

    image: sitk.Image
    modality: str = "OT"
    description: str = ""
    series_uid: str | None = None
    phase: dict[str, Any] | None = None
    source: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel spacing ``(x, y, z)`` in mm."""
        return tuple(self.image.GetSpacing())  # type: ignore[return-value]

    @property
    def size(self) -> tuple[int, int, int]:
        """Grid size ``(x, y, z)``."""
        return tuple(self.image.GetSize())  # type: ignore[return-value]


def physical_to_index(image: sitk.Image, point: tuple[float, float, float]) -> tuple[int, int, int]:
    """Nearest voxel index ``(x, y, z)`` of a physical LPS point; may lie outside the grid."""
    idx = image.TransformPhysicalPointToContinuousIndex([float(c) for c in point])
    return tuple(int(round(c)) for c in idx)  # type: ignore[return-value]


def index_to_physical(image: sitk.Image, index: tuple[float, float, float]
                      ) -> tuple[float, float, float]:
    """Physical LPS point of a (possibly fractional) voxel index ``(x, y, z)``."""
    return tuple(image.TransformContinuousIndexToPhysicalPoint([float(c) for c in index]))  # type: ignore[return-value]


def geometry_summary(image: sitk.Image) -> dict[str, Any]:
    """Plain-data description of an image grid (for ``case.json`` and ``--json`` output)."""
    return {
        "size": list(image.GetSize()),
        "spacing": [round(float(s), 6) for s in image.GetSpacing()],
        "origin": [round(float(o), 6) for o in image.GetOrigin()],
        "direction": [round(float(d), 6) for d in image.GetDirection()],
        "pixel_type": image.GetPixelIDTypeAsString(),
    }
