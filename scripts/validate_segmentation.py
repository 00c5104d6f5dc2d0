#!/usr/bin/env python
"""Validate CardioPlan's segmentation on real data: one table per dataset.

Runs over a data folder laid out like ``../shared/data`` (``ct/chest_cta``, ``mri/acdc``,
``mri/la2018``, ``mri/hvsmr2_png``), the bundled phantom (``sample_data/phantom``) and the
synthetic bright-blood MR phantom (``mr_phantom``, made in memory), in two modes:

- ``auto``: no seeds at all (what the pipeline finds by itself);
- ``click``: one click per structure present in the reference, each at the structure's deepest
  interior point (maximum of its distance transform, in millimetres): the standard
  simulated-click protocol of interactive segmentation.

Every case goes through :func:`segmentation.pipeline.segment` (as ``cardioplan segment`` does),
except the 2D HVSMR slices, which go to the MR pipeline as one-slice volumes.  For every case
and structure it reports Dice, HD95 and ASSD (mm) from
:func:`segmentation.metrics.evaluate_labels`, then per dataset the mean and the worst case, and
the seconds per case.  ``--json FILE`` saves every figure.

Examples
--------
    .venv/bin/python scripts/validate_segmentation.py
    .venv/bin/python scripts/validate_segmentation.py --datasets acdc la2018 --json val.json
    .venv/bin/python scripts/validate_segmentation.py --data /data/my_copy --limit 3
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cardioplan import progress  # noqa: E402
from cardioplan.labels import LABELS  # noqa: E402
from cardioplan.seeds import Seed  # noqa: E402
from segmentation.metrics import evaluate_labels, structure_mask  # noqa: E402
from segmentation.seeded import deepest_point  # noqa: E402

log = logging.getLogger("validate_segmentation")

ACDC_MAP = {1: "right_ventricle", 2: "myocardium", 3: "left_ventricle"}
HVSMR_COLOURS = {(255, 0, 0): "left_ventricle", (0, 0, 255): "right_ventricle",
                 (255, 255, 0): "left_atrium", (0, 255, 255): "right_atrium",
                 (0, 255, 0): "aorta", (255, 255, 255): "pulmonary_artery",
                 (255, 0, 255): "superior_vena_cava", (128, 128, 128): "inferior_vena_cava"}
HVSMR_SCORED = ("left_ventricle", "right_ventricle", "left_atrium", "right_atrium", "aorta",
                "pulmonary_artery")


@dataclass
class Sample:
    """One validation case: an image, its reference labels and what to score."""

    dataset: str
    name: str
    image: sitk.Image
    ref: sitk.Image
    ref_map: dict[int, str]
    scored: tuple[str, ...]
    modality: str = "mr"
    auto: tuple[str, ...] = ()
    """Structures the pipeline is expected to find without clicks."""
    click: tuple[str, ...] | None = None
    """Structures to click (default: every structure of ``ref_map`` present in the reference)."""
    notes: list[str] = field(default_factory=list)


# -- datasets ---------------------------------------------------------------------------------
def load_acdc(root: Path) -> Iterator[Sample]:
    for img_path in sorted((root / "mri" / "acdc").glob("patient*_frame??.nii.gz")):
        gt = img_path.with_name(img_path.name.replace(".nii.gz", "_gt.nii.gz"))
        if gt.is_file():
            yield Sample("acdc", img_path.name[:-7], sitk.ReadImage(str(img_path)),
                         sitk.ReadImage(str(gt)), ACDC_MAP,
                         ("left_ventricle", "right_ventricle", "myocardium"),
                         auto=("left_ventricle",))


def load_la2018(root: Path) -> Iterator[Sample]:
    for img_path in sorted((root / "mri" / "la2018").glob("*_image.nii.gz")):
        lab = img_path.with_name(img_path.name.replace("_image", "_label"))
        if lab.is_file():
            yield Sample("la2018", img_path.name.split("_")[0][:8], sitk.ReadImage(str(img_path)),
                         sitk.ReadImage(str(lab)), {1: "left_atrium"}, ("left_atrium",))


def hvsmr_slice(image_png: Path, mask_png: Path) -> tuple[sitk.Image, sitk.Image]:
    """A 2D HVSMR slice and its colour mask as one-slice 3D images (1 mm pixels, see docs)."""
    from PIL import Image

    grey = np.asarray(Image.open(image_png).convert("L"), dtype=np.float32)
    rgb = np.asarray(Image.open(mask_png).convert("RGB"))
    lab = np.zeros(rgb.shape[:2], np.uint8)
    for colour, name in HVSMR_COLOURS.items():
        lab[np.all(rgb == colour, axis=-1)] = LABELS.value_of(name)
    return sitk.GetImageFromArray(grey[None]), sitk.GetImageFromArray(lab[None])


def load_hvsmr(root: Path) -> Iterator[Sample]:
    folder = root / "mri" / "hvsmr2_png"
    for img_path in sorted((folder / "images").glob("*.png")):
        mask = folder / "masks" / img_path.name
        if mask.is_file():
            image, ref = hvsmr_slice(img_path, mask)
            yield Sample("hvsmr2_png", img_path.stem, image, ref,
                         {lab.value: lab.name for lab in LABELS}, HVSMR_SCORED)


def load_chest_cta(root: Path) -> Iterator[Sample]:
    """Both chest CTA crops, each with an exclusive reference built from TotalSegmentator's masks.

    TotalSegmentator's masks overlap: its heart takes in the aortic root and the pulmonary
    trunk, which its aorta and pulmonary-artery masks also hold.  A label map holds one
    structure per voxel, so on each crop every vessel mask of this CT (both are on grids at
    whole-voxel offsets from the crops) takes precedence over the heart, as our pipeline's
    labels do; each crop scores the heart and its own vessel.
    """
    folder = root / "ct" / "chest_cta"
    heart_path = folder / "heart_mask.nii.gz"
    crops = (("aorta_ct_cropped", "aorta_mask", "aorta"),
             ("pulm_ct_cropped", "pulmonary_artery_mask", "pulmonary_artery"))
    vessel_paths = {structure: folder / f"{mask}.nii.gz" for _, mask, structure in crops}
    if not heart_path.is_file() or not all(p.is_file() for p in vessel_paths.values()):
        return
    for ct_name, _, structure in crops:
        ct_path = folder / f"{ct_name}.nii.gz"
        if not ct_path.is_file():
            continue
        ct = sitk.ReadImage(str(ct_path))
        # the masks lie on grids at whole-voxel offsets from the crop: nearest neighbour is exact
        heart = _on_grid(heart_path, ct)
        ref = sitk.Cast(heart * LABELS.value_of("heart"), sitk.sitkUInt8)
        for name, path in vessel_paths.items():
            ref = sitk.Mask(ref, _on_grid(path, ct), maskingValue=1,
                            outsideValue=LABELS.value_of(name))
        yield Sample("chest_cta", ct_name, ct, ref, {lab.value: lab.name for lab in LABELS},
                     ("heart", structure), modality="ct", auto=("heart", structure),
                     click=(), notes=["references are TotalSegmentator outputs"])


def _on_grid(mask_path: Path, image: sitk.Image) -> sitk.Image:
    """A binary mask file resampled (nearest neighbour) onto ``image``'s grid, 0 outside."""
    return sitk.Resample(sitk.ReadImage(str(mask_path)) > 0, image, sitk.Transform(),
                         sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)


