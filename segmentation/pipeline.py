"""One entry point for heart segmentation: :func:`segment` takes a Volume, returns labels.

It checks the input (3D, seeds inside the image and not in air), decides the modality (from the
Volume's DICOM modality, else from intensity statistics), runs the CT pipeline
(:func:`segmentation.ct.segment_ct`) or the MR pipeline (:func:`segmentation.mr.segment_mr`),
and measures every structure.  It never reads or writes files.

Examples
--------
>>> from cardioplan.phantom import make_phantom
>>> from cardioplan.volume import Volume
>>> image, _ = make_phantom(spacing=(1.5, 1.5, 1.5))
>>> result = segment(Volume(image, modality="CT"))
>>> result.modality, result.structures["aorta"]["volume_ml"] > 10
('CT', True)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from cardioplan.errors import InputError, SegmentationError
from cardioplan.labels import COMPOSITES, LABELS
from cardioplan.seeds import Seed
from cardioplan.volume import Volume
from segmentation.postprocess import structure_volumes

__all__ = ["segment", "SegmentationResult", "detect_modality", "looks_like_ct", "MODALITIES"]

log = logging.getLogger(__name__)

MODALITIES = ("auto", "ct", "mr")


@dataclass
class SegmentationResult:
    """What :func:`segment` returns.

    Attributes
    ----------
    labels : SimpleITK.Image
        uint8 label map on the input image's grid (values of :data:`cardioplan.labels.LABELS`).
    modality : str
        ``"CT"`` or ``"MR"``: the pipeline that ran.
    structures : dict
        ``name -> {"value", "voxels", "volume_ml"}`` for every structure present, plus the
        composites ``heart`` and ``blood_pool`` (``"composite": True``) when chambers exist.
    warnings : list of str
        Everything the user should know (missing structures, modality doubts...).
    method : dict
        What was run, with its parameters and timing (stored in ``case.json``).
    """

    labels: sitk.Image
    modality: str
    structures: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    method: dict[str, Any] = field(default_factory=dict)

    def voxel_counts(self) -> np.ndarray:
        """Voxel count of every label value 0..255 (length-256 int array), from ``structures``
        (composites left out): what :func:`cardioplan.arrays.label_counts` would count."""
        counts = np.zeros(256, dtype=np.int64)
        for record in self.structures.values():
            if not record.get("composite"):
                counts[record["value"]] = record["voxels"]
        counts[0] = math.prod(self.labels.GetSize()) - counts.sum()
        return counts


def segment(volume: Volume, *, modality: str = "auto", structures: Sequence[str] | None = None,
            seeds: Sequence[Seed] = (), bias_correction: bool = False) -> SegmentationResult:
    """Segment the heart structures of ``volume``.

    Parameters
    ----------
    volume : Volume
        The scan (3D, LPS mm; CT in HU).
    modality : {"auto", "ct", "mr"}
        Which pipeline to run; ``auto`` uses the DICOM modality, else intensity statistics.
    structures : sequence of str, optional
        Structures to output (names of :data:`cardioplan.labels.LABELS`); default all found.
    seeds : sequence of Seed
        Points (LPS mm) inside structures; one per chamber when automatic detection is not
        enough (required for MR).
    bias_correction : bool
        MR only: run N4 bias-field correction first (see :func:`segmentation.mr.segment_mr`);
        worth it for surface-coil images with strong shading.  Ignored, with a warning, for CT.

    Returns
    -------
    SegmentationResult

    Raises
    ------
    InputError
        A 2D image, an unknown modality or structure, a seed outside the image or in air.
    SegmentationError
        No heart was found (nothing is returned that pretends otherwise).

    Examples
    --------
    >>> result = segment(volume, seeds=read_seeds("seeds.json"))   # doctest: +SKIP
    >>> result.structures["left_ventricle"]["volume_ml"]            # doctest: +SKIP
    16.4
    """
    start = time.perf_counter()
    image = volume.image
    _check_image(image)
    if modality not in MODALITIES:
        raise InputError(f"unknown modality {modality!r}; use one of {', '.join(MODALITIES)}")
    for name in structures or ():
        if name not in LABELS:
            raise InputError(f"unknown structure {name!r}; use names from: "
                             f"{', '.join(LABELS.names)}")
    warnings: list[str] = []
    chosen, reason = detect_modality(volume) if modality == "auto" else (modality.upper(),
                                                                          "--modality")
    stats_ct = looks_like_ct(image)
    if chosen == "CT" and not stats_ct:
        warnings.append("the image is treated as CT but its intensities do not look like "
                        "Hounsfield units (no air near -1000 HU); if it is an MRI use "
                        "--modality mr")
    elif chosen == "MR" and stats_ct:
        warnings.append("the image is treated as MR but its intensities look like CT "
                        "Hounsfield units; if it is a CT use --modality ct")
    for w in warnings:
        log.warning("%s", w)
    _check_seeds(image, seeds, ct=stats_ct)
    if bias_correction and chosen == "CT":
        warnings.append("bias-field correction applies to MR only; it was not run on this CT")
        log.warning("%s", warnings[-1])
    method: dict[str, Any] = {"modality": chosen, "modality_from": reason}
    if chosen == "CT":
        from segmentation.ct import segment_ct

        ct = segment_ct(image, seeds=seeds, structures=structures)
        labels = ct.labels
        warnings.extend(ct.warnings)
        method.update(ct.method)
    else:
        labels = _run_mr(image, seeds=seeds, structures=structures,
                         bias_correction=bias_correction)
        method["pipeline"] = "cardioplan MR (segmentation.mr.segment_mr)"
        method["bias_correction"] = bias_correction
    arr = sitk.GetArrayViewFromImage(labels)
    if not arr.any():
        raise SegmentationError("no heart found: the segmentation is empty; check that the scan "
                                "shows the heart, or place seeds inside the structures")
    found = structure_volumes(np.asarray(arr), spacing=image.GetSpacing()[::-1])
    found.update(_composites(arr, found, spacing=image.GetSpacing()))
    method["seconds"] = round(time.perf_counter() - start, 2)
    method["seeds"] = [s.to_json() for s in seeds]
    return SegmentationResult(labels=labels, modality=chosen, structures=found,
                              warnings=warnings, method=method)


def detect_modality(volume: Volume) -> tuple[str, str]:
    """``("CT" | "MR", reason)`` from the DICOM modality, else from intensity statistics."""
    if volume.modality in ("CT", "MR"):
        fmt = str(volume.source.get("format", "dicom"))
        return volume.modality, "DICOM modality" if fmt == "dicom" else f"{fmt} input"
    if looks_like_ct(volume.image):
        return "CT", "intensities (air at -1000 HU)"
    return "MR", "intensities (no Hounsfield air)"


def looks_like_ct(image: sitk.Image) -> bool:
    """True when the intensities look like Hounsfield units: a clear share of air near -1000.

    Examples
    --------
    >>> looks_like_ct(sitk.Image([8, 8, 8], sitk.sitkInt16) - 1000)
    True
    """
    arr = sitk.GetArrayViewFromImage(image)
    step = max(1, arr.size // 2_000_000)
    sample = arr.ravel()[::step]
    air = np.count_nonzero((sample > -1100) & (sample < -850))
    return bool(air >= 0.02 * sample.size and sample.min() < -850)


def _check_image(image: sitk.Image) -> None:
    size = image.GetSize()
    if image.GetDimension() != 3 or min(size) < 2:
        raise InputError(f"segmentation needs a 3D volume, got a {image.GetDimension()}D image "
                         f"of size {'x'.join(str(s) for s in size)}; give a whole series or "
                         "volume file, not a single slice")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("segmentation needs a grey-scale image, got "
                         f"{image.GetNumberOfComponentsPerPixel()} components per voxel")


def _check_seeds(image: sitk.Image, seeds: Sequence[Seed], *, ct: bool) -> None:
    """Refuse seeds outside the image or in air, naming the seed."""
    if not seeds:
        return
    arr = sitk.GetArrayViewFromImage(image)
    air = -400.0 if ct else 0.05 * float(np.percentile(arr[::4, ::4, ::4], 99))
    size = image.GetSize()
    for seed in seeds:
        idx = image.TransformPhysicalPointToContinuousIndex([float(c) for c in seed.point])
        x, y, z = (int(round(c)) for c in idx)
        where = ", ".join(f"{c:.1f}" for c in seed.point)
        if not (0 <= x < size[0] and 0 <= y < size[1] and 0 <= z < size[2]):
            raise InputError(f"seed {seed.structure} at ({where}) mm lies outside the image; "
                             "seeds are LPS millimetres as the viewer shows them")
        if float(arr[z, y, x]) < air:
            raise InputError(f"seed {seed.structure} at ({where}) mm lies in air "
                             f"({float(arr[z, y, x]):.0f}); move it inside the structure")


def _run_mr(image: sitk.Image, *, seeds: Sequence[Seed], structures: Sequence[str] | None,
            bias_correction: bool) -> sitk.Image:
    try:
        from segmentation.mr import segment_mr
    except ImportError as exc:  # pragma: no cover - the MR module ships with the package
        raise SegmentationError(f"the MR pipeline is not available ({exc})") from exc
    labels = segment_mr(image, seeds=seeds, structures=structures,
                        bias_correction=bias_correction)
    if labels.GetPixelID() != sitk.sitkUInt8:
        labels = sitk.Cast(labels, sitk.sitkUInt8)
    return labels


def _composites(arr: np.ndarray, found: dict[str, dict[str, Any]], *,
                spacing: Sequence[float]) -> dict[str, dict[str, Any]]:
    """Volumes of ``heart`` and ``blood_pool`` as unions, when their parts were segmented."""
    voxel_ml = float(np.prod(spacing)) / 1000.0
    out: dict[str, dict[str, Any]] = {}
    for name, members in COMPOSITES.items():
        parts = [m for m in members if m in found and m != name]
        if name in found or len(parts) < 2:
            continue
        voxels = sum(int(found[m]["voxels"]) for m in parts)
        out[name] = {"value": LABELS.value_of(name), "voxels": voxels,
                     "volume_ml": round(voxels * voxel_ml, 2), "composite": True,
                     "members": parts}
    return out
