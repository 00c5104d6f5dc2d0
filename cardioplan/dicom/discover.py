"""Header-only DICOM discovery: find the files and group them into studies and series.

Only headers are read (``stop_before_pixels``), so a scan of a few hundred files takes a fraction
of a second.  The result is plain data (:class:`ScanResult`, :class:`Series`, and the
:class:`~cardioplan.dicom.geometry.Frame` of every image, whose geometry
:mod:`cardioplan.dicom.geometry` checks) that :mod:`cardioplan.dicom.load` turns into a volume
and ``cardioplan info`` prints.

Grouping rules
--------------
* Studies by StudyInstanceUID; series by SeriesInstanceUID.
* When SeriesInstanceUID is missing or empty, files are grouped by FrameOfReferenceUID +
  orientation + matrix size + SeriesNumber + SeriesDescription instead.
* Non-image objects (SR, RTSTRUCT, SEG, PR, KO, ...), localisers (ImageType ``LOCALIZER``) and a
  single slice whose orientation differs from the rest of its series (a scout) are listed as
  skipped, with the reason.  Files that are not DICOM are skipped quietly and counted; DICOM files
  that cannot be parsed (corrupt, truncated) are skipped with a warning naming the file.
"""

from __future__ import annotations

import logging
import os
import struct
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from cardioplan.dicom.geometry import (
    Frame,
    Geometry,
    Phase,
    orientation_label,
    series_geometry,
    split_phases,
)
from cardioplan.errors import DicomError, InputError
from cardioplan.progress import progress

__all__ = ["Series", "Skipped", "ScanResult", "scan", "prefetch_file", "IMAGE_SOP_CLASSES"]

log = logging.getLogger(__name__)

IMAGE_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image",
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image",
    "1.2.840.10008.5.1.4.1.1.2.2": "Legacy Converted Enhanced CT Image",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image",
    "1.2.840.10008.5.1.4.1.1.4.4": "Legacy Converted Enhanced MR Image",
    "1.2.840.10008.5.1.4.1.1.20": "NM Image",
    "1.2.840.10008.5.1.4.1.1.128": "PET Image",
    "1.2.840.10008.5.1.4.1.1.130": "Enhanced PET Image",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte SC Image",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word SC Image",
}
"""SOP classes that can hold a scan (everything else is listed as skipped)."""

_NON_IMAGE_REASONS = {
    "SR": "structured report (not an image)",
    "RTSTRUCT": "RT structure set (contours, not an image)",
    "SEG": "segmentation object (labels, not an image)",
    "PR": "presentation state (display settings, not an image)",
    "KO": "key object selection (not an image)",
    "REG": "registration object (not an image)",
    "RTPLAN": "RT plan (not an image)",
    "RTDOSE": "RT dose grid (not a scan)",
    "DOC": "encapsulated document (not an image)",
}

_UNCOMPRESSED_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_DEFLATED = "1.2.840.10008.1.2.1.99"
_PREFETCH_WINDOW = 32  # files read ahead (in the background) of the header parser
_PREFETCH_MAX_BYTES = 1 << 30  # larger folders: only the loaded series is prefetched