def load_phantom(root: Path) -> Iterator[Sample]:
    """The bundled synthetic phantom (a DICOM CT series and its exact labels)."""
    folder = REPO / "sample_data" / "phantom"
    if not (folder / "dicom").is_dir() or not (folder / "labels.nii.gz").is_file():
        return
    from cardioplan.ingest import read_volume

    image = read_volume(folder / "dicom").image
    ref = sitk.ReadImage(str(folder / "labels.nii.gz"))
    present = [LABELS.by_value(v).name
               for v in np.unique(sitk.GetArrayViewFromImage(ref)) if v]
    yield Sample("phantom", folder.name, image, ref, {lab.value: lab.name for lab in LABELS},
                 tuple(present), modality="ct", auto=tuple(present))


def load_mr_phantom(root: Path) -> Iterator[Sample]:
    """The synthetic bright-blood MR phantom (:func:`cardioplan.phantom.make_mr_phantom`,
    1.5 mm, generated in memory): the 3D whole-heart test, one click per chamber."""
    from cardioplan.phantom import make_mr_phantom

    image, ref = make_mr_phantom(spacing=(1.5, 1.5, 1.5))
    chambers = ("left_ventricle", "right_ventricle", "left_atrium", "right_atrium")
    yield Sample("mr_phantom", "mr_phantom_1.5mm", image, ref,
                 {lab.value: lab.name for lab in LABELS}, chambers, click=chambers)


