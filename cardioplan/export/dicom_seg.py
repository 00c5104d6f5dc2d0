"""DICOM Segmentation (SEG) objects that reference the source CT/MR series (highdicom).

This is the one module downstream of :mod:`cardioplan.dicom` that imports pydicom: a DICOM-SEG
is DICOM, and highdicom builds it from the source images' headers.  The case's ``inputs``
record (written by ``cardioplan import``) names the source folder, files and SOPInstanceUIDs in
slice order.

The source headers come from :func:`cardioplan.dicom.source.source_headers` (one per slice of
the case image, pixel data never read).  The SEG is a BINARY segmentation, one segment per
structure with its label-table name, SNOMED-CT property type, category (Anatomical Structure,
or Body Substance for blood) and display colour (CIELab).  Patient and study attributes are
copied from the source by highdicom, as PACS and viewers require; nothing is logged about them.

Examples
--------
>>> from cardioplan.case import Case
>>> from cardioplan.export.dicom_seg import write_case_dicom_seg
>>> write_case_dicom_seg(Case.open("case1"), "case1_seg.dcm")    # doctest: +SKIP
PosixPath('case1_seg.dcm')
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.sr.codedict import codes

from cardioplan import __version__
from cardioplan.case import Case
from cardioplan.dicom.source import source_headers
from cardioplan.errors import CaseError, CaseExistsError, InputError
from cardioplan.fileio import atomic_path
from cardioplan.labels import LABELS, Label, LabelTable
from cardioplan.mesh.select import resolve_structures

__all__ = ["write_dicom_seg", "write_case_dicom_seg", "segment_descriptions"]

log = logging.getLogger(__name__)

_SUBSTANCE_CODES = {"87612001"}  # Blood
_POSITION_TOLERANCE_MM = 0.05


def segment_descriptions(labels: Sequence[Label]) -> list[hd.seg.SegmentDescription]:
    """One highdicom segment description per label, numbered 1..N in order."""
    algorithm = hd.AlgorithmIdentificationSequence(
        name="CardioPlan", version=__version__, family=codes.cid7162.ArtificialIntelligence)
    out = []
    for number, lab in enumerate(labels, start=1):
        category = (codes.SCT.BodySubstance if lab.snomed_code in _SUBSTANCE_CODES
                    else codes.SCT.AnatomicalStructure)
        out.append(hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=lab.display_name,
            segmented_property_category=category,
            segmented_property_type=hd.sr.CodedConcept(lab.snomed_code, "SCT",
                                                       lab.snomed_meaning),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            tracking_id=lab.name,
            tracking_uid=hd.UID(),
            display_color=hd.color.CIELabColor.from_rgb(*lab.color),
        ))
    return out


def write_dicom_seg(labels: sitk.Image,
                    sources: Sequence[str | os.PathLike[str] | pydicom.Dataset],
                    path: str | os.PathLike[str], *, table: LabelTable = LABELS,
                    structures: Sequence[str] | None = None, series_number: int = 900,
                    force: bool = False) -> Path:
    """Write ``labels`` as a DICOM-SEG referencing the single-frame source series it lies on.

    Parameters
    ----------
    labels : SimpleITK.Image
        The label map, on the grid of the source series.
    sources : sequence of path-like or pydicom.Dataset
        The source series: its files (any order; only headers are read) or their headers.
    path : path-like
        Output ``.dcm`` file.
    table : LabelTable
        Names, codes and colours.
    structures : sequence of str, optional
        Only these structures (composites write their members).  Missing ones are skipped with a
        warning.
    series_number : int
        SeriesNumber of the new SEG series.
    force : bool
        Replace an existing file.

    Raises
    ------
    InputError
        The label map is empty, the sources are not a single-frame image series, or the label
        map does not lie on the source grid.
    CaseExistsError
        ``path`` exists and ``force`` is False.

    Examples
    --------
    >>> write_dicom_seg(labels, sorted(Path("dicom").glob("*.dcm")), "seg.dcm")  # doctest: +SKIP
    """
    target = Path(path)
    if target.exists() and not force:
        raise CaseExistsError(f"{target} already exists; choose another -o or pass --force")
    chosen = resolve_structures(labels, structures=structures, table=table)
    values = sorted({v for s in chosen for v in s.values})
    wanted = [table.by_value(v) for v in values]
    sources = _read_headers(sources)
    order = _slice_order(labels, sources)
    arr = sitk.GetArrayViewFromImage(labels)
    lut = np.zeros(256, dtype=np.uint8)
    for number, lab in enumerate(wanted, start=1):
        lut[lab.value] = number
    pixel = lut[arr.astype(np.uint8)][order]  # frames in source order
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixel,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segment_descriptions(wanted),
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="CardioPlan",
        manufacturer_model_name="cardioplan",
        software_versions=__version__,
        device_serial_number="0",
        series_description="CardioPlan segmentation",
        content_label="CARDIOPLAN",
        content_description="Heart structures segmented by CardioPlan",
    )
    with atomic_path(target) as tmp:
        seg.save_as(tmp)
    log.info("wrote DICOM-SEG %s (%d segments, %d source slices)", target, len(wanted),
             len(sources))
    return target


def _read_headers(sources: Sequence[str | os.PathLike[str] | pydicom.Dataset]
                  ) -> list[pydicom.Dataset]:
    if not sources:
        raise InputError("DICOM-SEG needs the source DICOM series, but no files were given")
    headers = []
    for f in sources:
        try:
            ds = f if isinstance(f, pydicom.Dataset) else pydicom.dcmread(
                f, stop_before_pixels=True)
        except FileNotFoundError as exc:
            raise InputError(f"source DICOM file {f} is missing; the DICOM-SEG must reference "
                             "the series the case was imported from (restore it or re-import)"
                             ) from exc
        except pydicom.errors.InvalidDicomError as exc:
            raise InputError(f"{f} is not a DICOM file") from exc
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            raise InputError("DICOM-SEG export supports single-frame source series (CT/MR "
                             "Image Storage); this series is multi-frame; export seg.nrrd "
                             "instead")
        headers.append(ds)
    return headers


def _slice_order(labels: sitk.Image, sources: list[pydicom.Dataset]) -> np.ndarray:
    """Index ``k`` of the label map's slice for each source image, checking the geometry."""
    direction = np.asarray(labels.GetDirection()).reshape(3, 3)
    size = labels.GetSize()
    order = []
    for ds in sources:
        try:
            iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
            ipp = np.asarray(ds.ImagePositionPatient, dtype=float)
        except AttributeError as exc:
            raise InputError("a source image has no ImageOrientationPatient/Position; it "
                             "cannot be referenced by a DICOM-SEG") from exc
        if (int(ds.Columns), int(ds.Rows)) != (size[0], size[1]) or not (
                np.allclose(iop[:3], direction[:, 0], atol=1e-3)
                and np.allclose(iop[3:], direction[:, 1], atol=1e-3)):
            raise InputError("the label map is not on the source DICOM grid (size or "
                             "orientation differ), so a DICOM-SEG cannot reference it; export "
                             "seg.nrrd instead")
        index = labels.TransformPhysicalPointToContinuousIndex([float(v) for v in ipp])
        k = int(round(index[2]))
        if abs(index[0]) > 0.01 or abs(index[1]) > 0.01 or abs(index[2] - k) > 0.01 \
                or not 0 <= k < size[2]:
            raise InputError("a source slice does not match a slice of the label map (the "
                             "image was resampled or cropped after import); export seg.nrrd "
                             "instead")
        order.append(k)
    if len(set(order)) != len(order):
        raise InputError("two source images lie on the same slice (several series or "
                         "phases?); DICOM-SEG needs the one series the case was imported from")
    return np.asarray(order)


def write_case_dicom_seg(case: Case, path: str | os.PathLike[str], *,
                         structures: Sequence[str] | None = None,
                         force: bool = False) -> Path:
    """Write a case's label map as DICOM-SEG referencing the DICOM series it was imported from.

    Raises
    ------
    CaseError
        The case was not imported from a single DICOM series, or has no label map.

    Examples
    --------
    >>> write_case_dicom_seg(Case.open("case1"), "seg.dcm", structures=["heart"])  # doctest: +SKIP
    """
    record = _dicom_input(case)
    labels = case.read_labels()
    return write_dicom_seg(labels, source_headers(record), path, structures=structures,
                           force=force)


def _dicom_input(case: Case) -> dict[str, Any]:
    dicom = [r for r in case.inputs if r.get("format") == "dicom"]
    if not dicom:
        raise CaseError("DICOM-SEG references the source DICOM series, but this case was not "
                        "imported from DICOM; export seg.nrrd (3D Slicer) instead")
    record = dicom[-1]
    if record.get("multiframe"):
        raise CaseError("DICOM-SEG export supports single-frame source series; this case came "
                        "from a multi-frame (enhanced) series; export seg.nrrd instead")
    return record
