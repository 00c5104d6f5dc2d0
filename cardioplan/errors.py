"""Exceptions raised by CardioPlan.

Every exception subclasses :class:`CardioPlanError` *and* a built-in exception, so callers can
catch either.  Messages name the problem and say what to do next; the CLI prints them as they
are and exits with status 1.
"""

from __future__ import annotations

__all__ = [
    "CardioPlanError",
    "InputError",
    "DicomError",
    "GeometryError",
    "CaseError",
    "CaseExistsError",
    "SchemaVersionError",
    "OutputError",
    "SegmentationError",
    "MeshError",
    "RuntimeMissingError",
]


class CardioPlanError(Exception):
    """Base class of every error CardioPlan raises on purpose."""


class InputError(CardioPlanError, ValueError):
    """The input (path, file, option value) cannot be used as given."""


class DicomError(InputError):
    """DICOM files are missing, unreadable, or cannot form one volume."""


class GeometryError(DicomError):
    """Slices do not form a regular 3D grid (gaps, mixed orientations, duplicates)."""


class CaseError(CardioPlanError, OSError):
    """A case folder is missing, incomplete or malformed."""


class CaseExistsError(CaseError, FileExistsError):
    """The output case (or file) exists and ``force`` was not given."""


class SchemaVersionError(CaseError):
    """A JSON file was written by a newer CardioPlan (unknown schema version)."""


class OutputError(CardioPlanError, OSError):
    """An output could not be written (permissions, full disk, ...); nothing was left behind."""


class SegmentationError(CardioPlanError, RuntimeError):
    """Segmentation could not produce a trustworthy result (e.g. no heart found)."""


class MeshError(CardioPlanError, RuntimeError):
    """Surfaces could not be built or exported as asked."""


class RuntimeMissingError(CardioPlanError, RuntimeError):
    """A required runtime (OpenXR runtime, display, browser) is not available."""
