"""The shared rehearsal plan (``CASE/plan.json``), read and written by the desktop viewer and VR.

A plan holds everything a reviewer or surgeon adds on top of the meshes: per-structure display
(visibility, opacity, colour override), landmarks, measurements, cut planes, segmentation seeds,
saved views (a camera, or a model pose for VR), ordered rehearsal steps and the model pose.
All points are physical LPS coordinates in millimetres, the space of the image and the meshes.

``plan.json`` (``schema_version`` 1)::

    {
      "schema": "cardioplan.plan",
      "schema_version": 1,
      "space": "LPS", "units": "mm",
      "revision": 12,                       # +1 on every save
      "modified": "2026-11-25T20:40:00+00:00", "modified_by": "desktop",
      "display": {"aorta": {"visible": true, "opacity": 0.6, "color": [200, 30, 130]}},
      "landmarks": [{"id": "a1b2c3d4", "name": "VSD centre", "point": [x, y, z],
                     "structure": "myocardium"}],
      "measurements": [{"id": "...", "name": "VSD diameter", "kind": "distance",
                        "points": [[x, y, z], [x, y, z]], "value": 8.2, "unit": "mm"}],
      "cut_planes": [{"id": "...", "name": "four-chamber", "origin": [x, y, z],
                      "normal": [nx, ny, nz], "structures": ["myocardium"], "enabled": true}],
      "seeds": [{"structure": "left_ventricle", "point": [x, y, z]}],
      "views": [{"name": "surgeon", "camera": {"position": [...], "focal_point": [...],
                 "view_up": [...], "view_angle": 30.0}, "model_pose": null}],
      "steps": [{"id": "...", "title": "Open the RA", "note": "...", "view": "surgeon",
                 "visible": ["right_atrium", "myocardium"], "cut_planes": ["<cut plane id>"]}],
      "model_pose": {"position": [0, 0, 0], "orientation_xyzw": [0, 0, 0, 1], "scale": 1.0}
    }

``seeds`` is exactly the list of :mod:`cardioplan.seeds`, so ``cardioplan segment --seeds
CASE/plan.json`` reads the seeds placed in the viewer or the headset.  Measurement values are
computed from the points by :func:`distance_mm` / :func:`angle_deg` (the stored ``value`` is a
convenience for other readers and is recomputed on load).  Unknown top-level keys are kept and
written back unchanged.

Concurrent writers
------------------
The desktop viewer and the headset may edit the same case at the same time.  Every edit goes
through :func:`edit_plan`, which takes an exclusive ``fcntl`` lock on ``CASE/.plan.lock``,
re-reads the latest ``plan.json``, applies the caller's change function, bumps ``revision`` and
writes the file atomically (temporary file + rename).  An edit therefore never works on a stale
copy and two writers cannot lose each other's changes; a reader never sees a half-written file.
:class:`PlanWatcher` is a cheap change detector (one ``stat`` call) so a front end can reload
the plan when the other one saved.

A corrupt or newer-version ``plan.json`` is never overwritten: loading it raises
:class:`~cardioplan.errors.CaseError` (or :class:`~cardioplan.errors.SchemaVersionError`) and
first keeps a copy as ``plan.json.bak-<UTC timestamp>``.

Examples
--------
>>> plan = Plan()
>>> plan.add_measurement(kind="distance", points=[(0, 0, 0), (3, 4, 0)]).value
5.0
>>> plan_from_json(plan_to_json(plan)) == plan
True
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import errno
import fcntl
import glob
import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cardioplan.errors import CaseError, InputError, OutputError, SchemaVersionError
from cardioplan.fileio import explain_os_error, read_json, write_json_atomic
from cardioplan.seeds import Seed, seeds_from_json, seeds_to_json

__all__ = [
    "PLAN_SCHEMA", "PLAN_SCHEMA_VERSION", "PLAN_FILE", "Point",
    "StructureDisplay", "Landmark", "Measurement", "CutPlane", "Camera", "ModelPose",
    "SavedView", "RehearsalStep", "Plan",
    "distance_mm", "angle_deg", "plan_from_json", "plan_to_json",
    "plan_path_of", "load_plan", "save_plan", "edit_plan", "backup_plan", "PlanWatcher",
]

log = logging.getLogger(__name__)

PLAN_SCHEMA = "cardioplan.plan"
PLAN_SCHEMA_VERSION = 1
PLAN_FILE = "plan.json"
_LOCK_FILE = ".plan.lock"
LOCK_TIMEOUT_S = 10.0
"""How long :func:`edit_plan` waits for another writer before giving up."""

Point = tuple[float, float, float]
Author = Literal["desktop", "vr", "cli", "script"]
_KINDS = {"distance": 2, "angle": 3}
_UNITS = {"distance": "mm", "angle": "deg"}


# -- pure geometry ---------------------------------------------------------------------------
def distance_mm(a: Sequence[float], b: Sequence[float]) -> float:
    """Euclidean distance between two LPS points, in millimetres.

    Examples
    --------
    >>> distance_mm((0, 0, 0), (3, 4, 12))
    13.0
    """
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True)))


def angle_deg(a: Sequence[float], vertex: Sequence[float], c: Sequence[float]) -> float:
    """Angle ``a-vertex-c`` at ``vertex``, in degrees (0..180).

    Raises
    ------
    InputError
        ``a`` or ``c`` coincides with ``vertex`` (the angle is undefined).

    Examples
    --------
    >>> round(angle_deg((1, 0, 0), (0, 0, 0), (0, 1, 0)), 6)
    90.0
    """
    u = [float(x) - float(v) for x, v in zip(a, vertex, strict=True)]
    w = [float(x) - float(v) for x, v in zip(c, vertex, strict=True)]
    nu, nw = math.hypot(*u), math.hypot(*w)
    if nu == 0 or nw == 0:
        raise InputError("an angle needs three distinct points; the first or last point equals "
                         "the vertex")
    cos = sum(x * y for x, y in zip(u, w, strict=True)) / (nu * nw)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def _new_id() -> str:
    return uuid.uuid4().hex[:8]


def _point(value: Any, what: str) -> Point:
    try:
        p = tuple(float(c) for c in value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be three numbers (LPS mm), got {value!r}") from None
    if len(p) != 3 or not all(math.isfinite(c) for c in p):
        raise InputError(f"{what} must be three finite numbers (LPS mm), got {value!r}")
    return p  # type: ignore[return-value]


def _unit_vector(value: Any, what: str) -> Point:
    v = _point(value, what)
    n = math.hypot(*v)
    if n < 1e-12:
        raise InputError(f"{what} must not be the zero vector")
    if abs(n - 1.0) < 1e-12:
        return v  # already unit length: keep it bit-exact so round trips compare equal
    return (v[0] / n, v[1] / n, v[2] / n)


def _color(value: Any, what: str) -> tuple[int, int, int] | None:
    if value is None:
        return None
    try:
        rgb = tuple(int(c) for c in value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be [r, g, b] with 0..255, got {value!r}") from None
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise InputError(f"{what} must be [r, g, b] with 0..255, got {value!r}")
    return rgb  # type: ignore[return-value]


def _names(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{what} must be a list of names, got {value!r}")
    return list(value)


def _text(value: Any, what: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise InputError(f"{what} must be a{'' if allow_empty else ' non-empty'} string, "
                         f"got {value!r}")
    return value


def _floats(p: Iterable[float]) -> list[float]:
    return [float(c) for c in p]


# -- the parts of a plan ---------------------------------------------------------------------
@dataclass
class StructureDisplay:
    """How one structure is shown: visibility, opacity (0..1) and an optional RGB override."""

    visible: bool = True
    opacity: float = 1.0
    color: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.visible, bool):
            raise InputError(f"display 'visible' must be true or false, got {self.visible!r}")
        self.opacity = float(self.opacity)
        if not 0.0 <= self.opacity <= 1.0:
            raise InputError(f"display opacity must be within 0..1, got {self.opacity}")
        self.color = _color(self.color, "display colour")

    def to_json(self) -> dict[str, Any]:
        return {"visible": self.visible, "opacity": self.opacity,
                "color": list(self.color) if self.color else None}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StructureDisplay:
        return cls(visible=d.get("visible", True), opacity=d.get("opacity", 1.0),
                   color=d.get("color"))


@dataclass
class Landmark:
    """A named point (LPS mm), optionally on a structure's surface."""

    name: str
    point: Point
    structure: str | None = None
    id: str = field(default_factory=_new_id)

    def __post_init__(self) -> None:
        self.name = _text(self.name, "landmark name")
        self.point = _point(self.point, f"landmark {self.name!r} point")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "point": _floats(self.point),
                "structure": self.structure}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Landmark:
        return cls(name=d.get("name"), point=d.get("point"), structure=d.get("structure"),
                   id=str(d.get("id") or _new_id()))