@dataclass
class Series:
    """One DICOM series (possibly 4D) as found by :func:`scan`."""

    index: int
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    modality: str
    description: str
    series_number: int | None
    sop_class_uid: str
    frames: list[Frame]
    study_description: str = ""
    study_date: str = ""
    multiframe: bool = False
    phases: list[Phase] = field(default_factory=list)
    geometry: Geometry | None = None  # of the first phase
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # kept when warnings are recomputed
    patient: dict[str, str] = field(default_factory=dict)  # PHI: shown only on request

    @property
    def transfer_syntaxes(self) -> list[str]:
        """Names of the transfer syntaxes used by the series' files."""
        return sorted({UID(f.transfer_syntax).name if f.transfer_syntax else "unknown"
                       for f in self.frames})

    @property
    def files(self) -> list[Path]:
        return sorted({f.path for f in self.frames})

    @property
    def matrix(self) -> tuple[int, int]:
        """(columns, rows) of the first frame."""
        return (self.frames[0].columns, self.frames[0].rows)

    @property
    def slices_per_phase(self) -> int:
        return len(self.phases[0].frames) if self.phases else len(self.frames)

    @property
    def voxels(self) -> int:
        cols, rows = self.matrix
        return cols * rows * self.slices_per_phase

    @property
    def orientation(self) -> str:
        """"axial", "coronal", "sagittal" or "oblique" plus the LPS letter code."""
        return orientation_label(self.frames[0].orientation)

    def summary(self, *, show_phi: bool = False) -> dict[str, Any]:
        """Plain-data description for ``cardioplan info --json``."""
        geo = self.geometry
        out: dict[str, Any] = {
            "index": self.index,
            "series_number": self.series_number,
            "modality": self.modality,
            "description": self.description,
            "series_uid": self.series_uid,
            "study_uid": self.study_uid,
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "sop_class": IMAGE_SOP_CLASSES.get(self.sop_class_uid, self.sop_class_uid),
            "images": len(self.frames),
            "files": len(self.files),
            "matrix": list(self.matrix),
            "slices_per_phase": self.slices_per_phase,
            "spacing": [round(s, 4) for s in geo.spacing] if geo and geo.spacing else None,
            "orientation": self.orientation,
            "transfer_syntaxes": self.transfer_syntaxes,
            "phases": [p.summary(len(self.phases)) for p in self.phases]
            if len(self.phases) > 1 else [],
            "geometry": {
                "gaps_mm": [list(g) for g in geo.gaps] if geo else [],
                "irregular": geo.irregular if geo else False,
                "duplicate_positions": len(geo.duplicates) if geo else 0,
                "orientations": geo.mixed_orientations if geo else 1,
                "tilt_deg": round(geo.tilt_deg, 3) if geo else 0.0,
                "slice_thickness": self.frames[0].thickness,
            },
            "warnings": list(self.warnings),
        }
        if show_phi:
            out["patient"] = dict(self.patient)
        return out


@dataclass
class Skipped:
    """A DICOM object that is not part of any loadable series, with the reason."""

    path: Path
    reason: str
    modality: str = ""
    sop_class: str = ""
    series_uid: str = ""

    def summary(self) -> dict[str, str]:
        return {"path": str(self.path), "reason": self.reason, "modality": self.modality,
                "sop_class": self.sop_class}


@dataclass
class ScanResult:
    """Everything :func:`scan` found under a path."""

    root: Path
    series: list[Series]
    skipped: list[Skipped]
    files_seen: int
    non_dicom: int
    unreadable: list[tuple[Path, str]]
    dicomdir: Path | None = None

    def studies(self) -> dict[str, list[Series]]:
        """Series grouped by StudyInstanceUID (in index order)."""
        out: dict[str, list[Series]] = defaultdict(list)
        for s in self.series:
            out[s.study_uid].append(s)
        return dict(out)

    def summary(self, *, show_phi: bool = False) -> dict[str, Any]:
        studies = []
        for uid, members in self.studies().items():
            first = members[0]
            entry: dict[str, Any] = {"study_uid": uid, "description": first.study_description,
                                     "date": first.study_date,
                                     "series": [s.summary(show_phi=show_phi) for s in members]}
            if show_phi:
                entry["patient"] = dict(first.patient)
            studies.append(entry)
        return {
            "path": str(self.root),
            "dicomdir": str(self.dicomdir) if self.dicomdir else None,
            "files_seen": self.files_seen,
            "non_dicom_files": self.non_dicom,
            "unreadable": [{"path": str(p), "reason": r} for p, r in self.unreadable],
            "studies": studies,
            "skipped": [s.summary() for s in self.skipped],
        }


