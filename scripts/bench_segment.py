#!/usr/bin/env python3
"""Benchmark ``cardioplan segment`` against a naive full-resolution SimpleITK pipeline.

Builds a synthetic 512 x 512 x 320 contrast CT (0.4 x 0.4 x 0.5 mm, the CardioPlan phantom),
writes it as an uncompressed NIfTI, then in the same run, both limited to 2 CPU cores:

* **cardioplan** -- ``cardioplan segment scan.nii -o CASE --no-mesh`` in a subprocess, end to
  end (load, segment, write ``image.nii.gz``, ``labels.nii.gz``, ``labels.seg.nrrd``,
  ``case.json``); wall time and the child's peak RSS; then ``cardioplan segment CASE --force``
  on the case just made (no image to write);
* **cardioplan (library)** -- :func:`segmentation.pipeline.segment` on the loaded volume;
* **baseline** -- read, 3x3x3 median, threshold, connected components (largest kept),
  radius-2 binary opening and closing, write the labels: the obvious SimpleITK pipeline at
  full resolution.

Prints the times, ratios and the Dice of the whole heart (baseline vs cardioplan) against the
phantom's ground truth.  Usage::

    python scripts/bench_segment.py [--size 512 512 320] [--cores 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk

from cardioplan.phantom import make_phantom
from cardioplan.volume import Volume
from segmentation.metrics import dice, structure_mask
from segmentation.pipeline import segment


def _limit_env(cores: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(cores)
    return env


def _pin(cores: int) -> None:
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, available[:cores])


def run_cardioplan(scan: Path, out: Path | None, cores: int) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, of all children so far) of ``cardioplan segment``."""
    cmd = [sys.executable, "-m", "cardioplan", "segment", str(scan), "--no-mesh", "-q"]
    cmd += ["-o", str(out)] if out is not None else ["--force"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=_limit_env(cores), preexec_fn=lambda: _pin(cores),
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return wall, rss_mb


def run_baseline(scan: Path, out: Path) -> tuple[float, sitk.Image]:
    """The naive full-resolution SimpleITK pipeline, read to write."""
    start = time.perf_counter()
    image = sitk.ReadImage(str(scan))
    smooth = sitk.Median(image, [1, 1, 1])
    mask = sitk.BinaryThreshold(smooth, 150, 1000, 1, 0)
    comps = sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True)
    largest = sitk.BinaryThreshold(comps, 1, 1, 1, 0)
    opened = sitk.BinaryMorphologicalOpening(largest, [2, 2, 2], sitk.sitkBall)
    closed = sitk.BinaryMorphologicalClosing(opened, [2, 2, 2], sitk.sitkBall)
    sitk.WriteImage(closed, str(out), useCompression=True, compressionLevel=1)
    return time.perf_counter() - start, closed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs=3, default=[512, 512, 320],
                        metavar=("X", "Y", "Z"))
    parser.add_argument("--spacing", type=float, nargs=3, default=[0.4, 0.4, 0.5],
                        metavar=("SX", "SY", "SZ"))
    parser.add_argument("--cores", type=int, default=2, help="CPU cores for both (default 2)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    _pin(args.cores)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.cores)
    with tempfile.TemporaryDirectory(prefix="bench_segment_") as tmp:
        tmpdir = Path(tmp)
        t0 = time.perf_counter()
        image, truth = make_phantom(spacing=args.spacing, shape=args.size, scale=1.3)
        make_s = time.perf_counter() - t0
        scan = tmpdir / "scan.nii"
        sitk.WriteImage(image, str(scan))
        del image

        cp_wall, cp_rss = run_cardioplan(scan, tmpdir / "case", args.cores)
        case_wall, _ = run_cardioplan(tmpdir / "case", None, args.cores)
        labels = sitk.ReadImage(str(tmpdir / "case" / "labels.nii.gz"))
        volume = Volume(sitk.ReadImage(str(scan)), modality="CT")
        t0 = time.perf_counter()
        segment(volume)
        lib_s = time.perf_counter() - t0
        del volume
        base_s, base = run_baseline(scan, tmpdir / "baseline.nii.gz")

        heart = structure_mask(truth, "heart")
        figures = {
            "size": args.size, "spacing_mm": args.spacing, "cores": args.cores,
            "phantom_seconds": round(make_s, 2),
            "cardioplan_segment_seconds": round(cp_wall, 2),
            "cardioplan_peak_rss_mb": round(cp_rss, 1),
            "cardioplan_segment_existing_case_seconds": round(case_wall, 2),
            "library_segment_seconds": round(lib_s, 2),
            "baseline_seconds": round(base_s, 2),
            "speedup_vs_baseline": round(base_s / cp_wall, 2),
            "heart_dice_cardioplan": round(dice(structure_mask(labels, "heart"), heart), 3),
            "heart_dice_baseline": round(dice(base, heart), 3),
        }
    if args.json:
        json.dump(figures, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for key, value in figures.items():
            sys.stdout.write(f"{key:<30} {value}\n")
        sys.stdout.write(f"\ncardioplan segment is {figures['speedup_vs_baseline']:.1f}x faster "
                         "than the naive full-resolution SimpleITK pipeline "
                         f"({cp_wall:.1f} s vs {base_s:.1f} s on {args.cores} cores, peak RSS "
                         f"{cp_rss:.0f} MB)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
