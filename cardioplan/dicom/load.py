"""Load one DICOM series (one cardiac phase) as a 3D :class:`~cardioplan.volume.Volume`.

* Geometry comes from ImagePositionPatient / ImageOrientationPatient (per frame for enhanced
  multi-frame objects): origin = first slice, direction = (row, column, slice normal), slice
  spacing = distance between positions along the normal (never SliceThickness).
* CT values are Hounsfield units (rescale slope/intercept, per frame when they differ).
* Pixels are read slab by slab (16 MiB of slices) into one reused buffer of the stored type
  (uncompressed data straight from the file; compressed data through pydicom's decoders:
  pylibjpeg, pyjpegls, GDCM, only the frames needed), rescaled in place, and pasted into one
  preallocated SimpleITK image: the peak memory is the volume plus two slabs.  The result is
  int16 whenever the values fit (uint8/uint16 for data that needs it, float32 only for
  non-integer rescales).
* Compressed files are decoded in a small thread pool (the decoders release the GIL);
  uncompressed files are read in one thread, with the next slab prefetched by the kernel.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.pixels import iter_pixels, pixel_array
from pydicom.uid import UID

from cardioplan.dicom.discover import ScanResult, Series, prefetch_file, scan
from cardioplan.dicom.geometry import Frame, Phase, orthonormal, series_geometry
from cardioplan.errors import DicomError, GeometryError, InputError
from cardioplan.progress import progress
from cardioplan.volume import Volume

__all__ = ["load_volume", "load_series", "choose_series", "choose_phase", "output_dtype",
           "DEFAULT_PHASE_PERCENT"]

log = logging.getLogger(__name__)

DEFAULT_PHASE_PERCENT = 75.0
"""Default cardiac phase (% of the R-R interval): mid-diastole, when the heart moves least."""

_MODALITY_RANK = {"CT": 0, "MR": 1}
_MAX_DEVIATION = 0.10  # slice steps within 10 % of typical load as-is (with a warning)
_SMALL = 0.01  # with --allow-gaps, steps deviating more than 1 % are interpolated
_SLAB_BYTES = 16 * 2**20  # slices are read, rescaled and pasted in slabs of this size
_FRAMES_PER_JOB = 8  # frames of one multi-frame file decoded per thread-pool job
_JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
"""12-bit lossy JPEG: pylibjpeg, Pillow and pydicom's GDCM plugin cannot decode it, and
SimpleITK's GDCM decodes some files to plausible but wrong values; DCMTK's ``dcmdjpeg`` is
right (WG-04 MR1-4 within 1 % of the originals), so it is the decoder for these files."""
_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
_BE = "1.2.840.10008.1.2.2"
_DEFLATED = "1.2.840.10008.1.2.1.99"


# -- public API ----------------------------------------------------------------------------------
def load_volume(path: str | os.PathLike[str], *, series: str | None = None,
                phase: str | None = None, allow_gaps: bool = False,
                scan_result: ScanResult | None = None) -> Volume:
    """Scan ``path`` for DICOM, choose a series and a phase, and load it.

    Parameters
    ----------
    path : path-like
        DICOM folder (recursive), file or DICOMDIR.
    series : str, optional
        SeriesInstanceUID, SeriesNumber, or the index ``cardioplan info`` prints (``"2"`` or
        ``"#2"``).  Default: the largest 3D series, CT preferred (see :func:`choose_series`).
    phase : str, optional
        Cardiac phase of a 4D series: a 1-based index (``"3"``) or a percentage of the R-R
        interval (``"75%"``).  Default: closest to 75 % when known, else the first.
    allow_gaps : bool
        Load a series with missing slices or irregular spacing by interpolating it onto a
        regular grid at the typical spacing, instead of refusing.
    scan_result : ScanResult, optional
        A previous :func:`~cardioplan.dicom.discover.scan` of ``path`` (saves re-reading).

    Returns
    -------
    Volume
        The image in LPS mm; CT in HU.

    Raises
    ------
    DicomError, GeometryError
        Nothing loadable, an ambiguous choice, undecodable pixels, gaps (without
        ``allow_gaps``), mixed orientations.

    Examples
    --------
    >>> vol = load_volume("/data/ct_folder")          # doctest: +SKIP
    >>> vol.image.GetSize(), vol.image.GetPixelIDTypeAsString()   # doctest: +SKIP
    ((512, 512, 320), '16-bit signed integer')
    """
    result = scan_result if scan_result is not None else scan(path, prefetch=True)
    chosen, why = choose_series(result, series)
    if series is None and len(result.series) > 1:
        log.warning("%s", why)  # an automatic choice among several: the user must know
    vol = load_series(chosen, phase=phase, allow_gaps=allow_gaps)
    vol.source["series_choice"] = why
    vol.source["path"] = str(Path(path).absolute())
    if result.unreadable:
        vol.warnings.append(f"{len(result.unreadable)} unreadable DICOM file(s) skipped: "
                            + ", ".join(p.name for p, _ in result.unreadable[:5]))
    return vol


def choose_series(result: ScanResult, selector: str | None = None) -> tuple[Series, str]:
    """Pick the series to load; returns it and a sentence saying why.

    ``selector`` is a SeriesInstanceUID, a SeriesNumber, the index from ``cardioplan info``
    (``"#N"`` forces the index), or words from the SeriesDescription (case-insensitive).
    Without a selector a lone series is taken; otherwise the largest volumetric series (>= 2
    slices per phase) of the preferred modality (CT, then MR) is chosen, series that cannot
    form one volume (mixed orientations, duplicate positions) last.  Equally good candidates
    that are one cardiac phase each (their R-R percentages are recorded) give the one closest
    to mid-diastole; otherwise they are an error listing them.
    """
    if not result.series:
        reasons = "; ".join(sorted({s.reason for s in result.skipped})) or "none"
        raise DicomError(f"no image series found in {result.root} (skipped objects: {reasons}); "
                         "point to the folder with the CT or MR images")
    if selector is not None:
        return _select(result, selector), f"chosen with --series {selector}"
    if len(result.series) == 1:
        return result.series[0], "the only image series"
    volumetric = [s for s in result.series if s.slices_per_phase >= 2]
    pool = volumetric or result.series
    ranked = sorted(pool, key=_rank)
    best = ranked[0]
    reason = f"the largest {best.modality} volume among {len(result.series)} series"
    if len(ranked) > 1 and _rank(ranked[1])[:3] == _rank(best)[:3]:
        ties = [s for s in ranked if _rank(s)[:3] == _rank(best)[:3]]
        percents = [_series_percent(s) for s in ties]
        if None in percents or len(set(percents)) < len(percents):
            listing = "; ".join(f"#{s.index} {_describe(s)}" for s in ties)
            raise DicomError(f"{len(ties)} series are equally good candidates ({listing}); "
                             "choose one with --series (index, SeriesNumber or UID), e.g. "
                             f"--series {ties[0].index}")
        # one series per cardiac phase (a common cardiac CT export): mid-diastole, as for 4D
        best = min(ties, key=lambda s: abs(_series_percent(s) - DEFAULT_PHASE_PERCENT))  # type: ignore[operator]
        reason = (f"of {len(ties)} same-size series, one per cardiac phase, the one at "
                  f"{_series_percent(best):g} % R-R, closest to mid-diastole "
                  f"({DEFAULT_PHASE_PERCENT:g} %)")
    why = (f"chose series #{best.index} {_describe(best)}: {reason}; choose another with "
           f"--series N (see `cardioplan info {result.root}`)")
    return best, why


def choose_phase(phases: Sequence[Phase], selector: str | None = None) -> tuple[Phase, str]:
    """Pick a cardiac phase; returns it and a sentence saying why.

    ``selector``: ``"3"`` (1-based index) or ``"75%"`` (closest percentage of R-R).  Default:
    the phase closest to :data:`DEFAULT_PHASE_PERCENT` when percentages are known (from
    NominalPercentageOfCardiacPhase, or TriggerTime with NominalInterval/HeartRate), else
    the first.

    Examples
    --------
    >>> phase, why = choose_phase(series.phases, "40%")     # doctest: +SKIP
    """
    count = len(phases)
    known = [p for p in phases if p.percent_rr is not None]
    if selector is None:
        if count == 1:
            return phases[0], "single phase"
        if len(known) == count:
            best = min(phases, key=lambda p: abs(p.percent_rr - DEFAULT_PHASE_PERCENT))  # type: ignore[operator]
            return best, (f"phase {best.index} of {count} ({best.percent_rr:g} % R-R): closest "
                          f"to mid-diastole ({DEFAULT_PHASE_PERCENT:g} %); choose another with "
                          "--phase N or --phase P%")
        return phases[0], (f"phase 1 of {count} (the R-R percentage of the phases is unknown); "
                           "choose another with --phase N")
    text = selector.strip()
    if text.endswith("%"):
        try:
            want = float(text[:-1])
        except ValueError:
            raise InputError(f"--phase {selector!r} is not a percentage; use e.g. 75%") from None
        if len(known) != count:
            raise InputError(f"--phase {selector}: this series does not record the R-R "
                             "percentage of its phases (no NominalPercentageOfCardiacPhase, and "
                             f"no trigger time with a known R-R interval); use an index 1..{count}")
        best = min(phases, key=lambda p: abs(p.percent_rr - want))  # type: ignore[operator]
        return best, (f"phase {best.index} of {count} ({best.percent_rr:g} % R-R), closest to "
                      f"the requested {want:g} %")
    try:
        index = int(text)
    except ValueError:
        raise InputError(f"--phase {selector!r} is neither an index nor a percentage; use e.g. "
                         "--phase 3 or --phase 75%") from None
    if not 1 <= index <= count:
        raise InputError(f"--phase {index} is out of range: the series has {count} phase(s), "
                         f"numbered 1..{count}")
    return phases[index - 1], f"phase {index} of {count}, chosen with --phase"


def load_series(series: Series, *, phase: str | None = None, allow_gaps: bool = False,
                threads: int | None = None) -> Volume:
    """Load one phase of a discovered series as a 3D volume.

    Parameters
    ----------
    series : Series
        From :func:`cardioplan.dicom.discover.scan`.
    phase : str, optional
        See :func:`choose_phase`.
    allow_gaps : bool
        Interpolate missing slices / irregular spacing onto a regular grid instead of refusing.
    threads : int, optional
        Decoder threads (default: one for uncompressed files, which is fastest, else
        ``min(4, CPUs)``).

    Returns
    -------
    Volume

    Examples
    --------
    >>> result = scan("scans/cine")                            # doctest: +SKIP
    >>> vol = load_series(result.series[0], phase="40%")       # doctest: +SKIP
    >>> vol.phase["percent_rr"]                                # doctest: +SKIP
    40.0
    """
    chosen, why = choose_phase(series.phases, phase)
    if len(series.phases) > 1:  # the default choice is news to the user: say it loudly
        (log.info if phase is not None else log.warning)("series #%d: %s", series.index, why)
    geo = series_geometry(chosen.frames)
    _check_geometry(series, geo, allow_gaps=allow_gaps)
    frames = [chosen.frames[i] for i in geo.order]
    _check_pixel_format(series, frames)
    image = _assemble(frames, threads=threads)
    image, extra = _place(image, frames, geo, allow_gaps=allow_gaps)
    warnings = list(series.warnings) + extra
    for w in warnings:
        log.warning("series #%d: %s", series.index, w)
    phase_info = chosen.summary(len(series.phases)) if len(series.phases) > 1 else None
    if phase_info is not None:
        phase_info["choice"] = why
    source = _provenance(series, frames)
    return Volume(image=image, modality=series.modality, description=series.description,
                  series_uid=series.series_uid or None, phase=phase_info, source=source,
                  warnings=warnings)


def output_dtype(lo: float, hi: float, *, integral: bool, stored: np.dtype) -> np.dtype:
    """Smallest safe NumPy type for rescaled values in ``[lo, hi]``.

    Examples
    --------
    >>> output_dtype(-1024, 3071, integral=True, stored=np.dtype(np.uint16))
    dtype('int16')
    >>> output_dtype(0, 255, integral=True, stored=np.dtype(np.uint8))
    dtype('uint8')
    >>> output_dtype(-1.5, 10.0, integral=False, stored=np.dtype(np.int16))
    dtype('float32')
    """
    if not integral:
        return np.dtype(np.float32)
    if stored.itemsize == 1 and lo >= 0 and hi <= 255:
        return np.dtype(np.uint8)
    if lo >= -32768 and hi <= 32767:
        return np.dtype(np.int16)
    if lo >= 0 and hi <= 65535:
        return np.dtype(np.uint16)
    if lo >= -(2 ** 31) and hi < 2 ** 31:
        return np.dtype(np.int32)
    return np.dtype(np.float32)


# -- selection helpers -----------------------------------------------------------------------------
def _rank(s: Series) -> tuple[int, int, int, int]:
    """Sort key: loadable first, then modality (CT, MR, others), then size."""
    geo = s.geometry
    broken = geo is not None and (geo.mixed_orientations > 1 or geo.mixed_pixels or
                                  (bool(geo.duplicates) and len(s.phases) == 1))
    return (int(broken), _MODALITY_RANK.get(s.modality, 9), -s.voxels, s.index)


def _series_percent(s: Series) -> float | None:
    """R-R percentage of a single-phase series (one series per phase), when recorded."""
    return s.phases[0].percent_rr if len(s.phases) == 1 else None


def _describe(s: Series) -> str:
    number = f"number {s.series_number}, " if s.series_number is not None else ""
    cols, rows = s.matrix
    desc = f"'{s.description}' " if s.description else ""
    return f"{desc}({number}{s.modality}, {cols}x{rows}x{s.slices_per_phase})"


def _select(result: ScanResult, selector: str) -> Series:
    text = selector.strip()
    by_uid = [s for s in result.series if s.series_uid and s.series_uid == text]
    if by_uid:
        return by_uid[0]
    force_index = text.startswith("#")
    number_text = text[1:] if force_index else text
    try:
        n = int(number_text)
    except ValueError:
        n = None
    matches: list[Series] = []
    if n is not None:
        matches = [s for s in result.series if s.index == n]
        if not force_index:
            matches += [s for s in result.series if s.series_number == n and s not in matches]
    else:  # words: a case-insensitive part of the SeriesDescription
        matches = [s for s in result.series if text.lower() in s.description.lower()]
    if len(matches) == 1:
        return matches[0]
    listing = "; ".join(f"#{s.index} {_describe(s)}" for s in (matches or result.series))
    if len(matches) > 1:
        hint = f"'#{n}' for the index" if n is not None else "the index"
        raise InputError(f"--series {selector} is ambiguous: it matches {listing}; use "
                         f"{hint} or the SeriesInstanceUID")
    raise InputError(f"--series {selector} matches no series in {result.root}; the series "
                     f"are: {listing} (run `cardioplan info {result.root}`)")


# -- geometry checks -------------------------------------------------------------------------------
def _check_geometry(series: Series, geo: Any, *, allow_gaps: bool) -> None:
    name = f"series #{series.index} {_describe(series)}"
    if geo.mixed_orientations > 1:
        raise GeometryError(f"{name} mixes {geo.mixed_orientations} slice orientations, so its "
                            "slices do not form one volume; export each orientation as its own "
                            "series, or choose another series with --series")
    if geo.mixed_pixels:
        raise GeometryError(f"{name} mixes in-plane grids (matrix sizes or pixel spacings "
                            "differ between slices), so its slices do not form one volume; "
                            "choose another series with --series")
    if geo.duplicates:
        raise GeometryError(f"{name} has {len(geo.duplicates)} slices at duplicate positions "
                            f"(e.g. {geo.duplicates[0]:.2f} mm along the normal) and no "
                            "temporal tags to separate them into phases; choose another series "
                            "with --series or remove the duplicates")
    if not allow_gaps and geo.gaps:
        where = "; ".join(f"between {a:.2f} and {b:.2f} mm" for a, b in geo.gaps[:5])
        raise GeometryError(f"{name} has missing slices ({where} along the slice normal, "
                            f"typical spacing {geo.spacing[2]:.3f} mm); check the export is "
                            "complete, or pass --allow-gaps to interpolate across the gap onto a "
                            "regular grid")
    if not allow_gaps and geo.step_deviation > _MAX_DEVIATION:
        raise GeometryError(f"{name} has irregular slice spacing (steps deviate up to "
                            f"{100 * geo.step_deviation:.0f} % from {geo.spacing[2]:.3f} mm); "
                            "pass --allow-gaps to interpolate onto a regular grid")


def _check_pixel_format(series: Series, frames: list[Frame]) -> None:
    kinds = {(f.bits_allocated, f.signed) for f in frames}
    if len(kinds) > 1:
        raise DicomError(f"series #{series.index} mixes pixel formats {sorted(kinds)}; it "
                         "cannot be loaded as one volume")


# -- pixels ----------------------------------------------------------------------------------------
def _stored_dtype(f: Frame) -> np.dtype:
    if f.bits_allocated not in (8, 16, 32):
        raise DicomError(f"{f.path}: BitsAllocated {f.bits_allocated} is not supported "
                         "(expected 8, 16 or 32)")
    kind = "i" if f.signed else "u"
    return np.dtype(f"{kind}{f.bits_allocated // 8}")


class _PixelSource:
    """Fills slabs of slices from files: raw reads for uncompressed data (also the frames of an
    uncompressed multi-frame file), pydicom's decoders for the rest, decoding only the frames
    the slab needs."""

    def __init__(self, pool: ThreadPoolExecutor | None) -> None:
        self.pool = pool

    def fill(self, part: list[Frame], out: np.ndarray) -> np.ndarray:
        """Stored values of ``part`` into ``out``; returns per-slice (min, max)."""
        ranges = np.zeros((len(part), 2), dtype=np.float64)

        def direct(k: int) -> None:
            _read_raw(part[k], out[k])
            ranges[k] = (out[k].min(), out[k].max())

        def decode(job: tuple[Path, list[int]]) -> None:
            path, ks = job
            wanted = [part[k].frame for k in ks]
            arrays = _decode(path, part[ks[0]], None if wanted[0] is None else wanted)
            for k, src in zip(ks, arrays, strict=True):
                if src.shape != out.shape[1:]:
                    raise DicomError(f"{path.name}: decoded frame has shape {src.shape}, the "
                                     f"header says {out.shape[1:]}; the file is corrupt")
                out[k] = src
                ranges[k] = (out[k].min(), out[k].max())

        by_file: dict[Path, list[int]] = defaultdict(list)
        for k, f in enumerate(part):
            if not _is_direct(f):
                by_file[f.path].append(k)
        jobs = [(path, ks[i:i + _FRAMES_PER_JOB]) for path, ks in by_file.items()
                for i in range(0, len(ks), _FRAMES_PER_JOB)]
        todo: list[tuple[Any, Any]] = [(direct, k) for k, f in enumerate(part) if _is_direct(f)]
        todo += [(decode, job) for job in jobs]
        if self.pool is None:
            for fn, arg in todo:
                fn(arg)
        else:
            for fut in [self.pool.submit(fn, arg) for fn, arg in todo]:
                fut.result()
        return ranges


def _is_direct(f: Frame) -> bool:
    return f.pixel_offset is not None and f.transfer_syntax in _LE | {_BE}


def _check_decodable(frames: list[Frame]) -> None:
    """Fail before any work when a file needs a decoder that is not installed."""
    for f in frames:
        if _needs_dcmtk(f) and shutil.which("dcmdjpeg") is None:
            raise DicomError(
                f"{f.path.name} is 12-bit lossy JPEG (JPEG Extended), which pylibjpeg, GDCM and "
                "Pillow cannot decode reliably; CardioPlan uses DCMTK's dcmdjpeg for it and "
                "refuses rather than risk wrong values.  Install DCMTK (Debian/Ubuntu: "
                "`apt install dcmtk`) and run the command again")


def _needs_dcmtk(f: Frame) -> bool:
    return f.transfer_syntax == _JPEG_EXTENDED and f.bits_stored > 8


def _decode_with_dcmtk(path: Path) -> np.ndarray:
    """Decompress a file with DCMTK ``dcmdjpeg`` into a temporary file and read its pixels."""
    exe = shutil.which("dcmdjpeg")
    if exe is None:  # checked up front by _check_decodable; kept for direct callers
        raise DicomError(f"{path.name}: DCMTK's dcmdjpeg is needed to decode it; install dcmtk")
    with tempfile.TemporaryDirectory(prefix="cardioplan-dcmdjpeg-") as tmp:
        out = Path(tmp) / "decoded.dcm"
        proc = subprocess.run([exe, str(path), str(out)], capture_output=True, text=True,
                              timeout=300, check=False)
        if proc.returncode != 0 or not out.is_file():
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise DicomError(f"DCMTK dcmdjpeg could not decode {path} "
                             f"({detail[-1] if detail else f'exit {proc.returncode}'})")
        arr = pixel_array(out)
    log.info("decoded %s with DCMTK dcmdjpeg (12-bit lossy JPEG)", path.name)
    return arr


def _assemble(frames: list[Frame], *, threads: int | None) -> sitk.Image:
    """The rescaled voxels as one SimpleITK image, built slab by slab.

    Each slab (about 16 MiB of slices) is read into a reused buffer, rescaled in place and
    pasted into the preallocated image, so the peak memory is the volume plus two slabs.  The
    pixel type starts as the smallest that holds the first slab and is widened only if a later
    slab needs it.
    """
    _check_decodable(frames)
    first = frames[0]
    dtype = _stored_dtype(first)
    n, rows, cols = len(frames), first.rows, first.columns
    per_slab = max(1, min(n, _SLAB_BYTES // max(1, rows * cols * dtype.itemsize)))
    buf = np.empty((per_slab, rows, cols), dtype=dtype)
    workers = threads if threads is not None else _default_threads(frames)
    image: sitk.Image | None = None
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    source = _PixelSource(pool)
    try:
        for start in progress(range(0, n, per_slab), desc="Loading slices",
                              total=-(-n // per_slab), unit="slab"):
            part = frames[start:start + per_slab]
            ahead = frames[start if start == 0 else start + per_slab:start + 2 * per_slab]
            for path in dict.fromkeys(f.path for f in ahead):
                prefetch_file(path)  # the disk reads the next slab while this one is processed
            view = buf[:len(part)]
            ranges = source.fill(part, view)
            values = _rescale(view, part, ranges)
            if image is None:
                image = sitk.Image([cols, rows, n], _SITK_TYPES[values.dtype])
            current = sitk.GetArrayViewFromImage(image).dtype
            wanted = np.promote_types(current, values.dtype)
            if wanted != current:
                image = sitk.Cast(image, _SITK_TYPES[wanted])
            piece = sitk.GetImageFromArray(values.astype(wanted, copy=False))
            image[:, :, start:start + len(part)] = piece  # in-place paste
            del piece  # freed before the next slab is allocated: the heap reuses the block
    finally:
        if pool is not None:
            pool.shutdown()
    assert image is not None
    return image


def _default_threads(frames: list[Frame]) -> int:
    """Threads help decoders (they release the GIL); raw reads are fastest in one thread."""
    if all(_is_direct(f) for f in frames):
        return 1
    return min(4, os.cpu_count() or 1)


_SITK_TYPES = {np.dtype(np.uint8): sitk.sitkUInt8, np.dtype(np.int8): sitk.sitkInt8,
               np.dtype(np.int16): sitk.sitkInt16, np.dtype(np.uint16): sitk.sitkUInt16,
               np.dtype(np.int32): sitk.sitkInt32, np.dtype(np.uint32): sitk.sitkUInt32,
               np.dtype(np.int64): sitk.sitkInt64, np.dtype(np.float32): sitk.sitkFloat32,
               np.dtype(np.float64): sitk.sitkFloat64}


def _read_raw(f: Frame, out: np.ndarray) -> None:
    """Read uncompressed pixel data straight into ``out`` (one slice)."""
    buf = memoryview(out).cast("B")
    try:
        with open(f.path, "rb") as fh:
            fh.seek(f.pixel_offset or 0)
            got = fh.readinto(buf)
    except OSError as exc:
        raise DicomError(f"cannot read {f.path}: {exc.strerror or exc}") from exc
    if got != out.nbytes:
        raise DicomError(f"{f.path} is truncated ({got} of {out.nbytes} pixel bytes); re-export "
                         "the series")
    if f.transfer_syntax == _BE:
        out.byteswap(inplace=True)
    _mask_bits(out, f)


def _mask_bits(out: np.ndarray, f: Frame) -> None:
    """Clear (or sign-extend) the bits above BitsStored, as the standard requires."""
    spare = f.bits_allocated - f.bits_stored
    if spare <= 0 or f.bits_allocated == 8:
        return
    if f.signed:
        np.left_shift(out, spare, out=out)
        np.right_shift(out, spare, out=out)
    else:
        np.bitwise_and(out, (1 << f.bits_stored) - 1, out=out)


def _decode(path: Path, f: Frame, frames: list[int] | None) -> list[np.ndarray]:
    """Decode one single-frame file (``frames=None``) or some frames of a multi-frame file."""
    syntax = UID(f.transfer_syntax).name if f.transfer_syntax else "unknown syntax"
    if _needs_dcmtk(f):
        whole = _decode_with_dcmtk(path)
        arrays = [whole] if frames is None else [whole[i] for i in frames]
        for arr in arrays:
            _check_decoded(arr, f, path, syntax)
        return arrays
    try:
        # pydicom decodes straight from the file, except a deflated one (read it whole first)
        src: Any = pydicom.dcmread(path) if f.transfer_syntax == _DEFLATED else path
        if frames is None:
            arrays = [pixel_array(src)]
        else:
            order = sorted(set(frames))
            decoded = dict(zip(order, iter_pixels(src, indices=order), strict=True))
            arrays = [decoded[i] for i in frames]
    except Exception as exc:  # noqa: BLE001 - decoder plugins raise many types
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DicomError(f"cannot decode {path} ({syntax}): {detail[:200]}; install the "
                         "decoders with `pip install cardioplan[all]` (pylibjpeg, pyjpegls, "
                         "python-gdcm), or decompress the files with DCMTK `dcmdjpeg`") from exc
    for arr in arrays:
        _check_decoded(arr, f, path, syntax)
    return arrays


def _check_decoded(arr: np.ndarray, f: Frame, path: Path, syntax: str) -> None:
    """Refuse colour data and values outside the declared BitsStored range."""
    if arr.ndim != 2:
        raise DicomError(f"{path.name} is a colour image; CardioPlan loads greyscale scans")
    if np.issubdtype(arr.dtype, np.integer) and f.bits_stored < f.bits_allocated:
        lo, hi = int(arr.min()), int(arr.max())
        limit_lo = -(1 << (f.bits_stored - 1)) if f.signed else 0
        limit_hi = (1 << (f.bits_stored - 1)) - 1 if f.signed else (1 << f.bits_stored) - 1
        if lo < limit_lo or hi > limit_hi:
            raise DicomError(f"{path.name} ({syntax}) decoded to values {lo}..{hi}, outside the "
                             f"{f.bits_stored}-bit range the header declares; the decoder output "
                             "is not trustworthy, so the file is refused")


def _rescale(stored: np.ndarray, frames: list[Frame], ranges: np.ndarray) -> np.ndarray:
    """Apply slope/intercept, in place when the result fits the stored type's width."""
    slopes = np.array([f.slope for f in frames], dtype=np.float64)
    inters = np.array([f.intercept for f in frames], dtype=np.float64)
    integral = bool(np.all(slopes == np.round(slopes)) and np.all(inters == np.round(inters)))
    a = ranges[:, 0] * slopes + inters
    b = ranges[:, 1] * slopes + inters
    lo, hi = float(np.minimum(a, b).min()), float(np.maximum(a, b).max())
    out_dtype = output_dtype(lo, hi, integral=integral, stored=stored.dtype)
    identity = bool(np.all(slopes == 1) and np.all(inters == 0))
    if identity and out_dtype == stored.dtype:
        return stored
    if integral and out_dtype.itemsize == stored.itemsize and out_dtype.kind in "iu":
        # modular arithmetic on the unsigned view gives the exact result when it fits out_dtype
        u = stored.view(np.dtype(f"u{stored.itemsize}"))
        for (slope, inter), ks in _groups(slopes, inters).items():
            sel = u if len(ks) == len(frames) else u[ks]
            if slope != 1:
                np.multiply(sel, np.array(int(slope) % (1 << (8 * stored.itemsize)),
                                          dtype=u.dtype), out=sel, casting="unsafe")
            if inter != 0:
                np.add(sel, np.array(int(inter) % (1 << (8 * stored.itemsize)), dtype=u.dtype),
                       out=sel, casting="unsafe")
            if len(ks) != len(frames):
                u[ks] = sel
        return u.view(out_dtype)
    out = np.empty(stored.shape, dtype=out_dtype)
    work = np.float32 if out_dtype == np.float32 else np.int64
    for k in range(stored.shape[0]):
        out[k] = stored[k].astype(work) * work(slopes[k]) + work(inters[k])
    return out


