"""The case folder's ``meshes/``: build, write, check and read the surfaces of a case.

Layout::

    CASE/meshes/
      index.json            manifest (below)
      left_ventricle.vtp    one VTK XML PolyData per structure (LPS mm, outward normals)
      ...

``index.json`` (``schema_version`` 1)::

    {
      "schema": "cardioplan.meshes", "schema_version": 1,
      "space": "LPS", "units": "mm",
      "target": "pcvr", "budget": 1000000, "smoothing": "standard",
      "created": "<ISO 8601 UTC>",
      "labels_sha256": "<sha256 of labels.nii.gz the meshes were built from>",
      "structures": [
        {"name": "left_ventricle", "display_name": "Left ventricle", "label_values": [1],
         "color": [221, 72, 72], "file": "left_ventricle.vtp", "triangles": 11268}, ...
      ]
    }

Per-structure quality (:func:`~cardioplan.mesh.quality.mesh_quality`) goes into ``case.json``
under ``structures.<name>.mesh`` and a summary under ``sections.mesh``.  Reading meshes built
from an earlier label map (``labels_sha256`` differs) logs a warning to rebuild them.

Examples
--------
>>> from cardioplan.case import Case
>>> from cardioplan.mesh import mesh_case, read_case_meshes
>>> result = mesh_case(Case.open("case1"), target="standalone")   # doctest: +SKIP
>>> sorted(read_case_meshes(Case.open("case1")))                   # doctest: +SKIP
['aorta', 'left_ventricle', ...]
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyvista as pv

from cardioplan.case import Case, utc_now
from cardioplan.errors import CaseError, OutputError
from cardioplan.fileio import atomic_path, read_json, write_json_atomic
from cardioplan.labels import LABELS
from cardioplan.progress import progress

__all__ = ["mesh_case", "write_meshes", "read_case_meshes", "read_mesh_index", "INDEX_FILE",
           "INDEX_SCHEMA_VERSION"]

log = logging.getLogger(__name__)

INDEX_FILE = "index.json"
INDEX_SCHEMA_VERSION = 1
_PRODUCER = "cardioplan mesh"


def mesh_case(case: Case, *, target: str = "pcvr", budget: int | None = None,
              structures: Sequence[str] | None = None, smoothing: str = "standard",
              force: bool = False) -> dict[str, Any]:
    """Build, check and write the surfaces of a case's label map.

    Parameters
    ----------
    case : Case
        An open case with a label map.
    target, budget, structures, smoothing
        As in :func:`~cardioplan.mesh.surfaces.build_surfaces`.
    force : bool
        Replace existing meshes (otherwise an existing ``meshes/index.json`` is an error).

    Returns
    -------
    dict
        The ``sections.mesh`` summary written to ``case.json``: target, budget, smoothing,
        ``triangles`` (total), ``seconds``, ``files`` and ``quality`` (structure -> the
        :func:`mesh_quality` dict plus ``smoothing_volume_change_pct``).

    Raises
    ------
    CaseError
        The case has no label map (run ``cardioplan segment CASE``).
    CaseExistsError
        Meshes exist and ``force`` is False.
    MeshError, InputError
        As :func:`build_surfaces`.

    Examples
    --------
    >>> summary = mesh_case(Case.open("case1"), target="print")  # doctest: +SKIP
    >>> summary["quality"]["aorta"]["watertight"]                 # doctest: +SKIP
    True
    """
    index_path = case.meshes_dir / INDEX_FILE
    case.check_writable(index_path, force=force)
    # The builders pull in VTK filters and fast-simplification: import them only to build, so
    # readers (viewer, VR, report) start ~0.5 s faster.
    from cardioplan.mesh.quality import mesh_quality
    from cardioplan.mesh.surfaces import build_surfaces, target_budget

    total_budget = target_budget(target, budget)
    labels = case.read_labels()
    started = time.perf_counter()
    surfaces = build_surfaces(labels, structures=structures, target=target, budget=budget,
                              smoothing=smoothing)
    quality: dict[str, dict[str, Any]] = {}
    for name in progress(surfaces, desc="checking meshes", total=len(surfaces),
                         unit="structure"):
        surface = surfaces[name]
        values = [int(v) for v in surface.field_data["label_values"]]
        q = mesh_quality(surface, labels, values,
                         voxel_count=int(surface.field_data["voxels"][0]))
        q["smoothing_volume_change_pct"] = round(
            float(surface.field_data["smoothing_volume_change_pct"][0]), 3)
        quality[name] = q
    entries = write_meshes(case, surfaces, target=target, budget=total_budget,
                           smoothing=smoothing, labels_sha256=_sha256(case.labels_path))
    seconds = round(time.perf_counter() - started, 3)
    summary = {
        "target": target,
        "budget": total_budget,
        "smoothing": smoothing,
        "triangles": sum(e["triangles"] for e in entries),
        "seconds": seconds,
        "relabelled_voxels": int(next(iter(surfaces.values()))
                                 .field_data["relabelled_voxels"][0]),
        "files": [f"meshes/{e['file']}" for e in entries],
        "quality": quality,
    }
    case.record_file("meshes", index_path, produced_by=_PRODUCER, target=target,
                     structures=[e["name"] for e in entries])
    case.set_section("mesh", summary)
    case.set_structures({name: {"mesh": q} for name, q in quality.items()})
    for name, q in quality.items():
        if not (q["watertight"] and q["volume_ok"] and q.get("distance_ok", True)):
            log.warning("%s: mesh check failed (watertight=%s, volume %+.2f %%, mean distance "
                        "%.2f mm)", name, q["watertight"], q["volume_difference_pct"],
                        q.get("mean_distance_mm", float("nan")))
    return summary


def write_meshes(case: Case, surfaces: dict[str, pv.PolyData], *, target: str,
                 budget: int | None, smoothing: str,
                 labels_sha256: str | None = None) -> list[dict[str, Any]]:
    """Write ``meshes/<name>.vtp`` and ``meshes/index.json`` atomically; drop stale files.

    The one writer of the mesh index format.  Names, colours and label values come from the
    surfaces' field data (set by :func:`~cardioplan.mesh.surfaces.build_surfaces`), else from
    the label table (surfaces made by other means, e.g. in benchmarks).

    Returns
    -------
    list of dict
        The index entries, one per structure.
    """
    index_path = case.meshes_dir / INDEX_FILE
    old = _old_files(index_path)
    entries = []
    for name, surface in surfaces.items():
        path = case.meshes_dir / f"{name}.vtp"
        with atomic_path(path) as tmp:
            try:
                surface.save(tmp, binary=True)
            except (OSError, ValueError) as exc:
                raise OutputError(f"could not write {path}: {exc}") from exc
        entries.append({"name": name, **_identity(name, surface), "file": path.name,
                        "triangles": int(surface.n_cells)})
    index = {
        "schema": "cardioplan.meshes",
        "schema_version": INDEX_SCHEMA_VERSION,
        "space": "LPS",
        "units": "mm",
        "target": target,
        "budget": budget,
        "smoothing": smoothing,
        "created": utc_now(),
        "labels_sha256": labels_sha256,
        "structures": entries,
    }
    write_json_atomic(index_path, index)
    for stale in old - {e["file"] for e in entries}:
        (case.meshes_dir / stale).unlink(missing_ok=True)
    return entries


def _identity(name: str, surface: pv.PolyData) -> dict[str, Any]:
    """Display name, label values and colour of a surface: its field data, else the table."""
    fd = surface.field_data
    if "label_values" in fd:
        return {"display_name": str(fd["display_name"][0]),
                "label_values": [int(v) for v in fd["label_values"]],
                "color": [int(c) for c in fd["color"]]}
    lab = LABELS[name]
    return {"display_name": lab.display_name, "label_values": [lab.value],
            "color": list(lab.color)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _old_files(index_path: Path) -> set[str]:
    if not index_path.is_file():
        return set()
    try:
        return {e["file"] for e in read_json(index_path, what="mesh index")["structures"]}
    except (CaseError, KeyError, TypeError):
        return set()


def read_mesh_index(case: Case) -> dict[str, Any]:
    """The case's ``meshes/index.json``.

    Raises
    ------
    CaseError
        The case has no meshes (run ``cardioplan mesh CASE``), or the index is corrupt or newer.
    """
    index_path = case.meshes_dir / INDEX_FILE
    if not index_path.is_file():
        raise CaseError(f"the case {case.path} has no meshes yet; run `cardioplan mesh "
                        f"{case.path}`")
    index = read_json(index_path, what="mesh index")
    if not isinstance(index, dict) or index.get("schema") != "cardioplan.meshes" \
            or not isinstance(index.get("structures"), list):
        raise CaseError(f"{index_path} is not a CardioPlan mesh index; rebuild it with "
                        f"`cardioplan mesh {case.path} --force`")
    if int(index.get("schema_version", 0)) > INDEX_SCHEMA_VERSION:
        raise CaseError(f"{index_path} was written by a newer CardioPlan; upgrade CardioPlan")
    return index


def read_case_meshes(case: Case, *, structures: Sequence[str] | None = None,
                     build_missing: bool = False) -> dict[str, pv.PolyData]:
    """Read a case's surfaces (the desktop viewer, report and VR use this).

    Parameters
    ----------
    case : Case
        An open case.
    structures : sequence of str, optional
        Only these structures; those without a mesh are skipped with a warning.
    build_missing : bool
        Build requested structures that have no mesh (e.g. the composite ``heart``) from the
        label map, with the meshes' target and smoothing, instead of skipping them.  Nothing is
        written to the case.

    Returns
    -------
    dict of str to pyvista.PolyData
        In index order, each with point ``Normals`` and field data ``structure``,
        ``display_name``, ``label_values`` and ``color`` (8-bit RGB).

    Raises
    ------
    CaseError
        No meshes (the message says to run ``cardioplan mesh CASE``), none of ``structures``
        has a mesh, or a mesh file is missing or unreadable.

    Examples
    --------
    >>> meshes = read_case_meshes(Case.open("case1"), structures=["aorta"])  # doctest: +SKIP
    >>> tuple(meshes["aorta"].field_data["color"])                           # doctest: +SKIP
    (200, 30, 130)
    """
    index = read_mesh_index(case)
    made_from = index.get("labels_sha256")
    if made_from and case.labels_path.is_file() and _sha256(case.labels_path) != made_from:
        log.warning("the meshes were built from an earlier label map; rebuild them with "
                    "`cardioplan mesh %s --force`", case.path)
    entries = {e["name"]: e for e in index["structures"]}
    names = list(entries) if structures is None else list(dict.fromkeys(structures))
    built = {}
    missing = [n for n in names if n not in entries]
    if build_missing and missing:
        log.info("building %s from the label map (target %s)", ", ".join(missing),
                 index.get("target", "pcvr"))
        from cardioplan.mesh.surfaces import build_surfaces

        built = build_surfaces(case.read_labels(), structures=missing,
                               target=index.get("target", "pcvr"),
                               smoothing=index.get("smoothing", "standard"))
    out: dict[str, pv.PolyData] = {}
    for name in names:
        if name in built:
            out[name] = built[name]
            continue
        if name not in entries:
            log.warning("the case has no mesh for %s; skipped (available: %s)", name,
                        ", ".join(entries))
            continue
        path = case.meshes_dir / entries[name]["file"]
        if not path.is_file():
            raise CaseError(f"mesh file {path} is missing; rebuild the meshes with "
                            f"`cardioplan mesh {case.path} --force`")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # pyvista reports VTK reader errors as warnings
                surface = pv.read(path)
        except Exception as exc:  # VTK raises assorted errors on corrupt XML
            raise CaseError(f"mesh file {path} is unreadable ({exc}); rebuild the meshes with "
                            f"`cardioplan mesh {case.path} --force`") from exc
        if surface.n_cells == 0:
            raise CaseError(f"mesh file {path} is empty or corrupt; rebuild the meshes with "
                            f"`cardioplan mesh {case.path} --force`")
        _ensure_metadata(surface, entries[name])
        out[name] = surface
    if not out:
        raise CaseError(f"the case has no mesh for {', '.join(names)}; available: "
                        f"{', '.join(entries)} (or run `cardioplan mesh {case.path} "
                        "--structures ...`)")
    return out


def _ensure_metadata(surface: pv.PolyData, entry: dict[str, Any]) -> None:
    """Fill the field data from the index (for meshes written by other tools)."""
    fd = surface.field_data
    if "structure" not in fd:
        fd["structure"] = [entry["name"]]
    if "display_name" not in fd:
        fd["display_name"] = [entry.get("display_name", entry["name"])]
    if "label_values" not in fd:
        fd["label_values"] = list(entry.get("label_values", []))
    if "color" not in fd:
        fd["color"] = list(entry.get("color", [200, 200, 200]))

