"""The headset app: open a case, run the OpenXR frame loop, write the plan, shut down cleanly.

Per frame: poll runtime events -> wait for the frame -> locate the eyes -> sync the controller
actions -> :class:`vr.interaction.Interaction` -> queue plan changes (written by a background
thread through :func:`cardioplan.plan.edit_plan`) -> apply live updates (meshes, plan) -> build
the :class:`vr.render.SceneFrame` -> render each eye into its swapchain image -> submit.

The CPU time of CardioPlan's own code (everything above except the runtime's waits: frame wait,
swapchain acquire/wait/release and frame end) is measured per frame and per phase; ``cardioplan
vr --json`` prints it, ``scripts/bench_vr.py`` summarises it.

Examples
--------
>>> stats = run_vr("case1", VrOptions(frames=60))          # doctest: +SKIP
>>> stats.exit_reason                                       # doctest: +SKIP
'the user or the app asked to exit'
"""

from __future__ import annotations

import logging
import queue
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cardioplan.case import Case
from cardioplan.errors import CaseError, RuntimeMissingError
from cardioplan.labels import LABELS
from cardioplan.plan import PlanWatcher, edit_plan, load_plan
from vr import xrmath
from vr.interaction import (
    MENU_SIZE_M,
    TOOLS,
    FrameInput,
    HandInput,
    Interaction,
    MeshPicker,
    PlanChange,
    cut_plane_from_hand,
    menu_pose,
)
from vr.render import Label, MenuImage, SceneFrame, StructureStyle
from vr.xrmath import Pose

__all__ = ["VrOptions", "VrStats", "VrApp", "run_vr", "scene_frame", "volume_texture",
           "percentiles"]

log = logging.getLogger(__name__)

RAY_LENGTH_M = 1.5
DEFAULT_COLOR = (200, 200, 200)


@dataclass
class VrOptions:
    """Options of a headset session (``cardioplan vr``)."""

    frames: int | None = None
    """End after this many submitted frames (None: until the user or runtime ends it)."""
    graphics: str | None = None
    """``egl``, ``glx``, ``wgl`` (None: :func:`vr.graphics.default_graphics`)."""
    mirror: str | None = None
    """``"window"`` for a spectator window (GLX/WGL), or a PNG path (left eye, every second)."""
    tool: str = "grab"
    reference: str = "stage"
    depth: bool = True
    slice: bool = True
    """Show the CT/MR slice on the active cut plane (loads the scan in the background)."""
    startup_timeout_s: float = 120.0
    """Give up when the runtime has not started the session after this long (some runtimes
    wait until the headset is put on)."""
    msaa: int | None = None
    """Samples per pixel (0: off); None: 4 on a GPU, off on a software rasteriser."""
    finish_gl: bool = False
    """Wait for the GL work of each frame after submitting it (untimed).  With a software
    rasteriser (llvmpipe) the "GPU" is the CPU: its threads would otherwise still be drawing the
    last frame while our code runs.  Benchmarks set it to time CardioPlan's code alone."""