# -- public functions ------------------------------------------------------------------------------
def scan(path: str | os.PathLike[str], *, prefetch: bool = False) -> ScanResult:
    """Find and group the DICOM images under ``path`` by reading their headers only.

    Parameters
    ----------
    path : path-like
        A folder (searched recursively), a single DICOM file, or a DICOMDIR file.  A DICOMDIR
        at the top of a folder is used to list its files.
    prefetch : bool
        Ask the kernel to read whole files in the background, a few dozen ahead of the header
        parser (``posix_fadvise(WILLNEED)``): the disk works while Python parses, and a load
        that follows finds the pixels in the page cache.  Skipped for folders over 1 GiB,
        where most files usually belong to series that will not be loaded.

    Returns
    -------
    ScanResult
        Series sorted by study, series number and description, numbered from 1 (the index
        ``cardioplan info`` shows and ``--series`` accepts), plus skipped objects.

    Raises
    ------
    InputError
        ``path`` does not exist.
    DicomError
        ``path`` holds no DICOM file at all.

    Examples
    --------
    >>> result = scan("/data/patient1")            # doctest: +SKIP
    >>> [(s.index, s.modality, len(s.frames)) for s in result.series]   # doctest: +SKIP
    [(1, 'CT', 320)]
    """
    root = Path(path)
    if not root.exists():
        raise InputError(f"{root} does not exist; check the path (a DICOM folder, DICOMDIR, or "
                         "a NIfTI/NRRD/MetaImage file)")
    files, dicomdir = _list_files(root)
    records: list[_FileRecord] = []
    non_dicom = 0
    unreadable: list[tuple[Path, str]] = []
    window = _PREFETCH_WINDOW if prefetch and _total_size(files) <= _PREFETCH_MAX_BYTES else 0
    for f in files[:window]:
        prefetch_file(f)
    for i, f in enumerate(progress(files, desc="Reading DICOM headers", total=len(files),
                                   unit="file")):
        if window and i + window < len(files):
            prefetch_file(files[i + window])
        try:
            ds, offset = _read_header(f)
            records.append(_record(f, ds, offset))  # keeps plain data only, not the header
        except InvalidDicomError:
            non_dicom += 1
        except Exception as exc:  # noqa: BLE001 - any parse failure means: skip this file
            reason = f"unreadable DICOM ({type(exc).__name__}: {str(exc)[:120]})"
            log.warning("skipping %s: %s", f, reason)
            unreadable.append((f, reason))
    if not records and not unreadable:
        what = ("is not a DICOM file" if root.is_file() else "is empty" if not files
                else f"holds {len(files)} file(s) but none is DICOM")
        raise DicomError(f"{root} {what}; point to the folder holding the scan's DICOM "
                         "files (or a NIfTI/NRRD/MetaImage file)")
    series, skipped = _group(records)
    return ScanResult(root=root, series=series, skipped=skipped, files_seen=len(files),
                      non_dicom=non_dicom, unreadable=unreadable, dicomdir=dicomdir)


# -- file listing ----------------------------------------------------------------------------------
def _list_files(root: Path) -> tuple[list[Path], Path | None]:
    if root.is_file():
        if root.name.upper() == "DICOMDIR":
            return _dicomdir_files(root), root
        return [root], None
    top = root / "DICOMDIR"
    if top.is_file():
        listed = _dicomdir_files(top)
        if listed:
            return listed, top
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / name for name in sorted(filenames)
                   if not name.startswith(".") and name.upper() != "DICOMDIR")
    return out, None


def _dicomdir_files(dicomdir: Path) -> list[Path]:
    """Image files referenced by a DICOMDIR (empty when it lists none that exist)."""
    try:
        ds = pydicom.dcmread(dicomdir)
    except Exception as exc:  # noqa: BLE001
        log.warning("cannot read %s (%s); searching its folder instead", dicomdir, exc)
        return []
    base = dicomdir.parent
    files = []
    for rec in _get(ds, "DirectoryRecordSequence", []):
        ref = rec.get("ReferencedFileID")
        if ref:
            parts = [ref] if isinstance(ref, str) else list(ref)
            if any(part in ("..", "") or "/" in part or "\\" in part for part in parts):
                continue  # a File ID names components below the DICOMDIR's folder only
            p = base.joinpath(*parts)
            if not p.is_file():  # case-insensitive media (CD-ROM ISO 9660)
                alt = base.joinpath(*[x.lower() for x in parts])
                p = alt if alt.is_file() else p
            if p.is_file():
                files.append(p)
    if not files:
        log.warning("%s lists no existing files; searching its folder instead", dicomdir)
    return sorted(set(files))


def _total_size(files: list[Path]) -> int:
    total = 0
    for f in files:
        try:
            total += f.stat().st_size
        except OSError:
            continue
    return total


def prefetch_file(path: Path) -> None:
    """Ask the kernel to start reading a whole file into the page cache (non-blocking)."""
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_header(path: Path) -> tuple[Dataset | None, int | None]:
    """Header and (for uncompressed files) the byte offset of the pixel data."""
    with open(path, "rb") as fp:
        head = fp.read(132)
        bare = len(head) >= 8 and head[128:132] != b"DICM"
        if bare and not _looks_like_bare_dicom(head):
            raise InvalidDicomError("no DICM preamble")
        fp.seek(0)
        ds = pydicom.dcmread(fp, stop_before_pixels=True, force=bare)
        if bare:
            _assume_syntax(ds)
        at_pixels = fp.tell()
        size = os.fstat(fp.fileno()).st_size
    return ds, _pixel_offset(ds, path, at_pixels, size)


