"""Off-screen rendering of the viewer's scene (EGL, no display needed): snapshots for scripts,
CI and the HTML report.

Examples
--------
>>> render_snapshot(case, "front.png", view="anterior", size=(800, 600))   # doctest: +SKIP
PosixPath('front.png')
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from cardioplan.case import Case
from cardioplan.errors import InputError
from cardioplan.fileio import atomic_path
from cardioplan.plan import Plan, RehearsalStep, load_plan
from cardioplan.viewer.scene import Scene, SceneData, ensure_offscreen_backend, load_scene_data
from cardioplan.viewer.slices import SliceSpec
from cardioplan.viewer.state import SceneState, scene_state

__all__ = ["OffscreenRenderer", "render_snapshot", "render_snapshots", "write_png", "DEFAULT_SIZE"]

log = logging.getLogger(__name__)

DEFAULT_SIZE = (1024, 768)


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> Path:
    """Write an RGB (or RGBA) array as a PNG, atomically."""
    from PIL import Image

    out = Path(path)
    with atomic_path(out, suffix=".png") as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG")
    return out


class OffscreenRenderer:
    """An off-screen plotter with the scene of ``data``; render many views cheaply.

    Use it as a context manager so the render window is released::

        with OffscreenRenderer(data, size=(800, 600)) as r:
            front = r.render(scene_state(plan, data.structures, view="anterior"), plan)
    """

    def __init__(self, data: SceneData, *, size: tuple[int, int] = DEFAULT_SIZE) -> None:
        ensure_offscreen_backend()
        import pyvista as pv

        self.plotter = pv.Plotter(off_screen=True, window_size=list(size))
        self.scene = Scene(self.plotter, data)

    def render(self, state: SceneState, plan: Plan, *, view: str | None = None,
               transparent: bool = False) -> np.ndarray:
        """RGB image (H x W x 3 uint8) of ``state`` from ``view`` (default: the state's view,
        else anterior); RGBA with a transparent background when ``transparent``."""
        self.scene.apply(state, plan)
        self.scene.show_view(view or state.view or "anterior", plan)
        self.plotter.render()
        img = np.asarray(self.plotter.screenshot(return_img=True,
                                                 transparent_background=transparent))
        return img.copy() if transparent else img[..., :3].copy()

    def close(self) -> None:
        self.plotter.close()

    def __enter__(self) -> OffscreenRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _step(plan: Plan, key: str | None) -> RehearsalStep | None:
    if key is None:
        return None
    for i, step in enumerate(plan.steps, start=1):
        if key in (step.id, step.title, str(i)):
            return step
    raise InputError(f"the plan has no rehearsal step {key!r}; it has "
                     f"{len(plan.steps)} step(s): "
                     + (", ".join(f"{i}. {s.title}" for i, s in enumerate(plan.steps, 1))
                        or "none"))


def render_snapshot(case: Case | str | os.PathLike[str], output: str | os.PathLike[str], *,
                    view: str | None = None, size: tuple[int, int] = DEFAULT_SIZE,
                    structures: Sequence[str] | None = None, clip: bool = False,
                    slice: SliceSpec | None = None, step: str | None = None,
                    annotations: bool = True, inset: bool = False,
                    transparent: bool = False) -> Path:
    """Render a case's scene off-screen to a PNG.

    Parameters
    ----------
    case : Case or path-like
        The case (it needs meshes; the slice also needs the image).
    output : path-like
        PNG to write (atomically).
    view : str, optional
        Camera preset (``anterior``, ``lao``...) or a view saved in the plan; default the
        step's view, else ``anterior``.
    size : (width, height)
        Image size in pixels.
    structures : list of str, optional
        Show only these structures (default: as the plan shows them).
    clip : bool
        Apply the plan's enabled cut planes.
    slice : SliceSpec, optional
        Show an image slice with label outlines in the 3D scene.
    step : str, optional
        A rehearsal step (number from 1, id or title): its structures, cut planes and view.
    annotations : bool
        Draw the plan's landmarks, measurements and seeds.
    inset : bool
        With ``slice``: also show the slice flat in the lower right corner with the label
        outlines and the meshes' cut lines (does the mesh follow the image?).
    transparent : bool
        Write an RGBA PNG whose background is transparent (for figures and slides).

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    CaseError
        The case has no meshes (the message says how to make them) or its plan is unreadable.
    InputError
        Unknown view, structure or step.
    """
    return render_snapshots(case, output, views=[view], size=size, structures=structures,
                            clip=clip, slice=slice, step=step, annotations=annotations,
                            inset=inset, transparent=transparent)[0]


def render_snapshots(case: Case | str | os.PathLike[str], output: str | os.PathLike[str], *,
                     views: Sequence[str | None], size: tuple[int, int] = DEFAULT_SIZE,
                     structures: Sequence[str] | None = None, clip: bool = False,
                     slice: SliceSpec | None = None, step: str | None = None,
                     annotations: bool = True, inset: bool = False,
                     transparent: bool = False) -> list[Path]:
    """Render the same scene from several views, loading the case once.

    ``output`` names one PNG per view with a ``{view}`` placeholder, e.g.
    ``shots/{view}.png`` (not needed for a single view).  Other parameters as
    :func:`render_snapshot`.

    Examples
    --------
    >>> render_snapshots(case, "shots/{view}.png", views=["anterior", "lao"])  # doctest: +SKIP
    [PosixPath('shots/anterior.png'), PosixPath('shots/lao.png')]
    """
    views = list(views) or [None]
    pattern = str(output)
    if len(views) > 1 and "{view}" not in pattern:
        raise InputError(f"-o {pattern!r}: with several views, name the files with a {{view}} "
                         "placeholder, e.g. -o shots/{view}.png")
    case = case if isinstance(case, Case) else Case.open(case)
    plan = load_plan(case)
    data = load_scene_data(case, with_image=slice is not None)
    chosen = _step(plan, step)
    written = []
    with OffscreenRenderer(data, size=size) as renderer:
        for view in views:
            state = scene_state(plan, data.structures, only=structures, clip=clip, step=chosen,
                                slice=slice, view=view)
            state = replace(state, show_annotations=annotations, slice_inset=inset)
            rgb = renderer.render(state, plan, transparent=transparent)
            name = state.view or "anterior"
            written.append(write_png(pattern.replace("{view}", name.replace("/", "_")), rgb))
            log.info("rendered the %s view of %s (%dx%d)", name, case.path, *size)
    return written
