"""What the surgeon's hands do to the heart: a pure state machine, no runtime, no GL.

Each frame the app turns the OpenXR action states into a :class:`FrameInput` (poses in the stage
space, metres; analog values 0..1) and calls :meth:`Interaction.update`.  The interaction keeps a
local copy of the case's :class:`~cardioplan.plan.Plan`, changes it at once (so the next frame
shows the change) and returns the :class:`PlanChange` objects the app saves with
:func:`cardioplan.plan.edit_plan`, plus :class:`Haptic` pulse requests.

Controls (right hand = dominant; the same on the left unless stated)
--------------------------------------------------------------------
- **grip** on one hand: grab the heart, move and rotate it with the hand.
- **both grips**: scale (hand distance) and rotate (hand axis) about the hands' midpoint.
- **trigger**, by tool (chosen in the menu or cycled with B/Y):

  - *grab*: point the ray at a structure and pull the trigger to select it (its name shows); pull
    again on the selected structure to hide it.
  - *cut*: a cut plane is held in front of the hand (it removes what lies between the hand and
    the plane's far side, so you look inside); the trigger places it in the plan.
  - *measure*: two presses at the controller tip store a distance in millimetres.
  - *angle*: three presses (the second is the vertex) store an angle in degrees.
  - *landmark*: one press stores a landmark at the controller tip.
- **thumbstick / trackpad left-right**: previous / next rehearsal step.
- **A/X or menu button**: open or close the menu panel (on the left hand; point with the right).

All points written to the plan are patient LPS millimetres; the model pose is stored as the
plan's ``model_pose`` (position in metres in the stage space, orientation, scale 1 = life size).

Examples
--------
>>> from cardioplan.plan import Plan
>>> it = Interaction(Plan(), structures=["aorta"], pivot_mm=(0, 0, 0))
>>> it.state.tool
'grab'
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cardioplan.labels import LABELS
from cardioplan.plan import CutPlane, ModelPose, Plan, RehearsalStep, SavedView
from vr import xrmath
from vr.xrmath import Pose

__all__ = [
    "TOOLS", "HANDS", "HandInput", "FrameInput", "Haptic", "PlanChange", "Pick", "Picker",
    "MeshPicker", "MenuButton", "MENU_SIZE_M", "menu_layout", "menu_hit", "menu_pose",
    "InteractionState", "Interaction", "default_model_pose", "cut_plane_from_hand",
    "PRESS", "RELEASE", "TIP_OFFSET_M", "CUT_PLANE_OFFSET_M",
]

log = logging.getLogger(__name__)

TOOLS = ("grab", "cut", "measure", "angle", "landmark")
"""Trigger tools, in the order B/Y cycles them."""
HANDS = ("left", "right")
PRESS, RELEASE = 0.75, 0.25
"""Analog hysteresis: a trigger/grip counts as pressed above PRESS until it drops below RELEASE."""
STICK_PRESS, STICK_RELEASE = 0.7, 0.3
TIP_OFFSET_M = 0.0
"""Where points are placed along the aim ray: at the aim pose itself (the drawn tip sphere)."""
CUT_PLANE_OFFSET_M = 0.05
"""The hand-held cut plane floats this far ahead of the controller."""
MENU_SIZE_M = (0.24, 0.30)
"""Menu panel width and height in metres."""
OPACITY_STEP = 0.2
VR_CUT = "VR cut"
"""Name of the cut plane placed from the headset (placing it again moves it)."""
MIN_SCALE, MAX_SCALE = 0.2, 20.0


# -- inputs and outputs -----------------------------------------------------------------------
@dataclass
class HandInput:
    """One controller's state this frame (stage space, metres).

    ``grip_pose`` is where the hand holds the controller (grab), ``aim_pose`` the pointing ray
    (origin and -Z direction).  ``None`` when not tracked.
    """

    grip_pose: Pose | None = None
    aim_pose: Pose | None = None
    grip: float = 0.0
    trigger: float = 0.0
    thumbstick: tuple[float, float] = (0.0, 0.0)
    primary: bool = False
    """A/X (or the menu button where there is no A/X): opens and closes the menu."""
    secondary: bool = False
    """B/Y: cycles the tools."""


@dataclass
class FrameInput:
    """Everything the interaction reads in one frame."""

    hands: dict[str, HandInput] = field(default_factory=dict)
    head: Pose | None = None

    def hand(self, side: str) -> HandInput:
        """The input of hand ``side`` (an idle, untracked hand when absent)."""
        return self.hands.get(side) or HandInput()


@dataclass(frozen=True)
class Haptic:
    """A vibration request for one hand (``frequency_hz`` 0 lets the runtime choose)."""

    hand: str
    amplitude: float = 0.5
    duration_s: float = 0.03
    frequency_hz: float = 0.0


@dataclass(frozen=True)
class PlanChange:
    """One edit of the plan, as plain data (applied locally at once and saved by the app).

    ``kind`` is one of ``model_pose``, ``display``, ``show_all``, ``landmark``, ``measurement``,
    ``cut_plane``, ``remove_cut_planes``, ``remove``, ``step``; ``data`` holds its arguments
    (JSON-friendly).  New items carry their ``id``, so the local copy and the saved plan agree
    and an undo can remove exactly them.
    """

    kind: str
    data: dict[str, Any]

    def apply(self, plan: Plan) -> None:
        """Make this change on ``plan`` (in place)."""
        d = self.data
        if self.kind == "model_pose":
            plan.model_pose = ModelPose(position=d["position"],
                                        orientation_xyzw=d["orientation_xyzw"], scale=d["scale"])
        elif self.kind == "display":
            plan.set_display(d["structure"], visible=d.get("visible"), opacity=d.get("opacity"))
        elif self.kind == "show_all":
            for name in d["structures"]:
                plan.set_display(name, visible=True)
        elif self.kind == "landmark":
            item = plan.add_landmark(d["point"], name=d.get("name"),
                                     structure=d.get("structure"))
            item.id = d.get("id", item.id)
        elif self.kind == "measurement":
            item = plan.add_measurement(kind=d.get("kind", "distance"), points=d["points"],
                                        name=d.get("name"))
            item.id = d.get("id", item.id)
        elif self.kind == "cut_plane":
            plan.upsert_cut_plane(CutPlane(name=d["name"], origin=d["origin"],
                                           normal=d["normal"], structures=d.get("structures", [])))
        elif self.kind == "remove_cut_planes":
            for name in d["names"]:
                plan.remove("cut_planes", name)
        elif self.kind == "remove":
            plan.remove(d["list"], d["key"])
        elif self.kind == "step":
            pose = d["model_pose"]
            plan.upsert_view(SavedView(name=d["view"], model_pose=ModelPose(
                position=pose["position"], orientation_xyzw=pose["orientation_xyzw"],
                scale=pose["scale"])))
            plan.steps.append(RehearsalStep(title=d["title"], view=d["view"],
                                            visible=list(d["visible"]),
                                            cut_planes=list(d["cut_planes"]), id=d["id"]))
        else:
            raise ValueError(f"unknown plan change {self.kind!r}")


# -- picking ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pick:
    """A ray hit: the structure, the point (LPS mm) and the distance along the ray (mm)."""

    structure: str
    point: tuple[float, float, float]
    distance_mm: float


class Picker(Protocol):
    """Anything that answers which structure a ray (in LPS mm) hits first."""

    def pick(self, origin_mm: NDArray[np.float64], direction_mm: NDArray[np.float64], *,
             visible: Callable[[str], bool]) -> Pick | None:
        """The nearest visible structure hit by the ray, or None."""


class MeshPicker:
    """Ray picking on triangle meshes in patient space.

    Each structure's triangles are sorted along a Morton (Z-order) curve of their centroids and
    grouped in blocks of :attr:`BLOCK` with a bounding box each; a pick tests the ray against
    the block boxes (vectorised), then runs Möller–Trumbore only on the triangles of the boxes
    it enters, nearest first.  About 1 ms for a 1M-triangle case instead of ~45 ms brute force.

    Parameters
    ----------
    meshes : dict
        structure -> ``(vertices (N, 3) float, faces (M, 3) int)`` in LPS mm.
    """

    BLOCK = 128

    def __init__(self, meshes: dict[str, tuple[ArrayLike, ArrayLike]]) -> None:
        self._meshes = {}
        for name, (v, f) in meshes.items():
            va = np.asarray(v, dtype=np.float64)
            fa = np.asarray(f, dtype=np.int64)
            if len(va) and len(fa):
                self._meshes[name] = self._blocks(va, fa)

    def _blocks(self, v: NDArray[np.float64], f: NDArray[np.int64]) -> tuple[Any, ...]:
        tri = v[f]  # (M, 3, 3)
        centre = tri.mean(axis=1)
        lo, hi = centre.min(axis=0), centre.max(axis=0)
        q = ((centre - lo) / np.maximum(hi - lo, 1e-9) * 1023).astype(np.int64)
        order = np.argsort(_morton(q), kind="stable")
        f = f[order]
        tri = tri[order]
        starts = np.arange(0, len(f), self.BLOCK)
        block_lo = np.minimum.reduceat(tri.min(axis=1), starts)
        block_hi = np.maximum.reduceat(tri.max(axis=1), starts)
        return v, f, starts, block_lo, block_hi, block_lo.min(axis=0), block_hi.max(axis=0)

    def pick(self, origin_mm: NDArray[np.float64], direction_mm: NDArray[np.float64], *,
             visible: Callable[[str], bool] = lambda _name: True) -> Pick | None:
        """The nearest visible structure hit by the ray, or None."""
        d = np.asarray(direction_mm, dtype=np.float64)
        d = d / max(float(np.linalg.norm(d)), 1e-12)
        o = np.asarray(origin_mm, dtype=np.float64)
        entries = []  # (entry distance, structure, block index)
        for name, (_v, _f, _s, blo, bhi, lo, hi) in self._meshes.items():
            if not visible(name) or xrmath.ray_aabb(o, d, lo, hi) is None:
                continue
            t = xrmath.ray_aabbs(o, d, blo, bhi)
            for i in np.flatnonzero(np.isfinite(t)):
                entries.append((float(t[i]), name, int(i)))
        best: Pick | None = None
        for t_box, name, i in sorted(entries):
            if best is not None and t_box > best.distance_mm:
                break
            v, f, starts = self._meshes[name][:3]
            hit = xrmath.ray_triangles(o, d, v, f[starts[i]:starts[i] + self.BLOCK])
            if hit is not None and (best is None or hit[0] < best.distance_mm):
                p = o + hit[0] * d
                best = Pick(name, (float(p[0]), float(p[1]), float(p[2])), hit[0])
        return best


def _morton(q: NDArray[np.int64]) -> NDArray[np.int64]:
    """Interleave the bits of three 10-bit integer coordinates (Z-order curve key)."""
    def spread(x: NDArray[np.int64]) -> NDArray[np.int64]:
        x = (x | (x << 16)) & 0x030000FF
        x = (x | (x << 8)) & 0x0300F00F
        x = (x | (x << 4)) & 0x030C30C3
        return (x | (x << 2)) & 0x09249249
    return spread(q[:, 0]) | (spread(q[:, 1]) << 1) | (spread(q[:, 2]) << 2)


# -- menu panel -------------------------------------------------------------------------------
@dataclass(frozen=True)
class MenuButton:
    """A button of the menu panel: ``action`` is what it does, ``rect`` is (u0, v0, u1, v1) in
    panel coordinates (0..1, v down), ``active`` draws it highlighted, ``color`` a swatch."""

    action: str
    label: str
    rect: tuple[float, float, float, float]
    active: bool = False
    color: tuple[int, int, int] | None = None


def menu_layout(structures: Sequence[str], state: InteractionState, plan: Plan) -> list[MenuButton]:
    """The buttons of the menu panel for the current state (pure; the renderer draws them).

    Rows: tools; one toggle per structure (with its label colour); opacity of the selected
    structure; rehearsal steps; clear cut planes / show all / close.

    Examples
    --------
    >>> from cardioplan.plan import Plan
    >>> b = menu_layout(["aorta"], InteractionState(), Plan())
    >>> [x.action for x in b][:4]
    ['tool:grab', 'tool:cut', 'tool:measure', 'tool:landmark']
    """
    rows: list[list[tuple[str, str, bool, tuple[int, int, int] | None]]] = []
    rows.append([(f"tool:{t}", t.capitalize(), state.tool == t, None) for t in TOOLS])
    per_row = 2
    names = list(structures)
    for i in range(0, len(names), per_row):
        row = []
        for name in names[i:i + per_row]:
            label = LABELS[name].display_name if name in LABELS else name.replace("_", " ")
            color = LABELS[name].color if name in LABELS else None
            row.append((f"toggle:{name}", label, plan.display_of(name).visible, color))
        rows.append(row)
    sel = state.selected
    sel_label = (LABELS[sel].display_name if sel in LABELS else sel) if sel else "(select)"
    opacity = f" {plan.display_of(sel).opacity:.0%}" if sel else ""
    rows.append([("opacity:-", "Opacity -", False, None), ("noop", f"{sel_label}{opacity}",
                                                            False, None),
                 ("opacity:+", "Opacity +", False, None), ("recentre", "Recentre", False, None),
                 ("names", "Names", state.show_names, None)])
    n = len(plan.steps)
    step = f"Step {state.step + 1}/{n}" if n else "No steps"
    rows.append([("step:-1", "< Prev", False, None), ("noop", step, False, None),
                 ("step:+1", "Next >", False, None), ("add_step", "+ Step", False, None)])
    rows.append([("undo", "Undo", False, None), ("slice", "CT slice", state.show_slice, None),
                 ("clear_cuts", "Clear cuts", False, None), ("show_all", "Show all", False, None),
                 ("close", "Close", False, None)])
    top, bottom, margin = 0.08, 0.98, 0.02
    row_h = (bottom - top) / len(rows)
    buttons = []
    for r, row in enumerate(rows):
        w = (1.0 - margin) / len(row)
        for c, (action, label, active, color) in enumerate(row):
            rect = (margin + c * w, top + r * row_h + margin / 2,
                    (c + 1) * w, top + (r + 1) * row_h - margin / 2)
            buttons.append(MenuButton(action, label, rect, active, color))
    return buttons


def menu_hit(buttons: Sequence[MenuButton], u: float, v: float) -> MenuButton | None:
    """The button under panel coordinates ``(u, v)``, or None.

    Examples
    --------
    >>> menu_hit([MenuButton("close", "Close", (0.5, 0.5, 1.0, 1.0))], 0.7, 0.9).action
    'close'
    """
    for b in buttons:
        u0, v0, u1, v1 = b.rect
        if u0 <= u <= u1 and v0 <= v <= v1 and b.action != "noop":
            return b
    return None


def menu_pose(left_aim: Pose) -> Pose:
    """Where the panel floats: 12 cm above the left controller, tilted 30 degrees toward the
    user, facing back along the controller's ray (its +Z normal points at the user)."""
    tilt = xrmath.quat_from_axis_angle((1.0, 0.0, 0.0), -math.radians(30.0))
    return left_aim.compose(Pose((0.0, 0.12 + MENU_SIZE_M[1] / 2, -0.05), tilt))


