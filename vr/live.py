"""Live updates: notice when the case's meshes or plan change on disk, while the headset runs.

:class:`MeshWatcher` runs a background thread that looks at ``CASE/meshes/`` every
``interval_s`` (a few ``stat`` calls), re-reads only the structures whose files changed (VTK
reading and array conversion happen off the frame loop) and hands the new arrays over through a
queue; the frame loop only uploads them.  Writers replace files atomically (rename), so a file
seen is a complete file.  The plan is tiny and is re-read on the frame loop with
:class:`cardioplan.plan.PlanWatcher`.

Measured on the CI machine: a changed structure is on screen 0.1-0.4 s after the rename
(poll interval + read + upload + the next frame); see ``docs/vr.md``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from cardioplan.case import Case
from cardioplan.errors import CardioPlanError

__all__ = ["MeshUpdate", "MeshWatcher", "mesh_stamps", "load_meshes"]

log = logging.getLogger(__name__)

Stamp = tuple[int, int, int]


@dataclass
class MeshUpdate:
    """Structures re-read from disk (name -> (vertices, faces) arrays), and the removed ones."""

    meshes: dict[str, tuple[NDArray[np.float32], NDArray[np.uint32]]] = field(default_factory=dict)
    colors: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    error: str | None = None


def _stamp(path: os.PathLike[str] | str) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def mesh_stamps(case: Case) -> dict[str, Stamp | None]:
    """``{file name: (inode, size, mtime)}`` for the index and every mesh file it lists."""
    from cardioplan.mesh.case_meshes import INDEX_FILE

    d = case.meshes_dir
    out: dict[str, Stamp | None] = {INDEX_FILE: _stamp(d / INDEX_FILE)}
    try:
        names = sorted(p.name for p in os.scandir(d)
                       if p.name.endswith(".vtp") and not p.name.startswith("."))  # not temps
    except OSError:
        names = []
    for n in names:
        out[n] = _stamp(d / n)
    return out


def load_meshes(case: Case, structures: list[str] | None = None) -> MeshUpdate:
    """Read structures from the case as GPU-ready arrays (all of them when ``structures`` is
    None).  Raises :class:`~cardioplan.errors.CaseError` when the case has no meshes."""
    from cardioplan.mesh import read_case_meshes
    from vr.render import mesh_arrays

    meshes = read_case_meshes(case, structures=structures)
    up = MeshUpdate()
    for name, poly in meshes.items():
        up.meshes[name] = mesh_arrays(poly)
        if "color" in poly.field_data:
            up.colors[name] = tuple(int(c) for c in poly.field_data["color"][:3])
    return up


class MeshWatcher:
    """Background watcher of ``CASE/meshes``; :meth:`take` returns pending updates (or None).

    Parameters
    ----------
    case : Case
    interval_s : float
        Time between two looks at the folder.
    """

    def __init__(self, case: Case, *, interval_s: float = 0.1) -> None:
        self.case = case
        self.interval_s = interval_s
        self._updates: queue.Queue[MeshUpdate] = queue.Queue()
        self._stop = threading.Event()
        self._stamps = mesh_stamps(case)
        self._thread: threading.Thread | None = None

    def start(self) -> MeshWatcher:
        """Start watching in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="cardioplan-mesh-watcher",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (waits for a read in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MeshWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take(self) -> MeshUpdate | None:
        """All updates that arrived since the last call, merged; None when there are none."""
        merged: MeshUpdate | None = None
        while True:
            try:
                up = self._updates.get_nowait()
            except queue.Empty:
                return merged
            if merged is None:
                merged = up
            else:
                merged.meshes.update(up.meshes)
                merged.colors.update(up.colors)
                merged.removed = [r for r in merged.removed + up.removed
                                  if r not in merged.meshes]
                merged.error = up.error or merged.error

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._check()
            except Exception as exc:  # noqa: BLE001 - keep watching; report on the frame loop
                log.warning("could not reload the meshes: %s", exc)
                self._updates.put(MeshUpdate(error=str(exc)))

    def _check(self) -> None:
        from cardioplan.mesh.case_meshes import INDEX_FILE, read_mesh_index

        now = mesh_stamps(self.case)
        if now == self._stamps:
            return
        old = self._stamps
        changed_files = {n for n in set(now) | set(old) if now.get(n) != old.get(n)}
        try:
            index = read_mesh_index(self.case)
        except CardioPlanError as exc:
            log.warning("meshes changed but cannot be read yet: %s", exc)
            self._stamps = now
            return
        files = {e["name"]: e["file"] for e in index["structures"]}
        if INDEX_FILE in changed_files:
            names = [n for n, f in files.items() if f in changed_files or n not in self._known()]
            removed = [n for n in self._known() if n not in files]
        else:
            names = [n for n, f in files.items() if f in changed_files]
            removed = []
        self._stamps = now
        self._names = list(files)
        if not names and not removed:
            return
        up = load_meshes(self.case, names) if names else MeshUpdate()
        up.removed = removed
        log.info("meshes changed on disk: reloaded %s%s", ", ".join(names) or "-",
                 f"; removed {', '.join(removed)}" if removed else "")
        self._updates.put(up)

    def _known(self) -> list[str]:
        return list(getattr(self, "_names", []))

    def set_known(self, names: list[str]) -> None:
        """The structures currently shown (so that index changes add or remove the right ones)."""
        self._names = list(names)
