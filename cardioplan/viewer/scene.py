"""The 3D scene of a case, drawn with PyVista: meshes, legend, cut planes, annotations, slice.

One :class:`Scene` serves both the interactive window (``cardioplan view``) and the off-screen
renderer (``cardioplan snapshot``/``report``), so what a script renders is what a reviewer saw.
It draws a :class:`~cardioplan.viewer.state.SceneState` (pure data) and the plan's landmarks,
measurements and seeds.

- Meshes use the label-table colours (or the plan's override) and keep the normals the mesher
  stored, so loading a million-triangle case does not recompute them.
- Cut planes are GPU clipping planes on each structure's mapper: moving a plane costs nothing,
  and point picking respects them.  A plane keeps the side its normal points to.
- Translucent structures use VTK's default order-independent transparency: depth peeling
  (``enable_depth_peeling``) drops translucent actors on Mesa's llvmpipe with multisampling.
- The image slice is a grid of pixel cells at its physical (LPS mm) place, coloured with the
  grey window and the label outlines of :mod:`cardioplan.viewer.slices`, drawn unlit so its
  pixels keep their exact colours.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk
from vtkmodules.vtkRenderingCore import vtkMapper, vtkProperty

from cardioplan.case import Case
from cardioplan.errors import InputError
from cardioplan.labels import LABELS
from cardioplan.plan import Camera, CutPlane, Plan
from cardioplan.viewer.camera import PRESETS, bounds_center_radius, preset_camera
from cardioplan.viewer.inset import SliceInset
from cardioplan.viewer.lod import decimate_to_budget
from cardioplan.viewer.slices import (
    SliceSpec,
    default_window,
    slice_corners,
    slice_rgb,
    to_lps,
)
from cardioplan.viewer.state import SceneState, display_name

__all__ = ["SceneData", "Scene", "load_scene_data", "load_slice_images", "camera_for",
           "ensure_offscreen_backend", "BACKGROUND", "LANDMARK_COLOR", "MEASURE_COLOR"]

log = logging.getLogger(__name__)

BACKGROUND = (0.10, 0.11, 0.13)
"""Dark grey, as clinical viewers use; no label colour is near it."""
LANDMARK_COLOR = (1.0, 0.92, 0.2)
MEASURE_COLOR = (1.0, 1.0, 1.0)
DEPTH_PRIORITY = {"myocardium": 3, "blood_pool": 3, "heart": 6}
"""Polygon offset (slope factor and units) pushing enclosing structures behind the structures
they share a boundary with.

The mesher gives neighbours *one* shared set of triangles (left ventricle | myocardium), so the
two surfaces coincide exactly there and would z-fight (speckles) when a cut opens the heart;
with these offsets the chamber or vessel wins and the wall never shows through it."""
LOD_TRIANGLES = 200_000
"""Above this many triangles, the window draws decimated stand-ins while the camera moves..."""
LOD_BUDGET = 80_000
"""... with this many triangles in all."""
BACKFACE_SHADE = 0.5
"""Inner surfaces (seen through a cut) are drawn at this fraction of the colour, so a cut is
obvious at a glance; the meshes' normals point outwards."""
SLICE_NAME = "slice"


