"""``cardioplan report``: a self-contained HTML review report of a case.

``index.html`` holds everything as embedded PNGs (it opens offline, can be e-mailed, and has no
patient identifiers): the scan summary, the structure table (volume, surface area, triangles,
watertightness from ``case.json``), snapshots from the standard views (and of the plan's cut
planes and rehearsal steps), slice montages with label outlines, the plan's measurements,
landmarks, cut planes and seeds, and validation metrics against a reference label map.
``model.html`` is the interactive 3D page (:mod:`cardioplan.report.model3d`).

Examples
--------
>>> build_report(Case.open("case1"))          # doctest: +SKIP
PosixPath('case1/report/index.html')
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from cardioplan import __version__
from cardioplan.case import Case, utc_now
from cardioplan.errors import CaseExistsError, InputError
from cardioplan.fileio import atomic_open
from cardioplan.labels import LABELS
from cardioplan.plan import Plan, load_plan
from cardioplan.progress import progress
from cardioplan.report.model3d import WEB_TRIANGLES, model_page
from cardioplan.report.montage import montage
from cardioplan.viewer.camera import PRESETS
from cardioplan.viewer.scene import SceneData, load_scene_data
from cardioplan.viewer.slices import ORIENTATIONS, default_window
from cardioplan.viewer.snapshot import OffscreenRenderer
from cardioplan.viewer.state import display_name, scene_state, structure_color

__all__ = ["build_report", "REPORT_VIEWS", "GENERATOR"]

log = logging.getLogger(__name__)

REPORT_VIEWS = ("anterior", "posterior", "left", "right", "lao", "rao", "superior", "inferior")
"""Standard views rendered into the report."""
GENERATOR = "CardioPlan"
_MAX_STEPS = 12
_PATH_LIKE = re.compile(r"(?:[A-Za-z]:)?[\\/][^\s,;:'\"]+")


def _png_data_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    return f"{float(value):,.{digits}f}"


def _fmt_point(p: Sequence[float]) -> str:
    return "(" + ", ".join(f"{c:.1f}" for c in p) + ")"


# -- sections (pure: data in, HTML out) ---------------------------------------------------------
def scan_summary(case: Case) -> list[tuple[str, str]]:
    """Rows of the scan summary: geometry and provenance without patient identifiers.

    Only whitelisted fields are shown (no names, IDs, dates of birth, UIDs or file paths);
    path-like text in warnings is replaced by ``<path>``.
    """
    info = case.image_info
    rows: list[tuple[str, str]] = [("Case", case.case_id)]
    if info.get("modality"):
        rows.append(("Modality", info["modality"]))
    if info.get("size"):
        size, spacing = info["size"], info.get("spacing", [1, 1, 1])
        rows.append(("Grid (voxels)", " &times; ".join(str(s) for s in size)))
        rows.append(("Voxel size (mm)", " &times; ".join(f"{s:g}" for s in spacing)))
        rows.append(("Field of view (mm)", " &times; ".join(
            f"{n * s:.0f}" for n, s in zip(size, spacing, strict=False))))
        rows.append(("Pixel type", _e(info.get("pixel_type", ""))))
        direction = np.asarray(info.get("direction", np.eye(3).ravel()), float).reshape(3, 3)
        oblique = not np.allclose(np.abs(direction), np.round(np.abs(direction)), atol=1e-3)
        rows.append(("Orientation", "oblique" if oblique else "axis-aligned"))
    phase = info.get("phase")
    if isinstance(phase, dict) and phase:
        rows.append(("Cardiac phase", _e(", ".join(f"{k}: {v}" for k, v in phase.items()))))
    for inp in case.inputs[:1]:
        if inp.get("format"):
            rows.append(("Imported from", _e(inp["format"])))
        warnings = [_PATH_LIKE.sub("<path>", str(w)) for w in inp.get("warnings", [])]
        if warnings:
            rows.append(("Import warnings", "<br>".join(_e(w) for w in warnings)))
    mesh = case.section("mesh")
    if mesh:
        rows.append(("Meshes", _e(f"{mesh.get('triangles', 0):,} triangles, target "
                                  f"{mesh.get('target')}, smoothing {mesh.get('smoothing')}")))
    return rows


def structure_rows(case: Case, names: Sequence[str]) -> list[dict[str, Any]]:
    """Per-structure figures from ``case.json`` (mesh quality written by ``cardioplan mesh``)."""
    structures = case.structures
    rows = []
    for name in names:
        q = structures.get(name, {}).get("mesh", {})
        area = q.get("area_mm2")
        rows.append({
            "name": name, "display": display_name(name), "color": structure_color(name),
            "volume_ml": q.get("volume_ml"), "voxel_volume_ml": q.get("voxel_volume_ml"),
            "area_cm2": None if area is None else area / 100.0,
            "triangles": q.get("triangles"), "watertight": q.get("watertight"),
            "mean_distance_mm": q.get("mean_distance_mm"),
        })
    return rows


def review_summary(rows: Sequence[Mapping[str, Any]],
                   metrics: Mapping[str, Mapping[str, Any]] | None) -> list[str]:
    """One-line findings for the top of the report: mesh checks and agreement with the
    reference.  Problems come first and are marked, so a reviewer sees them at once.

    Examples
    --------
    >>> review_summary([{"display": "Aorta", "watertight": False, "mean_distance_mm": 0.3,
    ...                  "triangles": 10}], None)[0]
    '<span class="bad">Not watertight: Aorta</span> (3D printing needs closed surfaces)'
    """
    lines = []
    leaky = [r["display"] for r in rows if r.get("watertight") is False]
    if leaky:
        lines.append(f'<span class="bad">Not watertight: {_e(", ".join(leaky))}</span> '
                     "(3D printing needs closed surfaces)")
    far = [r["display"] for r in rows if (r.get("mean_distance_mm") or 0) > 1.0]
    if far:
        lines.append(f'<span class="bad">Meshes more than 1 mm from their labels on average: '
                     f"{_e(', '.join(far))}</span>")
    if metrics:
        low = [display_name(n) for n, m in metrics.items()
               if m.get("dice") is not None and math.isfinite(m["dice"]) and m["dice"] < 0.8]
        if low:
            lines.append(f'<span class="bad">Dice below 0.80: {_e(", ".join(low))}</span>')
        dice = [m["dice"] for m in metrics.values()
                if m.get("dice") is not None and math.isfinite(m["dice"])]
        if dice:
            lines.append(f"Agreement with the reference: mean Dice {np.mean(dice):.3f} over "
                         f"{len(dice)} structures (lowest {min(dice):.3f})")
    total = sum(int(r.get("triangles") or 0) for r in rows)
    checked = [r for r in rows if r.get("watertight") is not None]
    lines.append(f"{len(rows)} structures, {total:,} triangles"
                 + (f"; {sum(bool(r['watertight']) for r in checked)} of {len(checked)} "
                    "watertight" if checked else ""))
    return lines


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, cls: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _swatch(color: Sequence[int]) -> str:
    return f'<span class="swatch" style="background:rgb{tuple(int(c) for c in color)}"></span>'


def structures_html(rows: Sequence[Mapping[str, Any]]) -> str:
    def ok(v: Any) -> str:
        return "&ndash;" if v is None else ('<span class="ok">yes</span>' if v
                                            else '<span class="bad">NO</span>')

    return _table(
        ["Structure", "Volume (mL)", "Label-map volume (mL)", "Surface area (cm&sup2;)",
         "Triangles", "Watertight", "Mean distance to labels (mm)"],
        [[_swatch(r["color"]) + " " + _e(r["display"]), _num(r["volume_ml"]),
          _num(r["voxel_volume_ml"]), _num(r["area_cm2"]),
          "&ndash;" if r["triangles"] is None else f"{int(r['triangles']):,}",
          ok(r["watertight"]), _num(r["mean_distance_mm"], 2)] for r in rows], cls="num")


def plan_html(plan: Plan) -> str:
    """Measurements, landmarks, cut planes, seeds and steps of the plan."""
    parts = []
    if plan.measurements:
        parts.append("<h3>Measurements</h3>" + _table(
            ["Name", "Kind", "Value", "Points (LPS mm)"],
            [[_e(m.name), m.kind, f"{m.value:.1f} {'mm' if m.unit == 'mm' else '&deg;'}",
              " &rarr; ".join(_fmt_point(p) for p in m.points)] for m in plan.measurements]))
    if plan.landmarks:
        parts.append("<h3>Landmarks</h3>" + _table(
            ["Name", "Structure", "Point (LPS mm)"],
            [[_e(lm.name), _e(display_name(lm.structure)) if lm.structure else "&ndash;",
              _fmt_point(lm.point)] for lm in plan.landmarks]))
    if plan.cut_planes:
        parts.append("<h3>Cut planes</h3>" + _table(
            ["Name", "Origin (LPS mm)", "Normal", "Cuts", "Enabled"],
            [[_e(c.name), _fmt_point(c.origin), " ".join(f"{v:+.2f}" for v in c.normal),
              _e(", ".join(display_name(s) for s in c.structures) or "all structures"),
              "yes" if c.enabled else "no"] for c in plan.cut_planes]))
    if plan.seeds:
        parts.append("<h3>Segmentation seeds</h3>" + _table(
            ["Structure", "Point (LPS mm)"],
            [[_e(display_name(s.structure)), _fmt_point(s.point)] for s in plan.seeds]))
    if plan.steps:
        parts.append("<h3>Rehearsal steps</h3><ol>" + "".join(
            f"<li><b>{_e(s.title)}</b>" + (f" &ndash; {_e(s.note)}" if s.note else "") + "</li>"
            for s in plan.steps) + "</ol>")
    if not parts:
        return ("<p>The plan is empty: add landmarks, measurements and cut planes in "
                "<code>cardioplan view</code> or the headset.</p>")
    meta = f"<p class=\"muted\">Plan revision {plan.revision}"
    if plan.modified:
        meta += f", last edited {_e(plan.modified)} ({_e(plan.modified_by or '?')})"
    return meta + ".</p>" + "".join(parts)


def metrics_html(results: Mapping[str, Mapping[str, Any]], reference_name: str) -> str:
    """Validation table: Dice, HD95, ASSD and volumes per structure."""
    rows = []
    for name, r in results.items():
        rows.append([_swatch(structure_color(name)) + " " + _e(display_name(name)),
                     _num(r.get("dice"), 3), _num(r.get("hd95_mm"), 2),
                     _num(r.get("assd_mm"), 2), _num(r.get("pred_volume_ml")),
                     _num(r.get("ref_volume_ml")), _e(r.get("note", ""))])
    return (f"<p>Case labels compared with the reference <code>{_e(reference_name)}</code> "
            "(Dice over voxels; HD95 and ASSD between label surfaces, in millimetres).</p>"
            + _table(["Structure", "Dice", "HD95 (mm)", "ASSD (mm)", "Volume (mL)",
                      "Reference volume (mL)", "Note"], rows, cls="num"))


_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, Segoe UI, sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 0 24px 60px; color: #1d1f24; }
h1 { margin-bottom: 0; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px;
margin-top: 2em; }
.muted { color: #666; } code { background: #f2f2f2; padding: 0 3px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #e2e2e2; padding: 4px 10px; text-align: left; }
table.num td:not(:first-child), table.num th:not(:first-child) { text-align: right; }
th { background: #f6f6f6; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
          vertical-align: -1px; border: 1px solid #0003; }
.ok { color: #1a7f37; } .bad { color: #c62828; font-weight: bold; }
.summary { background: #f4f7fb; border-left: 4px solid #2758c6; padding: 8px 14px;
           margin-top: 14px; } .summary ul { margin: 4px 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr));
        gap: 10px; }
figure { margin: 0; } figure img { width: 100%; border-radius: 4px; display: block; }
figcaption { font-size: 13px; color: #555; text-align: center; }
img.montage { max-width: 100%; border-radius: 4px; }
@media print { .button { display: none; } figure, img.montage, table { break-inside: avoid; } }
.button { display: inline-block; background: #2758c6; color: white; padding: 8px 14px;
          border-radius: 5px; text-decoration: none; }
"""