def _looks_like_bare_dicom(head: bytes) -> bool:
    """A file without preamble that starts with a group 0x0008 element (old ACR-NEMA style)."""
    group, element = struct.unpack("<HH", head[:4])
    return group == 0x0008 and element < 0x0100


def _assume_syntax(ds: Dataset) -> None:
    """Record the transfer syntax pydicom detected for a file without meta information."""
    if "TransferSyntaxUID" in ds.file_meta:
        return
    implicit, little = getattr(ds, "original_encoding", (True, True))
    ds.file_meta.TransferSyntaxUID = (
        "1.2.840.10008.1.2" if implicit else
        "1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")


def _pixel_offset(ds: Dataset, path: Path, at: int, size: int) -> int | None:
    """Offset of uncompressed pixel data, checking that the file is not truncated."""
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if syntax == _DEFLATED:  # the file position is in the deflated stream: nothing to check
        return None
    if at >= size and _sop_class(ds) in IMAGE_SOP_CLASSES:
        raise DicomError("truncated: the file ends before its pixel data")
    if "Rows" not in ds or at >= size:
        return None
    if syntax not in _UNCOMPRESSED_LE and syntax != _BIG_ENDIAN:
        return None
    header_len = 8 if syntax == "1.2.840.10008.1.2" else 12
    frames = int(_get(ds, "NumberOfFrames", 1) or 1)
    expected = (int(_get(ds, "Rows")) * int(_get(ds, "Columns"))
                * int(_get(ds, "SamplesPerPixel", 1)) * int(_get(ds, "BitsAllocated", 16)) // 8
                * frames)
    if at + header_len + expected > size:
        raise DicomError(f"truncated: {size - at - header_len} of {expected} bytes of pixel "
                         "data present")
    return at + header_len


# -- grouping --------------------------------------------------------------------------------------
@dataclass
class _FileRecord:
    """What the scan keeps of one file's header: plain data, so the headers can be freed."""

    path: Path
    key: tuple[Any, ...]
    attrs: dict[str, Any]
    frames: list[Frame]
    skipped: Skipped | None = None


def _record(path: Path, ds: Dataset, offset: int | None) -> _FileRecord:
    reason = _skip_reason(ds)
    attrs = _series_attrs(ds)
    if reason:
        return _FileRecord(path, (), attrs, [], Skipped(
            path, reason, attrs["modality"], _sop_name(ds), attrs["series_uid"]))
    attrs["multiframe"] = int(_get(ds, "NumberOfFrames", 1) or 1) > 1
    return _FileRecord(path, _series_key(ds), attrs, _frames(path, ds, offset))


def _group(records: Iterable[_FileRecord]) -> tuple[list[Series], list[Skipped]]:
    groups: dict[tuple[Any, ...], list[_FileRecord]] = defaultdict(list)
    skipped: list[Skipped] = []
    for rec in records:
        if rec.skipped is not None:
            skipped.append(rec.skipped)
        else:
            groups[rec.key].append(rec)
    series = [_make_series(members[0].attrs, [f for r in members for f in r.frames],
                           multiframe=any(r.attrs["multiframe"] for r in members))
              for members in groups.values()]
    series = _drop_scouts(series, skipped)
    series.sort(key=lambda s: (s.study_date, s.study_uid, s.series_number
                               if s.series_number is not None else 1 << 30,
                               s.description, s.series_uid))
    for i, s in enumerate(series, start=1):
        s.index = i
    return series, skipped


def _skip_reason(ds: Dataset) -> str:
    modality = str(_get(ds, "Modality", "")).upper()
    if modality in _NON_IMAGE_REASONS:
        return _NON_IMAGE_REASONS[modality]
    sop = _sop_class(ds)
    if sop == "1.2.840.10008.1.3.10":
        return "DICOMDIR (media directory, not an image)"
    if "Rows" not in ds:
        return f"{_sop_name(ds) or 'object'} without pixel data (not an image)"
    if sop not in IMAGE_SOP_CLASSES:
        return f"{_sop_name(ds) or 'unknown SOP class'} (not a CT/MR image)"
    image_type = [str(v).upper() for v in _as_list(_get(ds, "ImageType", []))]
    if "LOCALIZER" in image_type:
        return "localizer/scout image (ImageType LOCALIZER)"
    if int(_get(ds, "SamplesPerPixel", 1) or 1) != 1:
        return "colour image (screenshot or secondary capture, not a scan)"
    return ""