@dataclass
class Measurement:
    """A distance between two points (mm) or an angle of three points (degrees, at the middle)."""

    kind: Literal["distance", "angle"]
    points: list[Point]
    name: str = ""
    id: str = field(default_factory=_new_id)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InputError(f"measurement kind must be 'distance' or 'angle', got {self.kind!r}")
        if not isinstance(self.points, (list, tuple)) or len(self.points) != _KINDS[self.kind]:
            raise InputError(f"a {self.kind} measurement needs {_KINDS[self.kind]} points, got "
                             f"{self.points!r}")
        self.points = [_point(p, f"measurement point {i + 1}") for i, p in enumerate(self.points)]
        self.name = _text(self.name, "measurement name", allow_empty=True)
        self.value  # noqa: B018 - validates an angle's points

    @property
    def value(self) -> float:
        """The measured value: millimetres for a distance, degrees for an angle."""
        if self.kind == "distance":
            return distance_mm(*self.points)
        return angle_deg(*self.points)

    @property
    def unit(self) -> str:
        return _UNITS[self.kind]

    def label(self) -> str:
        """Text for a legend or table, e.g. ``'VSD: 8.2 mm'``."""
        text = f"{self.value:.1f} {self.unit}" if self.kind == "distance" else \
            f"{self.value:.1f}\N{DEGREE SIGN}"
        return f"{self.name}: {text}" if self.name else text

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind,
                "points": [_floats(p) for p in self.points],
                "value": round(self.value, 4), "unit": self.unit}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Measurement:
        return cls(kind=d.get("kind"), points=d.get("points"), name=d.get("name", ""),
                   id=str(d.get("id") or _new_id()))


