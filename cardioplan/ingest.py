"""The one entry point for scans: ``read_volume(path)`` for every command, ``import_case`` for
``cardioplan import``.

Accepted inputs: a DICOM folder (searched recursively), a DICOM file or DICOMDIR; a NIfTI
(``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``) or MetaImage (``.mha``, ``.mhd``) file; or an
existing case folder (its ``image.nii``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from cardioplan.case import Case, utc_now
from cardioplan.errors import CaseExistsError, DicomError, InputError, OutputError
from cardioplan.volume import Volume

__all__ = ["read_volume", "read_label_map", "import_case", "input_record", "check_output",
           "smallest_safe_type", "IMAGE_SUFFIXES"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
"""File name endings read as images (everything else is treated as DICOM)."""

_FORMATS = {".nii": "nifti", ".nii.gz": "nifti", ".nrrd": "nrrd", ".nhdr": "nrrd",
            ".mha": "metaimage", ".mhd": "metaimage"}


def read_volume(path: str | os.PathLike[str], *, series: str | None = None,
                phase: str | None = None, allow_gaps: bool = False) -> Volume:
    """Read a scan from any supported input as a :class:`~cardioplan.volume.Volume`.

    Parameters
    ----------
    path : path-like
        DICOM folder / file / DICOMDIR, NIfTI / NRRD / MetaImage file, or a case folder.
    series : str, optional
        DICOM only: SeriesInstanceUID, SeriesNumber or index from ``cardioplan info``.
    phase : str, optional
        4D input: 1-based index (``"3"``) or percentage of the R-R interval (``"75%"``).
    allow_gaps : bool
        DICOM only: interpolate missing slices instead of refusing.

    Returns
    -------
    Volume
        LPS mm; CT in HU; the smallest safe pixel type.

    Raises
    ------
    InputError
        The path does not exist or cannot be read (DicomError / GeometryError for DICOM).

    Examples
    --------
    >>> vol = read_volume("scan.nii.gz")                       # doctest: +SKIP
    >>> vol = read_volume("dicom_folder", series="3", phase="75%")   # doctest: +SKIP
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist; give a DICOM folder, a DICOMDIR, a NIfTI/NRRD/"
                         "MetaImage file, or a case folder")
    if p.is_dir() and Case.is_case(p):
        _dicom_only(series, allow_gaps, what="a case folder")
        if phase is not None:
            raise InputError(f"--phase does not apply to a case folder ({p} holds one 3D image); "
                             "drop --phase, or import the 4D scan again with --phase")
        return _read_case(p)
    suffix = _image_suffix(p)
    if suffix is not None:
        _dicom_only(series, allow_gaps, what=f"a {_FORMATS[suffix]} file")
        return _read_image_file(p, suffix, phase=phase)
    from cardioplan.dicom import load_volume

    try:
        return load_volume(p, series=series, phase=phase, allow_gaps=allow_gaps)
    except DicomError as exc:
        images = sorted(f.name for f in p.iterdir() if _image_suffix(f)) if p.is_dir() else []
        if images:
            raise DicomError(f"{exc}.  The folder holds image files ({', '.join(images[:3])}): "
                             f"pass one directly, e.g. {p / images[0]}") from exc
        raise


def read_label_map(path: str | os.PathLike[str], *, what: str = "label map",
                   allow_case: bool = True) -> sitk.Image:
    """Read a label map: a NIfTI/NRRD/MetaImage file, or a case folder's ``labels.nii.gz``.

    Parameters
    ----------
    path : path-like
        The file, or a case folder when ``allow_case``.
    what : str
        How error messages name it (``"prediction"``, ``"reference"``...).
    allow_case : bool
        Accept a case folder.

    Raises
    ------
    InputError
        Missing or unreadable file, a folder where a file is needed, several components per
        voxel, or non-integer values (a scan given instead of labels).
    """
    p = Path(path)
    if p.is_dir():
        if not allow_case:
            raise InputError(f"{what} {p} is a folder; give a label file (NIfTI/NRRD/MHA)")
        return Case.open(p).read_labels()
    if not p.is_file():
        raise InputError(f"{what} not found: {p}")
    try:
        img = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        raise InputError(f"cannot read the {what} {p} as an image (NIfTI/NRRD/MHA expected): "
                         f"{detail}") from None
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"the {what} {p} has {img.GetNumberOfComponentsPerPixel()} "
                         "components per voxel; a label map has one integer value per voxel")
    if img.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64):
        arr = sitk.GetArrayViewFromImage(img)
        if (arr != arr.round()).any():
            raise InputError(f"the {what} {p} holds non-integer values; is it a scan rather "
                             "than a label map?")
    return img