def _uid_or_meta(ds: Dataset, keyword: str) -> str:
    """``keyword`` (SOPClassUID...), falling back to the file meta's ``MediaStorage`` twin."""
    uid = str(_get(ds, keyword, "") or "").strip()
    meta = getattr(ds, "file_meta", None)
    if not uid and meta is not None:
        uid = str(meta.get(f"MediaStorage{keyword}", "") or "").strip()
    return uid


def _sop_class(ds: Dataset) -> str:
    return _uid_or_meta(ds, "SOPClassUID")


def _sop_instance(ds: Dataset) -> str:
    return _uid_or_meta(ds, "SOPInstanceUID")


def _sop_name(ds: Dataset) -> str:
    sop = _sop_class(ds)
    return UID(sop).name if sop else ""


def _series_key(ds: Dataset) -> tuple[Any, ...]:
    study = str(_get(ds, "StudyInstanceUID", "") or "")
    uid = str(_get(ds, "SeriesInstanceUID", "") or "").strip()
    if uid:
        return (study, uid)
    iop = _iop(ds) or _shared_iop(ds)
    return (study, "", str(_get(ds, "FrameOfReferenceUID", "") or ""),
            tuple(round(v, 3) for v in iop) if iop else None,
            int(_get(ds, "Rows", 0)), int(_get(ds, "Columns", 0)),
            str(_get(ds, "SeriesNumber", "")), str(_get(ds, "SeriesDescription", "")),
            str(_get(ds, "Modality", "")))


def _series_attrs(ds: Dataset) -> dict[str, Any]:
    number = _get(ds, "SeriesNumber")
    if isinstance(number, list):  # a malformed multi-valued IS
        number = number[0]
    return {
        "study_uid": str(_get(ds, "StudyInstanceUID", "") or ""),
        "series_uid": str(_get(ds, "SeriesInstanceUID", "") or "").strip(),
        "frame_of_reference_uid": str(_get(ds, "FrameOfReferenceUID", "") or ""),
        "modality": str(_get(ds, "Modality", "") or ""),
        "description": str(_get(ds, "SeriesDescription", "") or ""),
        "series_number": _int(number),
        "sop_class_uid": _sop_class(ds),
        "study_description": str(_get(ds, "StudyDescription", "") or ""),
        "study_date": str(_get(ds, "StudyDate", "") or ""),
        "patient": {"name": str(_get(ds, "PatientName", "") or ""),
                    "id": str(_get(ds, "PatientID", "") or ""),
                    "birth_date": str(_get(ds, "PatientBirthDate", "") or "")},
    }


def _make_series(attrs: dict[str, Any], frames: list[Frame], *, multiframe: bool) -> Series:
    s = Series(
        index=0,
        study_uid=attrs["study_uid"],
        series_uid=attrs["series_uid"],
        frame_of_reference_uid=attrs["frame_of_reference_uid"],
        modality=attrs["modality"] or "OT",
        description=attrs["description"],
        series_number=attrs["series_number"],
        sop_class_uid=attrs["sop_class_uid"],
        frames=_dedupe(frames),
        study_description=attrs["study_description"],
        study_date=attrs["study_date"],
        multiframe=multiframe,
        patient=dict(attrs["patient"]),
    )
    if len(s.frames) < len(frames):
        s.notes.append(f"{len(frames) - len(s.frames)} duplicate file(s) of the same "
                       "SOPInstanceUID ignored")
    _analyse(s)
    return s


def _analyse(s: Series) -> None:
    """(Re)compute a series' phases, geometry and warnings from its frames."""
    s.phases = split_phases(s.frames)
    geos = [series_geometry(p.frames) for p in s.phases]
    s.geometry = geos[0]
    s.warnings = list(s.notes)
    for w in dict.fromkeys(w for g in geos for w in g.warnings):
        s.warnings.append(w)
    counts = {len(p.frames) for p in s.phases}
    if len(counts) > 1:
        s.warnings.append(f"phases have different numbers of slices ({sorted(counts)})")