@dataclass
class CutPlane:
    """A clipping plane: removes the half-space the normal points *away from* on its structures.

    ``structures`` empty means the plane clips every structure.  Points with
    ``dot(p - origin, normal) >= 0`` are kept.
    """

    name: str
    origin: Point
    normal: Point
    structures: list[str] = field(default_factory=list)
    enabled: bool = True
    id: str = field(default_factory=_new_id)

    def __post_init__(self) -> None:
        self.name = _text(self.name, "cut plane name")
        self.origin = _point(self.origin, f"cut plane {self.name!r} origin")
        self.normal = _unit_vector(self.normal, f"cut plane {self.name!r} normal")
        self.structures = _names(list(self.structures), f"cut plane {self.name!r} structures")
        if not isinstance(self.enabled, bool):
            raise InputError(f"cut plane 'enabled' must be true or false, got {self.enabled!r}")

    def clips(self, structure: str) -> bool:
        """True when this (enabled) plane cuts ``structure``."""
        return self.enabled and (not self.structures or structure in self.structures)

    def keeps(self, point: Sequence[float]) -> bool:
        """True when ``point`` lies on the kept side of the plane."""
        return sum((float(p) - o) * n for p, o, n in zip(point, self.origin, self.normal,
                                                          strict=True)) >= 0.0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "origin": _floats(self.origin),
                "normal": _floats(self.normal), "structures": list(self.structures),
                "enabled": self.enabled}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CutPlane:
        return cls(name=d.get("name"), origin=d.get("origin"), normal=d.get("normal"),
                   structures=d.get("structures", []), enabled=d.get("enabled", True),
                   id=str(d.get("id") or _new_id()))


@dataclass
class Camera:
    """A desktop camera pose (LPS mm): where it is, what it looks at, which way is up."""

    position: Point
    focal_point: Point
    view_up: Point
    view_angle: float = 30.0

    def __post_init__(self) -> None:
        self.position = _point(self.position, "camera position")
        self.focal_point = _point(self.focal_point, "camera focal point")
        self.view_up = _unit_vector(self.view_up, "camera view-up")
        self.view_angle = float(self.view_angle)
        if not 0.0 < self.view_angle < 180.0:
            raise InputError(f"camera view angle must be within (0, 180) degrees, got "
                             f"{self.view_angle}")
        if distance_mm(self.position, self.focal_point) == 0:
            raise InputError("camera position and focal point must differ")

    def to_json(self) -> dict[str, Any]:
        return {"position": _floats(self.position), "focal_point": _floats(self.focal_point),
                "view_up": _floats(self.view_up), "view_angle": self.view_angle}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Camera:
        return cls(position=d.get("position"), focal_point=d.get("focal_point"),
                   view_up=d.get("view_up"), view_angle=d.get("view_angle", 30.0))


