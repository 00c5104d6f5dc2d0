"""Slice geometry and cardiac phases of a DICOM series: pure logic on plain data (no I/O).

:class:`Frame` is one 2D image as the header scan found it; :func:`split_phases` separates the
cardiac phases of a 4D series, :func:`series_geometry` sorts the slices along their normal and
checks the grid they form (gaps, irregular spacing, duplicates, tilt, mixed orientations).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Frame", "Phase", "Geometry", "split_phases", "series_geometry", "orientation_label",
           "orthonormal"]

_ORIENTATION_TOL = 1e-3  # direction cosines equal within this (about 0.06 degrees)
_TILT_TOL_DEG = 0.1
_SPACING_REL_TOL = 0.01  # 1 % spacing deviation is noise, not a warning
_GAP_FACTOR = 1.5  # a step this many times the typical one is a gap (missing slices)


@dataclass
class Frame:
    """One 2D image: a single-frame file or one frame of a multi-frame file."""

    path: Path
    frame: int | None  # 0-based frame number in a multi-frame file, None for single-frame
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None  # row cosines then column cosines
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing) = (dy, dx)
    rows: int
    columns: int
    slope: float = 1.0
    intercept: float = 0.0
    thickness: float | None = None
    instance: int | None = None
    sop_instance_uid: str = ""
    transfer_syntax: str = ""
    pixel_offset: int | None = None  # byte offset of this frame's uncompressed pixels, if known
    temporal_position: int | None = None
    trigger_time: float | None = None
    percent_rr: float | None = None
    rr_ms: float | None = None
    spacing_between: float | None = None  # SpacingBetweenSlices, used only without positions
    bits_allocated: int = 16
    bits_stored: int = 16
    signed: bool = False


@dataclass
class Phase:
    """The frames of one cardiac phase (or the whole series when it is 3D)."""

    index: int  # 1-based, as shown to users and accepted by ``--phase``
    frames: list[Frame]
    temporal_position: int | None = None
    trigger_time_ms: float | None = None
    percent_rr: float | None = None

    def summary(self, count: int) -> dict[str, Any]:
        """Plain-data description (for logs, JSON and ``case.json``)."""
        return {"index": self.index, "count": count, "percent_rr": self.percent_rr,
                "trigger_time_ms": self.trigger_time_ms,
                "temporal_position": self.temporal_position}


@dataclass
class Geometry:
    """Slice geometry of one phase, computed from ImagePositionPatient."""

    order: list[int]  # frame indices sorted along the slice normal
    spacing: tuple[float, float, float] | None  # (dx, dy, dz) in mm; dz from positions
    normal: tuple[float, float, float] | None
    slice_direction: tuple[float, float, float] | None  # unit vector first -> last slice
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (after mm, before mm)
    irregular: bool = False
    step_deviation: float = 0.0  # largest |step - typical| / typical between adjacent slices
    duplicates: list[float] = field(default_factory=list)
    tilt_deg: float = 0.0
    mixed_orientations: int = 1
    mixed_pixels: bool = False  # several matrix sizes or pixel spacings
    warnings: list[str] = field(default_factory=list)



def orientation_label(orientation: Sequence[float] | None) -> str:
    """Plane name and LPS letter code of an ImageOrientationPatient.

    Examples
    --------
    >>> orientation_label([1, 0, 0, 0, 1, 0])
    'axial LPS'
    >>> orientation_label([1, 0, 0, 0, 0, -1])
    'coronal LIP'
    """
    if orientation is None or len(orientation) != 6:
        return "unknown"
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:], dtype=float)
    normal = np.cross(row, col)
    axis = int(np.argmax(np.abs(normal)))
    plane = ("sagittal", "coronal", "axial")[axis]
    if np.max(np.abs(normal)) < 0.95:
        plane = "oblique"
    letters = ("LR", "PA", "SI")

    def code(v: np.ndarray) -> str:
        i = int(np.argmax(np.abs(v)))
        return letters[i][0] if v[i] > 0 else letters[i][1]

    return f"{plane} {code(row)}{code(col)}{code(normal)}"


def split_phases(frames: list[Frame]) -> list[Phase]:
    """Split the frames of a series into cardiac phases (temporal positions).

    A series is 4D when several frames share a position.  The phases are then told apart by
    TemporalPositionIdentifier (or per-frame TemporalPositionIndex), else TriggerTime (or
    NominalCardiacTriggerDelayTime), else NominalPercentageOfCardiacPhase: the first of these
    that gives every phase distinct positions.  A 3D series is one phase.

    Examples
    --------
    >>> [len(p.frames) for p in split_phases(frames)]     # doctest: +SKIP
    [64, 64, 64, 64, 64, 64, 64, 64, 64, 64]
    """
    positions = [_pos_key(f) for f in frames]
    if len(set(positions)) == len(positions) or None in positions:
        return [_make_phase(1, frames)]
    for attr in ("temporal_position", "trigger_time", "percent_rr"):
        values = [getattr(f, attr) for f in frames]
        if any(v is None for v in values) or len(set(values)) < 2:
            continue
        groups: dict[Any, list[Frame]] = defaultdict(list)
        for f, v in zip(frames, values, strict=True):
            groups[v].append(f)
        if all(len({_pos_key(f) for f in g}) == len(g) for g in groups.values()):
            return [_make_phase(i, groups[k]) for i, k in enumerate(sorted(groups), start=1)]
    return [_make_phase(1, frames)]


def series_geometry(frames: list[Frame]) -> Geometry:
    """Sort frames along the slice normal and check the grid they form.

    Spacing between slices comes from ImagePositionPatient projected on the slice normal (not
    SliceThickness).  Warnings name missing slices (with the positions either side of the gap),
    irregular spacing, duplicate positions, gantry tilt, mixed orientations and a spacing that
    differs from SliceThickness.
    """
    n = len(frames)
    orientations = [f.orientation for f in frames]
    if any(o is None for o in orientations) or any(f.position is None for f in frames):
        ps = frames[0].pixel_spacing or (1.0, 1.0)
        dz = frames[0].spacing_between or frames[0].thickness or 1.0
        return Geometry(order=list(range(n)), spacing=(ps[1], ps[0], dz), normal=None,
                        slice_direction=None,
                        warnings=["no ImagePositionPatient/ImageOrientationPatient: the "
                                  "physical position of the slices is unknown (loaded with "
                                  "origin 0 and identity direction)"])
    distinct = _distinct_orientations(orientations)  # type: ignore[arg-type]
    main = next(o for o in orientations if _close(o, distinct[0]))  # type: ignore[arg-type]
    row, col = orthonormal(main)  # type: ignore[arg-type]
    normal = np.cross(row, col)
    pos = np.array([f.position for f in frames], dtype=float)
    dist = pos @ normal
    order = [int(i) for i in np.argsort(dist, kind="stable")]
    ps = frames[0].pixel_spacing or (1.0, 1.0)
    geo = Geometry(order=order, spacing=None, normal=tuple(normal), slice_direction=None,
                   mixed_orientations=len(distinct))
    if len(distinct) > 1:
        geo.warnings.append(f"mixed orientations: the series holds {len(distinct)} different "
                            "slice orientations")
    spacings = {tuple(round(v, 4) for v in f.pixel_spacing) for f in frames if f.pixel_spacing}
    sizes = {(f.rows, f.columns) for f in frames}
    geo.mixed_pixels = len(spacings) > 1 or len(sizes) > 1
    if geo.mixed_pixels:
        geo.warnings.append(f"mixed in-plane grids: {len(sizes)} matrix size(s) and "
                            f"{len(spacings)} pixel spacing(s) in one series")
    d = dist[order]
    steps = np.diff(d)
    if n < 2:
        thickness = frames[0].thickness or 1.0
        geo.spacing = (float(ps[1]), float(ps[0]), float(thickness))
        geo.slice_direction = tuple(normal)
        return geo
    dup = steps < 1e-3
    if dup.any():
        geo.duplicates = [round(float(v), 3) for v in d[1:][dup]]
        geo.warnings.append(f"{int(dup.sum())} duplicate slice positions (e.g. at "
                            f"{geo.duplicates[0]:.2f} mm along the normal)")
    real = steps[~dup]
    if real.size == 0:
        geo.spacing = (float(ps[1]), float(ps[0]), float(frames[0].thickness or 1.0))
        return geo
    typical = float(np.median(real))
    gaps = np.nonzero(steps > _GAP_FACTOR * typical)[0]
    geo.gaps = [(round(float(d[i]), 3), round(float(d[i + 1]), 3)) for i in gaps]
    regular = np.abs(real - typical) <= max(_SPACING_REL_TOL * typical, 1e-3)
    geo.irregular = not bool(regular.all()) and not geo.gaps
    geo.step_deviation = float(np.max(np.abs(real - typical)) / typical)
    if geo.gaps:
        missing = sum(int(round((b - a) / typical)) - 1 for a, b in geo.gaps)
        where = "; ".join(f"between {a:.2f} and {b:.2f} mm" for a, b in geo.gaps[:5])
        geo.warnings.append(f"missing slices: about {missing} slice(s) missing ({where} along "
                            f"the slice normal; typical spacing {typical:.3f} mm)")
    elif geo.irregular:
        geo.warnings.append(f"irregular slice spacing: steps from {real.min():.3f} to "
                            f"{real.max():.3f} mm (typical {typical:.3f} mm)")
    dz = float((d[-1] - d[0]) / (n - 1 - len(geo.duplicates))) if not geo.gaps else typical
    geo.spacing = (float(ps[1]), float(ps[0]), dz)
    first, last = pos[order[0]], pos[order[-1]]
    span = last - first
    if np.linalg.norm(span) > 0:
        sdir = span / np.linalg.norm(span)
        geo.slice_direction = tuple(float(v) for v in sdir)
        geo.tilt_deg = float(np.degrees(np.arccos(np.clip(abs(sdir @ normal), 0.0, 1.0))))
        if geo.tilt_deg > _TILT_TOL_DEG:
            geo.warnings.append(f"gantry tilt: slices are offset along the plane by "
                                f"{geo.tilt_deg:.2f} degrees")
    thickness = frames[0].thickness
    if thickness and abs(thickness - dz) > max(0.01 * dz, 1e-3):
        geo.warnings.append(f"slice thickness {thickness:g} mm differs from the spacing "
                            f"between slices {dz:.3f} mm (the spacing is used)")
    return geo


def _make_phase(index: int, frames: list[Frame]) -> Phase:
    f = frames[0]
    percent = f.percent_rr
    if percent is None and f.trigger_time is not None and f.rr_ms:
        percent = round(100.0 * f.trigger_time / f.rr_ms, 1)
    return Phase(index=index, frames=frames, temporal_position=f.temporal_position,
                 trigger_time_ms=f.trigger_time, percent_rr=percent)


def _distinct_orientations(orientations: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
    """Orientations that differ by more than the tolerance, most common first."""
    counts = Counter(tuple(round(v, 3) for v in o) for o in orientations)
    distinct: list[tuple[float, ...]] = []
    for key, _ in counts.most_common():
        if not any(_close(key, d) for d in distinct):
            distinct.append(key)
    return distinct


def orthonormal(orientation: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column cosines of an ImageOrientationPatient, made exactly orthonormal.

    DICOM stores them as decimal strings, so they are often off by ~1e-6; the column is
    re-orthogonalised against the row (Gram-Schmidt) and both are normalised.
    """
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:], dtype=float)
    row /= np.linalg.norm(row)
    col = col - (col @ row) * row
    col /= np.linalg.norm(col)
    return row, col


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 10 * _ORIENTATION_TOL


def _pos_key(f: Frame) -> tuple[float, ...] | None:
    return tuple(round(v, 2) for v in f.position) if f.position is not None else None
