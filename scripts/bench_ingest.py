#!/usr/bin/env python3
"""Benchmark DICOM ingest against `cat`, SimpleITK and dcm2niix, in one run.

Builds a 512x512x320 int16 CT series (explicit VR little endian, one file per slice) in a
temporary folder with :func:`cardioplan.dicom.write_series`, then times, cold and warm:

* ``cat`` over the files (the I/O floor; the baseline of every ratio is ``cat`` cold),
* CardioPlan's header scan (``cardioplan info``) and full load (``load_volume``): as shipped
  (prefetching files ahead of the header parser, one reader thread), without prefetch, and
  with four reader threads; peak memory and CPU time,
* a plain SimpleITK ``ImageSeriesReader`` (GDCM) read,
* Debian's ``dcm2niix`` with uncompressed (``-z n``) and gzip (``-z y``) output,
* writing ``image.nii.gz`` at gzip levels 1 and 6, and an uncompressed ``.nii``.

"Cold" evicts the benchmark's files from the page cache first: with ``posix_fadvise
(DONTNEED)`` per file (default; affects only these files), or with ``--drop-caches``
(``echo 3 > /proc/sys/vm/drop_caches``, needs root; falls back to fadvise).  Every load runs in
a fresh subprocess so that its peak memory (``ru_maxrss``) is its own; times are measured
inside the child after imports, so interpreter start-up is not counted (except for dcm2niix,
which is timed as a whole process).  The CPU time (user + system) of the best warm run is shown
too: unlike wall time it hardly changes when other jobs compete for the cores.

Usage::

    python scripts/bench_ingest.py [--slices 320] [--repeat 3] [--drop-caches] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cardioplan.dicom import write_series  # noqa: E402

CHILD = r"""
import json, resource, sys, time
mode, folder = sys.argv[1], sys.argv[2]
import numpy as np, SimpleITK as sitk
from cardioplan.dicom import load_volume, scan, load_series
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
before = peak()
cpu0 = cpu()
t = time.perf_counter()
if mode == "scan":
    r = scan(folder); n = len(r.series[0].frames); dtype = "-"
elif mode.startswith("load"):
    threads = 4 if mode.endswith("threads") else None
    r = scan(folder, prefetch=not mode.endswith("noprefetch"))
    v = load_series(r.series[0], threads=threads)
    n = v.image.GetSize()[2]; dtype = v.image.GetPixelIDTypeAsString()
elif mode == "sitk":
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder)
    reader = sitk.ImageSeriesReader(); reader.SetFileNames(files)
    img = reader.Execute(); n = img.GetSize()[2]; dtype = img.GetPixelIDTypeAsString()
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "cpu": cpu() - cpu0, "peak_delta": peak() - before,
                  "slices": n, "dtype": dtype}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=320)
    ap.add_argument("--repeat", type=int, default=3, help="repeats per warm measurement (best)")
    ap.add_argument("--drop-caches", action="store_true",
                    help="evict with /proc/sys/vm/drop_caches instead of per-file fadvise")
    ap.add_argument("--keep", type=Path, help="build the series here and keep it")
    args = ap.parse_args(argv)

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cp-bench-"))
    folder = root / "series"
    try:
        files = build_series(folder, args.slices)
        volume_mib = 512 * 512 * args.slices * 2 / 2**20
        metrics: dict[str, float] = {}
        rows = run_all(folder, files, args, volume_mib, metrics)
        print_table(rows, volume_mib, args, metrics)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def build_series(folder: Path, slices: int) -> list[Path]:
    if folder.is_dir() and len(list(folder.glob("*.dcm"))) == slices:
        return sorted(folder.glob("*.dcm"))
    t = time.perf_counter()
    rng = np.random.default_rng(1)
    z, y, x = np.ogrid[0:slices, 0:512, 0:512]
    body = ((x - 256) ** 2 / 200**2 + (y - 256) ** 2 / 150**2) < 1
    arr = np.where(body, 40, -1000).astype(np.int16) + np.zeros((slices, 1, 1), np.int16)
    arr += rng.integers(-30, 30, size=arr.shape, dtype=np.int16)
    arr[:, 240:270, 300:330] = 1200 + (z % 50).astype(np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.7, 0.7, 0.625))
    img.SetOrigin((-180.0, -180.0, -300.0))
    files = write_series(img, folder, uid_seed="bench", series_description="bench CT")
    print(f"built {slices} slices of 512x512 in {time.perf_counter() - t:.1f} s "
          f"({sum(f.stat().st_size for f in files) / 2**20:.0f} MiB) in {folder}")
    return files


def evict(files: list[Path], *, global_drop: bool) -> str:
    os.sync()
    if global_drop:
        try:
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
            return "drop_caches"
        except OSError as exc:
            print(f"drop_caches failed ({exc}); using posix_fadvise(DONTNEED) per file")
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return "fadvise"


