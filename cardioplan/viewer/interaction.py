"""The viewer's interaction logic, without a window: keys and picks in, plan edits and scene
states out.

:class:`ViewerLogic` keeps the session state of ``cardioplan view`` (selected structure, pick
mode, points of a measurement in progress, slice, rehearsal step, camera cycle) and turns each
key press or surface pick into an :class:`Outcome`: an edit for
:func:`~cardioplan.plan.edit_plan` (so every change lands in ``plan.json`` at once and the
headset sees it), a message for the status line, and what the window must redraw.  The window
(:mod:`cardioplan.viewer.window`) only forwards events and draws; the rules are tested here.

The key map is data (:data:`KEYMAP`): the window binds it and the on-screen help lists it.

Examples
--------
>>> from cardioplan.plan import Plan
>>> logic = ViewerLogic(Plan(), ["left_ventricle", "aorta"])
>>> logic.handle_key("m").message
'Distance: click the first point'
>>> _ = logic.handle_pick(Pick((0, 0, 0), "aorta"))
>>> out = logic.handle_pick(Pick((0, 3, 4), "aorta"))
>>> plan = Plan(); out.edit(plan); plan.measurements[0].value
5.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from cardioplan.errors import InputError
from cardioplan.labels import LABELS
from cardioplan.plan import Camera, CutPlane, Measurement, Plan, RehearsalStep, SavedView
from cardioplan.viewer.camera import PRESETS
from cardioplan.viewer.slices import ORIENTATIONS, Orientation, SliceSpec
from cardioplan.viewer.state import SceneState, display_name, scene_state

__all__ = ["Mode", "Pick", "Outcome", "KeyBinding", "KEYMAP", "help_text", "ViewerLogic",
           "SEED_INSET_MM", "OPACITY_STEP", "ACTIVE_CUT_NAME"]

SEED_INSET_MM = 2.0
"""A seed picked on a surface is moved this far inside the structure (against the normal)."""
OPACITY_STEP = 0.1
ACTIVE_CUT_NAME = "Desktop cut"


class Mode(Enum):
    """What a left click on a surface or the slice does."""

    NAVIGATE = "navigate"
    LANDMARK = "landmark"
    SEED = "seed"
    DISTANCE = "distance"
    ANGLE = "angle"


_POINTS_NEEDED = {Mode.DISTANCE: 2, Mode.ANGLE: 3}


@dataclass(frozen=True)
class Pick:
    """A picked point (LPS mm) and the structure under it (None for empty space).

    ``normal`` is the outward surface normal at the point when picked on a mesh.
    """

    point: tuple[float, float, float]
    structure: str | None = None
    normal: tuple[float, float, float] | None = None


@dataclass
class Outcome:
    """The result of one event.

    Attributes
    ----------
    edit : callable or None
        Change to save with :func:`~cardioplan.plan.edit_plan`.
    message : str
        Status line text.
    view : str or None
        Camera preset or saved view to move to.
    command : str or None
        A window-only action: ``quit``, ``help``, ``screenshot``, ``clip_widget``,
        ``save_view``, ``record_step``.
    """

    edit: Callable[[Plan], object] | None = None
    message: str = ""
    view: str | None = None
    command: str | None = None


@dataclass(frozen=True)
class KeyBinding:
    """Keys (VTK key symbols) bound to one action, with the help text."""

    keys: tuple[str, ...]
    action: str
    help: str


KEYMAP: tuple[KeyBinding, ...] = (
    KeyBinding(("h",), "help", "show / hide this help"),
    KeyBinding(tuple("123456789"), "toggle_structure", "show / hide structure N of the legend"),
    KeyBinding(("0",), "show_all", "show every structure"),
    KeyBinding(("Tab",), "select_next", "select the next structure (marked > in the legend)"),
    KeyBinding(("bracketleft", "bracketright"), "opacity", "opacity of the selected structure "
               "- / +"),
    KeyBinding(("c",), "clip_widget", "cut-plane widget on / off (drag it; saved to the plan)"),
    KeyBinding(("x",), "clip_selected", "the selected structure is cut by the plane or not "
               "(none chosen: all)"),
    KeyBinding(("b",), "toggle_cuts", "cut planes on / off"),
    KeyBinding(("i",), "toggle_slice", "image slice with label outlines on / off"),
    KeyBinding(("Up", "Down"), "scroll_slice", "slice +1 / -1"),
    KeyBinding(("Prior", "Next"), "scroll_slice_fast", "slice +10 / -10 (Page Up / Down)"),
    KeyBinding(("y",), "slice_orientation", "slice axial -> coronal -> sagittal"),
    KeyBinding(("o",), "toggle_inset", "2D slice inset with the meshes' cut lines on / off"),
    KeyBinding(("l",), "mode_landmark", "click to add a landmark"),
    KeyBinding(("s",), "mode_seed", "click to add a segmentation seed (inside the structure)"),
    KeyBinding(("m",), "mode_distance", "click two points: distance in mm"),
    KeyBinding(("a",), "mode_angle", "click three points: angle at the middle one"),
    KeyBinding(("Escape",), "cancel", "back to navigation (leaves a pick mode or a step)"),
    KeyBinding(("u",), "undo", "remove the last landmark / seed / measurement added here"),
    KeyBinding(("v", "V"), "next_view", "next / previous camera preset or saved view"),
    KeyBinding(("k",), "save_view", "save the current camera as a view in the plan"),
    KeyBinding(("Right", "Left"), "step", "next / previous rehearsal step"),
    KeyBinding(("n",), "record_step", "record a rehearsal step: this view, the visible "
               "structures and cut planes"),
    KeyBinding(("g", "F12"), "screenshot", "screenshot to CASE/screenshots/"),
    KeyBinding(("q",), "quit", "quit"),
)
"""Every key of the interactive viewer (VTK key symbols)."""

_KEY_NAMES = {"bracketleft": "[", "bracketright": "]", "Prior": "PgUp", "Next": "PgDn",
              "Escape": "Esc"}


def help_text(keymap: Sequence[KeyBinding] = KEYMAP) -> str:
    """The on-screen help: one line per binding.

    Examples
    --------
    >>> help_text().splitlines()[0]
    'h          show / hide this help'
    """
    lines = []
    for b in keymap:
        keys = "1-9" if b.action == "toggle_structure" else \
            " ".join(_KEY_NAMES.get(k, k) for k in b.keys)
        lines.append(f"{keys:<10} {b.help}")
    return "\n".join(lines)


def _key_table(keymap: Sequence[KeyBinding]) -> dict[str, KeyBinding]:
    table: dict[str, KeyBinding] = {}
    for b in keymap:
        for k in b.keys:
            if k in table:
                raise ValueError(f"key {k!r} is bound twice")
            table[k] = b
    return table


def _fmt(p: Sequence[float]) -> str:
    return "(" + ", ".join(f"{c:.1f}" for c in p) + ")"


@dataclass
class ViewerLogic:
    """Session state of the viewer and the rules for keys and picks.

    Parameters
    ----------
    plan : Plan
        The latest plan (call :meth:`plan_changed` after each save or reload).
    structures : list of str
        Structures with a mesh, in legend order.
    slice_counts : dict, optional
        Slices per orientation of the LPS-oriented image (no image: no slice).
    """

    plan: Plan
    structures: list[str]
    slice_counts: dict[str, int] = field(default_factory=dict)
    selected: int = 0
    mode: Mode = Mode.NAVIGATE
    pending: list[tuple[float, float, float]] = field(default_factory=list)
    slice: SliceSpec | None = None
    step_index: int | None = None
    view_index: int = 0
    clip: bool = True
    show_help: bool = False
    inset: bool = True
    view_direction: tuple[float, float, float] | None = None
    """Camera viewing direction (LPS); a new slice faces the camera."""
    added: list[tuple[str, object]] = field(default_factory=list)
    """What this session added, for undo: (kind, id or seed)."""

    def __post_init__(self) -> None:
        self._keys = _key_table(KEYMAP)

    # -- derived state ----------------------------------------------------------------------
    @property
    def selected_structure(self) -> str | None:
        return self.structures[self.selected] if self.structures else None

    def views(self) -> list[str]:
        """Camera presets, then the plan's saved views with a camera, in cycling order."""
        saved = [v.name for v in self.plan.views if v.camera is not None]
        return list(PRESETS) + [v for v in saved if v not in PRESETS]

    def current_step(self) -> RehearsalStep | None:
        """The rehearsal step being shown, if any."""
        if self.step_index is None or not 0 <= self.step_index < len(self.plan.steps):
            return None
        return self.plan.steps[self.step_index]

    def state(self) -> SceneState:
        """The scene to draw now."""
        step = self.current_step()
        try:
            state = scene_state(self.plan, self.structures, clip=self.clip, step=step,
                                slice=self.slice)
        except InputError:  # a step whose view is gone: show its structures from here
            state = scene_state(self.plan, self.structures, clip=self.clip,
                                step=replace(step, view=None), slice=self.slice)
        if step is not None:
            n = len(self.plan.steps)
            title = f"Step {self.step_index + 1}/{n}: {step.title}"
            state = replace(state, title=title + (f"\n{step.note}" if step.note else ""))
        elif self.mode is not Mode.NAVIGATE:
            state = replace(state, title=self._mode_prompt())
        return replace(state, slice_inset=self.inset and self.slice is not None)

    def legend_marker(self, structure: str) -> str:
        """``'> '`` for the selected structure, else its number key."""
        i = self.structures.index(structure)
        if i == self.selected:
            return ">"
        return str(i + 1) if i < 9 else " "

    def plan_changed(self, plan: Plan) -> None:
        """Take a newly saved or reloaded plan."""
        self.plan = plan
        if self.step_index is not None and self.step_index >= len(plan.steps):
            self.step_index = None

    # -- events -----------------------------------------------------------------------------
    def handle_key(self, key: str) -> Outcome | None:
        """The outcome of a key press (None for keys the viewer does not use)."""
        binding = self._keys.get(key)
        if binding is None:
            return None
        return getattr(self, f"_on_{binding.action}")(key)

    def handle_pick(self, pick: Pick) -> Outcome:
        """The outcome of a left click that hit ``pick`` in the current mode."""
        if self.mode is Mode.NAVIGATE:
            where = display_name(pick.structure) if pick.structure else "nothing"
            return Outcome(message=f"{where} at {_fmt(pick.point)} mm (press l, s, m or a to "
                                   "place points)")
        if self.mode is Mode.LANDMARK:
            return self._add_landmark(pick)
        if self.mode is Mode.SEED:
            return self._add_seed(pick)
        self.pending.append(tuple(float(c) for c in pick.point))  # type: ignore[arg-type]
        needed = _POINTS_NEEDED[self.mode]
        if len(self.pending) < needed:
            return Outcome(message=self._mode_prompt())
        points, kind = list(self.pending), self.mode.value
        self.pending.clear()
        try:
            label = Measurement(kind=kind, points=points).label()  # type: ignore[arg-type]
        except InputError as exc:
            return Outcome(message=f"not measured: {exc}")

        def edit(plan: Plan) -> None:
            m = plan.add_measurement(kind=kind, points=points)  # type: ignore[arg-type]
            self.added.append(("measurements", m.id))

        return Outcome(edit=edit, message=f"{kind} {label} saved to the plan")

    def save_view(self, camera: Camera) -> Outcome:
        """Save ``camera`` as ``View N`` in the plan."""
        existing = {v.name for v in self.plan.views}
        n = len(existing) + 1
        while f"View {n}" in existing:
            n += 1
        name = f"View {n}"
        return Outcome(edit=lambda plan: plan.upsert_view(SavedView(name=name, camera=camera)),
                       message=f"camera saved as {name!r} (v cycles to it)")

    def record_step(self, camera: Camera) -> Outcome:
        """Append a rehearsal step showing what is on screen now.

        The camera is saved as the view ``Step N``; the step lists the visible structures and
        the enabled cut planes.  Titles and notes can be edited in ``plan.json`` or in VR.
        """
        state = self.state()
        n = len(self.plan.steps) + 1
        existing = {s.title for s in self.plan.steps} | {v.name for v in self.plan.views}
        while f"Step {n}" in existing:
            n += 1
        title = f"Step {n}"
        visible = state.visible_structures()
        planes = [c.id for c in state.cut_planes]

        def edit(plan: Plan) -> None:
            plan.upsert_view(SavedView(name=title, camera=camera))
            step = RehearsalStep(title=title, view=title, visible=visible,
                                 cut_planes=[c for c in planes if plan.cut_plane(c)])
            plan.steps.append(step)
            self.added.append(("steps", step.id))

        return Outcome(edit=edit, message=f"{title} recorded: {len(visible)} structures, "
                                          f"{len(planes)} cut plane(s)")

    def cut_plane_moved(self, origin: Sequence[float], normal: Sequence[float]) -> Outcome:
        """The clip widget was released: save its plane as the desktop cut plane."""
        current = self.plan.cut_plane(ACTIVE_CUT_NAME)
        structures = list(current.structures) if current else []
        plane = CutPlane(name=ACTIVE_CUT_NAME, origin=tuple(origin),  # type: ignore[arg-type]
                         normal=tuple(normal), structures=structures,  # type: ignore[arg-type]
                         enabled=True)
        if current is not None:
            plane.id = current.id
        return Outcome(edit=lambda plan: plan.upsert_cut_plane(plane),
                       message=f"cut plane saved: origin {_fmt(origin)}, normal {_fmt(normal)}")

    # -- key handlers (one per KEYMAP action) -------------------------------------------------
    def _on_help(self, key: str) -> Outcome:
        self.show_help = not self.show_help
        return Outcome(command="help")

    def _on_toggle_structure(self, key: str) -> Outcome:
        i = int(key) - 1
        if i >= len(self.structures):
            return Outcome(message=f"there is no structure {key}")
        name = self.structures[i]
        self.selected = i
        visible = not self.plan.display_of(name).visible
        return Outcome(edit=lambda plan: plan.set_display(name, visible=visible),
                       message=f"{display_name(name)} {'shown' if visible else 'hidden'}")

    def _on_show_all(self, key: str) -> Outcome:
        names = list(self.structures)

        def edit(plan: Plan) -> None:
            for n in names:
                plan.set_display(n, visible=True)

        return Outcome(edit=edit, message="all structures shown")

    def _on_select_next(self, key: str) -> Outcome:
        if self.structures:
            self.selected = (self.selected + 1) % len(self.structures)
        name = self.selected_structure
        return Outcome(message=f"selected: {display_name(name)}" if name else "no structures")

    def _on_opacity(self, key: str) -> Outcome:
        name = self.selected_structure
        if name is None:
            return Outcome(message="no structure selected")
        delta = OPACITY_STEP if key == "bracketright" else -OPACITY_STEP
        value = round(min(1.0, max(0.0, self.plan.display_of(name).opacity + delta)), 2)
        return Outcome(edit=lambda plan: plan.set_display(name, opacity=value),
                       message=f"{display_name(name)} opacity {value:.1f}")

    def _on_clip_widget(self, key: str) -> Outcome:
        return Outcome(command="clip_widget")

    def _on_clip_selected(self, key: str) -> Outcome:
        name = self.selected_structure
        current = self.plan.cut_plane(ACTIVE_CUT_NAME)
        if name is None or current is None:
            return Outcome(message="place a cut plane first (c)")
        chosen = list(current.structures)
        if name in chosen:
            chosen.remove(name)
        else:
            chosen.append(name)
        plane = replace(current, structures=chosen)
        what = ", ".join(display_name(n) for n in chosen) or "all structures"
        return Outcome(edit=lambda plan: plan.upsert_cut_plane(plane),
                       message=f"the cut plane cuts: {what}")

    def _on_toggle_cuts(self, key: str) -> Outcome:
        self.clip = not self.clip
        return Outcome(message=f"cut planes {'on' if self.clip else 'off'}")

    def _on_toggle_slice(self, key: str) -> Outcome:
        if not self.slice_counts:
            return Outcome(message="the case has no image to slice")
        if self.slice is None:
            orientation = self.facing_orientation()
            self.slice = SliceSpec(orientation, self.slice_counts[orientation] // 2)
        else:
            self.slice = None
        return Outcome(message=self._slice_text())

    def facing_orientation(self) -> Orientation:
        """The slice orientation most perpendicular to the view (axial when unknown).

        Examples
        --------
        >>> ViewerLogic(Plan(), [], view_direction=(0, 1, 0)).facing_orientation()
        'coronal'
        """
        if self.view_direction is None:
            return "axial"
        axis = max(range(3), key=lambda i: abs(self.view_direction[i]))  # type: ignore[index]
        return ("sagittal", "coronal", "axial")[axis]  # type: ignore[return-value]

    def _scroll(self, delta: int) -> Outcome:
        if self.slice is None:
            return Outcome(message="no slice shown (i shows it)")
        n = self.slice_counts[self.slice.orientation]
        index = min(n - 1, max(0, (self.slice.index or 0) + delta))
        self.slice = SliceSpec(self.slice.orientation, index)
        return Outcome(message=self._slice_text())

    def _on_scroll_slice(self, key: str) -> Outcome:
        return self._scroll(1 if key == "Up" else -1)

    def _on_scroll_slice_fast(self, key: str) -> Outcome:
        return self._scroll(10 if key == "Prior" else -10)

    def _on_slice_orientation(self, key: str) -> Outcome:
        if self.slice is None:
            return Outcome(message="no slice shown (i shows it)")
        nxt = ORIENTATIONS[(ORIENTATIONS.index(self.slice.orientation) + 1) % 3]
        self.slice = SliceSpec(nxt, self.slice_counts[nxt] // 2)
        return Outcome(message=self._slice_text())

    def _on_toggle_inset(self, key: str) -> Outcome:
        self.inset = not self.inset
        return Outcome(message=f"slice inset {'on' if self.inset else 'off'}")

    def _slice_text(self) -> str:
        if self.slice is None:
            return "slice hidden"
        n = self.slice_counts[self.slice.orientation]
        return f"{self.slice.orientation} slice {self.slice.index}/{n - 1}"

    def _set_mode(self, mode: Mode) -> Outcome:
        self.mode = mode
        self.pending.clear()
        return Outcome(message=self._mode_prompt())

    def _on_mode_landmark(self, key: str) -> Outcome:
        return self._set_mode(Mode.LANDMARK)

    def _on_mode_seed(self, key: str) -> Outcome:
        return self._set_mode(Mode.SEED)

    def _on_mode_distance(self, key: str) -> Outcome:
        return self._set_mode(Mode.DISTANCE)

    def _on_mode_angle(self, key: str) -> Outcome:
        return self._set_mode(Mode.ANGLE)

    def _mode_prompt(self) -> str:
        if self.mode is Mode.LANDMARK:
            return "Landmark: click a surface or the slice"
        if self.mode is Mode.SEED:
            return "Seed: click inside a structure on the slice, or on its surface"
        if self.mode in _POINTS_NEEDED:
            ordinal = ["first", "second", "third"][len(self.pending)]
            return f"{self.mode.value.capitalize()}: click the {ordinal} point"
        return ""

    def _on_cancel(self, key: str) -> Outcome:
        if self.mode is not Mode.NAVIGATE:
            self._set_mode(Mode.NAVIGATE)
            return Outcome(message="navigation")
        if self.step_index is not None:
            self.step_index = None
            return Outcome(message="left the rehearsal steps")
        return Outcome(message="")

    def _on_undo(self, key: str) -> Outcome:
        if not self.added:
            return Outcome(message="nothing to undo")
        kind, ref = self.added.pop()

        def edit(plan: Plan) -> None:
            if kind == "seeds":
                if ref in plan.seeds:
                    plan.seeds.remove(ref)  # type: ignore[arg-type]
            else:
                plan.remove(kind, str(ref))  # type: ignore[arg-type]

        return Outcome(edit=edit, message=f"removed the last {kind[:-1].replace('_', ' ')}")

    def _on_next_view(self, key: str) -> Outcome:
        views = self.views()
        self.view_index = (self.view_index + (1 if key == "v" else -1)) % len(views)
        name = views[self.view_index]
        title = PRESETS[name].title if name in PRESETS else name
        return Outcome(view=name, message=f"view: {title}")

    def _on_save_view(self, key: str) -> Outcome:
        return Outcome(command="save_view")

    def _on_step(self, key: str) -> Outcome:
        n = len(self.plan.steps)
        if n == 0:
            return Outcome(message="the plan has no rehearsal steps")
        if self.step_index is None:
            self.step_index = 0 if key == "Right" else n - 1
        else:
            self.step_index = min(n - 1, max(0, self.step_index + (1 if key == "Right" else -1)))
        step = self.plan.steps[self.step_index]
        return Outcome(view=step.view, message=f"step {self.step_index + 1}/{n}: {step.title}")

    def _on_record_step(self, key: str) -> Outcome:
        return Outcome(command="record_step")

    def _on_screenshot(self, key: str) -> Outcome:
        return Outcome(command="screenshot")

    def _on_quit(self, key: str) -> Outcome:
        return Outcome(command="quit")

    # -- picks ------------------------------------------------------------------------------
    def _add_landmark(self, pick: Pick) -> Outcome:
        point, structure = pick.point, pick.structure

        def edit(plan: Plan) -> None:
            lm = plan.add_landmark(point, structure=structure)
            self.added.append(("landmarks", lm.id))

        where = f" on {display_name(structure)}" if structure else ""
        return Outcome(edit=edit, message=f"landmark{where} at {_fmt(point)} mm")

    def _add_seed(self, pick: Pick) -> Outcome:
        structure = pick.structure if pick.structure in LABELS else None
        if structure is None:
            return Outcome(message="a seed must be inside a structure: click a labelled "
                                   "region of the slice or a structure's surface")
        point = pick.point
        if pick.normal is not None:
            n = math.hypot(*pick.normal) or 1.0
            point = tuple(p - SEED_INSET_MM * c / n  # type: ignore[assignment]
                          for p, c in zip(pick.point, pick.normal, strict=True))

        def edit(plan: Plan) -> None:
            seed = plan.add_seed(structure, point)
            self.added.append(("seeds", seed))

        return Outcome(edit=edit, message=f"seed in {display_name(structure)} at "
                                          f"{_fmt(point)} mm")
