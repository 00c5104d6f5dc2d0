"""The one label table of the project: values, names, colours and SNOMED-CT codes.

Every writer (label maps, ``.seg.nrrd`` for 3D Slicer, DICOM-SEG, meshes, the desktop legend and
the VR menu) reads this table, so they cannot drift apart.

Examples
--------
>>> from cardioplan.labels import LABELS
>>> LABELS["aorta"].value
6
>>> LABELS.by_value(1).name
'left_ventricle'
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Label", "LabelTable", "LABELS", "COMPOSITES"]


@dataclass(frozen=True)
class Label:
    """One structure of the label table.

    Attributes
    ----------
    value : int
        Voxel value in ``labels.nii.gz`` (uint8, 0 is background).
    name : str
        Canonical snake_case name used on the command line and in every file.
    display_name : str
        Human-readable name for legends and reports.
    color : tuple of int
        Display colour as 8-bit RGB.
    snomed_code, snomed_meaning : str
        SNOMED-CT anatomic structure (scheme ``SCT``), as DICOM-SEG and Slicer terminologies expect.
    """

    value: int
    name: str
    display_name: str
    color: tuple[int, int, int]
    snomed_code: str
    snomed_meaning: str

    @property
    def color_float(self) -> tuple[float, float, float]:
        """Colour as floats in [0, 1] (VTK, OpenGL)."""
        r, g, b = self.color
        return (r / 255.0, g / 255.0, b / 255.0)

    @property
    def color_hex(self) -> str:
        """Colour as ``#rrggbb`` (HTML)."""
        return "#{:02x}{:02x}{:02x}".format(*self.color)


class LabelTable:
    """An ordered, read-only mapping of structure name -> :class:`Label`."""

    def __init__(self, labels: list[Label]) -> None:
        values = [lab.value for lab in labels]
        names = [lab.name for lab in labels]
        if len(set(values)) != len(values) or len(set(names)) != len(names):
            raise ValueError("label values and names must be unique")
        if any(not 0 < v < 256 for v in values):
            raise ValueError("label values must be in 1..255 (uint8, 0 is background)")
        self._by_name = {lab.name: lab for lab in labels}
        self._by_value = {lab.value: lab for lab in labels}

    def __getitem__(self, name: str) -> Label:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown structure {name!r}; known structures: "
                           f"{', '.join(self.names)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Label]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def names(self) -> list[str]:
        """Structure names in table order."""
        return list(self._by_name)

    def by_value(self, value: int) -> Label:
        """Return the label with voxel value ``value``."""
        try:
            return self._by_value[int(value)]
        except KeyError:
            raise KeyError(f"no structure has label value {value}") from None

    def value_of(self, name: str) -> int:
        """Voxel value of structure ``name``."""
        return self[name].value


LABELS = LabelTable([
    Label(1, "left_ventricle", "Left ventricle", (221, 72, 72), "87878005", "Left ventricle"),
    Label(2, "right_ventricle", "Right ventricle", (70, 110, 225), "53085002", "Right ventricle"),
    Label(3, "left_atrium", "Left atrium", (245, 165, 70), "82471001", "Left atrium"),
    Label(4, "right_atrium", "Right atrium", (95, 195, 235), "73829009", "Right atrium"),
    Label(5, "myocardium", "Myocardium", (190, 140, 105), "74281007", "Myocardium"),
    Label(6, "aorta", "Aorta", (200, 30, 130), "15825003", "Aorta"),
    Label(7, "pulmonary_artery", "Pulmonary artery", (40, 170, 90), "81040000",
          "Pulmonary artery"),
    Label(8, "superior_vena_cava", "Superior vena cava", (105, 80, 200), "48345005",
          "Superior vena cava"),
    Label(9, "inferior_vena_cava", "Inferior vena cava", (150, 90, 220), "64131007",
          "Inferior vena cava"),
    Label(10, "blood_pool", "Blood pool", (230, 90, 90), "87612001", "Blood"),
    Label(11, "heart", "Heart", (206, 110, 84), "80891009", "Heart"),
])
"""The project's label table."""

COMPOSITES: dict[str, tuple[str, ...]] = {
    "blood_pool": ("left_ventricle", "right_ventricle", "left_atrium", "right_atrium",
                   "blood_pool"),
    "heart": ("left_ventricle", "right_ventricle", "left_atrium", "right_atrium", "myocardium",
              "blood_pool", "heart"),
}
"""Structures that are unions of others in an exclusive label map.

A label map holds one value per voxel, so when the chambers are separated the whole ``heart`` is
the union of the chambers, the myocardium and any voxels labelled ``heart``; evaluation and
meshing use these unions when asked for a composite structure.
"""
