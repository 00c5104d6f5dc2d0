"""DICOM input and output: header-only discovery, volume loading, and writing test series.

This package is the only part of CardioPlan that imports pydicom; everything downstream works on
:class:`cardioplan.volume.Volume` objects.

Examples
--------
>>> from cardioplan.dicom import scan, load_volume
>>> result = scan("/data/patient1")          # doctest: +SKIP
>>> volume = load_volume("/data/patient1", series="2", phase="75%")   # doctest: +SKIP
"""

from __future__ import annotations

from cardioplan.dicom.discover import ScanResult, Series, Skipped, scan
from cardioplan.dicom.geometry import (
    Frame,
    Geometry,
    Phase,
    orientation_label,
    series_geometry,
    split_phases,
)
from cardioplan.dicom.load import (
    DEFAULT_PHASE_PERCENT,
    choose_phase,
    choose_series,
    load_series,
    load_volume,
    output_dtype,
)
from cardioplan.dicom.source import source_headers
from cardioplan.dicom.write import TRANSFER_SYNTAXES, make_uid, write_series

__all__ = [
    "scan", "ScanResult", "Series", "Phase", "Frame", "Geometry", "Skipped",
    "series_geometry", "split_phases", "orientation_label",
    "load_volume", "load_series", "choose_series", "choose_phase", "output_dtype",
    "DEFAULT_PHASE_PERCENT",
    "write_series", "make_uid", "TRANSFER_SYNTAXES", "source_headers",
]
