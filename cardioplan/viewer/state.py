"""What the scene shows, computed from the plan (pure: no rendering, no window).

:class:`SceneState` is the single description both the interactive window and the off-screen
snapshot render: which structures are visible, their opacity and colour, which cut planes cut
which structures, the image slice, and the camera view name.  :func:`scene_state` derives it
from a :class:`~cardioplan.plan.Plan`, an optional structure filter and an optional rehearsal
step, so the rules are unit-tested without a window.

Examples
--------
>>> from cardioplan.plan import Plan
>>> plan = Plan(); _ = plan.set_display("aorta", visible=False)
>>> state = scene_state(plan, ["aorta", "left_ventricle"])
>>> state.visible_structures()
['left_ventricle']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from cardioplan.errors import InputError
from cardioplan.labels import LABELS
from cardioplan.plan import CutPlane, Plan, RehearsalStep
from cardioplan.viewer.camera import PRESETS
from cardioplan.viewer.slices import SliceSpec

__all__ = ["StructureStyle", "SceneState", "scene_state", "structure_color",
           "check_structures", "display_name", "DEFAULT_COLOR"]

DEFAULT_COLOR = (200, 200, 200)
"""Colour of a structure missing from the label table."""


def structure_color(name: str) -> tuple[int, int, int]:
    """The label-table colour of ``name`` (light grey for names outside the table)."""
    return LABELS[name].color if name in LABELS else DEFAULT_COLOR


def display_name(name: str) -> str:
    """Human-readable name for legends (``left_ventricle`` -> ``Left ventricle``)."""
    return LABELS[name].display_name if name in LABELS else name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class StructureStyle:
    """How one structure is drawn."""

    visible: bool
    opacity: float
    color: tuple[int, int, int]


@dataclass(frozen=True)
class SceneState:
    """Everything the renderer needs to know, as plain data."""

    styles: dict[str, StructureStyle]
    cut_planes: tuple[CutPlane, ...] = ()
    slice: SliceSpec | None = None
    view: str | None = None
    title: str = ""
    show_annotations: bool = True
    show_legend: bool = True
    order: tuple[str, ...] = field(default=())
    slice_inset: bool = False
    """Also show the slice flat in a corner, with the meshes' cut lines."""

    def visible_structures(self) -> list[str]:
        """Visible structure names in display order."""
        return [n for n in self.order or self.styles if self.styles[n].visible]

    def planes_for(self, structure: str) -> list[CutPlane]:
        """Enabled cut planes that clip ``structure``."""
        return [c for c in self.cut_planes if c.clips(structure)]


def check_structures(requested: Iterable[str], available: Sequence[str]) -> list[str]:
    """Validate a structure filter against the meshes the case has.

    Raises
    ------
    InputError
        A requested name has no mesh in the case (the message lists the ones there are).
    """
    requested = list(requested)
    missing = [s for s in requested if s not in available]
    if missing:
        raise InputError(f"the case has no mesh for {', '.join(missing)}; it has: "
                         f"{', '.join(available) or 'none'}")
    return requested


def scene_state(plan: Plan, structures: Sequence[str], *, only: Iterable[str] | None = None,
                clip: bool = True, step: RehearsalStep | None = None,
                slice: SliceSpec | None = None, view: str | None = None) -> SceneState:
    """The scene for ``plan`` over the meshes ``structures``.

    Parameters
    ----------
    plan : Plan
    structures : list of str
        Structures that have a mesh, in display order.
    only : iterable of str, optional
        Show only these structures (overrides the plan's visibility).
    clip : bool
        Apply the plan's enabled cut planes (a step enables its own planes instead).
    step : RehearsalStep, optional
        A rehearsal step: its ``visible`` list and ``cut_planes`` replace the plan's, its
        ``view`` becomes the view unless ``view`` is given.
    slice : SliceSpec, optional
        The image slice to show.
    view : str, optional
        Camera preset or saved view name.
    """
    only_set = set(check_structures(only, structures)) if only is not None else None
    step_set = set(step.visible) if step is not None and step.visible is not None else None
    styles = {}
    for name in structures:
        disp = plan.display_of(name)
        visible = disp.visible
        if step_set is not None:
            visible = name in step_set
        if only_set is not None:
            visible = name in only_set
        styles[name] = StructureStyle(visible=visible, opacity=disp.opacity,
                                      color=disp.color or structure_color(name))
    if step is not None:
        planes = tuple(replace(c, enabled=True) for c in plan.cut_planes
                       if c.id in step.cut_planes)
    elif clip:
        planes = tuple(c for c in plan.cut_planes if c.enabled)
    else:
        planes = ()
    if view is None and step is not None:
        view = step.view
    title = step.title if step is not None else ""
    if step is not None and view is not None and plan.view(view) is None \
            and view not in PRESETS:
        raise InputError(f"step {step.title!r} uses view {view!r}, which is neither a "
                         "camera preset nor a saved view")
    return SceneState(styles=styles, cut_planes=planes, slice=slice, view=view, title=title,
                      order=tuple(structures))
