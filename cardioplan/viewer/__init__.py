"""Desktop review of a case with PyVista: the scene, camera presets, slices and interaction.

The modules split pure logic from rendering so the logic is tested without a window:

* :mod:`~cardioplan.viewer.camera` -- camera presets in LPS (anterior, LAO...), pure maths;
* :mod:`~cardioplan.viewer.slices` -- image slices with label outlines, pure numpy;
* :mod:`~cardioplan.viewer.state` -- what the scene shows, derived from the plan, pure;
* :mod:`~cardioplan.viewer.interaction` -- picking, measuring, key map, rehearsal steps, pure;
* :mod:`~cardioplan.viewer.lod` -- decimation to a triangle budget (level of detail, web);
* :mod:`~cardioplan.viewer.scene` -- draws a state with PyVista (on- or off-screen);
* :mod:`~cardioplan.viewer.inset` -- the 2D slice inset with the meshes' cut lines;
* :mod:`~cardioplan.viewer.snapshot` -- off-screen PNGs (EGL, no display);
* :mod:`~cardioplan.viewer.window` -- the interactive window of ``cardioplan view``.

``vr`` never imports this package (and this package never imports ``vr``); both share the
case folder and :mod:`cardioplan.plan`.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["PRESETS", "preset_camera", "SceneData", "Scene", "load_scene_data",
           "scene_state", "ViewerLogic", "KEYMAP", "OffscreenRenderer", "render_snapshot",
           "ViewerWindow", "open_viewer"]

_WHERE = {
    "PRESETS": "camera", "preset_camera": "camera",
    "SceneData": "scene", "Scene": "scene", "load_scene_data": "scene",
    "scene_state": "state",
    "ViewerLogic": "interaction", "KEYMAP": "interaction",
    "OffscreenRenderer": "snapshot", "render_snapshot": "snapshot",
    "ViewerWindow": "window", "open_viewer": "window",
}


def __getattr__(name: str) -> Any:
    """Import the public names on first use, so ``import cardioplan.viewer`` stays cheap."""
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