# -- geometry helpers -------------------------------------------------------------------------
def default_model_pose(head: Pose | None, *, extent_mm: float) -> ModelPose:
    """Place the model 45 cm in front of the head, level, magnified so it spans at least 25 cm.

    Congenital hearts are small (a neonate's is ~4 cm): life size is kept when the model is
    already big enough, otherwise it is magnified.
    """
    scale = 1.0 if extent_mm <= 0 else max(1.0, 250.0 / extent_mm)
    if head is None:
        return ModelPose(position=(0.0, 1.4, -0.6), scale=scale)
    fwd = head.forward
    fwd = np.array([fwd[0], 0.0, fwd[2]])
    n = float(np.linalg.norm(fwd))
    fwd = np.array([0.0, 0.0, -1.0]) if n < 1e-6 else fwd / n
    pos = head.position + 0.45 * fwd + np.array([0.0, -0.1, 0.0])
    yaw = math.atan2(-fwd[0], -fwd[2])
    q = xrmath.quat_from_axis_angle((0.0, 1.0, 0.0), yaw)
    return ModelPose(position=tuple(float(x) for x in pos),
                     orientation_xyzw=tuple(float(x) for x in q), scale=scale)


def cut_plane_from_hand(aim: Pose) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The hand-held cut plane in the stage space: a point ahead of the controller and the
    pointing direction as its normal (the side beyond the plane is kept)."""
    fwd = aim.forward
    return aim.position + CUT_PLANE_OFFSET_M * fwd, fwd


# -- state ------------------------------------------------------------------------------------
@dataclass
class _Grab:
    hand_poses: dict[str, Pose]
    model: ModelPose
    # two-handed grab: hands' midpoint, axis and distance at the start
    mid: NDArray[np.float64] | None = None
    axis: NDArray[np.float64] | None = None
    span: float = 0.0


@dataclass
class InteractionState:
    """The VR-only state on top of the plan (what is transient, not saved)."""

    tool: str = "grab"
    selected: str | None = None
    step: int = 0
    menu_open: bool = False
    menu_hover: str | None = None
    pending_points: list[tuple[float, float, float]] = field(default_factory=list)
    """Points of a distance or angle being measured (LPS mm)."""
    held_plane: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
    """The cut plane in the hand (LPS mm point and unit normal), shown while the cut tool is on."""
    ray_hit_m: dict[str, float] = field(default_factory=dict)
    """Length of each hand's drawn ray (metres): to the menu or to the picked surface."""
    status: str = ""
    """One line for the user (selected structure, last measurement...)."""
    show_slice: bool = True
    """Show the scan on the cut plane (menu: CT slice)."""
    show_names: bool = False
    """Label every visible structure with its name (menu: Names)."""


