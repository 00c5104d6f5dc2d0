"""A 2D inset of the current slice: the image with label outlines and the meshes' cut lines.

This is the reviewer's check that *the mesh follows the image*: in the lower right corner of the
window, the slice is shown flat in the radiological convention (axial seen from the feet,
coronal from the front, sagittal from the patient's left) with, on top of the label outlines,
the intersection of each visible mesh with the slice plane in a lighter tint of the structure's
colour -- the
view 3D Slicer gives with model intersections in its slice views.  Where the two disagree, the
surface does not follow the segmentation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from cardioplan.viewer.camera import preset_camera
from cardioplan.viewer.slices import SliceSpec, slice_corners

__all__ = ["SliceInset", "INSET_VIEWPORT", "INSET_PRESET", "slice_plane"]

INSET_VIEWPORT = (0.66, 0.0, 1.0, 0.46)
"""Normalised viewport (xmin, ymin, xmax, ymax) of the inset: the lower right corner."""
INSET_PRESET = {"axial": "inferior", "coronal": "anterior", "sagittal": "left"}
"""The camera preset that shows each orientation radiologically."""
_LINE_LIFT_MM = 0.5  # cut lines are drawn this far in front of the image to avoid z-fighting


def slice_plane(image: sitk.Image, spec: SliceSpec) -> tuple[np.ndarray, np.ndarray]:
    """Origin (a point of the slice) and unit normal of slice ``spec`` (LPS mm)."""
    tl, tr, bl = slice_corners(image, spec.orientation, spec.resolve(image))
    normal = np.cross(tr - tl, bl - tl)
    return tl, normal / np.linalg.norm(normal)


class SliceInset:
    """The inset renderer, added on top of ``plotter``'s main renderer."""

    def __init__(self, plotter: Any) -> None:
        from vtkmodules.vtkRenderingCore import vtkRenderer

        self.plotter = plotter
        self.renderer = vtkRenderer()
        self.renderer.SetViewport(*INSET_VIEWPORT)
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        self.renderer.InteractiveOff()  # mouse events keep going to the 3D view
        # same layer as the 3D view, added after it: it clears its own viewport and draws on top
        plotter.ren_win.AddRenderer(self.renderer)
        self.shown = False

    def clear(self) -> None:
        """Hide the inset."""
        self.renderer.RemoveAllViewProps()
        self.renderer.DrawOff()
        self.shown = False

    def update(self, grid: Any, image: sitk.Image, spec: SliceSpec,
               meshes: Mapping[str, tuple[Any, Sequence[float]]], caption: str,
               focus: Sequence[float] | None = None) -> None:
        """Show ``grid`` (the slice's pixel grid with an ``rgb`` cell array) and the cut lines of
        ``meshes`` (name -> (surface, RGB 0..1)) with ``caption`` in the corner.

        ``focus`` (bounds, LPS mm) is the region to frame, e.g. the visible structures; by
        default the whole slice."""
        from vtkmodules.vtkRenderingCore import vtkActor, vtkDataSetMapper, vtkPolyDataMapper

        self.renderer.RemoveAllViewProps()
        self.renderer.DrawOn()
        mapper = vtkDataSetMapper()
        mapper.SetInputData(grid)
        mapper.SetScalarModeToUseCellFieldData()
        mapper.SelectColorArray("rgb")
        mapper.SetColorModeToDirectScalars()
        mapper.ScalarVisibilityOn()
        image_actor = vtkActor()
        image_actor.SetMapper(mapper)
        image_actor.GetProperty().LightingOff()
        self.renderer.AddActor(image_actor)

        origin, normal = slice_plane(image, spec)
        frame = np.asarray(focus if focus is not None else grid.bounds, float).reshape(3, 2)
        if focus is not None:  # a margin around the structures, within the slice
            pad = 0.12 * (frame[:, 1] - frame[:, 0]).max()
            g = np.asarray(grid.bounds, float).reshape(3, 2)
            frame = np.stack([np.maximum(frame[:, 0] - pad, g[:, 0]),
                              np.minimum(frame[:, 1] + pad, g[:, 1])], axis=1)
        camera = preset_camera(INSET_PRESET[spec.orientation], frame.ravel())
        toward = np.subtract(camera.position, camera.focal_point)
        toward /= np.linalg.norm(toward)
        for surface, color in meshes.values():
            lines = surface.slice(normal=normal, origin=origin)
            if lines.n_points == 0:
                continue
            lines.points = np.asarray(lines.points) + _LINE_LIFT_MM * toward
            line_mapper = vtkPolyDataMapper()
            line_mapper.SetInputData(lines)
            line_mapper.ScalarVisibilityOff()
            actor = vtkActor()
            actor.SetMapper(line_mapper)
            prop = actor.GetProperty()
            prop.SetColor(*(0.4 * c + 0.6 for c in color))  # lighter than the outlines
            prop.SetLineWidth(2.0)
            prop.LightingOff()
            self.renderer.AddActor(actor)

        cam = self.renderer.GetActiveCamera()
        cam.SetFocalPoint(*camera.focal_point)
        cam.SetPosition(*camera.position)
        cam.SetViewUp(*camera.view_up)
        cam.ParallelProjectionOn()
        extent = frame[:, 1] - frame[:, 0]
        right = np.cross(-toward, camera.view_up)
        width = float(np.abs(extent @ np.abs(right)))
        height = float(np.abs(extent @ np.abs(np.asarray(camera.view_up))))
        x0, y0, x1, y1 = INSET_VIEWPORT
        w, h = self.plotter.window_size
        aspect = (x1 - x0) * w / max((y1 - y0) * h, 1)
        cam.SetParallelScale(0.52 * max(height, width / aspect))
        self.renderer.ResetCameraClippingRange()
        self._caption(caption)
        self.shown = True

    def _caption(self, text: str) -> None:
        from vtkmodules.vtkRenderingCore import vtkTextActor

        actor = vtkTextActor()
        actor.SetInput(text)
        prop = actor.GetTextProperty()
        prop.SetFontSize(12)
        prop.SetColor(1.0, 0.86, 0.24)
        prop.SetBackgroundColor(0.0, 0.0, 0.0)
        prop.SetBackgroundOpacity(0.75)
        prop.SetVerticalJustificationToTop()
        coord = actor.GetPositionCoordinate()
        coord.SetCoordinateSystemToNormalizedViewport()
        coord.SetValue(0.02, 0.97)
        self.renderer.AddViewProp(actor)