def _groups(slopes: np.ndarray, inters: np.ndarray) -> dict[tuple[float, float], list[int]]:
    groups: dict[tuple[float, float], list[int]] = defaultdict(list)
    for k, (s, i) in enumerate(zip(slopes, inters, strict=True)):
        groups[(float(s), float(i))].append(k)
    return groups


# -- image assembly --------------------------------------------------------------------------------
def _place(image: sitk.Image, frames: list[Frame], geo: Any, *, allow_gaps: bool
           ) -> tuple[sitk.Image, list[str]]:
    """Give the voxels their physical geometry; interpolate gaps and correct tilt if needed."""
    notes: list[str] = []
    spacing = geo.spacing or (1.0, 1.0, 1.0)
    if frames[0].orientation is None or frames[0].position is None:
        image.SetSpacing([float(s) for s in spacing])
        return image, notes
    row, col = orthonormal(frames[0].orientation)
    normal = np.asarray(geo.normal, dtype=float)
    origin = np.asarray(frames[0].position, dtype=float)
    dists = np.array([np.dot(f.position, normal) for f in frames])  # type: ignore[arg-type]
    if allow_gaps and (geo.gaps or geo.step_deviation > _SMALL):
        values, dz = _regularise(sitk.GetArrayViewFromImage(image), dists, float(spacing[2]))
        notes.append(f"slices interpolated onto a regular grid of {values.shape[0]} slices at "
                     f"{dz:.3f} mm (linear, between the neighbouring acquired slices) because of "
                     "missing slices / irregular spacing (--allow-gaps)")
        spacing = (spacing[0], spacing[1], dz)
        image = sitk.GetImageFromArray(values)
    image.SetOrigin([float(v) for v in origin])
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection(_direction(row, col, normal))
    if geo.tilt_deg > 0.1 and len(frames) > 1:
        image = _untilt(image, frames, row, col, normal, float(spacing[2]))
        notes.append(f"gantry tilt of {geo.tilt_deg:.2f} degrees corrected: slices resampled "
                     "(linear) onto a grid perpendicular to the slice planes")
    return image, notes