def time_cat(files: list[Path]) -> float:
    t = time.perf_counter()
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def child(mode: str, folder: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(folder)], capture_output=True,
                         text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_dcm2niix(folder: Path, gzip: bool) -> float | None:
    exe = shutil.which("dcm2niix")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        subprocess.run([exe, "-z", "y" if gzip else "n", "-o", out, "-f", "vol", str(folder)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - t


def time_nifti_writes(folder: Path) -> list[tuple[str, float, int]]:
    from cardioplan.dicom import load_volume

    image = load_volume(folder).image
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, compress, level in (("image.nii (uncompressed)", False, 0),
                                      ("image.nii.gz level 1", True, 1),
                                      ("image.nii.gz level 6", True, 6)):
            path = Path(tmp) / ("image.nii.gz" if compress else "image.nii")
            t = time.perf_counter()
            sitk.WriteImage(image, str(path), useCompression=compress,
                            compressionLevel=level if compress else -1)
            out.append((name, time.perf_counter() - t, path.stat().st_size))
    return out


def run_all(folder: Path, files: list[Path], args: argparse.Namespace,
            volume_mib: float, metrics: dict[str, float]) -> list[tuple[str, float, str]]:
    rows: list[tuple[str, float, str]] = []
    method = evict(files, global_drop=args.drop_caches)
    cat_cold = []
    for _ in range(args.repeat):
        evict(files, global_drop=args.drop_caches)
        cat_cold.append(time_cat(files))
    rows.append((f"cat, cold ({method}, median)", statistics.median(cat_cold), ""))
    rows.append(("cat, warm (best)", min(time_cat(files) for _ in range(args.repeat)), ""))

    def measure(label: str, mode: str) -> None:
        cold = []
        for _ in range(args.repeat):
            evict(files, global_drop=args.drop_caches)
            cold.append(child(mode, folder))
        warm = [child(mode, folder) for _ in range(args.repeat)]
        best = min(warm, key=lambda r: r["seconds"])
        mem = max(r["peak_delta"] for r in [*cold, *warm]) / 2**20
        cpu_s = min(r["cpu"] for r in warm)
        note = (f"{best['dtype']}; peak +{mem:.0f} MiB ({mem / volume_mib:.2f}x volume); "
                f"CPU {cpu_s:.2f} s")
        if mode == "scan":
            note = f"{best['slices']} headers; CPU {cpu_s:.2f} s"
        rows.append((f"{label}, cold (median)", statistics.median(r["seconds"] for r in cold),
                     note))
        rows.append((f"{label}, warm (best)", best["seconds"], note))
        metrics[f"{mode} cold"] = rows[-2][1]
        metrics[f"{mode} warm"] = best["seconds"]
        metrics[f"{mode} peak MiB"] = mem

    measure("CardioPlan header scan (info)", "scan")
    measure("CardioPlan load (scan + pixels)", "load")
    measure("CardioPlan load, no prefetch", "load-noprefetch")
    measure("CardioPlan load, 4 reader threads", "load-threads")
    measure("SimpleITK ImageSeriesReader", "sitk")
    for gzip in (False, True):
        evict(files, global_drop=args.drop_caches)
        cold = time_dcm2niix(folder, gzip)
        if cold is None:
            rows.append(("dcm2niix (not installed)", float("nan"), ""))
            break
        warm = time_dcm2niix(folder, gzip)
        label = "dcm2niix -z y (gzip)" if gzip else "dcm2niix -z n"
        rows.append((f"{label}, cold", cold, "whole process"))
        rows.append((f"{label}, warm", warm or float("nan"), "whole process"))
    for name, seconds, size in time_nifti_writes(folder):
        rows.append((f"write {name}", seconds, f"{size / 2**20:.0f} MiB"))
    return rows


def print_table(rows: list[tuple[str, float, str]], volume_mib: float,
                args: argparse.Namespace, metrics: dict[str, float]) -> None:
    base = rows[0][1]
    print(f"\n512x512x{args.slices} int16 CT = {volume_mib:.0f} MiB; CPUs: {os.cpu_count()}; "
          f"baseline = {rows[0][0]} = {base:.3f} s")
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement'.ljust(width)}  {'seconds':>8}  {'x cat cold':>10}  note")
    for label, seconds, note in rows:
        print(f"{label.ljust(width)}  {seconds:8.3f}  {seconds / base:10.2f}  {note}")
    goal_mem = 1.3 * volume_mib + 100 * 1e6 / 2**20
    checks = [
        ("load, cold <= 1.5x cat cold", metrics["load cold"] / base, 1.5, "x"),
        ("header scan, warm <= 0.5 s", metrics["scan warm"], 0.5, " s"),
        ("load peak <= 1.3x volume + 100 MB", metrics["load peak MiB"], goal_mem, " MiB"),
    ]
    print("\ngoals:")
    for name, value, limit, unit in checks:
        print(f"  {'PASS' if value <= limit else 'MISS'}  {name}: {value:.2f}{unit} "
              f"(limit {limit:.2f}{unit})")


if __name__ == "__main__":
    sys.exit(main())
