"""``cardioplan evaluate PRED REF``: Dice, HD95, ASSD and volumes per structure."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from cardioplan.cli._common import add_json_flag, print_json, subparser
from cardioplan.errors import InputError
from cardioplan.labels import LABELS

__all__ = ["register", "run", "parse_ref_map", "format_table"]

_COLUMNS = [("dice", "Dice", "{:.3f}"), ("hd95_mm", "HD95 mm", "{:.2f}"),
            ("assd_mm", "ASSD mm", "{:.2f}"), ("pred_volume_ml", "pred mL", "{:.1f}"),
            ("ref_volume_ml", "ref mL", "{:.1f}")]


def register(sub: Any) -> argparse.ArgumentParser:
    sp = subparser(
        sub, "evaluate", help="score a segmentation against a reference (Dice, HD95, ASSD)",
        description="Compare a predicted label map with a reference label map, per structure: "
                    "Dice, 95th-percentile symmetric Hausdorff distance (HD95, mm), average "
                    "symmetric surface distance (ASSD, mm) and the volumes (mL) of both.  "
                    "Distances are physical (image spacing); when the grids differ the "
                    "reference is resampled onto the prediction's grid (nearest neighbour).  "
                    "A structure missing on one side scores Dice 0 with a note, and its "
                    "distances are undefined (shown as '-', null in JSON).",
        examples=["cardioplan evaluate CASE reference_labels.nii.gz",
                  "cardioplan evaluate CASE patient001_frame01_gt.nii.gz "
                  "--ref-map 1=right_ventricle,2=myocardium,3=left_ventricle",
                  "cardioplan evaluate labels.nii.gz ref.nrrd --structures heart aorta --json"])
    sp.add_argument("pred", metavar="PRED",
                    help="the prediction: a case folder (its labels.nii.gz) or a label file "
                         "(NIfTI/NRRD/MHA) with CardioPlan label values")
    sp.add_argument("ref", metavar="REF",
                    help="the reference label file (NIfTI/NRRD/MHA)")
    sp.add_argument("--ref-map", metavar="V=NAME,...", type=parse_ref_map, default=None,
                    help="what the reference's values mean, e.g. "
                         "1=right_ventricle,2=myocardium,3=left_ventricle (ACDC); default: the "
                         "reference uses CardioPlan's values (cardioplan info --labels)")
    sp.add_argument("--structures", nargs="+", metavar="NAME", choices=LABELS.names,
                    help="structures to score, including the composites heart and blood_pool "
                         "(default: every structure present in the reference); choices: "
                         + ", ".join(LABELS.names))
    add_json_flag(sp)
    return sp


def parse_ref_map(text: str) -> dict[int, str]:
    """Parse ``1=right_ventricle,2=myocardium`` into ``{1: 'right_ventricle', 2: ...}``.

    Examples
    --------
    >>> parse_ref_map("1=right_ventricle, 3=left_ventricle")
    {1: 'right_ventricle', 3: 'left_ventricle'}
    """
    out: dict[int, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        value, sep, name = item.partition("=")
        try:
            v = int(value)
        except ValueError:
            v = -1
        name = name.strip()
        if not sep or not 0 < v < 256:
            raise argparse.ArgumentTypeError(
                f"{item!r}: expected VALUE=NAME with VALUE in 1..255, e.g. 1=right_ventricle")
        if name not in LABELS:
            raise argparse.ArgumentTypeError(
                f"{item!r}: unknown structure {name!r}; use one of: {', '.join(LABELS.names)}")
        if v in out:
            raise argparse.ArgumentTypeError(f"value {v} is mapped twice")
        out[v] = name
    if not out:
        raise argparse.ArgumentTypeError("empty map; e.g. 1=right_ventricle,3=left_ventricle")
    return out


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """Fixed-width table of :func:`segmentation.metrics.evaluate_labels` results."""
    header = ["structure"] + [title for _, title, _ in _COLUMNS]
    rows = []
    for name, row in results.items():
        cells = [name]
        for key, _, fmt in _COLUMNS:
            v = row.get(key)
            cells.append("-" if v is None or (isinstance(v, float) and math.isnan(v))
                         else fmt.format(v))
        if row.get("note"):
            cells.append(f"({row['note']})")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(header, widths, strict=True)))]
    for r in rows:
        main = "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=False)))
        lines.append(main + ("  " + r[-1] if len(r) > len(widths) else ""))
    return "\n".join(lines)


def _json_safe(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in row.items()} for n, row in results.items()}


def run(args: argparse.Namespace) -> int:
    from cardioplan.ingest import read_label_map
    from segmentation.metrics import evaluate_labels

    pred = read_label_map(Path(args.pred), what="prediction")
    ref = read_label_map(Path(args.ref), what="reference", allow_case=False)
    results = evaluate_labels(pred, ref, ref_map=args.ref_map, structures=args.structures)
    if not results:
        raise InputError(f"the reference {args.ref} holds no structure to score; check "
                         "--ref-map (its values) or name them with --structures")
    if args.json:
        print_json({"prediction": str(args.pred), "reference": str(args.ref),
                    "structures": _json_safe(results)})
    else:
        print(format_table(results))
    return 0