def ensure_offscreen_backend() -> None:
    """Use EGL for off-screen rendering when there is no X display (set before VTK loads)."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


@dataclass
class SceneData:
    """What the scene draws: one surface per structure, and optionally the scan and labels.

    ``image`` and ``labels`` are LPS-oriented (:func:`~cardioplan.viewer.slices.to_lps`).
    """

    meshes: dict[str, Any]
    image: sitk.Image | None = None
    labels: sitk.Image | None = None
    modality: str | None = None

    @property
    def structures(self) -> list[str]:
        """Structure names in label-table order (others after them, sorted)."""
        known = [n for n in LABELS.names if n in self.meshes]
        return known + sorted(n for n in self.meshes if n not in LABELS)

    def bounds(self, structures: Sequence[str] | None = None) -> tuple[float, ...]:
        """Union of the bounds of ``structures`` (all meshes by default; the image if none)."""
        names = [n for n in (structures if structures is not None else self.meshes)
                 if n in self.meshes and self.meshes[n].n_points]
        if names:
            b = np.array([self.meshes[n].bounds for n in names], float)
            return (b[:, 0].min(), b[:, 1].max(), b[:, 2].min(), b[:, 3].max(),
                    b[:, 4].min(), b[:, 5].max())
        if self.image is not None:
            size = self.image.GetSize()
            corners = np.array([self.image.TransformIndexToPhysicalPoint((i, j, k))
                                for i in (0, size[0] - 1) for j in (0, size[1] - 1)
                                for k in (0, size[2] - 1)])
            lo, hi = corners.min(0), corners.max(0)
            return (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
        return (-50.0, 50.0, -50.0, 50.0, -50.0, 50.0)


def load_scene_data(case: Case, *, structures: Sequence[str] | None = None,
                    with_image: bool = False) -> SceneData:
    """Read a case's meshes (and, with ``with_image``, its scan and labels) for the scene.

    Raises
    ------
    CaseError
        The case has no meshes yet (the message says to run ``cardioplan mesh CASE``).
    """
    from cardioplan.mesh import read_case_meshes

    meshes = read_case_meshes(case, structures=list(structures) if structures else None)
    data = SceneData(meshes=meshes, modality=case.image_info.get("modality"))
    if with_image:
        data.image, data.labels = load_slice_images(case)
    return data


def load_slice_images(case: Case) -> tuple[sitk.Image | None, sitk.Image | None]:
    """The case's scan and label map, LPS-oriented, or ``(None, None)`` without a scan."""
    if not case.has_image:
        return None, None
    image = to_lps(case.read_image())
    labels = to_lps(case.read_labels()) if case.has_labels else None
    return image, labels


def camera_for(view: str, plan: Plan, bounds: Sequence[float]) -> Camera:
    """The camera of a saved view of ``plan`` or of a preset framing ``bounds``.

    Raises
    ------
    InputError
        ``view`` is neither a saved view with a camera nor a preset.
    """
    saved = plan.view(view)
    if saved is not None:
        if saved.camera is None:
            raise InputError(f"view {view!r} is a VR model pose without a desktop camera; "
                             f"use a preset ({', '.join(PRESETS)})")
        return saved.camera
    if view not in PRESETS:
        names = [v.name for v in plan.views if v.camera is not None]
        raise InputError(f"unknown view {view!r}; use a preset ({', '.join(PRESETS)})"
                         + (f" or a saved view ({', '.join(names)})" if names else ""))
    return preset_camera(view, bounds)


def _vtk_plane(plane: CutPlane) -> Any:
    from vtkmodules.vtkCommonDataModel import vtkPlane

    p = vtkPlane()
    p.SetOrigin(*plane.origin)
    p.SetNormal(*plane.normal)
    return p


def _style_actor(actor: Any, style: Any, planes: Sequence[CutPlane]) -> None:
    """Colour, opacity, darker back faces and clipping planes of one structure's actor."""
    prop = actor.GetProperty()
    prop.SetColor(*(c / 255.0 for c in style.color))
    prop.SetOpacity(style.opacity)
    back = actor.GetBackfaceProperty() or vtkProperty()
    back.DeepCopy(prop)
    back.SetColor(*(BACKFACE_SHADE * c / 255.0 for c in style.color))
    actor.SetBackfaceProperty(back)
    mapper = actor.GetMapper()
    mapper.RemoveAllClippingPlanes()
    for plane in planes:
        mapper.AddClippingPlane(_vtk_plane(plane))


def _with_normals(mesh: Any) -> Any:
    if mesh.n_points and mesh.point_data.GetNormals() is None and "Normals" not in \
            mesh.point_data:
        return mesh.compute_normals(cell_normals=False, split_vertices=False,
                                    auto_orient_normals=False)
    return mesh


