"""DICOM input and output: header-only discovery, volume loading, and writing test series.

This package is the only part of CardioPlan that imports pydicom; everything downstream works on
:class:`cardioplan.volume.Volume` objects.
"""

from __future__ import annotations

from cardioplan.dicom.write import TRANSFER_SYNTAXES, make_uid, write_series

__all__ = ["write_series", "make_uid", "TRANSFER_SYNTAXES"]