@dataclass
class VrStats:
    """What happened in a session (printed by ``cardioplan vr --json``)."""

    runtime: str = ""
    system: str = ""
    graphics: str = ""
    reference_space: str = ""
    color_format: str = ""
    depth_format: str | None = None
    eye_size: tuple[int, int] = (0, 0)
    gl_renderer: str = ""
    msaa: int = 0
    structures: list[str] = field(default_factory=list)
    triangles: int = 0
    frames: int = 0
    states: list[str] = field(default_factory=list)
    exit_reason: str = ""
    startup_s: float = 0.0
    """From the start of :meth:`VrApp.run` to the first submitted frame."""
    cpu_ms: list[float] = field(default_factory=list)
    """Per frame: CardioPlan's CPU time — input, interaction, scene update and draw submission;
    the runtime's waits and the time inside the GL driver's draw calls excluded."""
    frame_ms: list[float] = field(default_factory=list)
    """Per frame: the same plus the GL driver's draw calls (with a software rasteriser such as
    llvmpipe this includes all vertex and fragment processing)."""
    phase_ms: dict[str, list[float]] = field(default_factory=dict)
    """Per phase (input, interaction, scene, draw, gl_driver), per frame."""
    pick_index_frame: int | None = None
    """Frames submitted before the ray-pick index (built in a background thread at start-up)
    was ready; on a loaded 2-core machine those frames compete with the build for the CPU."""
    plan_writes: int = 0
    mesh_reloads: int = 0
    controllers: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary with median/p99 timings."""
        out = {k: v for k, v in vars(self).items()
               if k not in ("cpu_ms", "frame_ms", "phase_ms")}
        out["cpu_ms"] = percentiles(self.cpu_ms)
        out["frame_ms"] = percentiles(self.frame_ms)
        out["phase_ms"] = {k: percentiles(v) for k, v in self.phase_ms.items()}
        return out


def percentiles(values: list[float], *, skip: int = 5) -> dict[str, float]:
    """``{"median", "p99", "max", "n"}`` of a list of times, the first ``skip`` (warm-up)
    left out when there are more than 20."""
    v = values[skip:] if len(values) > 20 else values
    if not v:
        return {"median": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    s = sorted(v)
    p99 = s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))]
    return {"median": round(statistics.median(s), 4), "p99": round(p99, 4),
            "max": round(s[-1], 4), "n": len(s)}


# -- scene assembly (pure) -----------------------------------------------------------------------
def scene_frame(it: Interaction, frame: FrameInput, *, colors: dict[str, tuple[int, int, int]],
                menu: MenuImage | None = None,
                head: NDArray[np.float64] | None = None) -> SceneFrame:
    """What to draw this frame, from the interaction state (no GL).

    Structures take the plan's display settings (visibility narrowed by the current rehearsal
    step, opacity, colour override, else the label colour); the active cut planes clip the
    structures they name; the held cut plane (cut tool) clips everything and is drawn as a
    translucent square; the CT/MR slice lies on the held plane, else the first active plane.
    """
    plan = it.plan
    model = it.model_matrix()
    planes = it.active_cut_planes()
    held = it.state.held_plane
    styles = {}
    for name in it.structures:
        disp = plan.display_of(name)
        clip = [(np.asarray(c.normal, dtype=np.float64), np.asarray(c.origin, dtype=np.float64))
                for c in planes if c.clips(name)]
        if held is not None:
            clip.insert(0, (held[1], held[0]))
        styles[name] = StructureStyle(
            visible=it.is_visible(name), opacity=disp.opacity,
            color=disp.color or colors.get(name) or DEFAULT_COLOR, planes=clip)
    slice_plane = (held[0], held[1]) if held is not None else \
        ((np.asarray(planes[0].origin), np.asarray(planes[0].normal)) if planes else None)
    if not it.state.show_slice:
        slice_plane = None
    out = SceneFrame(model=model, styles=styles, slice_plane=slice_plane, menu=menu, head=head)
    scale_m = it.model_pose.scale / 1000.0
    for m in plan.measurements:
        pts = [xrmath.transform_points(model, p) for p in m.points]
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            out.lines.append((a, b, (1.0, 0.85, 0.1, 1.0)))
        out.points += [(p, 0.004, (1.0, 0.85, 0.1, 1.0)) for p in pts]
        mid = pts[len(pts) // 2] if m.kind == "angle" else (pts[0] + pts[1]) / 2
        out.labels.append(Label(m.label(), mid, 0.018, (255, 220, 60)))
    for lm in plan.landmarks:
        p = xrmath.transform_points(model, lm.point)
        out.points.append((p, 0.005, (0.1, 0.9, 1.0, 1.0)))
        out.labels.append(Label(lm.name, p, 0.016, (120, 230, 255)))
    pending = [xrmath.transform_points(model, p) for p in it.state.pending_points]
    out.points += [(p, 0.005, (1.0, 0.5, 0.1, 1.0)) for p in pending]
    for a, b in zip(pending[:-1], pending[1:], strict=True):
        out.lines.append((a, b, (1.0, 0.5, 0.1, 1.0)))
    if it.state.show_names:
        for name in it.structures:
            point = it.label_points.get(name)
            if point is not None and styles[name].visible:
                label = LABELS[name].display_name if name in LABELS else name
                rgb = styles[name].color
                light = tuple(int(c + (255 - c) * 0.45) for c in rgb)
                out.labels.append(Label(label, xrmath.transform_points(model, point), 0.014,
                                        light))
    if it.state.selected and it.state.selected in it.structures:
        sel = it.state.selected
        name = LABELS[sel].display_name if sel in LABELS else sel
        top = np.asarray(plan.model_pose.position if plan.model_pose else model[:3, 3])
        out.labels.append(Label(name, top + np.array([0.0, 0.12 * max(scale_m * 1000, 1), 0.0]),
                                0.025))
    for side, hand in frame.hands.items():
        aim = hand.aim_pose
        if aim is None:
            continue
        length = it.state.ray_hit_m.get(side, RAY_LENGTH_M)
        color = (0.3, 0.8, 1.0, 1.0) if side == "right" else (0.6, 0.6, 0.7, 1.0)
        out.lines.append((aim.position, aim.position + length * aim.forward, color))
        out.points.append((aim.position, 0.006, color))
        if hand.grip_pose is not None:  # the controller's body, in the hand
            body = hand.grip_pose.compose(Pose((0.0, 0.0, 0.02)))
            pressed = hand.trigger > 0.5 or hand.grip > 0.5
            out.boxes.append((body, (0.035, 0.03, 0.11),
                              (0.55, 0.75, 0.95, 1.0) if pressed else (0.45, 0.47, 0.52, 1.0)))
        if side == "right" and it.state.tool == "cut" and held is not None:
            p, _n = cut_plane_from_hand(aim)
            out.quads.append((Pose(p, aim.orientation), (0.25, 0.25), (0.9, 0.9, 1.0, 0.18)))
    if it.state.status and menu is None:
        right = frame.hand("right").aim_pose
        if right is not None:
            out.labels.append(Label(it.state.status, right.position + np.array([0, 0.06, 0]),
                                    0.015))
    return out


def volume_texture(image: Any, *, modality: str = "CT", max_size: int = 160
                   ) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """A windowed uint8 copy of the scan (at most ``max_size`` voxels a side) for the slice.

    Returns the voxels (z, y, x) and the 4x4 matrix from (x, y, z) voxel index to LPS mm.
    CT uses a cardiac-CTA window (level 150 HU, width 700); other modalities the 1st..99.5th
    percentile.
    """
    import SimpleITK as sitk

    size = image.GetSize()
    factor = [max(1, int(np.ceil(s / max_size))) for s in size]
    small = sitk.BinShrink(image, factor) if any(f > 1 for f in factor) else image
    arr = sitk.GetArrayViewFromImage(small).astype(np.float32)
    if modality.upper() == "CT":
        lo, hi = 150.0 - 350.0, 150.0 + 350.0
    else:
        lo, hi = (float(x) for x in np.percentile(arr, [1.0, 99.5]))
    grey = np.clip((arr - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8)
    d = np.asarray(small.GetDirection(), dtype=np.float64).reshape(3, 3)
    m = np.eye(4)
    m[:3, :3] = d @ np.diag(small.GetSpacing())
    m[:3, 3] = small.GetOrigin()
    return grey, m


# -- the app -------------------------------------------------------------------------------------
class _PlanWriter:
    """Writes plan changes in a background thread so the frame loop never waits for the disk.

    :attr:`busy` is true from :meth:`put` until that write is on disk, so the frame loop does
    not reload (and briefly lose) a change it has made but not yet saved.
    """

    def __init__(self, case: Case) -> None:
        self.case = case
        self.q: queue.Queue[list[PlanChange] | None] = queue.Queue()
        self.writes = 0
        self.error: str | None = None
        self._pending = 0
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="cardioplan-plan-writer",
                                       daemon=True)
        self.thread.start()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._pending > 0

    def put(self, changes: list[PlanChange]) -> None:
        """Queue changes to be saved together in one plan revision."""
        with self._lock:
            self._pending += 1
        self.q.put(changes)

    def _run(self) -> None:
        while True:
            changes = self.q.get()
            if changes is None:
                return
            try:
                edit_plan(self.case, lambda p, cs=changes: [c.apply(p) for c in cs],
                          author="vr")
                self.writes += 1
            except Exception as exc:  # noqa: BLE001 - reported on the frame loop and at exit
                self.error = str(exc)
                log.error("the plan change was not saved: %s", exc)
            finally:
                with self._lock:
                    self._pending -= 1

    def close(self) -> None:
        """Write what is queued, then stop."""
        self.q.put(None)
        self.thread.join(timeout=30)


class VrApp:
    """One headset session on a case.

    Parameters
    ----------
    case : path-like or Case
    options : VrOptions
    on_frame : callable, optional
        ``on_frame(app, index)`` after each submitted frame (tests drive input and read back
        images through it).
    """

    def __init__(self, case: Any, options: VrOptions | None = None, *,
                 on_frame: Callable[[VrApp, int], None] | None = None) -> None:
        self.case = case if isinstance(case, Case) else Case.open(case)
        self.options = options or VrOptions()
        if self.options.tool not in TOOLS:
            raise ValueError(f"unknown tool {self.options.tool!r}; choose one of {TOOLS}")
        self.on_frame = on_frame
        self.stats = VrStats()
        self.capture = False
        """Set to True to read back both eyes of the next frame into :attr:`captured`: per eye
        the pixels (top row first), the model matrix, the located eye pose and field of view
        (``XrView``), and the projection and view matrices drawn with."""
        self.captured: list[dict[str, Any]] = []
        self.interaction: Interaction | None = None
        self.last_input: FrameInput | None = None
        """The controllers and head as read in the last frame (stage space)."""
        self.session: Any = None
        self.renderer: Any = None
        self._colors: dict[str, tuple[int, int, int]] = {}
        self._mesh_data: dict[str, tuple[NDArray[np.float32], NDArray[np.uint32]]] = {}
        self._mirror_due = 0.0
        self._picker_generation = 0
        self._mirror_pixels: NDArray[np.uint8] | None = None
        self._menu_cache: tuple[Any, NDArray[np.uint8]] | None = None
        self._last_saved_pose: Any = None

    # -- set-up ---------------------------------------------------------------------------------
    def _load_case(self) -> Any:
        from vr.live import load_meshes

        plan = load_plan(self.case)  # refuses (with a backup) a corrupt or newer plan
        try:
            up = load_meshes(self.case)
        except CaseError as exc:
            raise CaseError(f"{exc}. The headset shows the case's meshes") from None
        self._mesh_data = up.meshes
        self._colors = {n: (LABELS[n].color if n in LABELS else DEFAULT_COLOR)
                        for n in up.meshes}
        self._colors.update(up.colors)
        return plan

    def _bounds(self) -> tuple[NDArray[np.float64], float]:
        pts = [v[:, :3] for v, _ in self._mesh_data.values() if len(v)]
        allp = np.vstack(pts).astype(np.float64)
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        return (lo + hi) / 2, float(np.linalg.norm(hi - lo))

    def _update_label_points(self) -> None:
        """Name labels at each structure's point farthest from the heart's centre, so the
        names spread around the model instead of piling up in the middle."""
        assert self.interaction is not None
        pivot = self.interaction.pivot_mm
        points = {}
        for n, (v, _f) in self._mesh_data.items():
            if len(v):
                pts = v[:, :3].astype(np.float64)
                points[n] = pts[int(np.argmax(np.einsum("ij,ij->i", pts - pivot, pts - pivot)))]
        self.interaction.label_points = points

    def _build_picker(self) -> None:
        """Build the ray picker off the frame loop (~0.8 s for 1M triangles); until it is
        ready the previous one (or none) answers."""
        meshes = {n: (v[:, :3], f) for n, (v, f) in self._mesh_data.items()}
        self._picker_generation += 1
        generation = self._picker_generation

        def build() -> None:
            picker = MeshPicker(meshes)
            # a build for meshes that were replaced meanwhile must not win over a newer one
            if self.interaction is not None and generation == self._picker_generation:
                self.interaction.picker = picker
            if self.stats.pick_index_frame is None:
                self.stats.pick_index_frame = self.stats.frames

        threading.Thread(target=build, name="cardioplan-picker", daemon=True).start()

    # -- run -------------------------------------------------------------------------------------
    def run(self) -> VrStats:
        """Run the session until ``frames`` frames, the user, or the runtime ends it.

        Raises
        ------
        RuntimeMissingError
            No runtime, headset or usable graphics binding.
        CaseError, SchemaVersionError
            The case has no meshes, or its plan cannot be used (a backup was kept).
        """
        from vr.actions import Controls
        from vr.graphics import default_graphics, prepare_platform
        from vr.session import XrSession

        t_start = time.perf_counter()
        opts = self.options
        graphics = opts.graphics or default_graphics()
        prepare_platform(graphics)
        plan = self._load_case()
        pivot, extent = self._bounds()
        self.interaction = it = Interaction(plan, structures=list(self._mesh_data),
                                            pivot_mm=pivot, extent_mm=extent)
        self._build_picker()
        self._update_label_points()
        it.state.tool = opts.tool
        self._last_saved_pose = plan.model_pose
        writer = _PlanWriter(self.case)
        st = self.stats
        st.structures = list(self._mesh_data)
        try:
            with XrSession(graphics=graphics, reference=opts.reference, depth=opts.depth,
                           mirror=opts.mirror == "window",
                           input_setup=lambda inst, sess: Controls(inst, sess)) as xs:
                self.session = xs
                st.runtime, st.system, st.graphics = xs.runtime_name, xs.system_name, graphics
                st.reference_space = xs.reference_space
                st.color_format = hex(xs.color_format)
                st.depth_format = hex(xs.depth_format) if xs.depth_format else None
                st.eye_size = (xs.swapchains[0].width, xs.swapchains[0].height)
                st.gl_renderer = xs.gl.gl_info()["renderer"]
                self._loop(xs, writer, t_start)
        finally:
            self._shutdown(writer)
        return st

    def _setup_gl(self, xs: Any) -> None:
        import moderngl

        from vr.render import SOFTWARE_RENDERERS, Renderer

        xs.gl.make_current()
        # moderngl attaches to the current context through its default loader (no GLX/EGL
        # probing); the context object is released at the end of the session
        moderngl.init_context()
        ctx = moderngl.get_context()
        msaa = self.options.msaa
        if msaa is None:  # 4x on a GPU; software rasterisers would pay 4x the fragment work
            soft = any(n in ctx.info.get("GL_RENDERER", "") for n in SOFTWARE_RENDERERS)
            msaa = 0 if soft else 4
        self.renderer = Renderer(ctx, srgb=xs.srgb, near=xs.near, far=xs.far, msaa=msaa)
        if xs.depth_format is not None:
            self.renderer.depth_format = xs.depth_format
        self.stats.msaa = msaa
        self.renderer.set_meshes(self._mesh_data)
        self.stats.triangles = self.renderer.n_triangles

    def _loop(self, xs: Any, writer: _PlanWriter, t_start: float) -> None:
        import xr

        from vr.live import MeshWatcher

        self._setup_gl(xs)
        it = self.interaction
        assert it is not None
        watcher = MeshWatcher(self.case)
        watcher.set_known(list(self._mesh_data))
        plan_watch = PlanWatcher(self.case)
        plan_watch.reload_if_changed()
        volume_job = self._start_volume_load() if self.options.slice else None
        st = self.stats
        phases: dict[str, list[float]] = {k: [] for k in ("input", "interaction", "scene",
                                                          "draw", "gl_driver")}
        st.phase_ms = phases
        deadline = time.monotonic() + self.options.startup_timeout_s
        waiting_logged = False
        watcher.start()
        try:
            while True:
                try:
                    xs.poll_events()
                    if not xs.lifecycle.running and not waiting_logged and st.frames == 0:
                        log.info("waiting for the runtime to start the session (put the "
                                 "headset on)")
                        waiting_logged = True
                    if xs.lifecycle.should_exit:
                        break
                    if not xs.lifecycle.running:
                        if st.frames == 0 and time.monotonic() > deadline:
                            raise RuntimeMissingError(
                                f"the runtime did not start the session within "
                                f"{self.options.startup_timeout_s:.0f} s (is the headset on "
                                "and the runtime's compositor running?)")
                        time.sleep(0.01)
                        continue
                    self._frame(xs, writer, watcher, plan_watch, volume_job, phases)
                except xr.XrException as exc:
                    xs.lifecycle.on_error(str(exc) or type(exc).__name__)
                    st.error = xs.lifecycle.exit_reason
                    log.error("%s; shutting down (the plan is saved)", st.error)
                    break
                except KeyboardInterrupt:
                    if xs.lifecycle.exit_requested or not xs.lifecycle.running:
                        raise  # a second Ctrl-C, or nothing to end gracefully
                    log.warning("ending the session (Ctrl-C again to stop at once)")
                    xs.request_exit()
                if st.frames == 1:
                    st.startup_s = time.perf_counter() - t_start
                if self.on_frame is not None:
                    self.on_frame(self, st.frames)
                if self.options.frames is not None and st.frames >= self.options.frames and \
                        not xs.lifecycle.exit_requested:
                    xs.request_exit()
        finally:
            watcher.stop()
            st.states = list(xs.lifecycle.history)
            st.exit_reason = xs.lifecycle.exit_reason
            if xs.input is not None:
                st.controllers = dict(xs.input.current_profiles)
            self._save_pose(writer)
            self._write_mirror()
            if self.renderer is not None:
                xs.gl.make_current()
                ctx = self.renderer.ctx
                self.renderer.release()
                ctx.release()
                self.renderer = None

    def _start_volume_load(self) -> dict[str, Any] | None:
        if not self.case.has_image:
            return None
        job: dict[str, Any] = {}
        modality = str(self.case.image_info.get("modality", "CT"))

        def load() -> None:
            try:
                job["result"] = volume_texture(self.case.read_image(), modality=modality)
            except Exception as exc:  # noqa: BLE001 - the slice is optional
                log.warning("the scan could not be loaded for the slice plane: %s", exc)
                job["result"] = None

        threading.Thread(target=load, name="cardioplan-volume", daemon=True).start()
        return job

    def _frame(self, xs: Any, writer: _PlanWriter, watcher: Any, plan_watch: PlanWatcher,
               volume_job: dict[str, Any] | None, phases: dict[str, list[float]]) -> None:
        it = self.interaction
        assert it is not None and self.renderer is not None
        fs = xs.wait_frame()
        t0 = time.perf_counter()
        runtime_s = 0.0
        xs.begin_frame()
        valid, views = xs.locate_views(fs.predicted_display_time)
        eyes = [Pose.from_xr(v.pose) for v in views]
        head = Pose((eyes[0].position + eyes[1].position) / 2, eyes[0].orientation) \
            if valid else None
        if xs.lifecycle.focused and xs.input is not None:
            frame = xs.input.read(xs.space, fs.predicted_display_time, head)
        else:
            frame = FrameInput(hands={h: HandInput() for h in ("left", "right")}, head=head)
        self.last_input = frame
        t1 = time.perf_counter()
        first = it.plan.model_pose is None
        changes, haptics = it.update(frame)
        if first:  # placed in front of the user: not a change worth saving by itself
            self._last_saved_pose = it.plan.model_pose
        if changes:
            writer.put(changes)
            if any(c.kind == "model_pose" for c in changes):
                self._last_saved_pose = it.plan.model_pose
        if xs.input is not None and xs.lifecycle.focused:
            for h in haptics:
                xs.input.pulse(h)
        t2 = time.perf_counter()
        self._live_updates(watcher, plan_watch, writer, volume_job)
        menu = self._menu_image(frame)
        scene = scene_frame(it, frame, colors=self._colors, menu=menu,
                            head=head.position if head else None)
        self.renderer.driver_s = 0.0
        self.renderer.prepare(scene)
        t3 = time.perf_counter()
        submitted = None
        if fs.should_render and valid:
            capture = self.capture
            if capture:
                self.captured = []
            for i, view in enumerate(views):
                r0 = time.perf_counter()
                color, depth = xs.acquire(i)
                r1 = time.perf_counter()
                runtime_s += r1 - r0
                sc = xs.swapchains[i]
                fbo = self.renderer.framebuffer(color, depth, (sc.width, sc.height))
                f = view.fov
                proj = xrmath.projection_from_fov(f.angle_left, f.angle_right, f.angle_up,
                                                  f.angle_down, near=xs.near, far=xs.far)
                eye = eyes[i]
                vm = xrmath.view_matrix(eye.position, eye.orientation)
                self.renderer.draw(fbo, proj, vm, eye.position, scene)
                if capture:
                    self.captured.append({
                        "pixels": self.renderer.read_pixels(fbo), "model": scene.model,
                        "eye": eye, "proj": proj, "view": vm,
                        "fov": (f.angle_left, f.angle_right, f.angle_up, f.angle_down),
                        "near": xs.near, "far": xs.far})
                if i == 0 and self.options.mirror:
                    self._mirror(fbo, (sc.width, sc.height))
                r2 = time.perf_counter()
                xs.release(i)
                runtime_s += time.perf_counter() - r2
            if capture:
                self.capture = False
            submitted = views
        t4 = time.perf_counter()
        xs.end_frame(fs, submitted)
        if self.options.finish_gl:
            self.renderer.ctx.finish()
        self.stats.frames += 1
        phases["input"].append((t1 - t0) * 1e3)
        phases["interaction"].append((t2 - t1) * 1e3)
        phases["scene"].append((t3 - t2) * 1e3)
        driver_s = self.renderer.driver_s
        phases["draw"].append((t4 - t3 - runtime_s - driver_s) * 1e3)
        phases["gl_driver"].append(driver_s * 1e3)
        self.stats.cpu_ms.append((t4 - t0 - runtime_s - driver_s) * 1e3)
        self.stats.frame_ms.append((t4 - t0 - runtime_s) * 1e3)

    def _live_updates(self, watcher: Any, plan_watch: PlanWatcher, writer: _PlanWriter,
                      volume_job: dict[str, Any] | None) -> None:
        it = self.interaction
        assert it is not None and self.renderer is not None
        up = watcher.take()
        if up is not None and (up.meshes or up.removed):
            self.renderer.remove_meshes(up.removed)
            self.renderer.set_meshes(up.meshes)
            for n in up.removed:
                self._mesh_data.pop(n, None)
            self._mesh_data.update(up.meshes)
            self._colors.update(up.colors)
            for n in up.meshes:
                self._colors.setdefault(n, LABELS[n].color if n in LABELS else DEFAULT_COLOR)
            it.set_structures(list(self._mesh_data))
            self._build_picker()
            self._update_label_points()
            watcher.set_known(list(self._mesh_data))
            self.stats.mesh_reloads += 1
            self.stats.triangles = self.renderer.n_triangles
        if not writer.busy:
            try:
                newer = plan_watch.reload_if_changed()
            except CaseError as exc:
                log.warning("the plan on disk cannot be read (%s); keeping the last good one",
                            exc)
                newer = None
            if newer is not None:
                it.replace_plan(newer)
        if volume_job is not None and "result" in volume_job:
            result = volume_job.pop("result")
            if result is not None:
                self.renderer.set_volume(*result)

    def _menu_image(self, frame: FrameInput) -> MenuImage | None:
        from vr.overlay import menu_image, menu_key

        it = self.interaction
        assert it is not None
        left = frame.hand("left").aim_pose
        if not it.state.menu_open or left is None:
            return None
        buttons = it.menu_buttons()
        key = menu_key(buttons, it.state.menu_hover, it.state.status)
        if self._menu_cache is None or self._menu_cache[0] != key:
            self._menu_cache = (key, menu_image(buttons, hover=it.state.menu_hover,
                                                status=it.state.status))
        return MenuImage(menu_pose(left), MENU_SIZE_M, self._menu_cache[1], key)

    # -- mirror ----------------------------------------------------------------------------------
    def _mirror(self, fbo: Any, size: tuple[int, int]) -> None:
        if self.options.mirror == "window":
            self._mirror_window(fbo, size)
            return
        now = time.monotonic()
        if now >= self._mirror_due:
            self._mirror_due = now + 1.0
            assert self.renderer is not None
            self._mirror_pixels = self.renderer.read_pixels(fbo)
            self._write_mirror()

    def _mirror_window(self, fbo: Any, size: tuple[int, int]) -> None:
        import glfw
        from OpenGL import GL

        xs = self.session
        window = getattr(xs.gl, "window", None)
        if window is None:
            return
        ww, wh = glfw.get_framebuffer_size(window)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, fbo.glo)
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, 0)
        GL.glBlitFramebuffer(0, 0, size[0], size[1], 0, 0, ww, wh, GL.GL_COLOR_BUFFER_BIT,
                             GL.GL_LINEAR)
        glfw.swap_buffers(window)
        glfw.poll_events()
        if glfw.window_should_close(window):
            xs.request_exit()

    def _write_mirror(self) -> None:
        from PIL import Image

        from cardioplan.fileio import atomic_path

        pixels = self._mirror_pixels
        path = self.options.mirror
        if pixels is None or not path or path == "window":
            return
        with atomic_path(Path(path)) as tmp:
            Image.fromarray(pixels[:, :, :3]).save(tmp, format="PNG")

    # -- shutdown --------------------------------------------------------------------------------
    def _save_pose(self, writer: _PlanWriter) -> None:
        """Queue the model pose when the user moved the model since it was last saved."""
        it = self.interaction
        if it is None or it.plan.model_pose is None:
            return
        if it.plan.model_pose != self._last_saved_pose:
            writer.put([PlanChange("model_pose", it.plan.model_pose.to_json())])
            self._last_saved_pose = it.plan.model_pose

    def _shutdown(self, writer: _PlanWriter) -> None:
        writer.close()
        self.stats.plan_writes = writer.writes
        if writer.error:
            self.stats.error = self.stats.error or f"a plan change was not saved: {writer.error}"


def run_vr(case: Any, options: VrOptions | None = None) -> VrStats:
    """Run a headset session on ``case`` (see :class:`VrApp`)."""
    return VrApp(case, options).run()