def _direction(row: np.ndarray, col: np.ndarray, normal: np.ndarray) -> list[float]:
    m = np.column_stack([row, col, normal])
    return [float(v) for v in m.ravel()]


def _regularise(values: np.ndarray, dists: np.ndarray, step: float) -> tuple[np.ndarray, float]:
    """Linear interpolation along z onto positions ``d0 + j * step``."""
    n = int(round((dists[-1] - dists[0]) / step)) + 1
    dz = float((dists[-1] - dists[0]) / (n - 1)) if n > 1 else step
    out = np.empty((n, *values.shape[1:]), dtype=values.dtype)
    integer = np.issubdtype(values.dtype, np.integer)
    for j in range(n):
        z = dists[0] + j * dz
        k = int(np.clip(np.searchsorted(dists, z, side="right") - 1, 0, len(dists) - 2))
        w = float(np.clip((z - dists[k]) / (dists[k + 1] - dists[k]), 0.0, 1.0))
        if w < 1e-6:
            out[j] = values[k]
        elif w > 1 - 1e-6:
            out[j] = values[k + 1]
        else:
            mix = values[k].astype(np.float32) * (1 - w) + values[k + 1].astype(np.float32) * w
            out[j] = np.rint(mix) if integer else mix
    return out, dz


def _untilt(image: sitk.Image, frames: list[Frame], row: np.ndarray, col: np.ndarray,
            normal: np.ndarray, dz: float) -> sitk.Image:
    """Resample a gantry-tilted stack onto the orthogonal grid (row, col, normal).

    The grid is widened in-plane by the total slice offset, so no acquired voxel falls outside.
    """
    first = np.asarray(frames[0].position, dtype=float)
    last = np.asarray(frames[-1].position, dtype=float)
    step = (last - first) / (image.GetSize()[2] - 1)
    dx, dy = image.GetSpacing()[0], image.GetSpacing()[1]
    sheared = sitk.Image(image)
    sheared.SetSpacing([dx, dy, float(np.linalg.norm(step))])
    sheared.SetDirection(_direction(row, col, step / np.linalg.norm(step)))
    offset = last - first  # in-plane drift of the stack, in pixels along row and column
    sx, sy = float(offset @ row) / dx, float(offset @ col) / dy
    size = list(image.GetSize())
    size[0] += int(np.ceil(abs(sx) - 1e-6))
    size[1] += int(np.ceil(abs(sy) - 1e-6))
    origin = first + min(sx, 0.0) * dx * row + min(sy, 0.0) * dy * col
    fill = float(sitk.GetArrayViewFromImage(image).min())
    target = sitk.Image(size, image.GetPixelID())
    target.SetOrigin([float(v) for v in origin])
    target.SetSpacing([dx, dy, dz])
    target.SetDirection(image.GetDirection())
    return sitk.Resample(sheared, target, sitk.Transform(), sitk.sitkLinear, fill,
                         image.GetPixelID())


# -- provenance ------------------------------------------------------------------------------------
def _provenance(series: Series, frames: list[Frame]) -> dict[str, Any]:
    """What a later export (DICOM-SEG) needs to reference the source; no patient identity."""
    files = []
    for f in frames:
        if not files or files[-1] != f.path:
            files.append(f.path)
    return {
        "format": "dicom",
        "series_index": series.index,
        "series_number": series.series_number,
        "series_uid": series.series_uid,
        "study_uid": series.study_uid,
        "frame_of_reference_uid": series.frame_of_reference_uid,
        "sop_class_uid": series.sop_class_uid,
        "sop_instance_uids": [f.sop_instance_uid for f in frames],
        "frame_numbers": [f.frame + 1 for f in frames] if series.multiframe else None,
        "files": [str(p) for p in files],
        "transfer_syntaxes": series.transfer_syntaxes,
        "multiframe": series.multiframe,
        "slices": len(frames),
    }
