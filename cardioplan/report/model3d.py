"""The report's interactive 3D page: the case's surfaces as a GLB, shown by a small WebGL viewer.

The page is one self-contained HTML file: the GLB (written by
:func:`cardioplan.export.meshes.export_surfaces`, so names and colours match every other export)
is embedded as base64 and drawn by ``glb_viewer.js`` (CardioPlan's own ~300-line WebGL 1 viewer,
no CDN, no dependencies).  Surfaces are decimated to a web budget first so the page stays small
enough to e-mail.

Examples
--------
>>> html = model_page(surfaces, title="Case 1")     # doctest: +SKIP
>>> len(html) < 10_000_000                           # doctest: +SKIP
True
"""

from __future__ import annotations

import base64
import html
import importlib.resources
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cardioplan.plan import Plan
from cardioplan.viewer.lod import decimate_to_budget

__all__ = ["WEB_TRIANGLES", "glb_bytes", "model_page", "viewer_script",
           "annotations_json"]

WEB_TRIANGLES = 150_000
"""Total triangle budget of the 3D page (about 4 MB of GLB)."""


def glb_bytes(surfaces: Mapping[str, Any]) -> bytes:
    """The surfaces as one GLB (the project's GLB export: named nodes, PBR colours, LPS)."""
    from cardioplan.export.meshes import export_surfaces

    with tempfile.TemporaryDirectory(prefix="cardioplan-glb-") as tmp:
        path = Path(tmp) / "model.glb"
        export_surfaces(dict(surfaces), path, fmt="glb")
        return path.read_bytes()


def viewer_script() -> str:
    """The WebGL viewer's source (``glb_viewer.js``, shipped with the package)."""
    return importlib.resources.files("cardioplan.report").joinpath("glb_viewer.js") \
        .read_text(encoding="utf-8")


_VIEW_BUTTONS = [("anterior", "Anterior"), ("posterior", "Posterior"), ("left", "Left"),
                 ("right", "Right"), ("superior", "Superior"), ("inferior", "Inferior"),
                 ("lao", "LAO 45"), ("rao", "RAO 30")]

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="generator" content="CardioPlan {version}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  html, body {{ margin: 0; height: 100%; background: #1a1c21; color: #e8e8e8;
               font: 14px system-ui, sans-serif; overflow: hidden; }}
  #cardioplan-canvas {{ position: absolute; left: 0; top: 0; width: 100%; height: 100%;
                        display: block; }}
  .panel {{ position: absolute; background: rgba(20, 22, 26, 0.78); padding: 8px 10px;
            border-radius: 6px; }}
  #cardioplan-legend {{ right: 10px; top: 10px; max-height: 80%; overflow-y: auto; }}
  #cardioplan-legend label {{ display: flex; align-items: center; gap: 6px; margin: 2px 0; }}
  #cardioplan-legend input[type=range] {{ width: 70px; }}
  .swatch {{ display: inline-block; width: 12px; height: 12px; border-radius: 2px; }}
  #views {{ left: 10px; bottom: 10px; }}
  #views button {{ background: #2d3038; color: #e8e8e8; border: 1px solid #444; margin: 2px;
                   padding: 3px 8px; border-radius: 4px; cursor: pointer; }}
  #info {{ left: 10px; top: 10px; max-width: 40%; }}
  #cardioplan-status {{ display: none; left: 30%; top: 40%; font-size: 16px; }}
  #cardioplan-labels {{ position: absolute; left: 0; top: 0; width: 100%; height: 100%;
                        pointer-events: none; overflow: hidden; }}
  .ann {{ position: absolute; padding: 1px 5px; border-radius: 3px; font-size: 12px;
          background: rgba(0, 0, 0, 0.6); white-space: nowrap; }}
  .ann.landmark {{ color: #ffeb33; }} .ann.measure {{ color: #ffffff; }}
</style>
</head>
<body data-initial-view="{view}">
<canvas id="cardioplan-canvas"></canvas>
<div id="info" class="panel"><b>{title}</b><br>
  Drag: rotate &middot; Shift/right-drag: pan &middot; Wheel: zoom &middot; Double-click: anterior
  <br><small>Views are named in patient terms (LPS): from the front, the patient's left is on
  the right.  {triangles:,} triangles.</small></div>
<div id="cardioplan-legend" class="panel"></div>
<div id="cardioplan-labels"></div>
<div id="views" class="panel">{buttons}
  <label><input type="checkbox" id="cardioplan-show-annotations" checked> landmarks and
  measurements</label>
  <label><input type="checkbox" id="cardioplan-plan-cuts" checked> the plan's cut planes</label>
  <br>Cut: <select id="cardioplan-cut-axis"><option value="off">off</option>
  <option value="sagittal">sagittal</option><option value="coronal">coronal</option>
  <option value="axial">axial</option></select>
  <input type="range" id="cardioplan-cut-position" min="0" max="100" value="50">
  <label><input type="checkbox" id="cardioplan-cut-flip"> flip</label></div>
<div id="cardioplan-status" class="panel"></div>
<script id="cardioplan-glb" type="application/octet-stream">{glb}</script>
<script id="cardioplan-annotations" type="application/json">{annotations}</script>
<script>
{script}
</script>
</body>
</html>
"""


def annotations_json(plan: Plan | None) -> str:
    """The plan's landmarks, measurements and cut planes for the page (JSON safe inside a
    script tag).

    Examples
    --------
    >>> from cardioplan.plan import Plan
from cardioplan.viewer.lod import decimate_to_budget
    >>> p = Plan(); _ = p.add_landmark((1, 2, 3), name="apex")
    >>> json.loads(annotations_json(p))["landmarks"]
    [{'name': 'apex', 'point': [1.0, 2.0, 3.0]}]
    """
    data: dict[str, Any] = {"landmarks": [], "measurements": [], "cut_planes": []}
    if plan is not None:
        data["landmarks"] = [{"name": lm.name, "point": [float(c) for c in lm.point]}
                             for lm in plan.landmarks]
        data["measurements"] = [{"label": m.label(),
                                 "points": [[float(c) for c in p] for p in m.points]}
                                for m in plan.measurements]
        data["cut_planes"] = [{"origin": list(c.origin), "normal": list(c.normal),
                               "structures": list(c.structures), "enabled": c.enabled}
                              for c in plan.cut_planes]
    # "</" cannot end the script element early once escaped
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


def model_page(surfaces: Mapping[str, Any], *, title: str, view: str = "anterior",
               budget: int = WEB_TRIANGLES, plan: Plan | None = None) -> str:
    """A self-contained HTML page showing ``surfaces`` interactively (WebGL, offline).

    Parameters
    ----------
    surfaces : dict of str to pyvista.PolyData
        The case's surfaces (LPS mm, with names and colours in their field data).
    title : str
        Page title (no patient identifiers).
    view : str
        First view: anterior, posterior, left, right, superior, inferior, lao or rao.
    budget : int
        Total triangles after decimation.
    plan : Plan, optional
        Its landmarks and measurements are drawn with their names and values, and its enabled
        cut planes cut the structures they name (a checkbox turns them off).
    """
    from cardioplan import __version__

    small = decimate_to_budget(surfaces, budget=budget)
    glb = base64.b64encode(glb_bytes(small)).decode("ascii")
    buttons = "".join(f'<button data-view="{v}">{label}</button>' for v, label in _VIEW_BUTTONS)
    return _PAGE.format(version=html.escape(__version__), title=html.escape(title),
                        view=html.escape(view), buttons=buttons, glb=glb,
                        script=viewer_script(), annotations=annotations_json(plan),
                        triangles=sum(s.n_cells for s in small.values()))