DATASETS: dict[str, Callable[[Path], Iterator[Sample]]] = {
    "phantom": load_phantom, "mr_phantom": load_mr_phantom, "chest_cta": load_chest_cta,
    "acdc": load_acdc, "la2018": load_la2018, "hvsmr2_png": load_hvsmr}


# -- protocol ---------------------------------------------------------------------------------
def simulated_clicks(ref: sitk.Image, ref_map: dict[int, str],
                     names: tuple[str, ...] | None = None) -> list[Seed]:
    """One click per reference structure, at its deepest interior point (physical mm)."""
    present = {int(v) for v in np.unique(sitk.GetArrayViewFromImage(ref))} - {0}
    wanted = names if names is not None else tuple(ref_map[v] for v in sorted(present)
                                                   if v in ref_map)
    seeds = []
    for name in wanted:
        mask = structure_mask(ref, name, ref_map)
        if np.any(sitk.GetArrayViewFromImage(mask)):
            seeds.append(Seed(name, deepest_point(mask)))
    return seeds


def segment(sample: Sample, seeds: list[Seed], structures: tuple[str, ...]) -> sitk.Image:
    """Run what a user would run: the dispatcher (:func:`segmentation.pipeline.segment`) for
    3D volumes; a single 2D slice goes to :func:`segmentation.mr.segment_mr` directly, as the
    dispatcher (and the CLI) refuse 2D input."""
    if min(sample.image.GetSize()) < 2:
        from segmentation.mr import segment_mr

        return segment_mr(sample.image, seeds=seeds, structures=list(structures))
    from cardioplan.volume import Volume
    from segmentation.pipeline import segment as dispatch

    volume = Volume(image=sample.image, modality=sample.modality.upper())
    result = dispatch(volume, modality=sample.modality, structures=list(structures),
                      seeds=seeds)
    return result.labels