def import_case(path: str | os.PathLike[str], output: str | os.PathLike[str], *,
                series: str | None = None, phase: str | None = None, allow_gaps: bool = False,
                force: bool = False) -> Case:
    """Create a case folder from a scan: ``image.nii`` plus provenance in ``case.json``.

    The scan is read completely before anything is written; the case is built in a staging
    folder and renamed into place, so a failure leaves nothing behind.

    Parameters
    ----------
    path : path-like
        Any input :func:`read_volume` accepts.
    output : path-like
        The case folder to create.
    series, phase, allow_gaps
        As for :func:`read_volume`.
    force : bool
        Replace an existing case folder (never a folder that is not a case).

    Returns
    -------
    Case
        The committed case.

    Raises
    ------
    CaseExistsError
        ``output`` exists and ``force`` is False, or it is a non-empty folder that is not a case.
    OutputError
        ``output`` cannot be written.

    Examples
    --------
    >>> case = import_case("dicom_folder", "cases/p1")          # doctest: +SKIP
    >>> case.image_info["size"]                                 # doctest: +SKIP
    [512, 512, 320]
    """
    src, out = Path(path).absolute(), Path(output).absolute()
    check_output(src, out, force=force)
    vol = read_volume(src, series=series, phase=phase, allow_gaps=allow_gaps)
    record = input_record(vol, src)
    with Case.create(out, force=force) as case:
        case.write_image(vol.image, produced_by="cardioplan import", modality=vol.modality,
                         phase=vol.phase)
        case.add_input(record)
    log.info("case written to %s", case.path)
    return case


def input_record(vol: Volume, src: Path) -> dict[str, Any]:
    """The ``inputs`` entry of ``case.json``: provenance without patient identity.

    For DICOM it keeps what a DICOM-SEG export needs to reference the source series: the UIDs
    (study, series, frame of reference, SOP class and the SOPInstanceUIDs in slice order) and
    the files (relative to ``path``).
    """
    record: dict[str, Any] = {"imported": utc_now(), "modality": vol.modality,
                              "description": vol.description, "phase": vol.phase,
                              "warnings": list(vol.warnings)}
    source = dict(vol.source)
    if "files" in source and src.is_dir():
        source["files"] = [_relative(f, src) for f in source["files"]]
    source["path"] = str(src)
    record.update(source)
    return record


def smallest_safe_type(image: sitk.Image) -> sitk.Image:
    """Cast to the smallest type that holds the values exactly (float64 -> float32 at most).

    Integral float or wide-integer images whose range fits int16 become int16 (a normal CT must
    not be held as int32 or float64).

    Examples
    --------
    >>> img = sitk.Cast(sitk.Image([4, 4, 4], sitk.sitkInt16) - 1000, sitk.sitkFloat64)
    >>> smallest_safe_type(img).GetPixelIDTypeAsString()
    '16-bit signed integer'
    """
    if image.GetNumberOfComponentsPerPixel() != 1:
        return image
    arr = sitk.GetArrayViewFromImage(image)
    if arr.size == 0:
        return image
    lo, hi = float(arr.min()), float(arr.max())
    integral = np.issubdtype(arr.dtype, np.integer) or bool(np.all(np.mod(arr, 1) == 0))
    if integral:
        for dtype, pid in ((np.uint8, sitk.sitkUInt8), (np.int16, sitk.sitkInt16),
                           (np.uint16, sitk.sitkUInt16), (np.int32, sitk.sitkInt32)):
            info = np.iinfo(dtype)
            if info.min <= lo and hi <= info.max:
                if arr.dtype.itemsize > np.dtype(dtype).itemsize or arr.dtype.kind == "f":
                    return sitk.Cast(image, pid)
                return image
    if arr.dtype == np.float64:
        return sitk.Cast(image, sitk.sitkFloat32)
    return image


# -- helpers ---------------------------------------------------------------------------------------
def _image_suffix(p: Path) -> str | None:
    name = p.name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix) and p.is_file():
            return suffix
    return None