@dataclass
class ModelPose:
    """Pose of the heart model in the VR stage: translation (m or mm as the front end uses it),
    unit quaternion ``orientation_xyzw`` (OpenXR order) and uniform ``scale``."""

    position: Point = (0.0, 0.0, 0.0)
    orientation_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    scale: float = 1.0

    def __post_init__(self) -> None:
        self.position = _point(self.position, "model pose position")
        try:
            q = tuple(float(c) for c in self.orientation_xyzw)
        except (TypeError, ValueError):
            q = ()
        n = math.sqrt(sum(c * c for c in q)) if len(q) == 4 else 0.0
        if len(q) != 4 or not math.isfinite(n) or n < 1e-9:
            raise InputError("model pose orientation must be a non-zero quaternion [x, y, z, w], "
                             f"got {self.orientation_xyzw!r}")
        if abs(n - 1.0) > 1e-12:
            q = tuple(c / n for c in q)
        self.orientation_xyzw = q  # type: ignore[assignment]
        self.scale = float(self.scale)
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise InputError(f"model pose scale must be a positive number, got {self.scale}")

    def matrix(self) -> list[list[float]]:
        """The 4x4 row-major transform ``T * R * S`` (column vectors).

        Examples
        --------
        >>> ModelPose(position=(1, 2, 3)).matrix()[0]
        [1.0, 0.0, 0.0, 1.0]
        """
        x, y, z, w = self.orientation_xyzw
        s = self.scale
        r = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
             [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
             [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
        rows = [[r[i][0] * s, r[i][1] * s, r[i][2] * s, self.position[i]] for i in range(3)]
        return [[float(v) for v in row] for row in rows] + [[0.0, 0.0, 0.0, 1.0]]

    def to_json(self) -> dict[str, Any]:
        return {"position": _floats(self.position),
                "orientation_xyzw": _floats(self.orientation_xyzw), "scale": self.scale}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelPose:
        return cls(position=d.get("position", (0, 0, 0)),
                   orientation_xyzw=d.get("orientation_xyzw", (0, 0, 0, 1)),
                   scale=d.get("scale", 1.0))


@dataclass
class SavedView:
    """A named view: a desktop camera, a VR model pose, or both."""

    name: str
    camera: Camera | None = None
    model_pose: ModelPose | None = None

    def __post_init__(self) -> None:
        self.name = _text(self.name, "view name")
        if self.camera is None and self.model_pose is None:
            raise InputError(f"view {self.name!r} needs a camera or a model pose")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name,
                "camera": self.camera.to_json() if self.camera else None,
                "model_pose": self.model_pose.to_json() if self.model_pose else None}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SavedView:
        cam, pose = d.get("camera"), d.get("model_pose")
        return cls(name=d.get("name"),
                   camera=Camera.from_json(_obj(cam, "view camera")) if cam else None,
                   model_pose=ModelPose.from_json(_obj(pose, "view model pose")) if pose
                   else None)


@dataclass
class RehearsalStep:
    """One step of a rehearsal: what to show and where to look.

    ``view`` names a saved view or a camera preset (``anterior``, ``lao``, ...); ``visible``
    lists the structures shown (``None`` keeps the plan's display settings); ``cut_planes``
    lists the ids of the cut planes enabled during the step.
    """

    title: str
    note: str = ""
    view: str | None = None
    visible: list[str] | None = None
    cut_planes: list[str] = field(default_factory=list)
    id: str = field(default_factory=_new_id)

    def __post_init__(self) -> None:
        self.title = _text(self.title, "step title")
        self.note = _text(self.note, "step note", allow_empty=True)
        if self.view is not None:
            self.view = _text(self.view, "step view")
        if self.visible is not None:
            self.visible = _names(list(self.visible), f"step {self.title!r} visible structures")
        self.cut_planes = _names(list(self.cut_planes), f"step {self.title!r} cut planes")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "note": self.note, "view": self.view,
                "visible": list(self.visible) if self.visible is not None else None,
                "cut_planes": list(self.cut_planes)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RehearsalStep:
        return cls(title=d.get("title"), note=d.get("note", ""), view=d.get("view"),
                   visible=d.get("visible"), cut_planes=d.get("cut_planes", []),
                   id=str(d.get("id") or _new_id()))


@dataclass
class Plan:
    """The whole plan.  Mutate it inside :func:`edit_plan` to save changes safely."""

    display: dict[str, StructureDisplay] = field(default_factory=dict)
    landmarks: list[Landmark] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    cut_planes: list[CutPlane] = field(default_factory=list)
    seeds: list[Seed] = field(default_factory=list)
    views: list[SavedView] = field(default_factory=list)
    steps: list[RehearsalStep] = field(default_factory=list)
    model_pose: ModelPose | None = None
    revision: int = 0
    modified: str | None = None
    modified_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Unknown top-level keys, kept so that a round trip loses nothing."""

    # -- lookups and small edits (pure; used by both front ends) ---------------------------
    def display_of(self, structure: str) -> StructureDisplay:
        """The display settings of ``structure`` (defaults when the plan has none)."""
        return self.display.get(structure) or StructureDisplay()

    def set_display(self, structure: str, *, visible: bool | None = None,
                    opacity: float | None = None,
                    color: tuple[int, int, int] | None = None) -> StructureDisplay:
        """Change some of ``structure``'s display settings, keeping the others."""
        cur = self.display_of(structure)
        new = StructureDisplay(visible=cur.visible if visible is None else visible,
                               opacity=cur.opacity if opacity is None else opacity,
                               color=cur.color if color is None else color)
        self.display[structure] = new
        return new

    def add_landmark(self, point: Sequence[float], *, name: str | None = None,
                     structure: str | None = None) -> Landmark:
        """Append a landmark (named ``L1``, ``L2``... unless ``name`` is given)."""
        lm = Landmark(name=name or self._next_name("L", [x.name for x in self.landmarks]),
                      point=tuple(point), structure=structure)  # type: ignore[arg-type]
        self.landmarks.append(lm)
        return lm

    def add_measurement(self, *, kind: Literal["distance", "angle"],
                        points: Sequence[Sequence[float]], name: str | None = None
                        ) -> Measurement:
        """Append a measurement (named ``M1``, ``M2``... unless ``name`` is given)."""
        m = Measurement(kind=kind, points=[tuple(p) for p in points],  # type: ignore[misc]
                        name=name or self._next_name("M", [x.name for x in self.measurements]))
        self.measurements.append(m)
        return m

    def add_seed(self, structure: str, point: Sequence[float]) -> Seed:
        """Append a segmentation seed inside ``structure``."""
        seed = Seed(structure, tuple(float(c) for c in point))  # type: ignore[arg-type]
        self.seeds.append(seed)
        return seed

    def upsert_cut_plane(self, plane: CutPlane) -> CutPlane:
        """Replace the cut plane with the same id (or name), or append it."""
        for i, old in enumerate(self.cut_planes):
            if old.id == plane.id or old.name == plane.name:
                plane.id = old.id
                self.cut_planes[i] = plane
                return plane
        self.cut_planes.append(plane)
        return plane

    def upsert_view(self, view: SavedView) -> SavedView:
        """Replace the saved view with the same name, or append it."""
        for i, old in enumerate(self.views):
            if old.name == view.name:
                self.views[i] = view
                return view
        self.views.append(view)
        return view

    def view(self, name: str) -> SavedView | None:
        """The saved view called ``name``, if any."""
        return next((v for v in self.views if v.name == name), None)

    def cut_plane(self, key: str) -> CutPlane | None:
        """The cut plane with id or name ``key``, if any."""
        return next((c for c in self.cut_planes if key in (c.id, c.name)), None)

    def remove(self, kind: Literal["landmarks", "measurements", "cut_planes", "steps"],
               key: str) -> bool:
        """Remove the item with id or name ``key`` from a list; True when one was removed."""
        items = getattr(self, kind)
        keep = [x for x in items if key not in (x.id, getattr(x, "name", getattr(x, "title",
                                                                                  None)))]
        setattr(self, kind, keep)
        return len(keep) != len(items)

    def validate(self) -> None:
        """Check cross-references (step cut planes exist, ids unique); raise InputError."""
        for what, items in (("landmark", self.landmarks), ("measurement", self.measurements),
                            ("cut plane", self.cut_planes), ("step", self.steps)):
            ids = [x.id for x in items]
            dup = {i for i in ids if ids.count(i) > 1}
            if dup:
                raise InputError(f"duplicate {what} id(s) {sorted(dup)} in the plan")
        names = [v.name for v in self.views]
        if len(set(names)) != len(names):
            raise InputError("two saved views have the same name; view names must be unique")
        planes = {c.id for c in self.cut_planes}
        for step in self.steps:
            missing = [c for c in step.cut_planes if c not in planes]
            if missing:
                raise InputError(f"step {step.title!r} refers to unknown cut plane(s) {missing}")

    @staticmethod
    def _next_name(prefix: str, existing: list[str]) -> str:
        n = len(existing) + 1
        while f"{prefix}{n}" in existing:
            n += 1
        return f"{prefix}{n}"


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a JSON object, got {value!r}")
    return value


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise InputError(f"plan '{key}' must be a list, got {type(value).__name__}")
    return value


_KNOWN_KEYS = {"schema", "schema_version", "space", "units", "revision", "modified",
               "modified_by", "display", "landmarks", "measurements", "cut_planes", "seeds",
               "views", "steps", "model_pose"}


def plan_from_json(data: Any) -> Plan:
    """Build and validate a :class:`Plan` from parsed ``plan.json`` content.

    Raises
    ------
    SchemaVersionError
        The plan was written by a newer CardioPlan.
    InputError
        The content does not follow the schema (the message names the field).

    Examples
    --------
    >>> plan = plan_from_json({"schema": "cardioplan.plan", "schema_version": 1,
    ...                        "landmarks": [{"name": "apex", "point": [1, 2, 3]}]})
    >>> plan.landmarks[0].point
    (1.0, 2.0, 3.0)
    """
    if not isinstance(data, dict) or data.get("schema") != PLAN_SCHEMA:
        raise InputError(f"not a CardioPlan plan (expected \"schema\": \"{PLAN_SCHEMA}\")")
    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise InputError("the plan has no valid schema_version")
    if version > PLAN_SCHEMA_VERSION:
        raise SchemaVersionError(f"the plan was written by a newer CardioPlan (plan schema "
                                 f"{version}, this version reads up to {PLAN_SCHEMA_VERSION}); "
                                 "upgrade CardioPlan")
    if str(data.get("space", "LPS")).upper() != "LPS" or data.get("units", "mm") != "mm":
        raise InputError("plan coordinates must be LPS millimetres")
    display = _obj(data.get("display", {}), "plan 'display'")
    pose = data.get("model_pose")
    revision = data.get("revision", 0)
    if not isinstance(revision, int) or revision < 0:
        raise InputError(f"plan 'revision' must be a non-negative integer, got {revision!r}")
    plan = Plan(
        display={str(k): StructureDisplay.from_json(_obj(v, f"display of {k!r}"))
                 for k, v in display.items()},
        landmarks=[Landmark.from_json(_obj(d, "landmark")) for d in _list(data, "landmarks")],
        measurements=[Measurement.from_json(_obj(d, "measurement"))
                      for d in _list(data, "measurements")],
        cut_planes=[CutPlane.from_json(_obj(d, "cut plane")) for d in _list(data, "cut_planes")],
        seeds=seeds_from_json(_list(data, "seeds")),
        views=[SavedView.from_json(_obj(d, "view")) for d in _list(data, "views")],
        steps=[RehearsalStep.from_json(_obj(d, "step")) for d in _list(data, "steps")],
        model_pose=ModelPose.from_json(_obj(pose, "model pose")) if pose else None,
        revision=revision,
        modified=data.get("modified"),
        modified_by=data.get("modified_by"),
        extra={k: copy.deepcopy(v) for k, v in data.items() if k not in _KNOWN_KEYS},
    )
    plan.validate()
    return plan


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The JSON content of ``plan`` (what :func:`save_plan` writes).

    Examples
    --------
    >>> plan_to_json(Plan())["schema_version"]
    1
    """
    plan.validate()
    out: dict[str, Any] = {
        "schema": PLAN_SCHEMA, "schema_version": PLAN_SCHEMA_VERSION,
        "space": "LPS", "units": "mm",
        "revision": plan.revision, "modified": plan.modified, "modified_by": plan.modified_by,
        "display": {k: v.to_json() for k, v in plan.display.items()},
        "landmarks": [x.to_json() for x in plan.landmarks],
        "measurements": [x.to_json() for x in plan.measurements],
        "cut_planes": [x.to_json() for x in plan.cut_planes],
        "seeds": seeds_to_json(plan.seeds),
        "views": [x.to_json() for x in plan.views],
        "steps": [x.to_json() for x in plan.steps],
        "model_pose": plan.model_pose.to_json() if plan.model_pose else None,
    }
    out.update(copy.deepcopy(plan.extra))
    return out


# -- files -----------------------------------------------------------------------------------
def plan_path_of(case_or_path: Any) -> Path:
    """``plan.json`` of a :class:`~cardioplan.case.Case`, a case folder, or a plan file path."""
    if hasattr(case_or_path, "plan_path"):
        return Path(case_or_path.plan_path)
    p = Path(case_or_path)
    if p.is_dir():
        return p / PLAN_FILE
    if p.suffix.lower() != ".json":
        raise CaseError(f"case folder not found: {p}; give a case folder or a plan .json file")
    return p


def backup_plan(path: str | os.PathLike[str]) -> Path:
    """Copy ``path`` to ``<path>.bak-<UTC timestamp>`` and return the copy.

    An existing backup is never replaced, and identical content is backed up only once.

    Examples
    --------
    >>> backup_plan(case.plan_path).name     # doctest: +SKIP
    'plan.json.bak-20261125T204000Z'
    """
    src = Path(path)
    try:
        content = src.read_bytes()
    except OSError as exc:
        raise CaseError(f"cannot read {src} to back it up: {exc.strerror or exc}") from exc
    for old in src.parent.glob(f"{glob.escape(src.name)}.bak-*"):
        if old.stat().st_size == len(content) and old.read_bytes() == content:
            return old  # the same content is already backed up (e.g. a viewer polling)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dst = src.with_name(f"{src.name}.bak-{stamp}")
    n = 1
    while dst.exists():
        dst = src.with_name(f"{src.name}.bak-{stamp}-{n}")
        n += 1
    try:
        shutil.copy2(src, dst)
    except OSError as exc:
        raise OutputError(explain_os_error(exc, dst)) from exc
    return dst


def load_plan(case_or_path: Any, *, missing_ok: bool = True) -> Plan:
    """Read and validate a plan.

    Parameters
    ----------
    case_or_path : Case, path-like
        A case, a case folder or a ``plan.json`` path.
    missing_ok : bool
        Return an empty plan (revision 0) when the file does not exist yet.

    Raises
    ------
    CaseError
        The file is corrupt or does not follow the schema; a backup copy was made first.
    SchemaVersionError
        The plan was written by a newer CardioPlan; a backup copy was made first.

    Examples
    --------
    >>> load_plan(tmp_path / "case1").revision     # doctest: +SKIP
    0
    """
    path = plan_path_of(case_or_path)
    if not path.is_file():
        if missing_ok:
            return Plan()
        raise CaseError(f"no plan at {path}; open the case in `cardioplan view` to start one")
    try:
        return plan_from_json(read_json(path, what="plan"))
    except SchemaVersionError as exc:
        raise SchemaVersionError(f"{path}: {exc}; it was left untouched "
                                 f"({_keep_copy(path)})") from None
    except (CaseError, InputError) as exc:
        raise CaseError(f"{path} cannot be used: {exc}. It was left untouched "
                        f"({_keep_copy(path)}); fix it, or move it away to start a new plan") \
            from None


def _keep_copy(path: Path) -> str:
    """Back up an unusable plan; say where (or why not: the folder may be read-only)."""
    try:
        return f"copy: {backup_plan(path).name}"
    except (OutputError, CaseError) as exc:
        return f"no backup copy could be written: {exc}"


def save_plan(case_or_path: Any, plan: Plan, *, author: str = "script") -> Plan:
    """Write ``plan`` atomically as the next revision, replacing what is on disk.

    Prefer :func:`edit_plan` whenever another program may be editing the same case: it
    re-reads the latest plan under the lock, so no edit is lost.  ``save_plan`` also takes the
    lock but refuses to replace a plan file it cannot read (corrupt or newer).

    Examples
    --------
    >>> save_plan(tmp_path / "plan.json", Plan(), author="cli").revision   # doctest: +SKIP
    1
    """
    path = plan_path_of(case_or_path)
    with _locked(path):
        disk_revision = load_plan(path).revision if path.is_file() else 0
        return _write(path, plan, author=author, revision=max(plan.revision, disk_revision) + 1)


def edit_plan(case_or_path: Any, change: Callable[[Plan], Any], *,
              author: str = "desktop") -> Plan:
    """Apply ``change(plan)`` to the latest plan and save it, safely against other writers.

    The plan file is locked (``fcntl``), re-read, changed in memory by ``change`` (which
    mutates the :class:`Plan` in place), validated and written atomically as the next revision.
    If ``change`` raises, nothing is written.

    Parameters
    ----------
    case_or_path : Case, path-like
        A case, a case folder or a ``plan.json`` path.
    change : callable
        ``change(plan)``; its return value is ignored.
    author : str
        Who made the edit (``"desktop"``, ``"vr"``...), recorded as ``modified_by``.

    Returns
    -------
    Plan
        The plan as saved (with its new ``revision``).

    Raises
    ------
    CaseError
        The plan on disk is corrupt (a backup was made; nothing was written) or another
        writer held the lock for more than ``LOCK_TIMEOUT_S`` seconds.

    Examples
    --------
    >>> edit_plan(case, lambda p: p.add_landmark((1, 2, 3), name="apex"),   # doctest: +SKIP
    ...           author="vr").landmarks[-1].name
    'apex'
    """
    path = plan_path_of(case_or_path)
    with _locked(path):
        plan = load_plan(path)
        change(plan)
        return _write(path, plan, author=author, revision=plan.revision + 1)


def _write(path: Path, plan: Plan, *, author: str, revision: int) -> Plan:
    out = copy.deepcopy(plan)
    out.revision = revision
    out.modified = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
    out.modified_by = author
    try:
        data = plan_to_json(out)
    except InputError as exc:
        raise InputError(f"the plan edit was not saved: {exc}") from None
    write_json_atomic(path, data)
    log.debug("saved %s revision %d (%s)", path, revision, author)
    return out


@contextlib.contextmanager
def _locked(path: Path, *, timeout_s: float | None = None) -> Iterator[None]:
    lock_path = path.with_name(_LOCK_FILE)
    timeout = LOCK_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        fh = open(lock_path, "a")  # noqa: SIM115 - closed by the with block below
    except OSError as exc:
        raise OutputError(explain_os_error(exc, lock_path)) from exc
    with fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise OutputError(explain_os_error(exc, lock_path)) from exc
                if time.monotonic() > deadline:
                    raise CaseError(f"the plan {path} stayed locked by another program for "
                                    f"{timeout:.0f} s; close the other viewer or headset "
                                    "session and retry") from None
                # poll often: a writer that saves back to back leaves the lock free only for
                # moments, and a slow poll would miss them all (the other writer starves)
                time.sleep(0.001)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class PlanWatcher:
    """Cheap change detector for a plan file: one ``stat`` per :meth:`changed` call.

    A saved plan replaces the file (atomic rename), so its inode, size or modification time
    changes.  Front ends poll :meth:`reload_if_changed` once per frame or per second.

    Examples
    --------
    >>> watcher = PlanWatcher(case)          # doctest: +SKIP
    >>> plan = watcher.reload_if_changed()   # doctest: +SKIP
    """

    def __init__(self, case_or_path: Any) -> None:
        self.path = plan_path_of(case_or_path)
        self._stamp: tuple[int, int, int] | None | bool = False  # False: never loaded

    def _current(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def changed(self) -> bool:
        """True when the file differs from when it was last loaded through this watcher."""
        return self._current() != self._stamp

    def reload_if_changed(self) -> Plan | None:
        """The newly saved plan, or None when nothing changed since the last call."""
        stamp = self._current()
        if stamp == self._stamp:
            return None
        plan = load_plan(self.path)
        self._stamp = stamp
        return plan
