"""Find the source DICOM images of a case again (for exports that reference them, e.g. DICOM-SEG).

``cardioplan import`` records in ``case.json`` (``inputs[i]``) the source folder, the files, and
the SOPInstanceUIDs in image slice order; :func:`source_headers` turns that record back into the
pydicom headers, in the order of the image's z index.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset

from cardioplan.errors import DicomError

__all__ = ["source_headers"]


def source_headers(record: Mapping[str, Any]) -> list[Dataset]:
    """Headers (no pixel data) of the source images, one per slice of the case image.

    Parameters
    ----------
    record : mapping
        An ``inputs`` entry of ``case.json`` written by ``cardioplan import`` from DICOM.

    Returns
    -------
    list of pydicom.Dataset
        ``result[z]`` is the header of the file holding slice ``z`` of ``image.nii``.  For an
        enhanced multi-frame source every entry is the same dataset; ``record["frame_numbers"]``
        gives the (1-based) frame of each slice.

    Raises
    ------
    DicomError
        The record is not from DICOM, or the source files are gone or changed.

    Examples
    --------
    >>> record = Case.open("cases/p1").inputs[0]                # doctest: +SKIP
    >>> headers = source_headers(record)                        # doctest: +SKIP
    >>> headers[0].SOPInstanceUID == record["sop_instance_uids"][0]   # doctest: +SKIP
    True
    """
    if record.get("format") != "dicom":
        raise DicomError(f"the case input is {record.get('format')!r}, not DICOM: there are no "
                         "source DICOM images to reference; import the case from DICOM")
    root = Path(str(record.get("path", "")))
    base = root if root.is_dir() else root.parent
    files = [Path(f) if Path(f).is_absolute() else base / f for f in record.get("files", [])]
    missing = [f for f in files if not f.is_file()]
    if missing or not files:
        raise DicomError(f"the source DICOM files of this case are no longer at {root} (e.g. "
                         f"{missing[0] if missing else 'no files recorded'}); restore them there "
                         "or re-import the case from their new location")
    by_uid: dict[str, Dataset] = {}
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True, force=True)
        uid = str(ds.get("SOPInstanceUID", "") or "") or str(
            getattr(ds, "file_meta", Dataset()).get("MediaStorageSOPInstanceUID", ""))
        by_uid[uid] = ds
    order = list(record.get("sop_instance_uids") or [])
    try:
        return [by_uid[uid] for uid in order]
    except KeyError as exc:
        raise DicomError(f"the source DICOM files at {root} changed since the import (SOP "
                         f"instance {exc.args[0]} is missing); re-import the case") from None