def _dicom_only(series: str | None, allow_gaps: bool, *, what: str) -> None:
    if series is not None:
        raise InputError(f"--series applies to DICOM input only, but the input is {what}; "
                         "drop --series")
    if allow_gaps:
        log.info("--allow-gaps has no effect on %s", what)


def _read_case(folder: Path) -> Volume:
    case = Case.open(folder)
    info = case.image_info
    image = case.read_image()
    return Volume(image=image, modality=str(info.get("modality", "OT")),
                  description=str((case.inputs or [{}])[0].get("description", "")),
                  series_uid=(case.inputs or [{}])[0].get("series_uid") or None,
                  phase=info.get("phase"),
                  source={"format": "case", "path": str(folder.absolute()),
                          "case_id": case.case_id})


def _read_image_file(p: Path, suffix: str, *, phase: str | None) -> Volume:
    try:
        image = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        raise InputError(f"cannot read {p} as {_FORMATS[suffix]} ({detail}); check the file is "
                         "complete and not compressed twice") from exc
    image, phase_info = _pick_frame(image, p, phase)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{p} has {image.GetNumberOfComponentsPerPixel()} components per voxel "
                         "(colour or vector image); give a greyscale scan")
    if image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
    image = smallest_safe_type(image)
    modality, note = _guess_modality(image)
    warnings = [note] if note else []
    return Volume(image=image, modality=modality, description=p.name, phase=phase_info,
                  source={"format": _FORMATS[suffix], "path": str(p.absolute())},
                  warnings=warnings)


def _pick_frame(image: sitk.Image, p: Path, phase: str | None
                ) -> tuple[sitk.Image, dict[str, Any] | None]:
    if image.GetDimension() != 4:
        if phase is not None:
            raise InputError(f"--phase applies to 4D input, but {p} is {image.GetDimension()}D; "
                             "drop --phase")
        return image, None
    count = image.GetSize()[3]
    if phase is None:
        index = 1
    else:
        try:
            index = int(phase)
        except ValueError:
            raise InputError(f"--phase {phase!r}: {p} records no cardiac percentages; give an "
                             f"index 1..{count}") from None
        if not 1 <= index <= count:
            raise InputError(f"--phase {index} is out of range: {p} has {count} time points")
    size = list(image.GetSize())
    size[3] = 0
    frame = sitk.Extract(image, size, [0, 0, 0, index - 1])
    log.info("4D image: using time point %d of %d", index, count)
    return frame, {"index": index, "count": count, "percent_rr": None, "trigger_time_ms": None}


def _guess_modality(image: sitk.Image) -> tuple[str, str]:
    """CT when the values look like Hounsfield units (air near -1000), else OT."""
    arr = sitk.GetArrayViewFromImage(image)
    lo, hi = float(arr.min()), float(arr.max())
    if -1100 <= lo <= -900 and hi > 200:
        return "CT", (f"modality not recorded in the file; assumed CT because the values "
                      f"{lo:g}..{hi:g} look like Hounsfield units")
    return "OT", ""


def _relative(f: str, root: Path) -> str:
    try:
        return Path(f).relative_to(root).as_posix()
    except ValueError:
        return f


def check_output(src: Path, out: Path, *, force: bool) -> None:
    """Refuse an output case folder that cannot or must not be written, before any work.

    The output must not lie inside the input; an existing output is replaced only with
    ``force`` and only when it is a case (or an empty folder); its parent must be writable.

    Raises
    ------
    InputError, CaseExistsError, OutputError
        With a message naming the problem and the fix.
    """
    if out == src or src in out.parents and not src.is_file():
        raise InputError(f"the output {out} is inside the input {src}; CardioPlan never writes "
                         "into its input: choose an output folder elsewhere")
    if out.exists():
        if not force:
            raise CaseExistsError(f"{out} already exists; choose another output folder or pass "
                                  "--force to replace the case")
        if out.is_dir() and not Case.is_case(out) and any(out.iterdir()):
            raise CaseExistsError(f"{out} is a folder that is not a CardioPlan case; --force "
                                  "only replaces cases: choose another output folder")
        if not out.is_dir():
            raise CaseExistsError(f"{out} exists and is not a folder; choose another path")
    ancestor = out.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {out}: {ancestor} is not a writable folder; choose a "
                          "writable output folder")  # checked before the (slow) scan is read
