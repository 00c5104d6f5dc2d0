#!/usr/bin/env python3
"""Generate ``sample_data/phantom/``: the bundled synthetic congenital-heart CT.

Writes (deterministically: running it again gives byte-identical files)

* ``sample_data/phantom/dicom/``   CT DICOM series, 1 mm voxels, JPEG 2000 lossless, fake patient
* ``sample_data/phantom/labels.nii.gz``   the ground-truth label map (cardioplan.labels values)
* ``sample_data/phantom/seeds.json``      one seed per chamber at its deepest interior point

Usage::

    python scripts/make_sample_data.py [--out sample_data/phantom] [--transfer-syntax rle]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from pathlib import Path

import SimpleITK as sitk

from cardioplan.dicom import TRANSFER_SYNTAXES, write_series
from cardioplan.fileio import atomic_path
from cardioplan.labels import LABELS
from cardioplan.phantom import make_phantom
from cardioplan.seeds import Seed, write_seeds
from segmentation.seeded import deepest_point

REPO = Path(__file__).resolve().parents[1]
CHAMBERS = ("left_ventricle", "right_ventricle", "left_atrium", "right_atrium")


def _round_point(point: tuple[float, float, float]) -> tuple[float, float, float]:
    return tuple(round(float(c), 2) for c in point)  # type: ignore[return-value]


def write_labels_deterministic(labels: sitk.Image, path: Path) -> None:
    """Write NIfTI with a gzip header that has no timestamp, so the bytes are reproducible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix("")  # .nii
    with atomic_path(raw) as tmp:
        sitk.WriteImage(labels, str(tmp), useCompression=False)
    with atomic_path(path) as tmp, open(raw, "rb") as src, open(tmp, "wb") as fh, \
            gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=9) as dst:
        shutil.copyfileobj(src, dst)
    raw.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "sample_data" / "phantom",
                        help="output folder (default: sample_data/phantom)")
    parser.add_argument("--transfer-syntax", default="jpeg2000-lossless",
                        choices=[k for k in TRANSFER_SYNTAXES if "near" not in k
                                 and k != "jpeg2000"],
                        help="lossless DICOM transfer syntax (default: jpeg2000-lossless)")
    args = parser.parse_args(argv)

    image, labels = make_phantom(spacing=(1.0, 1.0, 1.0), seed=0)
    dicom_dir = args.out / "dicom"
    if dicom_dir.exists():
        shutil.rmtree(dicom_dir)
    files = write_series(image, dicom_dir, modality="CT",
                         series_description="CardioPlan phantom CTA 1.0 mm (synthetic)",
                         transfer_syntax=args.transfer_syntax, uid_seed="cardioplan-phantom-v1",
                         patient_name="PHANTOM^CARDIOPLAN", patient_id="CP-PHANTOM-0001",
                         study_date="20000101", file_prefix="CT")
    write_labels_deterministic(labels, args.out / "labels.nii.gz")
    seeds = [Seed(name, _round_point(deepest_point(labels == LABELS.value_of(name))))
             for name in CHAMBERS]
    write_seeds(args.out / "seeds.json", seeds)
    total = sum(f.stat().st_size for f in files)
    total += (args.out / "labels.nii.gz").stat().st_size
    sys.stdout.write(f"wrote {len(files)} DICOM files, labels and seeds to {args.out} "
                     f"({total / 1e6:.1f} MB)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
