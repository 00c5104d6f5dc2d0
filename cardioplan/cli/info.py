"""``cardioplan info PATH``: what a scan folder holds (studies, series, geometry warnings)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cardioplan.cli._common import add_json_flag, print_json, subparser
from cardioplan.errors import InputError

__all__ = ["register", "run", "format_scan", "format_labels"]


def register(sub: Any) -> argparse.ArgumentParser:
    sp = subparser(
        sub, "info", help="list the studies and series in a scan (headers only, fast)",
        description="Read the headers of every DICOM file under PATH (recursively, or the "
                    "files a DICOMDIR lists) and print one table per study: for each series "
                    "its index (#, what --series accepts), SeriesNumber, modality, description, "
                    "number of images, matrix, spacing (slice spacing from "
                    "ImagePositionPatient, not SliceThickness), orientation, transfer syntax, "
                    "cardiac phases and geometry warnings (missing slices, irregular spacing, "
                    "gantry tilt, mixed orientations, duplicates, thickness != spacing).  "
                    "Objects that are not images (SR, RTSTRUCT, SEG, PR, localisers...) are "
                    "listed as skipped with the reason.  For a NIfTI/NRRD/MetaImage file or a "
                    "case folder it prints the image geometry.  Patient name, ID and birth "
                    "date are never shown unless --show-phi is given.",
        examples=["cardioplan info /media/cdrom/DICOMDIR",
                  "cardioplan info scans/patient1 --json > series.json",
                  "cardioplan info scan.nii.gz",
                  "cardioplan info --labels"])
    sp.add_argument("path", metavar="PATH", nargs="?",
                    help="DICOM folder, DICOM file, DICOMDIR, NIfTI/NRRD/MetaImage file, or a "
                         "case folder")
    sp.add_argument("--show-phi", action="store_true",
                    help="also show patient name, ID and birth date (protected health "
                         "information; off by default)")
    sp.add_argument("--labels", action="store_true",
                    help="print CardioPlan's label table (value, name, colour, SNOMED-CT code) "
                         "instead of inspecting a scan")
    add_json_flag(sp)
    return sp


def run(args: argparse.Namespace) -> int:
    if args.labels:
        return _print_labels(args.json)
    if args.path is None:
        raise InputError("give a PATH to inspect (or --labels); e.g. cardioplan info scans/p1")
    path = Path(args.path)
    from cardioplan.ingest import IMAGE_SUFFIXES, read_volume

    if not path.exists():
        raise InputError(f"{path} does not exist; give a DICOM folder, DICOMDIR, image file or "
                         "case folder")
    from cardioplan.case import Case

    if Case.is_case(path) or (path.is_file() and path.name.lower().endswith(IMAGE_SUFFIXES)):
        vol = read_volume(path)
        from cardioplan.volume import geometry_summary

        data = {"path": str(path), "format": vol.source.get("format"),
                "modality": vol.modality, **geometry_summary(vol.image),
                "phase": vol.phase, "warnings": vol.warnings}
        if args.json:
            print_json(data)
        else:
            print(_format_image(data))
        return 0
    from cardioplan.dicom import scan

    result = scan(path)
    summary = result.summary(show_phi=args.show_phi)
    summary["default_series"] = _default_series(result)
    if args.json:
        print_json(summary)
    else:
        print(format_scan(summary))
    return 0


def _default_series(result: Any) -> dict[str, Any]:
    """What ``cardioplan import`` would load without --series (index and reason)."""
    from cardioplan.dicom import choose_series
    from cardioplan.errors import DicomError

    if not result.series:
        return {"index": None, "reason": "no image series"}
    try:
        series, why = choose_series(result)
    except DicomError as exc:
        return {"index": None, "reason": str(exc)}
    return {"index": series.index, "reason": why}


def format_scan(summary: dict[str, Any]) -> str:
    """Human-readable tables of :meth:`ScanResult.summary` output."""
    lines = [f"{summary['path']}: {summary['files_seen']} file(s)"
             + (f", {summary['non_dicom_files']} not DICOM" if summary["non_dicom_files"] else "")
             + (f" (via {summary['dicomdir']})" if summary.get("dicomdir") else "")]
    header = ["#", "number", "mod", "description", "images", "matrix", "spacing mm",
              "orientation", "syntax", "phases"]
    for study in summary["studies"]:
        title = f"Study {study['study_uid'] or '(no StudyInstanceUID)'}"
        if study.get("date"):
            title += f"  date {study['date']}"
        if study.get("description"):
            title += f"  '{study['description']}'"
        lines += ["", title]
        if "patient" in study:
            p = study["patient"]
            lines.append(f"  patient: {p['name']}  id {p['id']}  born {p['birth_date']}")
        rows = [header]
        marked = (summary.get("default_series") or {}).get("index")
        for s in study["series"]:
            row = _series_row(s)
            if s["index"] == marked and len(_all_series(summary)) > 1:
                row[0] += "*"
            rows.append(row)
        lines += _table(rows)
        for s in study["series"]:
            for w in s["warnings"]:
                lines.append(f"  ! #{s['index']}: {w}")
            if not s["series_uid"]:
                lines.append(f"  ! #{s['index']}: no SeriesInstanceUID (grouped by frame of "
                             "reference, orientation, matrix, number and description)")
    if summary["skipped"]:
        lines += ["", f"Skipped {len(summary['skipped'])} object(s):"]
        for item in summary["skipped"]:
            lines.append(f"  {item['path']}: {item['reason']}")
    if summary["unreadable"]:
        lines += ["", f"Unreadable {len(summary['unreadable'])} file(s):"]
        for item in summary["unreadable"]:
            lines.append(f"  {item['path']}: {item['reason']}")
    if not summary["studies"]:
        lines += ["", "No image series found."]
    default = summary.get("default_series") or {}
    if default.get("index") is not None and len(_all_series(summary)) > 1:
        lines += ["", f"* = loaded by `cardioplan import` without --series: {default['reason']}"]
    elif default.get("reason") and summary["studies"] and default.get("index") is None:
        lines += ["", f"Without --series, `cardioplan import` would stop: {default['reason']}"]
    return "\n".join(lines)


def _all_series(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for study in summary["studies"] for s in study["series"]]


def format_labels(rows: list[dict[str, Any]]) -> str:
    table = [["value", "name", "colour", "SNOMED-CT"]]
    table += [[str(r["value"]), r["name"], r["color"], f"{r['snomed_code']} {r['snomed_meaning']}"]
              for r in rows]
    return "\n".join(_table(table, indent=""))


def _print_labels(as_json: bool) -> int:
    from cardioplan.labels import COMPOSITES, LABELS

    rows = [{"value": lab.value, "name": lab.name, "display_name": lab.display_name,
             "color": lab.color_hex, "snomed_code": lab.snomed_code,
             "snomed_meaning": lab.snomed_meaning} for lab in LABELS]
    if as_json:
        print_json({"labels": rows, "composites": {k: list(v) for k, v in COMPOSITES.items()}})
    else:
        print(format_labels(rows))
        for name, parts in COMPOSITES.items():
            print(f"composite {name} = {' + '.join(parts)}")
    return 0


def _series_row(s: dict[str, Any]) -> list[str]:
    spacing = "x".join(f"{v:.3g}" for v in s["spacing"]) if s["spacing"] else "?"
    matrix = f"{s['matrix'][0]}x{s['matrix'][1]}"
    phases = ""
    if s["phases"]:
        pct = [p["percent_rr"] for p in s["phases"]]
        trig = [p["trigger_time_ms"] for p in s["phases"]]
        phases = f"{len(s['phases'])}"
        if all(v is not None for v in pct):
            phases += f" ({min(pct):g}-{max(pct):g}%)"
        elif all(v is not None for v in trig):
            phases += f" ({min(trig):g}-{max(trig):g} ms)"
    syntax = ", ".join(_short_syntax(t) for t in s["transfer_syntaxes"])
    images = str(s["images"])
    if s["phases"]:
        images += f" ({s['slices_per_phase']}/phase)"
    return [str(s["index"]), "" if s["series_number"] is None else str(s["series_number"]),
            s["modality"], _clip(s["description"], 32), images, matrix, spacing, s["orientation"],
            syntax, phases]


def _short_syntax(name: str) -> str:
    table = {"Explicit VR Little Endian": "explicit LE", "Implicit VR Little Endian":
             "implicit LE", "Explicit VR Big Endian": "big endian", "RLE Lossless": "RLE",
             "JPEG 2000 Image Compression (Lossless Only)": "JPEG2000 lossless",
             "JPEG 2000 Image Compression": "JPEG2000", "JPEG-LS Lossless Image Compression":
             "JPEG-LS lossless", "JPEG-LS Lossy (Near-Lossless) Image Compression":
             "JPEG-LS near-lossless", "JPEG Extended (Process 2 and 4)": "JPEG 12-bit lossy",
             "JPEG Baseline (Process 1)": "JPEG baseline"}
    if name.startswith("JPEG Lossless"):
        return "JPEG lossless"
    return table.get(name, name)


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def _format_image(d: dict[str, Any]) -> str:
    lines = [f"{d['path']}: {d['format']} image, modality {d['modality']}",
             f"  size      {' x '.join(str(v) for v in d['size'])}",
             f"  spacing   {' x '.join(f'{v:g}' for v in d['spacing'])} mm",
             f"  origin    {', '.join(f'{v:g}' for v in d['origin'])} (LPS mm)",
             f"  direction {', '.join(f'{v:g}' for v in d['direction'])}",
             f"  type      {d['pixel_type']}"]
    if d.get("phase"):
        lines.append(f"  phase     {d['phase']}")
    lines += [f"  ! {w}" for w in d["warnings"]]
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