def slice_grid(image: sitk.Image, labels: sitk.Image | None, spec: SliceSpec, *,
               window: tuple[float, float]) -> Any:
    """The slice as a ``pyvista.StructuredGrid`` of pixel cells with an ``rgb`` cell array."""
    import pyvista as pv

    index = spec.resolve(image)
    rgb = slice_rgb(image, labels, spec.orientation, index, window=window)
    rows, cols = rgb.shape[:2]
    tl, tr, bl = slice_corners(image, spec.orientation, index)
    dx = (tr - tl) / max(cols - 1, 1)
    dy = (bl - tl) / max(rows - 1, 1)
    r, c = np.meshgrid(np.arange(rows + 1) - 0.5, np.arange(cols + 1) - 0.5, indexing="ij")
    pts = tl[None, None, :] + c[..., None] * dx[None, None, :] + r[..., None] * dy[None, None, :]
    grid = pv.StructuredGrid()
    grid.points = pts.reshape(-1, 3)
    grid.dimensions = (cols + 1, rows + 1, 1)
    grid.cell_data["rgb"] = rgb.reshape(-1, 3)
    return grid


class Scene:
    """The rendered scene of one case on a ``pyvista.Plotter``.

    Parameters
    ----------
    plotter : pyvista.Plotter
        An on- or off-screen plotter.
    data : SceneData
        Meshes (and optionally the slice images).

    Examples
    --------
    >>> scene = Scene(pv.Plotter(off_screen=True), data)        # doctest: +SKIP
    >>> scene.apply(scene_state(plan, data.structures), plan)   # doctest: +SKIP
    >>> scene.plotter.screenshot("front.png")                   # doctest: +SKIP
    """

    def __init__(self, plotter: Any, data: SceneData) -> None:
        self.plotter = plotter
        self.data = data
        self.actors: dict[str, Any] = {}
        self.proxies: dict[str, Any] = {}
        self.lod = False
        self.state: SceneState | None = None
        self._annotation_names: list[str] = []
        self._legend_actors: list[Any] = []
        self._title_actor: Any = None
        self._slice_key: tuple[Any, ...] | None = None
        self._slice_grid: Any = None
        self._inset: SliceInset | None = None
        self._inset_key: tuple[Any, ...] | None = None
        self._window = (default_window(data.image, data.modality)
                        if data.image is not None else (0.0, 1.0))
        plotter.set_background(BACKGROUND)
        vtkMapper.SetResolveCoincidentTopologyToPolygonOffset()  # honour per-mapper offsets
        for name in data.structures:
            mesh = _with_normals(data.meshes[name])
            actor = plotter.add_mesh(mesh, color=(0.8, 0.8, 0.8), smooth_shading=False,
                                     name=f"mesh:{name}", reset_camera=False, pickable=True,
                                     specular=0.25, specular_power=20.0, render=False)
            push = float(DEPTH_PRIORITY.get(name, 0))  # units alone leave MSAA speckles
            actor.GetMapper().SetRelativeCoincidentTopologyPolygonOffsetParameters(push, push)
            self.actors[name] = actor

    # -- state ------------------------------------------------------------------------------
    def structure_of_actor(self, actor: Any) -> str | None:
        """The structure drawn by ``actor`` (None for the slice or annotations)."""
        return next((n for n, a in self.actors.items() if a is actor), None)

    def build_proxies(self, *, max_triangles: int = LOD_TRIANGLES,
                      budget: int = LOD_BUDGET) -> bool:
        """Make decimated stand-ins drawn while the camera moves (level of detail).

        Only when the meshes have more than ``max_triangles`` together; the stand-ins have
        about ``budget`` triangles in all.  Returns whether stand-ins exist.  They are not
        pickable and follow every style of the full meshes.
        """
        total = sum(m.n_cells for m in self.data.meshes.values())
        if self.proxies or total <= max_triangles:
            return bool(self.proxies)
        small = decimate_to_budget(self.data.meshes, budget=min(budget, max_triangles))
        for name in self.data.structures:
            proxy = self.plotter.add_mesh(small[name], color=(0.8, 0.8, 0.8),
                                          smooth_shading=False, name=f"proxy:{name}",
                                          reset_camera=False, pickable=False, specular=0.25,
                                          specular_power=20.0, render=False)
            push = float(DEPTH_PRIORITY.get(name, 0))
            proxy.GetMapper().SetRelativeCoincidentTopologyPolygonOffsetParameters(push, push)
            proxy.SetVisibility(False)
            self.proxies[name] = proxy
        log.info("level of detail: %d -> %d triangles while the camera moves", total,
                 sum(m.n_cells for m in small.values()))
        return True

    def set_lod(self, on: bool) -> None:
        """Draw the decimated stand-ins (camera moving) or the full meshes."""
        self.lod = bool(on and self.proxies)
        if self.state is None:
            return
        for name, actor in self.actors.items():
            style = self.state.styles.get(name)
            visible = bool(style and style.visible)
            proxy = self.proxies.get(name)
            actor.SetVisibility(visible and not (proxy is not None and self.lod))
            if proxy is not None:
                proxy.SetVisibility(visible and self.lod)

    def apply(self, state: SceneState, plan: Plan, *,
              markers: dict[str, str] | None = None) -> None:
        """Draw ``state`` (visibility, opacity, colours, cut planes, slice) and ``plan``'s
        annotations.

        ``markers`` (interactive window) lists every structure in the legend, each prefixed
        with its marker (its number key, ``>`` when selected), hidden ones greyed out;
        without it the legend lists the visible structures only.
        """
        for name, actor in self.actors.items():
            style = state.styles.get(name)
            proxy = self.proxies.get(name)
            actor.SetVisibility(bool(style and style.visible and not (proxy and self.lod)))
            if proxy is not None:
                proxy.SetVisibility(bool(style and style.visible and self.lod))
            if style is None:
                continue
            for a in (actor, proxy) if proxy is not None else (actor,):
                _style_actor(a, style, state.planes_for(name))
        self.state = state
        self._draw_legend(state, markers)
        self._draw_title(state.title)
        self.set_slice(state.slice)
        self._draw_inset(state)
        self.draw_annotations(plan if state.show_annotations else Plan())

    def _draw_legend(self, state: SceneState, markers: dict[str, str] | None) -> None:
        """One coloured text line per structure in the upper right corner.

        Text actors in normalised viewport coordinates keep their place and size when the
        window is resized (VTK's legend box rescales its entries unpredictably)."""
        for actor in self._legend_actors:
            self.plotter.renderer.RemoveViewProp(actor)
        self._legend_actors = []
        if not state.show_legend:
            return
        names = list(state.order or state.styles) if markers else state.visible_structures()
        height = max(self.plotter.window_size[1], 200)
        font = int(min(max(height / 48, 10), 22))
        step = 1.35 * font / height
        for i, name in enumerate(names):
            style = state.styles[name]
            color = tuple(c / 255.0 for c in style.color) if style.visible else (0.45,) * 3
            prefix = f"{markers.get(name, ' ')} " if markers else ""
            self._legend_actors.append(self.text_2d(
                f"{prefix}{display_name(name)}", (0.985, 0.975 - i * step),
                color, font, right=True))

    def text_2d(self, text: str, where: tuple[float, float], color: tuple[float, ...],
                font: int, *, right: bool = False, top: bool = True,
                mono: bool = False) -> Any:
        """Add a text overlay at ``where`` (normalised viewport coordinates); return it."""
        from vtkmodules.vtkRenderingCore import vtkTextActor

        actor = vtkTextActor()
        actor.SetInput(text)
        prop = actor.GetTextProperty()
        prop.SetFontSize(font)
        prop.SetColor(*color[:3])
        if right:
            prop.SetJustificationToRight()
        if mono:
            prop.SetFontFamilyToCourier()
        if top:
            prop.SetVerticalJustificationToTop()
        prop.SetBackgroundColor(*BACKGROUND)
        prop.SetBackgroundOpacity(0.55)
        coord = actor.GetPositionCoordinate()
        coord.SetCoordinateSystemToNormalizedViewport()
        coord.SetValue(*where)
        actor.SetPickable(False)
        self.plotter.renderer.AddViewProp(actor)
        return actor

    def _draw_title(self, title: str) -> None:
        if self._title_actor is not None:
            self.plotter.renderer.RemoveViewProp(self._title_actor)
            self._title_actor = None
        if title:
            font = int(min(max(self.plotter.window_size[1] / 40, 11), 26))
            self._title_actor = self.text_2d(title, (0.015, 0.975), (1.0, 1.0, 1.0), font)

    # -- slice ------------------------------------------------------------------------------
    def set_image(self, image: sitk.Image | None, labels: sitk.Image | None,
                  modality: str | None) -> None:
        """Use a (newly loaded) LPS-oriented scan and label map for the slice."""
        self.data.image, self.data.labels, self.data.modality = image, labels, modality
        if image is not None:
            self._window = default_window(image, modality)
        self._slice_key = None

    def label_at(self, point: Sequence[float]) -> str | None:
        """The structure of the label map at a physical point (None: background/outside)."""
        labels = self.data.labels
        if labels is None:
            return None
        idx = labels.TransformPhysicalPointToIndex([float(c) for c in point])
        if not all(0 <= i < n for i, n in zip(idx, labels.GetSize(), strict=True)):
            return None
        value = int(labels[idx])
        return LABELS.by_value(value).name if value and value in {lab.value for lab in LABELS} \
            else None

    def set_slice(self, spec: SliceSpec | None) -> None:
        """Show the image slice ``spec`` with label outlines (None hides it)."""
        if spec is None or self.data.image is None:
            if spec is not None:
                log.warning("the case has no image; the slice is not shown")
            self.plotter.remove_actor(SLICE_NAME, render=False)
            self._slice_key = None
            return
        key = (spec.orientation, spec.resolve(self.data.image), self._window)
        if key == self._slice_key:
            return
        grid = slice_grid(self.data.image, self.data.labels, spec, window=self._window)
        self._slice_grid = grid
        self.plotter.add_mesh(grid, scalars="rgb", rgb=True, lighting=False, name=SLICE_NAME,
                              render=False,
                              reset_camera=False, pickable=True, show_scalar_bar=False)
        self._slice_key = key

    def _draw_inset(self, state: SceneState) -> None:
        """The flat slice with the meshes' cut lines in the lower right corner (or nothing)."""
        wanted = state.slice_inset and self._slice_key is not None
        if not wanted:
            if self._inset is not None and self._inset.shown:
                self._inset.clear()
            self._inset_key = None
            return
        visible = state.visible_structures()
        key = (self._slice_key, tuple((n, state.styles[n].color) for n in visible),
               tuple(self.plotter.window_size))
        if key == self._inset_key:
            return
        if self._inset is None:
            self._inset = SliceInset(self.plotter)
        spec = SliceSpec(self._slice_key[0], self._slice_key[1])
        n = self.data.image.GetSize()[{"axial": 2, "coronal": 1, "sagittal": 0}[spec.orientation]]
        self._inset.update(self._slice_grid, self.data.image, spec,
                           {name: (self.data.meshes[name],
                                   tuple(c / 255.0 for c in state.styles[name].color))
                            for name in visible},
                           caption=f"{spec.orientation} {spec.index}/{n - 1}: outlines = "
                                   "labels, lines = meshes",
                           focus=self.data.bounds(visible) if visible else None)
        self._inset_key = key

    # -- annotations ------------------------------------------------------------------------
    def marker_radius(self) -> float:
        """Radius of landmark and seed markers: 0.8 % of the scene's diagonal."""
        _, radius = bounds_center_radius(self.data.bounds())
        return max(0.016 * radius, 0.3)

    def draw_annotations(self, plan: Plan, *, pending: Sequence[Sequence[float]] = ()) -> None:
        """Draw landmarks, measurements, seeds and the points of a measurement in progress."""
        import pyvista as pv

        for name in self._annotation_names:
            self.plotter.remove_actor(name, render=False)
        self._annotation_names = []
        r = self.marker_radius()

        def add(mesh: Any, name: str, **kw: Any) -> None:
            self.plotter.add_mesh(mesh, name=name, reset_camera=False, pickable=False,
                                  render=False, **kw)
            self._annotation_names.append(name)

        def labels(points: list[Sequence[float]], texts: list[str], name: str) -> None:
            self.plotter.add_point_labels(np.asarray(points, float), texts, name=name, render=False,
                                          font_size=14, text_color="white", shape_opacity=0.5,
                                          show_points=False, always_visible=True,
                                          reset_camera=False)
            self._annotation_names.append(name)

        if plan.landmarks:
            pts = np.array([lm.point for lm in plan.landmarks], float)
            add(pv.PolyData(pts).glyph(geom=pv.Sphere(radius=r), scale=False, orient=False),
                "landmarks", color=LANDMARK_COLOR)
            labels(list(pts), [lm.name for lm in plan.landmarks], "landmark-labels")
        for i, seed in enumerate(plan.seeds):
            color = tuple(c / 255.0 for c in LABELS[seed.structure].color)
            add(pv.Cube(center=seed.point, x_length=1.6 * r, y_length=1.6 * r,
                        z_length=1.6 * r), f"seed-{i}", color=color, show_edges=True,
                edge_color="white")
        if plan.measurements:
            polys = [pv.lines_from_points(np.asarray(m.points, float)) for m in plan.measurements]
            add(pv.merge(polys), "measurements", color=MEASURE_COLOR, line_width=3,
                render_lines_as_tubes=True)
            ends = np.concatenate([np.asarray(m.points, float) for m in plan.measurements])
            add(pv.PolyData(ends).glyph(geom=pv.Sphere(radius=0.6 * r), scale=False,
                                        orient=False), "measurement-ends", color=MEASURE_COLOR)
            mids = [np.asarray(m.points, float).mean(0) if m.kind == "distance"
                    else np.asarray(m.points[1], float) for m in plan.measurements]
            labels(mids, [m.label() for m in plan.measurements], "measurement-labels")
        if pending:
            add(pv.PolyData(np.asarray(pending, float)).glyph(geom=pv.Sphere(radius=0.7 * r),
                                                              scale=False, orient=False),
                "pending", color=(0.2, 1.0, 1.0))

    # -- camera -----------------------------------------------------------------------------
    def set_camera(self, camera: Camera) -> None:
        """Place the plotter's camera."""
        cam = self.plotter.camera
        cam.position = camera.position
        cam.focal_point = camera.focal_point
        cam.up = camera.view_up
        cam.view_angle = camera.view_angle
        self.plotter.renderer.ResetCameraClippingRange()

    def current_camera(self) -> Camera:
        """The plotter's camera as a plan :class:`~cardioplan.plan.Camera`."""
        cam = self.plotter.camera
        return Camera(position=tuple(cam.position), focal_point=tuple(cam.focal_point),
                      view_up=tuple(cam.up), view_angle=float(cam.view_angle))

    def show_view(self, view: str, plan: Plan) -> Camera:
        """Move the camera to a preset or saved view framing the visible structures."""
        visible = self.state.visible_structures() if self.state else None
        camera = camera_for(view, plan, self.data.bounds(visible or None))
        self.set_camera(camera)
        return camera