def _dedupe(frames: list[Frame]) -> list[Frame]:
    seen: set[tuple[str, int | None]] = set()
    out = []
    for f in frames:
        key = (f.sop_instance_uid, f.frame)
        if f.sop_instance_uid and key in seen:
            continue
        seen.add(key)
        out.append(f)
    return out


def _drop_scouts(series: list[Series], skipped: list[Skipped]) -> list[Series]:
    """Move single slices whose orientation differs from the rest of their series to skipped."""
    for s in series:
        if s.multiframe or len(s.frames) < 3 or any(f.orientation is None for f in s.frames):
            continue
        keys = [tuple(round(v, 2) for v in f.orientation) for f in s.frames]  # type: ignore[union-attr]
        counts = Counter(keys)
        if len(counts) < 2:
            continue
        main_key, _ = counts.most_common(1)[0]
        strays = [k for k, c in counts.items() if k != main_key and c == 1]
        if len(strays) == len(counts) - 1:
            keep = []
            for f, k in zip(s.frames, keys, strict=True):
                if k in strays:
                    skipped.append(Skipped(f.path, "scout: a single slice in another "
                                           "orientation than the rest of its series",
                                           s.modality, _sop_name_uid(s.sop_class_uid),
                                           s.series_uid))
                else:
                    keep.append(f)
            s.frames = keep
            _analyse(s)
    return series


def _sop_name_uid(uid: str) -> str:
    return UID(uid).name if uid else ""


# -- per-frame attributes ---------------------------------------------------------------------
def _frames(path: Path, ds: Dataset, offset: int | None) -> list[Frame]:
    nframes = int(_get(ds, "NumberOfFrames", 1) or 1)
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    rows, cols = int(_get(ds, "Rows")), int(_get(ds, "Columns"))
    common = {
        "rows": rows, "columns": cols, "transfer_syntax": syntax,
        "bits_allocated": int(_get(ds, "BitsAllocated", 16) or 16),
        "bits_stored": int(_get(ds, "BitsStored", _get(ds, "BitsAllocated", 16)) or 16),
        "signed": bool(int(_get(ds, "PixelRepresentation", 0) or 0)),
        "sop_instance_uid": _sop_instance(ds),
        "instance": _int(_get(ds, "InstanceNumber")),
        "spacing_between": _float(_get(ds, "SpacingBetweenSlices"), None),
    }
    if "PerFrameFunctionalGroupsSequence" not in ds and nframes == 1:
        return [Frame(path=path, frame=None, position=_ipp(ds), orientation=_iop(ds),
                      pixel_spacing=_ps(ds), slope=_float(_get(ds, "RescaleSlope"), 1.0),
                      intercept=_float(_get(ds, "RescaleIntercept"), 0.0),
                      thickness=_float(_get(ds, "SliceThickness"), None),
                      pixel_offset=offset,
                      temporal_position=_int(_get(ds, "TemporalPositionIdentifier")),
                      trigger_time=_float(_get(ds, "TriggerTime"), None),
                      percent_rr=_float(_get(ds, "NominalPercentageOfCardiacPhase"), None),
                      rr_ms=_rr_interval(ds), **common)]
    shared = _first(_get(ds, "SharedFunctionalGroupsSequence"))
    per_frame = list(_get(ds, "PerFrameFunctionalGroupsSequence", []) or [])
    frame_bytes = rows * cols * common["bits_allocated"] // 8
    out = []
    for i in range(nframes):
        pf = per_frame[i] if i < len(per_frame) else None
        frame = _enhanced_frame(path, ds, i, pf, shared, common)
        if offset is not None and common["bits_allocated"] >= 8:
            frame.pixel_offset = offset + i * frame_bytes
        out.append(frame)
    return out


