"""The interactive window of ``cardioplan view``: a thin shell around
:class:`~cardioplan.viewer.interaction.ViewerLogic` and :class:`~cardioplan.viewer.scene.Scene`.

It forwards key presses and left clicks to the logic, saves the logic's edits with
:func:`~cardioplan.plan.edit_plan` (author ``"desktop"``), reloads the plan when the headset
saves it (a :class:`~cardioplan.plan.PlanWatcher` polled twice a second), and draws.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cardioplan.case import Case
from cardioplan.errors import CardioPlanError, RuntimeMissingError
from cardioplan.plan import PlanWatcher, edit_plan, load_plan
from cardioplan.viewer.interaction import (
    ACTIVE_CUT_NAME,
    KEYMAP,
    Outcome,
    Pick,
    ViewerLogic,
    help_text,
)
from cardioplan.viewer.scene import SLICE_NAME, Scene, load_scene_data, load_slice_images
from cardioplan.viewer.slices import ORIENTATIONS, oriented_size

__all__ = ["ViewerWindow", "has_display", "open_viewer", "image_slice_counts"]

log = logging.getLogger(__name__)

_CLICK_TOLERANCE_PX = 5
_WATCH_MS = 500


def image_slice_counts(case: Case) -> dict[str, int]:
    """Slices per orientation of the case's LPS-oriented image, from its header only."""
    if not case.has_image:
        return {}
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(case.image_path))
    reader.ReadImageInformation()
    size = oriented_size(reader.GetSize(), reader.GetDirection())
    return {o: size[a] for o, a in zip(ORIENTATIONS, (2, 1, 0), strict=True)}


def has_display() -> bool:
    """True when a window can be opened: a Wayland display, or an X display that answers.

    ``DISPLAY`` alone is not enough (a stale value after an SSH session would make VTK abort),
    so the X server is asked with ``XOpenDisplay``.
    """
    if os.environ.get("WAYLAND_DISPLAY"):
        return True
    if not os.environ.get("DISPLAY"):
        return False
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("X11")
    if name is None:
        return False
    xlib = ctypes.cdll.LoadLibrary(name)
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = xlib.XOpenDisplay(None)
    if not display:
        return False
    xlib.XCloseDisplay(display)
    return True