class _Edge:
    """Rising-edge detector with hysteresis for analog values."""

    def __init__(self, press: float = PRESS, release: float = RELEASE) -> None:
        self.press, self.release, self.down = press, release, False

    def update(self, value: float) -> bool:
        """True on the frame the value crosses ``press`` (from released)."""
        if self.down:
            if value < self.release:
                self.down = False
            return False
        if value > self.press:
            self.down = True
            return True
        return False


class Interaction:
    """The interaction state machine for one session.

    Parameters
    ----------
    plan : Plan
        The case's plan (a copy is kept and changed locally).
    structures : list of str
        The structures of the case (menu rows, show all).
    pivot_mm : array_like (3,)
        The model point that the model pose places (the meshes' bounding-box centre).
    extent_mm : float
        The meshes' bounding-box diagonal (for the default magnification).
    picker : Picker, optional
        Ray picking on the meshes (select / hide); without it the trigger selects nothing.
    """

    def __init__(self, plan: Plan, *, structures: Sequence[str], pivot_mm: ArrayLike,
                 extent_mm: float = 0.0, picker: Picker | None = None) -> None:
        self.plan = plan
        self.structures = list(structures)
        self.pivot_mm = np.asarray(pivot_mm, dtype=np.float64)
        self.extent_mm = float(extent_mm)
        self.picker = picker
        self.label_points: dict[str, NDArray[np.float64]] = {}
        """Where each structure's name is shown (LPS mm), e.g. its bounding-box centre."""
        self.state = InteractionState()
        self._grab: _Grab | None = None
        self._edges = {(h, b): _Edge() for h in HANDS for b in ("grip", "trigger")}
        self._stick = {h: _Edge(STICK_PRESS, STICK_RELEASE) for h in HANDS}
        self._stick_neg = {h: _Edge(STICK_PRESS, STICK_RELEASE) for h in HANDS}
        self._buttons = {(h, b): False for h in HANDS for b in ("primary", "secondary")}
        self._undo: list[tuple[str, str]] = []
        self._head: Pose | None = None

    # -- model placement -------------------------------------------------------------------
    @property
    def model_pose(self) -> ModelPose:
        """The current model pose (the plan's, or the default until the first frame)."""
        if self.plan.model_pose is None:
            self.plan.model_pose = default_model_pose(None, extent_mm=self.extent_mm)
        return self.plan.model_pose

    def model_matrix(self) -> NDArray[np.float64]:
        """World (m) <- model (LPS mm) matrix for the current pose."""
        p = self.model_pose
        return xrmath.model_matrix(p.position, p.orientation_xyzw, p.scale, self.pivot_mm)

    def to_model(self, point_m: ArrayLike) -> NDArray[np.float64]:
        """A stage-space point (m) in patient LPS mm."""
        return xrmath.transform_points(np.linalg.inv(self.model_matrix()), point_m)

    def place_in_front(self, head: Pose | None) -> None:
        """Put the model in front of ``head`` when the plan has no model pose yet."""
        if self.plan.model_pose is None:
            self.plan.model_pose = default_model_pose(head, extent_mm=self.extent_mm)

    def replace_plan(self, plan: Plan) -> None:
        """Adopt a plan saved by someone else (keeps the local model pose while grabbing)."""
        if self.plan.model_pose is not None and (self._grab is not None
                                                 or plan.model_pose is None):
            plan.model_pose = self.plan.model_pose  # keep the heart where the user holds it
        self.plan = plan
        self.state.step = min(self.state.step, max(len(plan.steps) - 1, 0))
        if self.state.selected and self.state.selected not in self.structures:
            self.state.selected = None

    def set_structures(self, structures: Sequence[str]) -> None:
        """The case's structures changed on disk (re-meshed)."""
        self.structures = list(structures)

    # -- the frame ---------------------------------------------------------------------------
    def update(self, frame: FrameInput) -> tuple[list[PlanChange], list[Haptic]]:
        """Advance one frame; returns the plan changes to save and the haptic pulses to play."""
        changes: list[PlanChange] = []
        haptics: list[Haptic] = []
        if frame.head is not None:
            self._head = frame.head
        self.place_in_front(frame.head)
        self._buttons_and_menu(frame, changes, haptics)
        self._grab_update(frame, changes, haptics)
        self._steps(frame, changes, haptics)
        self._tools(frame, changes, haptics)
        for c in changes:
            if c.kind != "model_pose":  # the model pose was already changed in place
                c.apply(self.plan)
        return changes, haptics

    # -- pieces -------------------------------------------------------------------------------
    def _pressed(self, frame: FrameInput, side: str, button: str) -> bool:
        h = frame.hand(side)
        value = getattr(h, button)
        if isinstance(value, bool):
            was = self._buttons[(side, button)]
            self._buttons[(side, button)] = value
            return value and not was
        return self._edges[(side, button)].update(float(value))

    def _buttons_and_menu(self, frame: FrameInput, changes: list[PlanChange],
                          haptics: list[Haptic]) -> None:
        for side in HANDS:
            if self._pressed(frame, side, "primary"):
                self.state.menu_open = not self.state.menu_open
                haptics.append(Haptic(side, 0.3, 0.02))
            if self._pressed(frame, side, "secondary"):
                i = TOOLS.index(self.state.tool)
                self._set_tool(TOOLS[(i + 1) % len(TOOLS)])
                haptics.append(Haptic(side, 0.3, 0.02))

    def menu_buttons(self) -> list[MenuButton]:
        """The menu's buttons in the current state."""
        return menu_layout(self.structures, self.state, self.plan)

    def _menu_target(self, frame: FrameInput) -> tuple[float, MenuButton | None] | None:
        """Where the right ray hits the open menu: (distance m, button) or None."""
        left, right = frame.hand("left"), frame.hand("right")
        if not self.state.menu_open or left.aim_pose is None or right.aim_pose is None:
            return None
        hit = xrmath.ray_quad(right.aim_pose.position, right.aim_pose.forward,
                              menu_pose(left.aim_pose), *MENU_SIZE_M)
        if hit is None:
            return None
        t, u, v = hit
        return t, menu_hit(self.menu_buttons(), u, v)

    def _grab_update(self, frame: FrameInput, changes: list[PlanChange],
                     haptics: list[Haptic]) -> None:
        held = {}
        for side in HANDS:
            h = frame.hand(side)
            self._edges[(side, "grip")].update(h.grip)
            if self._edges[(side, "grip")].down and h.grip_pose is not None:
                held[side] = h.grip_pose
        grab = self._grab
        if grab is not None and set(held) != set(grab.hand_poses):
            # a hand joined or let go: commit what we have, restart from the current pose
            self._grab = None
            if not held:
                changes.append(PlanChange("model_pose", self.model_pose.to_json()))
                haptics.extend(Haptic(s, 0.2, 0.02) for s in grab.hand_poses)
                return
        if not held:
            return
        if self._grab is None:
            self._grab = _Grab(dict(held), ModelPose(**vars(self.model_pose)))
            if len(held) == 2:
                a, b = held["left"].position, held["right"].position
                self._grab.mid, self._grab.axis = (a + b) / 2, b - a
                self._grab.span = float(np.linalg.norm(b - a))
            haptics.extend(Haptic(s, 0.5, 0.03) for s in held)
            return
        g = self._grab
        m0 = g.model
        if len(held) == 1:
            side = next(iter(held))
            delta = held[side].compose(g.hand_poses[side].inverse())
            new = delta.compose(Pose(m0.position, m0.orientation_xyzw))
            scale = m0.scale
        else:
            a, b = held["left"].position, held["right"].position
            mid, axis = (a + b) / 2, b - a
            span = float(np.linalg.norm(axis))
            ratio = span / g.span if g.span > 1e-4 else 1.0
            scale = float(np.clip(m0.scale * ratio, MIN_SCALE, MAX_SCALE))
            ratio = scale / m0.scale
            self.state.status = f"{scale:.1f}x life size"
            rot = xrmath.quat_from_two_vectors(g.axis, axis)
            assert g.mid is not None
            pos = mid + ratio * xrmath.quat_rotate(rot, np.asarray(m0.position) - g.mid)
            new = Pose(pos, xrmath.quat_multiply(rot, m0.orientation_xyzw))
        self.plan.model_pose = ModelPose(position=tuple(float(x) for x in new.position),
                                         orientation_xyzw=tuple(float(x) for x in
                                                                new.orientation),
                                         scale=scale)

    def _steps(self, frame: FrameInput, changes: list[PlanChange],
               haptics: list[Haptic]) -> None:
        for side in HANDS:
            x = frame.hand(side).thumbstick[0]
            if self._stick[side].update(x):
                self.go_to_step(self.state.step + 1, haptics, side)
            if self._stick_neg[side].update(-x):
                self.go_to_step(self.state.step - 1, haptics, side)

    def go_to_step(self, index: int, haptics: list[Haptic] | None = None,
                   side: str = "right") -> None:
        """Show rehearsal step ``index`` (clamped): its visible structures and cut planes."""
        n = len(self.plan.steps)
        if n == 0:
            self.state.status = "This plan has no rehearsal steps"
            return
        new = int(min(max(index, 0), n - 1))
        if haptics is not None:
            haptics.append(Haptic(side, 0.4 if new != self.state.step else 0.1, 0.03))
        self.state.step = new
        step = self.plan.steps[new]
        self.state.status = f"Step {new + 1}/{n}: {step.title}"
        view = self.plan.view(step.view) if step.view else None
        if view is not None and view.model_pose is not None:
            self.plan.model_pose = view.model_pose

    def step_display(self) -> tuple[set[str] | None, set[str]]:
        """(visible structures or None, enabled cut-plane ids) of the current step."""
        if not self.plan.steps:
            return None, set()
        step = self.plan.steps[min(self.state.step, len(self.plan.steps) - 1)]
        visible = set(step.visible) if step.visible is not None else None
        return visible, set(step.cut_planes)

    def is_visible(self, structure: str) -> bool:
        """Whether ``structure`` is drawn now (plan display, narrowed by the current step)."""
        if not self.plan.display_of(structure).visible:
            return False
        visible, _ = self.step_display()
        return visible is None or structure in visible

    def active_cut_planes(self) -> list[CutPlane]:
        """The plan's enabled cut planes now.

        A plane that some rehearsal step lists is on only during the steps that list it; a plane
        no step lists (e.g. one just placed) is always on.
        """
        _, ids = self.step_display()
        in_steps = {i for s in self.plan.steps for i in s.cut_planes}
        return [c for c in self.plan.cut_planes if c.enabled
                and (not ({c.id, c.name} & in_steps) or {c.id, c.name} & ids)]

    def _set_tool(self, tool: str) -> None:
        self.state.tool = tool
        self.state.pending_points = []
        self.state.held_plane = None
        self.state.status = f"Tool: {tool}"

    def _tools(self, frame: FrameInput, changes: list[PlanChange],
               haptics: list[Haptic]) -> None:
        right = frame.hand("right")
        menu = self._menu_target(frame)
        self.state.menu_hover = menu[1].action if menu and menu[1] else None
        self.state.ray_hit_m = {}
        if menu is not None:
            self.state.ray_hit_m["right"] = menu[0]
        aim = right.aim_pose
        if self.state.tool == "cut" and aim is not None and menu is None:
            p, n = cut_plane_from_hand(aim)
            inv = np.linalg.inv(self.model_matrix())
            self.state.held_plane = xrmath.plane_transform(inv, p, n)
        # the left trigger does the same as the right one, except while the menu is open
        for side in HANDS:
            if not self._pressed(frame, side, "trigger"):
                continue
            if side == "right" and menu is not None:
                if menu[1] is not None:
                    self._menu_action(menu[1].action, changes)
                    haptics.append(Haptic(side, 0.4, 0.02))
                continue
            if side == "left" and self.state.menu_open:
                continue
            hand_aim = frame.hand(side).aim_pose
            if hand_aim is not None:
                self._trigger(side, hand_aim, changes, haptics)

    def _trigger(self, side: str, aim: Pose, changes: list[PlanChange],
                 haptics: list[Haptic]) -> None:
        tool = self.state.tool
        tip_mm = self.to_model(aim.position + TIP_OFFSET_M * aim.forward)
        tip = (float(tip_mm[0]), float(tip_mm[1]), float(tip_mm[2]))
        if tool == "grab":
            pick = self._pick(aim)
            if pick is None:
                self.state.selected = None
                self.state.status = ""
                return
            if pick.structure == self.state.selected:
                changes.append(PlanChange("display", {"structure": pick.structure,
                                                      "visible": False}))
                self.state.status = f"Hidden: {pick.structure}"
                self.state.selected = None
            else:
                self.state.selected = pick.structure
                self.state.status = f"Selected: {pick.structure}"
            haptics.append(Haptic(side, 0.6, 0.04))
        elif tool in ("measure", "angle"):
            need = 2 if tool == "measure" else 3
            self.state.pending_points.append(tip)
            if len(self.state.pending_points) < need:
                which = ("second", "third")[len(self.state.pending_points) - 1]
                vertex = " (the vertex)" if tool == "angle" and which == "second" else ""
                self.state.status = f"{tool.capitalize()}: press at the {which} point{vertex}"
                haptics.append(Haptic(side, 0.4, 0.03))
                return
            pts = [list(p) for p in self.state.pending_points]
            self.state.pending_points = []
            kind = "distance" if tool == "measure" else "angle"
            if kind == "angle" and (np.allclose(pts[0], pts[1]) or np.allclose(pts[2], pts[1])):
                self.state.status = "Angle: the vertex must differ from the other points"
                haptics.append(Haptic(side, 0.2, 0.1))
                return
            changes.append(PlanChange("measurement", {"kind": kind, "points": pts,
                                                      "id": self._remember("measurements")}))
            if kind == "distance":
                value = float(np.linalg.norm(np.subtract(pts[1], pts[0])))
                self.state.status = f"Distance: {value:.1f} mm"
            else:
                u, w = np.subtract(pts[0], pts[1]), np.subtract(pts[2], pts[1])
                cos = float(np.dot(u, w) / (np.linalg.norm(u) * np.linalg.norm(w)))
                self.state.status = f"Angle: {np.degrees(np.arccos(np.clip(cos, -1, 1))):.1f} deg"
            haptics.append(Haptic(side, 0.8, 0.06))
        elif tool == "landmark":
            pick = self._pick(aim, max_mm=None)
            changes.append(PlanChange("landmark", {
                "point": list(tip), "structure": pick.structure if pick else None,
                "id": self._remember("landmarks")}))
            self.state.status = "Landmark placed"
            haptics.append(Haptic(side, 0.6, 0.04))
        elif tool == "cut":
            p, n = cut_plane_from_hand(aim)
            origin, normal = xrmath.plane_transform(np.linalg.inv(self.model_matrix()), p, n)
            changes.append(PlanChange("cut_plane", {
                "name": VR_CUT, "origin": [float(x) for x in origin],
                "normal": [float(x) for x in normal]}))
            self._undo.append(("cut_planes", VR_CUT))
            self.state.status = "Cut plane placed"
            haptics.append(Haptic(side, 0.8, 0.05))

    def _step_from_view(self) -> PlanChange:
        """A rehearsal step of what the surgeon sees now: model pose (as a saved view), the
        visible structures and the active cut planes."""
        n = len(self.plan.steps) + 1
        names = {v.name for v in self.plan.views}
        view = next(f"VR step {i}" for i in range(n, n + 1000) if f"VR step {i}" not in names)
        step_id = self._remember("steps")
        self.state.step = n - 1
        self.state.status = f"Added step {n}: {view}"
        return PlanChange("step", {
            "id": step_id, "title": view, "view": view,
            "model_pose": self.model_pose.to_json(),
            "visible": [s for s in self.structures if self.is_visible(s)],
            "cut_planes": [c.id for c in self.active_cut_planes()]})

    def _remember(self, what: str) -> str:
        """A new item id, remembered for the menu's Undo."""
        item_id = uuid.uuid4().hex[:8]
        self._undo.append((what, item_id))
        return item_id

    def _pick(self, aim: Pose, max_mm: float | None = None) -> Pick | None:
        if self.picker is None:
            return None
        inv = np.linalg.inv(self.model_matrix())
        origin = xrmath.transform_points(inv, aim.position)
        direction = xrmath.transform_directions(inv, aim.forward)
        pick = self.picker.pick(origin, direction, visible=self.is_visible)
        if pick is not None and max_mm is not None and pick.distance_mm > max_mm:
            return None
        return pick

    def _menu_action(self, action: str, changes: list[PlanChange]) -> None:
        kind, _, arg = action.partition(":")
        if kind == "tool":
            self._set_tool(arg)
        elif kind == "toggle":
            visible = not self.plan.display_of(arg).visible
            changes.append(PlanChange("display", {"structure": arg, "visible": visible}))
        elif kind == "opacity" and self.state.selected:
            cur = self.plan.display_of(self.state.selected).opacity
            new = float(np.clip(cur + (OPACITY_STEP if arg == "+" else -OPACITY_STEP), 0.0, 1.0))
            changes.append(PlanChange("display", {"structure": self.state.selected,
                                                  "opacity": round(new, 3)}))
        elif kind == "step":
            self.go_to_step(self.state.step + int(arg))
        elif kind == "clear_cuts":
            names = [c.name for c in self.plan.cut_planes]
            if names:
                changes.append(PlanChange("remove_cut_planes", {"names": names}))
        elif kind == "show_all":
            changes.append(PlanChange("show_all", {"structures": list(self.structures)}))
        elif kind == "recentre":
            old = self.model_pose
            new = default_model_pose(self._head, extent_mm=self.extent_mm)
            self.plan.model_pose = ModelPose(position=new.position,
                                             orientation_xyzw=new.orientation_xyzw,
                                             scale=old.scale)
            changes.append(PlanChange("model_pose", self.plan.model_pose.to_json()))
            self.state.status = "Model recentred in front of you"
        elif kind == "add_step":
            changes.append(self._step_from_view())
        elif kind == "undo":
            if self._undo:
                what, key = self._undo.pop()
                changes.append(PlanChange("remove", {"list": what, "key": key}))
                self.state.status = f"Undone: {what[:-1].replace('_', ' ')}"
            else:
                self.state.status = "Nothing to undo"
        elif kind == "slice":
            self.state.show_slice = not self.state.show_slice
        elif kind == "names":
            self.state.show_names = not self.state.show_names
        elif kind == "close":
            self.state.menu_open = False
