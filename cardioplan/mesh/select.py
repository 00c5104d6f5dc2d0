"""Which structures of a label map to mesh or export (light: no VTK).

A structure is a name of the label table.  Its voxels are the voxels of its own value or, for a
composite (:data:`cardioplan.labels.COMPOSITES`, e.g. ``heart``), of any of its members'
values.  Asking for a structure the map does not hold skips it with a warning; asking for one
the table does not know, or ending up with nothing, is an error.

Examples
--------
>>> import SimpleITK as sitk
>>> lab = sitk.Image(8, 8, 8, sitk.sitkUInt8); lab[2:5, 2:5, 2:5] = 1
>>> [(s.name, s.values) for s in resolve_structures(lab)]
[('left_ventricle', (1,))]
>>> [(s.name, s.values) for s in resolve_structures(lab, structures=["heart"])]
[('heart', (1,))]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from cardioplan.arrays import label_counts
from cardioplan.errors import InputError
from cardioplan.labels import COMPOSITES, LABELS, Label, LabelTable

__all__ = ["Structure", "check_label_image", "resolve_structures"]

log = logging.getLogger(__name__)

_INTEGER_PIXELS = (sitk.sitkUInt8, sitk.sitkInt8, sitk.sitkUInt16, sitk.sitkInt16,
                   sitk.sitkUInt32, sitk.sitkInt32, sitk.sitkUInt64, sitk.sitkInt64)


@dataclass(frozen=True)
class Structure:
    """One structure to mesh or export.

    Attributes
    ----------
    label : Label
        Its entry of the label table (name, colour, codes).
    values : tuple of int
        The label values present in the map whose union is the structure.
    voxels : int
        Number of voxels of the structure.
    """

    label: Label
    values: tuple[int, ...]
    voxels: int

    @property
    def name(self) -> str:
        return self.label.name


def check_label_image(labels: sitk.Image) -> None:
    """Raise :class:`InputError` unless ``labels`` is a 3D integer label map with values 0..255."""
    if labels.GetDimension() != 3 or labels.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("a label map must be a 3D single-component image; got "
                         f"{labels.GetDimension()}D with "
                         f"{labels.GetNumberOfComponentsPerPixel()} components")
    if labels.GetPixelID() not in _INTEGER_PIXELS:
        raise InputError(f"a label map must hold integers, got {labels.GetPixelIDTypeAsString()}")
    arr = sitk.GetArrayViewFromImage(labels)
    if arr.dtype != np.uint8 and arr.size and (arr.min() < 0 or arr.max() > 255):
        raise InputError("label values must be in 0..255 (uint8 label map)")


def resolve_structures(labels: sitk.Image, *, structures: Sequence[str] | None = None,
                       table: LabelTable = LABELS,
                       counts: np.ndarray | None = None) -> list[Structure]:
    """The structures to process, in request (or table) order.

    Parameters
    ----------
    labels : SimpleITK.Image
        The label map.
    structures : sequence of str, optional
        Names to process; composites (``heart``, ``blood_pool``) are the union of their members.
        Default: every table structure whose own value has voxels (no composites).
    table : LabelTable
        The label table.
    counts : numpy.ndarray, optional
        :func:`cardioplan.arrays.label_counts` of ``labels`` when the caller already has
        them.

    Raises
    ------
    InputError
        Unknown structure name, or none of the structures has voxels.
    """
    check_label_image(labels)
    if counts is None:
        counts = label_counts(sitk.GetArrayViewFromImage(labels))
    present = {int(v) for v in np.nonzero(counts)[0] if v != 0}
    unknown = sorted(present - {lab.value for lab in table})
    if unknown:
        log.warning("label values %s are not in the label table and were left out", unknown)
    if structures is None:
        chosen = [(lab, (lab.value,)) for lab in table if lab.value in present]
    else:
        chosen = []
        for name in dict.fromkeys(structures):
            if name not in table:
                raise InputError(f"unknown structure {name!r}; known structures: "
                                 f"{', '.join(table.names)}")
            members = COMPOSITES.get(name, (name,))
            values = tuple(sorted(table[m].value for m in members
                                  if m in table and table[m].value in present))
            if values:
                chosen.append((table[name], values))
            else:
                log.warning("structure %s has no voxels in the label map; skipped", name)
    result = [Structure(lab, values, int(sum(counts[v] for v in values)))
              for lab, values in chosen]
    if not result:
        raise InputError("the label map holds none of the requested structures (it is empty or "
                         "they are all missing); segment the case first with "
                         "`cardioplan segment CASE` or choose other --structures")
    return result