def run_sample(sample: Sample, mode: str) -> dict[str, Any] | None:
    """Segment one case in one mode and score it; None when the mode does not apply."""
    if mode == "auto":
        if not sample.auto:
            return None
        seeds: list[Seed] = []
        targets = sample.auto
    else:
        if sample.click == ():
            return None
        seeds = simulated_clicks(sample.ref, sample.ref_map, sample.click)
        targets = tuple(dict.fromkeys(s.structure for s in seeds))
    t0 = time.perf_counter()
    try:
        pred = segment(sample, seeds, targets)
    except Exception as exc:  # report the failure in the table and carry on with the others
        log.warning("%s/%s %s: %s", sample.dataset, sample.name, mode, exc)
        return {"case": sample.name, "mode": mode, "error": str(exc),
                "seconds": time.perf_counter() - t0}
    seconds = time.perf_counter() - t0
    scored = tuple(s for s in sample.scored if s in targets)
    metrics = evaluate_labels(pred, sample.ref, ref_map=sample.ref_map, structures=scored)
    return {"case": sample.name, "mode": mode, "seconds": seconds, "metrics": metrics}


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, worst and count of Dice/HD95/ASSD per structure over the rows of one mode."""
    out: dict[str, dict[str, float]] = {}
    names = dict.fromkeys(n for r in rows for n in r.get("metrics", {}))
    for name in names:
        d = [r["metrics"][name]["dice"] for r in rows if name in r.get("metrics", {})]
        h = [r["metrics"][name]["hd95_mm"] for r in rows if name in r.get("metrics", {})]
        a = [r["metrics"][name]["assd_mm"] for r in rows if name in r.get("metrics", {})]
        d = [0.0 if math.isnan(v) else v for v in d]
        out[name] = {"dice_mean": float(np.mean(d)), "dice_worst": float(np.min(d)),
                     "hd95_mean_mm": float(np.nanmean(h)) if not all(map(math.isnan, h))
                     else math.nan,
                     "assd_mean_mm": float(np.nanmean(a)) if not all(map(math.isnan, a))
                     else math.nan, "n": len(d)}
    return out


def format_dataset(name: str, results: dict[str, list[dict[str, Any]]]) -> str:
    lines = [f"== {name} =="]
    for mode, rows in results.items():
        if not rows:
            continue
        errors = [r for r in rows if "error" in r]
        secs = [r["seconds"] for r in rows]
        summary = summarise([r for r in rows if "metrics" in r])
        lines.append(f"-- {mode}: {len(rows)} cases, {np.mean(secs):.2f} s/case "
                     f"(max {np.max(secs):.2f} s)" + (f", {len(errors)} failed" if errors else ""))
        lines.append(f"   {'structure':<20}{'Dice mean':>10}{'worst':>8}{'HD95 mm':>9}"
                     f"{'ASSD mm':>9}{'n':>4}  worst case")
        for struct, s in summary.items():
            worst = min((r for r in rows if struct in r.get("metrics", {})),
                        key=lambda r, k=struct: _nan0(r["metrics"][k]["dice"]))
            lines.append(f"   {struct:<20}{s['dice_mean']:>10.3f}{s['dice_worst']:>8.3f}"
                         f"{s['hd95_mean_mm']:>9.2f}{s['assd_mean_mm']:>9.2f}{s['n']:>4}  "
                         f"{worst['case']}")
        if len(summary) > 1:
            lines.append(f"   {'mean of structures':<20}"
                         f"{np.mean([s['dice_mean'] for s in summary.values()]):>10.3f}")
        for r in errors:
            lines.append(f"   FAILED {r['case']}: {r['error']}")
    return "\n".join(lines)


def _nan0(v: float) -> float:
    return 0.0 if math.isnan(v) else v


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def validate(root: Path, datasets: list[str], *, modes: tuple[str, ...] = ("auto", "click"),
             limit: int | None = None) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Run every selected dataset in every mode; returns ``{dataset: {mode: [rows]}}``."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for ds in datasets:
        samples = list(DATASETS[ds](root))[:limit]
        if not samples:
            log.warning("%s: no cases found under %s", ds, root)
            continue
        res: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        for sample in progress.progress(samples, desc=ds, unit="case"):
            for mode in modes:
                row = run_sample(sample, mode)
                if row is not None:
                    res[mode].append(row)
        out[ds] = res
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="\n".join(__doc__.split("Examples")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data",
                        help="data folder laid out like ../shared/data (default: %(default)s)")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS),
                        help="datasets to run (default: all found)")
    parser.add_argument("--modes", nargs="+", choices=["auto", "click"],
                        default=["auto", "click"], help="evaluation modes (default: both)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="at most N cases per dataset (quick check)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also save every figure (per case and summary) as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    progress.enable(not args.quiet and sys.stderr.isatty())
    if not args.data.is_dir():
        parser.error(f"--data {args.data}: not a folder")
    results = validate(args.data, args.datasets, modes=tuple(args.modes), limit=args.limit)
    for ds, res in results.items():
        print(format_dataset(ds, res))
        print()
    if args.json:
        from cardioplan.fileio import write_json_atomic

        payload = {ds: {mode: {"cases": rows,
                               "summary": summarise([r for r in rows if "metrics" in r])}
                        for mode, rows in res.items()} for ds, res in results.items()}
        write_json_atomic(args.json, _json_safe(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