class ViewerWindow:
    """The interactive viewer of one case.

    Parameters
    ----------
    case : Case
    structures : list of str, optional
        Only load these structures.
    view : str
        The first camera preset or saved view.
    off_screen : bool
        Build the window off-screen (for tests and benchmarks: everything but the event loop).
    size : (width, height)
    """

    def __init__(self, case: Case, *, structures: Sequence[str] | None = None,
                 view: str = "anterior", off_screen: bool = False,
                 size: tuple[int, int] = (1280, 860)) -> None:
        import pyvista as pv

        self.case = case
        self.data = load_scene_data(case, structures=structures)
        self.watcher = PlanWatcher(case)
        plan = self.watcher.reload_if_changed() or load_plan(case)
        self.logic = ViewerLogic(plan, self.data.structures,
                                 slice_counts=image_slice_counts(case))
        self.plotter = pv.Plotter(off_screen=off_screen, window_size=list(size),
                                  title=f"CardioPlan - {case.path.name}")
        self.scene = Scene(self.plotter, self.data)
        self._status = ""
        self._help_actor: Any = None
        self._status_actor: Any = None
        self._press: tuple[int, int] | None = None
        self._clip_widget_on = False
        self._lod_ready = False
        self.redraw()
        self.scene.show_view(view, plan)

    # -- drawing ----------------------------------------------------------------------------
    def redraw(self) -> None:
        """Draw the logic's current state, the pending points and the status line."""
        state = self.logic.state()
        self.scene.apply(state, self.logic.plan, markers={
            n: self.logic.legend_marker(n) for n in self.data.structures})
        if self.logic.pending:
            self.scene.draw_annotations(self.logic.plan, pending=self.logic.pending)
        self._draw_overlays()

    def _draw_overlays(self) -> None:
        ren = self.plotter.renderer
        for actor in (self._help_actor, self._status_actor):
            if actor is not None:
                ren.RemoveViewProp(actor)
        self._help_actor = self._status_actor = None
        font = int(min(max(self.plotter.window_size[1] / 60, 10), 16))
        if self.logic.show_help:
            self._help_actor = self.scene.text_2d(help_text(), (0.015, 0.9), (1, 1, 1), font,
                                                  mono=True)
        status = self._status or "h: help"
        self._status_actor = self.scene.text_2d(status, (0.015, 0.02), (0.85, 0.9, 1.0), font,
                                                top=False)

    # -- events -----------------------------------------------------------------------------
    def on_key(self, key: str) -> None:
        """Handle one key press (VTK key symbol)."""
        cam = self.scene.current_camera()
        self.logic.view_direction = tuple(  # type: ignore[assignment]
            f - p for f, p in zip(cam.focal_point, cam.position, strict=True))
        outcome = self.logic.handle_key(key)
        if outcome is not None:
            self.apply(outcome)

    def on_pick(self, pick: Pick) -> None:
        """Handle a left click that hit something."""
        self.apply(self.logic.handle_pick(pick))

    def apply(self, outcome: Outcome) -> None:
        """Carry out an outcome: save the edit, run the command, move the camera, redraw."""
        try:
            if outcome.edit is not None:
                plan = edit_plan(self.case, outcome.edit, author="desktop")
                self.logic.plan_changed(plan)
                self.watcher.reload_if_changed()  # our own save: do not reload it again
            if outcome.command is not None:
                self._command(outcome.command)
            if outcome.view:
                self.scene.show_view(outcome.view, self.logic.plan)
            self._status = outcome.message or self._status
        except CardioPlanError as exc:
            log.error("%s", exc)
            self._status = f"error: {exc}"
        if self.logic.slice is not None and self.data.image is None:
            self.data.image, self.data.labels = load_slice_images(self.case)
            self.scene.set_image(self.data.image, self.data.labels, self.data.modality)
        self.redraw()
        self.plotter.render()

    def _command(self, command: str) -> None:
        if command == "quit":
            self.plotter.close()
        elif command == "screenshot":
            self._status = f"screenshot saved: {self.screenshot()}"
        elif command == "save_view":
            self.apply(self.logic.save_view(self.scene.current_camera()))
        elif command == "record_step":
            self.apply(self.logic.record_step(self.scene.current_camera()))
        elif command == "clip_widget":
            self._toggle_clip_widget()

    def _toggle_clip_widget(self) -> None:
        if self._clip_widget_on:
            self.plotter.clear_plane_widgets()
            self._clip_widget_on = False
            return
        current = self.logic.plan.cut_plane(ACTIVE_CUT_NAME)
        bounds = self.data.bounds(self.logic.state().visible_structures() or None)
        origin = current.origin if current else tuple(
            (bounds[i] + bounds[i + 1]) / 2 for i in (0, 2, 4))
        normal = current.normal if current else (0.0, 1.0, 0.0)

        def moved(normal: Sequence[float], origin: Sequence[float]) -> None:
            self.apply(self.logic.cut_plane_moved(origin, normal))

        self.plotter.add_plane_widget(moved, normal=normal, origin=origin, bounds=bounds,
                                      implicit=True, interaction_event="end",
                                      outline_translation=False, color="white")
        self._clip_widget_on = True

    def screenshot(self) -> Path:
        """Save the window as ``CASE/screenshots/screenshot-<UTC time>.png``."""
        from cardioplan.viewer.snapshot import write_png

        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        path = self.case.path / "screenshots" / f"screenshot-{stamp}.png"
        return write_png(path, self.plotter.screenshot(return_img=True)[..., :3])

    def pick_at(self, x: int, y: int) -> Pick | None:
        """What lies under display pixel ``(x, y)`` (origin bottom-left), clipping respected."""
        from vtkmodules.vtkRenderingCore import vtkCellPicker

        picker = vtkCellPicker()
        picker.SetTolerance(0.0005)
        if not picker.Pick(x, y, 0, self.plotter.renderer):
            return None
        actor = picker.GetActor()
        point = tuple(float(c) for c in picker.GetPickPosition())
        structure = self.scene.structure_of_actor(actor)
        if structure is not None:
            normal = tuple(float(c) for c in picker.GetPickNormal())
            return Pick(point, structure, normal)  # type: ignore[arg-type]
        if actor is self.plotter.actors.get(SLICE_NAME):
            return Pick(point, self.scene.label_at(point))  # type: ignore[arg-type]
        return None

    def _on_press(self, obj: Any, event: str) -> None:
        # PyVista attaches mouse observers to the interactor style: ask the interactor
        self._press = self.plotter.iren.interactor.GetEventPosition()

    def _on_release(self, obj: Any, event: str) -> None:
        if self._press is None:
            return
        x, y = self.plotter.iren.interactor.GetEventPosition()
        px, py = self._press
        self._press = None
        if abs(x - px) + abs(y - py) > _CLICK_TOLERANCE_PX:
            return  # a drag (camera rotation), not a click
        pick = self.pick_at(x, y)
        if pick is not None:
            self.on_pick(pick)

    def _on_interaction(self, obj: Any, event: str) -> None:
        """While the camera moves, draw the decimated stand-ins (large cases)."""
        moving = event == "StartInteractionEvent"
        if bool(self.scene.proxies) and moving != self.scene.lod:
            self.scene.set_lod(moving)
            if not moving:
                self.plotter.render()

    def _on_timer(self, obj: Any, event: str) -> None:
        if not self._lod_ready:  # after the first frame, not before it
            self._lod_ready = True
            self.scene.build_proxies()
        try:
            plan = self.watcher.reload_if_changed()
        except CardioPlanError as exc:
            self._status = f"plan not reloaded: {exc}"
            return
        if plan is not None:
            self.logic.plan_changed(plan)
            self._status = f"plan reloaded (revision {plan.revision}, by {plan.modified_by})"
            self.redraw()
            self.plotter.render()

    def bind(self) -> None:
        """Connect keys, clicks and the plan watcher (the VTK defaults for keys are removed,
        so e.g. ``s`` places a seed instead of switching to surface mode)."""
        iren = self.plotter.iren
        iren.interactor.RemoveObservers("CharEvent")
        iren.clear_key_event_callbacks()
        for binding in KEYMAP:
            for key in binding.keys:
                iren.add_key_event(key, lambda key=key: self.on_key(key))
        iren.add_observer("LeftButtonPressEvent", self._on_press)
        iren.add_observer("LeftButtonReleaseEvent", self._on_release)
        iren.add_observer("TimerEvent", self._on_timer)
        iren.interactor.CreateRepeatingTimer(_WATCH_MS)
        style = iren.interactor.GetInteractorStyle()
        for event in ("StartInteractionEvent", "EndInteractionEvent"):
            style.AddObserver(event, self._on_interaction)
        # text sizes and the inset's framing follow the window size
        self.plotter.ren_win.AddObserver("WindowResizeEvent", lambda *_: self.redraw())

    def show(self) -> None:
        """Open the window and run its event loop until it is closed."""
        self.bind()
        self.plotter.show(auto_close=True)


def open_viewer(case: Case | str | os.PathLike[str], *,
                structures: Sequence[str] | None = None, view: str = "anterior") -> None:
    """Open the interactive viewer on a case (blocks until the window is closed).

    Raises
    ------
    RuntimeMissingError
        No display is available (the message points to ``snapshot`` and ``report``).
    CaseError
        The case has no meshes (the message says to run ``cardioplan mesh CASE``).
    """
    from cardioplan.mesh.case_meshes import read_mesh_index

    case = case if isinstance(case, Case) else Case.open(case)
    read_mesh_index(case)  # no meshes: say how to make them before anything else
    if not has_display():
        raise RuntimeMissingError(
            "no display is available for the interactive viewer (DISPLAY is not set or its "
            "X server does not answer); "
            f"render pictures instead with `cardioplan snapshot {case.path} -o view.png` or "
            f"`cardioplan report {case.path}`, or run under X forwarding / xvfb-run")
    start = time.perf_counter()
    window = ViewerWindow(case, structures=structures, view=view)
    log.info("viewer ready in %.2f s (%d structures, %d triangles)",
             time.perf_counter() - start, len(window.data.meshes),
             sum(m.n_cells for m in window.data.meshes.values()))
    window.show()