def _enhanced_frame(path: Path, ds: Dataset, i: int, pf: Dataset | None, shared: Dataset | None,
                    common: dict[str, Any]) -> Frame:
    def group(name: str) -> Dataset | None:
        for src in (pf, shared):
            if src is not None and name in src:
                return _first(src.get(name))
        return None

    pos = group("PlanePositionSequence")
    ori = group("PlaneOrientationSequence")
    meas = group("PixelMeasuresSequence")
    pvt = group("PixelValueTransformationSequence")
    content = group("FrameContentSequence")
    cardiac = group("CardiacSynchronizationSequence")
    position = _ipp(pos) if pos is not None else _ipp(ds)
    orientation = _iop(ori) if ori is not None else _iop(ds)
    spacing = _ps(meas) if meas is not None else _ps(ds)
    thickness = _float(_get(meas, "SliceThickness"), None) if meas is not None else None
    slope = _float(_get(pvt, "RescaleSlope"), 1.0) if pvt is not None else \
        _float(_get(ds, "RescaleSlope"), 1.0)
    intercept = _float(_get(pvt, "RescaleIntercept"), 0.0) if pvt is not None else \
        _float(_get(ds, "RescaleIntercept"), 0.0)
    temporal = _int(_get(content, "TemporalPositionIndex")) if content is not None else None
    trigger = None
    percent = None
    if cardiac is not None:
        trigger = _float(_get(cardiac, "NominalCardiacTriggerDelayTime"), None)
        percent = _float(_get(cardiac, "NominalPercentageOfCardiacPhase"), None)
    return Frame(path=path, frame=i, position=position, orientation=orientation,
                 pixel_spacing=spacing, slope=slope, intercept=intercept, thickness=thickness,
                 temporal_position=temporal, trigger_time=trigger, percent_rr=percent,
                 rr_ms=_rr_interval(ds), **common)


def _rr_interval(ds: Dataset) -> float | None:
    nominal = _float(_get(ds, "NominalInterval"), None)
    if nominal and nominal > 0:
        return nominal
    rate = _float(_get(ds, "HeartRate"), None)
    return 60000.0 / rate if rate and rate > 0 else None


def _ipp(ds: Dataset) -> tuple[float, float, float] | None:
    v = _get(ds, "ImagePositionPatient")
    if v is None or len(v) != 3:
        return None
    return (float(v[0]), float(v[1]), float(v[2]))


def _iop(ds: Dataset) -> tuple[float, ...] | None:
    v = _get(ds, "ImageOrientationPatient")
    if v is None or len(v) != 6:
        return None
    return tuple(float(x) for x in v)


def _shared_iop(ds: Dataset) -> tuple[float, ...] | None:
    shared = _first(_get(ds, "SharedFunctionalGroupsSequence"))
    ori = _first(_get(shared, "PlaneOrientationSequence")) if shared is not None else None
    return _iop(ori) if ori is not None else None


def _ps(ds: Dataset) -> tuple[float, float] | None:
    v = _get(ds, "PixelSpacing") or _get(ds, "ImagerPixelSpacing")
    if v is None or len(v) != 2:
        return None
    return (float(v[0]), float(v[1]))


def _first(seq: Any) -> Dataset | None:
    try:
        return seq[0] if seq else None
    except (IndexError, TypeError):
        return None


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) or hasattr(v, "__iter__") and \
        not isinstance(v, str) else [v]


def _float(v: Any, default: float | None) -> float | None:
    if v is None or v == "":
        return default
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def _int(v: Any) -> int | None:
    if v is None or v == "":
        return None
    try:
        return int(float(v))  # IS values such as "12.0" occur in the wild
    except (TypeError, ValueError):
        return None


# -- fast header values ----------------------------------------------------------------------------
_BINARY = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}
_TEXT = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UI", "UC"}
_TAG_CACHE: dict[str, int] = {}


def _get(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """An attribute's value without pydicom's full conversion (the scan's hot path).

    Text values come back as ``str`` (a list of ``str`` when multi-valued), binary integers and
    floats as numbers, sequences as pydicom sequences.  Missing or empty: ``default``.
    """
    tag = _TAG_CACHE.get(keyword)
    if tag is None:
        tag = _TAG_CACHE.setdefault(keyword, int(tag_for_keyword(keyword)))
    try:
        elem = ds.get_item(tag)
    except KeyError:
        return default
    if elem is None:
        return default
    if not isinstance(elem, RawDataElement):
        value = elem.value
        return default if value is None or value == "" else value
    data = elem.value
    if not data:
        return default
    vr = elem.VR or dictionary_VR(tag)
    if vr in _BINARY:
        code = _BINARY[vr]
        count = len(data) // struct.calcsize(code)
        values = struct.unpack(("<" if elem.is_little_endian else ">") + code * count,
                               data[:count * struct.calcsize(code)])
        return values[0] if count == 1 else list(values)
    if vr in _TEXT:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        text = text.strip(" \x00")
        if not text:
            return default
        return [t.strip() for t in text.split("\\")] if "\\" in text else text
    value = ds.get(keyword)
    return default if value is None else value