_PAGE_VIEWS = ("anterior", "posterior", "left", "right", "superior", "inferior", "lao", "rao")
"""Views the 3D page can open from a link (``model.html#view=lao``)."""


def _figure(uri: str, caption: str, link: str | None = None) -> str:
    img = f'<img src="{uri}" alt="{_e(caption)}">'
    if link:
        img = f'<a href="{_e(link)}" title="open in the interactive 3D model">{img}</a>'
    return f"<figure>{img}<figcaption>{_e(caption)}</figcaption></figure>"


def _render_snapshots(data: SceneData, plan: Plan, views: Sequence[str],
                      size: tuple[int, int]) -> list[tuple[str, str, str | None]]:
    """(caption, data URI, view) for each standard view, the plan's cut planes and steps."""
    figures = []
    with OffscreenRenderer(data, size=size) as renderer:
        base = scene_state(plan, data.structures, clip=False)
        for view in progress(views, desc="rendering views", unit="view"):
            figures.append((PRESETS[view].title if view in PRESETS else view,
                            _png_data_uri(renderer.render(base, plan, view=view)), view))
        if any(c.enabled for c in plan.cut_planes):
            clipped = scene_state(plan, data.structures, clip=True)
            figures.append(("Anterior, with the plan's cut planes",
                            _png_data_uri(renderer.render(clipped, plan, view="anterior")),
                            "anterior"))
        for i, step in enumerate(plan.steps[:_MAX_STEPS], start=1):
            caption = f"Step {i}: {step.title}"
            try:
                state = replace(scene_state(plan, data.structures, step=step), title="")
                rgb = renderer.render(state, plan)
            except InputError as exc:  # e.g. a view saved in VR as a model pose only
                log.warning("step %d: %s; shown from the front instead", i, exc)
                state = scene_state(plan, data.structures, step=replace(step, view=None))
                rgb = renderer.render(replace(state, title=""), plan, view="anterior")
                caption += " (anterior: its view has no desktop camera)"
            figures.append((caption, _png_data_uri(rgb), None))
    return figures


