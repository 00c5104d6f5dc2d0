"""The case folder: the unit of work every CardioPlan tool reads and writes.

Layout::

    CASE/
      case.json          manifest (schema below), always rewritten atomically
      image.nii          the scan (LPS mm), written by ``cardioplan import``
      labels.nii.gz      uint8 label map on the image grid (``cardioplan segment``)
      labels.seg.nrrd    the same labels for 3D Slicer
      meshes/            one surface per structure (``cardioplan mesh``)
      plan.json          the shared rehearsal plan (desktop viewer and VR)
      report/            HTML report (``cardioplan report``)

``case.json`` (``schema_version`` 1)::

    {
      "schema": "cardioplan.case",
      "schema_version": 1,
      "case_id": "<random hex, no patient identity>",
      "created": "<ISO 8601 UTC>",  "modified": "<ISO 8601 UTC>",
      "software": {"cardioplan": "0.1.0", "python": "3.11.7", "SimpleITK": "2.5.7", ...},
      "inputs": [{"format": "dicom", "path": "...", "series_uid": "...", "modality": "CT", ...}],
      "image": {"size": [...], "spacing": [...], "origin": [...], "direction": [...],
                "pixel_type": "16-bit signed integer", "modality": "CT", "phase": {...}},
      "files": {"image": {"path": "image.nii", "produced_by": "cardioplan import",
                          "created": "...", "bytes": 123}, ...},
      "structures": {"left_ventricle": {"volume_ml": 98.1, ...}, ...},
      "sections": {"<tool>": {...}}   # free-form results of later tools (mesh quality, ...)
    }

A new case is built in a hidden staging folder beside its target and renamed into place only when
complete, so a failed import never leaves a half-written case.  Files inside an existing case are
written atomically, and ``case.json`` updates are serialised with a lock file so that two tools
working on one case do not lose each other's changes.

Examples
--------
>>> with Case.create(tmp_path / "case1") as case:           # doctest: +SKIP
...     case.write_image(volume.image, produced_by="cardioplan import")
>>> Case.open(tmp_path / "case1").read_image().GetSize()   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import fcntl
import importlib.metadata
import os
import platform
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from cardioplan import __version__
from cardioplan.errors import CaseError, CaseExistsError, OutputError, SchemaVersionError
from cardioplan.fileio import (
    atomic_path,
    default_mode,
    explain_os_error,
    read_json,
    write_json_atomic,
)
from cardioplan.volume import geometry_summary

__all__ = ["Case", "SCHEMA_VERSION", "CASE_FILE", "IMAGE_FILE", "software_versions", "utc_now"]

SCHEMA_VERSION = 1
CASE_FILE = "case.json"
_LOCK_FILE = ".case.lock"
IMAGE_FILE = "image.nii"
"""The scan is stored uncompressed: gzip costs ~2 s of CPU per 160 MiB CT (5x the DICOM load,
at any level: SimpleITK's level setting makes no difference) for a 2x smaller file.  Label maps
compress fast and well, so ``labels.nii.gz`` is gzipped."""


def utc_now() -> str:
    """Current time as ISO 8601 UTC with seconds precision."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def software_versions() -> dict[str, str]:
    """Versions of the software that produced a file (for provenance).

    Read from the installed distributions' metadata, not by importing them: importing VTK and
    PyVista alone would cost half a second on every ``cardioplan segment``.
    """
    versions = {"cardioplan": __version__, "python": platform.python_version(),
                "SimpleITK": sitk.Version.VersionString()}
    for dist in ("pydicom", "vtk", "pyvista", "numpy"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    return versions


class Case:
    """A case folder.  Create with :meth:`create`, open with :meth:`open`.

    Parameters
    ----------
    path : path-like
        The folder.  Prefer the class methods to calling this directly.
    """

    def __init__(self, path: str | os.PathLike[str], manifest: dict[str, Any],
                 *, _target: Path | None = None, _force: bool = False) -> None:
        self.path = Path(path)
        self._manifest = manifest
        self._target = _target  # set while the case is being staged
        self._force = _force

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], *, force: bool = False) -> Case:
        """Start a new case at ``path``, staged until :meth:`commit` (or the ``with`` block ends).

        Raises
        ------
        CaseExistsError
            ``path`` exists and ``force`` is False.
        OutputError
            The parent folder cannot be written.
        """
        target = Path(path).absolute()
        if target.exists() and not force:
            raise CaseExistsError(f"{target} already exists; choose another output folder or "
                                  "pass --force to replace it")
        if target.exists() and not target.is_dir():
            raise CaseExistsError(f"{target} exists and is not a folder; choose another path")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-",
                                            dir=target.parent))
            staging.chmod(default_mode(folder=True))  # mkdtemp makes 0700
        except OSError as exc:
            raise OutputError(explain_os_error(exc, target)) from exc
        now = utc_now()
        manifest: dict[str, Any] = {
            "schema": "cardioplan.case",
            "schema_version": SCHEMA_VERSION,
            "case_id": uuid.uuid4().hex[:12],
            "created": now,
            "modified": now,
            "software": software_versions(),
            "inputs": [],
            "image": {},
            "files": {},
            "structures": {},
            "sections": {},
        }
        return cls(staging, manifest, _target=target, _force=force)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Case:
        """Open an existing case folder.

        Raises
        ------
        CaseError
            ``path`` is not a case folder or its ``case.json`` is corrupt.
        SchemaVersionError
            ``case.json`` was written by a newer CardioPlan.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise CaseError(f"case folder not found: {folder}; create one with "
                            "`cardioplan import SCAN -o CASE`")
        manifest_path = folder / CASE_FILE
        if not manifest_path.is_file():
            raise CaseError(f"{folder} is not a CardioPlan case (no {CASE_FILE}); create one with "
                            "`cardioplan import SCAN -o CASE`")
        manifest = read_json(manifest_path, what="case manifest")
        _check_manifest(manifest, manifest_path)
        return cls(folder, manifest)

    @staticmethod
    def is_case(path: str | os.PathLike[str]) -> bool:
        """True when ``path`` is a folder with a ``case.json``."""
        return (Path(path) / CASE_FILE).is_file()

    # -- staging ----------------------------------------------------------------------------
    def __enter__(self) -> Case:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._target is None:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def commit(self) -> None:
        """Move a staged new case into place (replacing the old one only with ``force``)."""
        if self._target is None:
            return
        self._write_manifest(self._manifest)
        target = self._target
        backup: Path | None = None
        try:
            if target.exists():
                if not self._force:
                    raise CaseExistsError(f"{target} appeared while the case was being built; "
                                          "nothing was overwritten (use --force to replace it)")
                backup = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
                os.replace(target, backup)
            os.replace(self.path, target)
        except OSError as exc:
            if backup is not None and not target.exists():
                os.replace(backup, target)
            self.abort()
            if isinstance(exc, CaseError):
                raise
            raise OutputError(explain_os_error(exc, target)) from exc
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
        self.path = target
        self._target = None

    def abort(self) -> None:
        """Throw away a staged case; the target folder is left as it was."""
        if self._target is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self._target = None

    # -- manifest ---------------------------------------------------------------------------
    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of ``case.json`` as last read or written."""
        return copy.deepcopy(self._manifest)

    @property
    def case_id(self) -> str:
        return str(self._manifest["case_id"])

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._manifest.get("inputs", []))

    @property
    def image_info(self) -> dict[str, Any]:
        return copy.deepcopy(self._manifest.get("image", {}))

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self._manifest.get("files", {}))

    @property
    def structures(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self._manifest.get("structures", {}))

    def section(self, name: str) -> dict[str, Any]:
        """A tool's free-form result section (``{}`` when absent)."""
        return copy.deepcopy(self._manifest.get("sections", {}).get(name, {}))

    def update(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Apply ``change(manifest)`` to the latest ``case.json`` under a lock, then save it.

        ``change`` mutates the dict in place.  Re-reading under the lock means edits made by
        another process in between are kept.
        """
        with self._locked():
            if self._target is None and (self.path / CASE_FILE).is_file():
                latest = read_json(self.path / CASE_FILE, what="case manifest")
                _check_manifest(latest, self.path / CASE_FILE)
            else:
                latest = self._manifest
            change(latest)
            latest["modified"] = utc_now()
            latest["software"] = software_versions()
            self._write_manifest(latest)
            self._manifest = latest

    def add_input(self, record: dict[str, Any]) -> None:
        """Record one input (provenance) of the case."""
        self.update(lambda m: m.setdefault("inputs", []).append(dict(record)))

    def set_section(self, name: str, data: dict[str, Any]) -> None:
        """Replace a tool's result section."""
        self.update(lambda m: m.setdefault("sections", {}).__setitem__(name, data))

    def set_structures(self, structures: dict[str, dict[str, Any]], *, merge: bool = True) -> None:
        """Store per-structure results (volumes, mesh quality...), merged per structure."""
        def change(m: dict[str, Any]) -> None:
            current = m.setdefault("structures", {}) if merge else {}
            for name, values in structures.items():
                current.setdefault(name, {}).update(values)
            m["structures"] = current
        self.update(change)

    # -- files ------------------------------------------------------------------------------
    @property
    def image_path(self) -> Path:
        """The scan: the file recorded in ``case.json`` (``image.nii`` for new cases)."""
        record = self._manifest.get("files", {}).get("image")
        return self.path / (record["path"] if record else IMAGE_FILE)

    @property
    def labels_path(self) -> Path:
        return self.path / "labels.nii.gz"

    @property
    def slicer_labels_path(self) -> Path:
        return self.path / "labels.seg.nrrd"

    @property
    def meshes_dir(self) -> Path:
        return self.path / "meshes"

    @property
    def plan_path(self) -> Path:
        return self.path / "plan.json"

    @property
    def report_dir(self) -> Path:
        return self.path / "report"

    @property
    def has_image(self) -> bool:
        return self.image_path.is_file()

    @property
    def has_labels(self) -> bool:
        return self.labels_path.is_file()

    def read_image(self) -> sitk.Image:
        """The scan (LPS mm; CT in HU)."""
        return self._read(self.image_path, "image", "`cardioplan import SCAN -o CASE`")

    def read_labels(self) -> sitk.Image:
        """The uint8 label map on the image grid."""
        return self._read(self.labels_path, "label map", "`cardioplan segment CASE`")

    def write_image(self, image: sitk.Image, *, produced_by: str, modality: str = "OT",
                    phase: dict[str, Any] | None = None, force: bool = False) -> Path:
        """Write the scan as ``image.nii`` and record its geometry in ``case.json``."""
        path = self._write_sitk("image", self.path / IMAGE_FILE, image, produced_by=produced_by,
                                force=force, compress=False)
        info = geometry_summary(image)
        info["modality"] = modality
        if phase is not None:
            info["phase"] = phase
        self.update(lambda m: m.__setitem__("image", info))
        return path

    def write_labels(self, labels: sitk.Image, *, produced_by: str, force: bool = False) -> Path:
        """Write the label map (cast to uint8) as ``labels.nii.gz``."""
        if labels.GetPixelID() != sitk.sitkUInt8:
            labels = sitk.Cast(labels, sitk.sitkUInt8)
        return self._write_sitk("labels", self.labels_path, labels, produced_by=produced_by,
                                force=force, compress=True)

    def record_file(self, key: str, path: str | os.PathLike[str], *, produced_by: str,
                    **meta: Any) -> None:
        """Record in ``case.json`` that ``path`` (inside the case) was produced by a tool."""
        p = Path(path)
        rel = p.relative_to(self.path) if p.is_absolute() else p
        full = self.path / rel
        size = full.stat().st_size if full.is_file() else None
        entry = {"path": rel.as_posix(), "produced_by": produced_by, "created": utc_now(),
                 "bytes": size, **meta}
        self.update(lambda m: m.setdefault("files", {}).__setitem__(key, entry))

    def check_writable(self, path: Path, *, force: bool) -> None:
        """Refuse to replace an existing result unless ``force``."""
        if path.exists() and not force and self._target is None:
            raise CaseExistsError(f"{path} already exists in the case; pass --force to "
                                  "replace it")

    # -- helpers ----------------------------------------------------------------------------
    def _write_sitk(self, key: str, path: Path, image: sitk.Image, *, produced_by: str,
                    force: bool, compress: bool) -> Path:
        self.check_writable(path, force=force)
        with atomic_path(path) as tmp:
            sitk.WriteImage(image, str(tmp), useCompression=compress)
        self.record_file(key, path, produced_by=produced_by)
        return path

    def _read(self, path: Path, what: str, how: str) -> sitk.Image:
        if not path.is_file():
            raise CaseError(f"the case {self.path} has no {what} yet; make it with {how}")
        try:
            return sitk.ReadImage(str(path))
        except RuntimeError as exc:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
            raise CaseError(f"{path} is unreadable ({detail}); recreate it with {how}") from exc

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.path / CASE_FILE, manifest)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.path / _LOCK_FILE
        try:
            fh = open(lock_path, "a")  # noqa: SIM115 - closed by the with block below
        except OSError as exc:
            raise OutputError(explain_os_error(exc, lock_path)) from exc
        with fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def __repr__(self) -> str:
        return f"Case({str(self.path)!r})"


def _check_manifest(manifest: Any, path: Path) -> None:
    if not isinstance(manifest, dict) or manifest.get("schema") != "cardioplan.case":
        raise CaseError(f"{path} is not a CardioPlan case manifest")
    version = manifest.get("schema_version")
    if not isinstance(version, int):
        raise CaseError(f"{path} has no valid schema_version")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(f"{path} was written by a newer CardioPlan (case schema "
                                 f"{version}, this version reads up to {SCHEMA_VERSION}); "
                                 "upgrade CardioPlan")