def _montages(data: SceneData, count: int) -> list[tuple[str, str]]:
    if data.image is None:
        return []
    window = default_window(data.image, data.modality)
    labels = data.labels
    if labels is not None and labels.GetSize() != data.image.GetSize():
        log.warning("the label map is not on the image grid; montages show the scan only")
        labels = None
    meshes = {name: (data.meshes[name], structure_color(name)) for name in data.structures}
    return [(o.capitalize(), _png_data_uri(montage(data.image, labels, o, count=count,
                                                   window=window, meshes=meshes)))
            for o in ORIENTATIONS]


def _check_out_dir(out_dir: Path, *, force: bool) -> None:
    index = out_dir / "index.html"
    if index.is_file() and not force:
        head = index.read_text(encoding="utf-8", errors="replace")[:2000]
        if f'name="generator" content="{GENERATOR}' not in head:
            raise CaseExistsError(f"{index} exists and was not written by CardioPlan; choose "
                                  "another -o folder or pass --force to replace it")


def build_report(case: Case, out_dir: str | Path | None = None, *,
                 reference: sitk.Image | None = None, reference_name: str = "reference",
                 ref_map: Mapping[int, str] | None = None,
                 views: Sequence[str] = REPORT_VIEWS, size: tuple[int, int] = (640, 480),
                 montage_slices: int = 6, web_triangles: int = WEB_TRIANGLES,
                 model: bool = True, force: bool = False) -> Path:
    """Write ``index.html`` (and the 3D page ``model.html``) for ``case``.

    Parameters
    ----------
    case : Case
        A case with meshes (``cardioplan mesh``); the scan and labels are used when present.
    out_dir : path-like, optional
        Output folder (default ``CASE/report``).  A report there is replaced; another
        ``index.html`` only with ``force``.
    reference : sitk.Image, optional
        Reference label map for validation metrics (Dice, HD95, ASSD).
    reference_name : str
        How the report names the reference (a file name, not a path).
    ref_map : dict, optional
        Reference value -> structure name (default: the project's label values).
    views : list of str
        Camera presets to render.
    size : (width, height)
        Snapshot size in pixels.
    montage_slices : int
        Slices per montage.
    web_triangles : int
        Triangle budget of the 3D page.
    model : bool
        Also write ``model.html``.
    force : bool
        Replace an ``index.html`` that CardioPlan did not write.

    Returns
    -------
    Path
        The ``index.html`` written.

    Raises
    ------
    CaseError
        No meshes (the message says to run ``cardioplan mesh``), or an unreadable plan.
    CaseExistsError
        ``out_dir`` holds another ``index.html`` and ``force`` is False.
    InputError
        Unknown view, or a reference that does not match the case.
    """
    out = Path(out_dir) if out_dir is not None else case.report_dir
    _check_out_dir(out, force=force)
    unknown = [v for v in views if v not in PRESETS]
    if unknown:
        raise InputError(f"unknown view(s) {unknown}; use: {', '.join(PRESETS)}")
    plan = load_plan(case)
    data = load_scene_data(case, with_image=True)
    metrics = None
    if reference is not None:
        from segmentation.metrics import evaluate_labels

        metrics = evaluate_labels(case.read_labels(), reference, ref_map=ref_map)
    figures = _render_snapshots(data, plan, views, size)
    montages = _montages(data, montage_slices)
    title = f"CardioPlan review &ndash; case {_e(case.case_id)}"
    rows = structure_rows(case, data.structures)
    summary = "".join(f"<li>{line}</li>" for line in review_summary(rows, metrics))
    sections = [
        f"<h1>{title}</h1><p class=\"muted\">Generated {_e(utc_now())} by CardioPlan "
        f"{_e(__version__)}.  No patient identifiers are included.</p>",
        f'<div class="summary"><b>Summary</b><ul>{summary}</ul></div>',
        "<h2>Scan</h2>" + _table(["", ""], scan_summary(case)),
        "<h2>Structures</h2>" + structures_html(rows),
        "<h2>3D views</h2>"
        + ('<p><a class="button" href="model.html">Open the interactive 3D model</a> '
           "(opens offline in any browser: rotate, zoom, show/hide structures)</p>"
           if model else "")
        + '<div class="grid">' + "".join(
            _figure(u, c, f"model.html#view={v}" if model and v in _PAGE_VIEWS else None)
            for c, u, v in figures) + "</div>",
    ]
    if montages:
        sections.append("<h2>Slices with label outlines</h2><p>Pixel outlines: the label map; "
                        "thin lighter lines: where each mesh cuts the slice.  Where they part, "
                        "the surface does not follow the segmentation.</p>" + "".join(
            f"<h3>{c}</h3><img class=\"montage\" src=\"{u}\" alt=\"{c} montage\">"
            for c, u in montages))
    sections.append("<h2>Plan</h2>" + plan_html(plan))
    sections.append("<h2>Validation</h2>" + (metrics_html(metrics, reference_name)
                    if metrics is not None else
                    "<p>No reference was given (<code>cardioplan report CASE --reference "
                    "LABELS</code> adds Dice, HD95 and ASSD per structure).</p>"))
    legend = "".join(f"<span>{_swatch(LABELS[n].color)} {_e(display_name(n))}</span> "
                     for n in data.structures if n in LABELS)
    sections.insert(4, f"<p>{legend}</p>")
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"generator\" content=\"{GENERATOR} {_e(__version__)}\">"
            f"<title>CardioPlan review - case {_e(case.case_id)}</title>"
            f"<style>{_CSS}</style></head><body>" + "".join(sections) + "</body></html>\n")
    index = out / "index.html"
    if model:
        page3d = model_page(data.meshes, title=f"CardioPlan 3D model - case {case.case_id}",
                            budget=web_triangles, plan=plan)
        with atomic_open(out / "model.html", "w", encoding="utf-8") as fh:
            fh.write(page3d)
    with atomic_open(index, "w", encoding="utf-8") as fh:
        fh.write(page)
    if out.resolve().is_relative_to(case.path.resolve()):
        case.record_file("report", index, produced_by="cardioplan report",
                         reference=reference_name if reference is not None else None)
    log.info("report written to %s", index)
    return index
