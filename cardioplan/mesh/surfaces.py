"""Label map -> one closed surface per structure, smoothed and decimated to a triangle budget.

How (measured choices, see ``docs/meshes.md``):

1. **Multi-label extraction** with VTK's ``vtkSurfaceNets3D`` on the cropped label map: one mesh
   for all labels in which each triangle knows the two labels it separates.  The boundary
   between two neighbours (left ventricle | myocardium) is *one* set of triangles that both
   surfaces use, so they have neither gaps nor overlaps.
2. **Non-shrinking smoothing**: ``vtkWindowedSincPolyDataFilter`` on that whole mesh (non-manifold
   junction lines smoothed along themselves).  Windowed-sinc smoothing is a low-pass filter that
   keeps volume: spheres of radius 8-20 voxels change by < 0.1 % of their voxel volume (radius 4:
   1 %) and 2-voxel shells keep their thickness, where the Laplacian smoothing built into
   SurfaceNets3D shrinks a radius-8 sphere by 12 %.  Separate pieces too small to have a shape
   under a low-pass filter (fewer than 200 vertices) keep their voxel shape.
3. **Patches**: triangles are grouped by label pair; a structure is the union of the patches
   with exactly one side in its label set (composites such as ``heart`` work the same way).
4. **Decimation to a budget** (``fast-simplification``, quadric edge collapse) patch by patch
   with the patch borders (the junction lines) locked, so neighbouring structures still share
   their boundary exactly after decimation.  The budget is shared across structures in
   proportion to their surface area (one uniform triangle density), with a floor of
   :data:`MIN_TRIANGLES` per structure.

Output is physical LPS millimetres, outward normals (point array ``Normals``), and field data
``structure``, ``display_name``, ``label_values``, ``color``, ``voxels`` (the structure's voxel
count in the label map), ``voxel_volume_ml``, ``smoothing_volume_change_pct`` and ``space``
(``LPS``).

Examples
--------
>>> from cardioplan.mesh import build_surfaces
>>> surfaces = build_surfaces(labels, target="standalone")  # doctest: +SKIP
>>> sum(s.n_cells for s in surfaces.values()) <= 250_000    # doctest: +SKIP
True
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

import fast_simplification  # noqa: E402
import numpy as np  # noqa: E402
import pyvista as pv  # noqa: E402
import SimpleITK as sitk  # noqa: E402
from scipy.sparse import coo_matrix  # noqa: E402
from scipy.sparse.csgraph import connected_components  # noqa: E402
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy  # noqa: E402
from vtkmodules.vtkCommonCore import vtkPoints, vtkSMPTools  # noqa: E402
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkImageData, vtkPolyData  # noqa: E402
from vtkmodules.vtkFiltersCore import (  # noqa: E402
    vtkSurfaceNets3D,
    vtkWindowedSincPolyDataFilter,
)

from cardioplan.arrays import bounding_box, label_counts  # noqa: E402
from cardioplan.errors import InputError, MeshError  # noqa: E402
from cardioplan.labels import LABELS, LabelTable  # noqa: E402
from cardioplan.mesh.geometry import (  # noqa: E402
    compact,
    edge_topology,
    grid_matrix,
    group_equal_rows,
    split_quads,
    undirected_edge_keys,
    unique_counts,
    vertex_normals,
)
from cardioplan.mesh.select import Structure, resolve_structures  # noqa: E402
from cardioplan.progress import progress  # noqa: E402

__all__ = ["build_surfaces", "TARGETS", "SMOOTHING", "MIN_TRIANGLES", "allocate_budget",
           "target_budget", "vtk_image"]

log = logging.getLogger(__name__)

vtkSMPTools.SetBackend("STDThread")

TARGETS: dict[str, int | None] = {
    "desktop": 3_000_000,
    "pcvr": 1_000_000,
    "standalone": 250_000,
    "print": None,
}
"""Total triangle budget per target (``None``: no decimation, every surface must be watertight).

``pcvr`` keeps a PC-VR headset at 90 Hz, ``standalone`` fits a Quest-class headset, ``desktop``
is for a workstation GPU, ``print`` keeps full resolution for 3D printing."""

SMOOTHING: dict[str, tuple[int, float] | None] = {
    "none": None,
    "light": (15, 0.04),
    "standard": (30, 0.0125),
    "strong": (60, 0.005),
}
"""Smoothing presets: windowed-sinc ``(iterations, pass band)``; ``none`` keeps voxel steps.

The pass bands are for the quad net (four grid neighbours per vertex), chosen on analytic
spheres (radius 3-40 voxels) and thin cylinders (``docs/meshes.md``)."""

MIN_TRIANGLES = 256
"""Fewest triangles a decimated structure keeps (fewer lose its shape)."""

_SMALL_PATCH = 64  # patches this small are never decimated
_PART_REDUCTION = 0.4  # a mild reduction is made in a part of a patch that loses this fraction
_BLOCK_VOXELS = 24  # edge of the blocks that make up that part
_MAX_REPAIR_ROUNDS = 12
_SMALL_PIECE = 200  # vertices; smaller separate pieces are not smoothed (they would collapse)


@dataclass
class _Net:
    """The smoothed multi-label surface: shared points, and faces grouped by label pair."""

    points: np.ndarray
    patches: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    volumes: dict[tuple[int, int], float] = field(default_factory=dict)
    """Each patch's share of the enclosed volumes (before decimation), one common centre."""
    voxel_mm: float = 1.0
    """The largest voxel spacing."""


def build_surfaces(labels: sitk.Image, *, structures: Sequence[str] | None = None,
                   target: str = "pcvr", budget: int | None = None,
                   smoothing: str = "standard",
                   table: LabelTable = LABELS) -> dict[str, pv.PolyData]:
    """Build one closed surface per structure of a label map.

    Parameters
    ----------
    labels : SimpleITK.Image
        3D uint8 label map (values of ``table``, 0 background), any spacing and direction.
    structures : sequence of str, optional
        Structure names; composites (``heart``, ``blood_pool``) give the union of their members.
        Default: every structure present.  Missing structures are skipped with a warning.
    target : {'desktop', 'pcvr', 'standalone', 'print'}
        Sets the total triangle budget (:data:`TARGETS`); ``print`` does not decimate and
        requires watertight surfaces.
    budget : int, optional
        Total triangle budget overriding the target's.
    smoothing : {'none', 'light', 'standard', 'strong'}
        Windowed-sinc smoothing preset (:data:`SMOOTHING`); it does not shrink structures.
    table : LabelTable
        Names and colours.

    Returns
    -------
    dict of str to pyvista.PolyData
        Surfaces in physical LPS mm with outward point normals, keyed by structure name in
        request (or table) order.

    Raises
    ------
    InputError
        Bad label map, unknown structure/target/smoothing, or nothing to mesh.
    MeshError
        The budget is too small to keep every structure (the message gives the minimum), or a
        ``print`` surface is not watertight.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> z, y, x = np.mgrid[:40, :40, :40]
    >>> ball = ((x - 20) ** 2 + (y - 20) ** 2 + (z - 20) ** 2 < 15 ** 2).astype(np.uint8) * 6
    >>> surfaces = build_surfaces(sitk.GetImageFromArray(ball))
    >>> round(surfaces["aorta"].volume / 1000, 1)   # mL; the 14,123 voxels hold 14.1 mL
    14.0
    """
    total_budget = target_budget(target, budget)
    if smoothing not in SMOOTHING:
        raise InputError(f"unknown smoothing {smoothing!r}; choose one of "
                         f"{', '.join(SMOOTHING)}")
    counts = label_counts(sitk.GetArrayViewFromImage(labels))
    chosen = resolve_structures(labels, structures=structures, table=table, counts=counts)
    net, volume_scale, relabelled = _build_net(labels, chosen, counts, SMOOTHING[smoothing])
    if relabelled:
        log.info("relabelled %d voxels where surfaces pinched (diagonal contacts)", relabelled)
    members = {s.name: _structure_patches(net, s) for s in chosen}
    for s in chosen:
        if not members[s.name]:
            raise MeshError(f"no surface could be extracted for {s.name}")
    full_volume = {s.name: sum(-net.volumes[p] if flip else net.volumes[p]
                               for p, flip in members[s.name]) for s in chosen}
    if total_budget is not None:
        net = _decimate(net, members, total_budget)
    surfaces = {}
    for s in chosen:
        surface = _assemble(net, members[s.name])
        voxel_ml = s.voxels * volume_scale / 1000.0
        change = 100.0 * (full_volume[s.name] / 1000.0 / voxel_ml - 1.0)
        _annotate(surface, s, voxel_ml=voxel_ml, smoothing_change_pct=change,
                  relabelled=relabelled)
        surfaces[s.name] = surface
    if target == "print":
        _require_watertight(surfaces)
    return surfaces


def target_budget(target: str, budget: int | None) -> int | None:
    """Total triangle budget for ``target`` (or the explicit ``budget``), validated."""
    if target not in TARGETS:
        raise InputError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if budget is not None:
        if budget <= 0:
            raise InputError(f"--budget must be a positive number of triangles, got {budget}")
        if target == "print":
            raise InputError("the print target keeps full resolution; leave out --budget or "
                             "choose another target")
        return int(budget)
    return TARGETS[target]


# -- extraction --------------------------------------------------------------------------------
def vtk_image(array: np.ndarray) -> vtkImageData:
    """A VTK image (index space: origin 0, spacing 1) viewing a C-ordered (z, y, x) array.

    The caller keeps ``array`` alive while the image is used (no copy is made).
    """
    array = np.ascontiguousarray(array)
    image = vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    image.GetPointData().SetScalars(numpy_to_vtk(array.ravel(), deep=False))
    return image


def _build_net(labels: sitk.Image, chosen: list[Structure], counts: np.ndarray,
               smoothing: tuple[int, float] | None) -> tuple[_Net, float, int]:
    """Surface-net of the crop around the chosen structures, in physical space.

    The net is extracted, checked and smoothed as quads (a quad's diagonal is no edge of the
    smoothing, so each vertex has its four grid neighbours); each quad is then split along its
    shorter diagonal in physical space.

    Returns the net, the voxel volume (mm3) and the number of voxels relabelled to make every
    surface a closed 2-manifold (see :func:`_manifold_net`).
    """
    arr = sitk.GetArrayViewFromImage(labels)
    wanted = sorted({v for s in chosen for v in s.values})
    everything = len(wanted) == int((counts[1:] > 0).sum())
    if everything:
        box = bounding_box(arr)
    else:
        mask = np.zeros(arr.shape, dtype=bool)
        for v in wanted:
            mask |= arr == v
        box = bounding_box(mask)
    crop = np.pad(arr[box], 1)  # a pad of 1
    in_crop = counts if everything else np.bincount(crop.ravel(), minlength=256)
    present = [int(v) for v in np.flatnonzero(in_crop[1:]) + 1]
    poly, relabelled = _manifold_net(crop, present, [s.values for s in chosen])
    quads = vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 4).astype(np.int64)
    pairs = vtk_to_numpy(poly.GetCellData().GetArray("BoundaryLabels")).astype(np.int64)
    points = vtk_to_numpy(poly.GetPoints().GetData()).astype(np.float64)
    matrix, origin = grid_matrix(labels)
    mirrored = bool(np.linalg.det(matrix) < 0)  # a mirroring grid turns the quads inside out
    if smoothing is None:
        quads, keys, bounds = _sort_patches(quads, pairs, mirrored)
    else:
        # VTK releases the GIL while it smooths: the patches are sorted meanwhile
        with ThreadPoolExecutor(max_workers=1) as pool:
            job = pool.submit(_smoothed_points, poly, *smoothing)
            small = _small_pieces(quads, len(points))
            quads, keys, bounds = _sort_patches(quads, pairs, mirrored)
            points[~small] = job.result()[~small]
    offset = np.array([s.start for s in box[::-1]], dtype=float) - 1.0  # (x, y, z); pad of 1
    points = (points + offset) @ matrix.T + origin
    triangles, quad_volumes = split_quads(points, quads)
    volumes = np.add.reduceat(quad_volumes, bounds[:-1])
    patches = {k: triangles[2 * b:2 * e] for k, b, e in zip(keys, bounds[:-1], bounds[1:],
                                                            strict=True)}
    voxel_mm = float(np.linalg.norm(matrix, axis=0).max())
    return (_Net(points, patches, dict(zip(keys, volumes.tolist(), strict=True)), voxel_mm),
            abs(float(np.linalg.det(matrix))), relabelled)


def _surface_net(crop: np.ndarray, values: list[int], *, allow_empty: bool = False
                 ) -> vtkPolyData:
    """Unsmoothed multi-label quad net in (x, y, z) index space, with BoundaryLabels."""
    net = vtkSurfaceNets3D()
    net.SetInputData(vtk_image(crop))
    for i, value in enumerate(values):
        net.SetLabel(i, value)
    net.SetBackgroundLabel(0)
    net.SetOutputMeshTypeToQuads()
    net.SmoothingOff()
    net.Update()
    poly = net.GetOutput()
    if poly.GetNumberOfCells() == 0 and not allow_empty:
        raise MeshError("surface extraction produced no triangles")
    return poly


def _manifold_net(crop: np.ndarray, values: list[int], sets: list[tuple[int, ...]]
                  ) -> tuple[vtkPolyData, int]:
    """Surface net whose every structure (``sets``) is a closed 2-manifold, relabelling voxels.

    Voxels of one label that touch only along an edge or at a corner (a 2x2 checkerboard) make
    the surface pinch there: the net either duplicates the vertex (leaving open edges) or shares
    an edge among four triangles.  Each such 2x2x2 cell is set to its majority label; the
    neighbourhoods of the changed cells are re-checked (small local nets) until no pinch is
    left, and the quads around the changed cells are rebuilt (:func:`_spliced_net`).  On the
    phantom ~800 of 3.3 M voxels change and no structure's volume by more than 0.6 %.  ``crop``
    is modified in place.
    """
    poly = _surface_net(crop, values)
    cells = _pinched_cells(poly, sets)
    if len(cells) == 0:
        return poly, 0
    relabelled, repaired = 0, []
    for _round in range(_MAX_REPAIR_ROUNDS):
        relabelled += _relabel_majority(crop, cells)
        repaired.append(cells)
        cells = _local_pinches(crop, values, sets, cells)
        if len(cells) == 0:
            return _spliced_net(poly, crop, values, np.concatenate(repaired)), relabelled
    log.warning("some surfaces still pinch after %d repair rounds; they may not be "
                "watertight", _MAX_REPAIR_ROUNDS)
    return _surface_net(crop, values), relabelled


def _spliced_net(poly: vtkPolyData, crop: np.ndarray, values: list[int],
                 repaired: np.ndarray) -> vtkPolyData:
    """The net of the repaired ``crop``: ``poly`` (the net before the repair) with the quads
    around the ``repaired`` cells rebuilt from small nets of their neighbourhoods.

    A quad separates two neighbouring voxels of different labels and joins the centres of the
    four cells around them, so only quads whose four cells all contain a relabelled voxel can
    change.  Those are dropped and taken from the small nets instead: the result has the quads
    and points of a full rebuild (in another order; points no quad uses any more stay).
    """
    points = vtk_to_numpy(poly.GetPoints().GetData())
    quads = vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 4).astype(np.int64)
    pairs = vtk_to_numpy(poly.GetCellData().GetArray("BoundaryLabels"))
    shape = np.array(crop.shape[::-1])  # (x, y, z); cells have low corners 0 .. shape - 2
    around = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), axis=-1)
    marked = (repaired[:, None, :] + around.reshape(1, -1, 3)).reshape(-1, 3)
    marked = marked[np.all((marked >= 0) & (marked <= shape - 2), axis=1)]
    marked_keys = np.unique(_cell_keys(marked, shape))

    def in_marked(cells: np.ndarray) -> np.ndarray:
        keys = _cell_keys(cells, shape)
        at = np.minimum(np.searchsorted(marked_keys, keys), len(marked_keys) - 1)
        return marked_keys[at] == keys

    cell = np.floor(points).astype(np.int64)
    on_marked = in_marked(cell)
    changed_quads = on_marked[quads].all(axis=1)
    new_cells, new_pairs = _rebuilt_quads(crop, values, marked, in_marked)
    # the new quads' cells: a point of the old net (one per cell after the repair), or a new one
    old_ids = np.flatnonzero(on_marked)
    old_keys = _cell_keys(cell[old_ids], shape)
    order = np.argsort(old_keys)
    old_keys, old_ids = old_keys[order], old_ids[order]
    keys, index = np.unique(_cell_keys(new_cells.reshape(-1, 3), shape), return_inverse=True)
    ids = np.empty(len(keys), dtype=np.int64)
    found = np.zeros(len(keys), dtype=bool)
    if len(old_keys):
        at = np.minimum(np.searchsorted(old_keys, keys), len(old_keys) - 1)
        found = old_keys[at] == keys
        ids[found] = old_ids[at[found]]
    ids[~found] = len(points) + np.arange(int((~found).sum()))
    first = np.unique(index, return_index=True)[1]
    new_points = new_cells.reshape(-1, 3)[first[~found]].astype(np.float32) + 0.5
    return _polydata(np.concatenate([points, new_points]),
                     np.concatenate([quads[~changed_quads], ids[index].reshape(-1, 4)]),
                     np.concatenate([pairs[~changed_quads], new_pairs]))


def _cell_keys(cells: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """One int64 per (x, y, z) cell of a grid of ``shape`` (x, y, z) voxels."""
    return (cells[..., 2] * shape[1] + cells[..., 1]) * shape[0] + cells[..., 0]


def _rebuilt_quads(crop: np.ndarray, values: list[int], marked: np.ndarray,
                   in_marked) -> tuple[np.ndarray, np.ndarray]:
    """Quads (as (x, y, z) cells of their corners) and their label pairs, of the nets of the
    windows around ``marked`` cells, whose four cells are all marked (each quad once)."""
    # a quad on a marked cell has its cells within one of it and its voxels within two
    windows = _windows(marked, np.array(crop.shape[::-1]), margin=3)
    net, tiles = _tiled_net(crop, values, windows)
    if net.GetNumberOfCells() == 0:
        return np.zeros((0, 4, 3), dtype=np.int64), np.zeros((0, 2), dtype=np.uint8)
    cells, _, inside = tiles.locate(
        np.floor(vtk_to_numpy(net.GetPoints().GetData())).astype(np.int64))
    quads = vtk_to_numpy(net.GetPolys().GetConnectivityArray()).reshape(-1, 4)
    keep = (inside & in_marked(cells))[quads].all(axis=1)
    cells = cells[quads[keep]]
    pairs = vtk_to_numpy(net.GetCellData().GetArray("BoundaryLabels"))[keep]
    # windows overlap: keep each quad once
    first = np.unique(np.sort(_cell_keys(cells, np.array(crop.shape[::-1])), axis=1), axis=0,
                      return_index=True)[1]
    return cells[first], pairs[first]


def _polydata(points: np.ndarray, quads: np.ndarray, pairs: np.ndarray) -> vtkPolyData:
    """A quad net as VTK polydata with its BoundaryLabels (as :func:`_surface_net` gives)."""
    poly = vtkPolyData()
    vtk_points = vtkPoints()
    vtk_points.SetData(numpy_to_vtk(np.ascontiguousarray(points, dtype=np.float32), deep=True))
    poly.SetPoints(vtk_points)
    polys = vtkCellArray()
    polys.SetData(4, numpy_to_vtk(np.ascontiguousarray(quads.ravel(), dtype=np.int64),
                                  deep=True))
    poly.SetPolys(polys)
    labels = numpy_to_vtk(np.ascontiguousarray(pairs, dtype=np.uint8), deep=True)
    labels.SetName("BoundaryLabels")
    poly.GetCellData().AddArray(labels)
    return poly


def _relabel_majority(crop: np.ndarray, cells: np.ndarray) -> int:
    """Set each 2x2x2 cell (x, y, z low corners) to its majority label; voxels changed."""
    changed = 0
    for x, y, z in cells:
        block = crop[z:z + 2, y:y + 2, x:x + 2]
        vals, n = np.unique(block, return_counts=True)
        majority = vals[np.argmax(n)]
        changed += int((block != majority).sum())
        block[...] = majority
    return changed


def _local_pinches(crop: np.ndarray, values: list[int], sets: list[tuple[int, ...]],
                   around: np.ndarray) -> np.ndarray:
    """Pinched cells within a few voxels of ``around`` (small nets of the neighbourhoods)."""
    windows = _windows(around, np.array(crop.shape[::-1]), margin=4)
    net, tiles = _tiled_net(crop, values, windows)
    if net.GetNumberOfCells() == 0:
        return np.zeros((0, 3), dtype=np.int64)
    cells, window, _ = tiles.locate(_pinched_cells(net, sets))
    # a window's own edges open the surfaces: keep cells well inside the window
    lo, hi = windows[window, 0], windows[window, 1]
    cells = cells[np.all((cells >= lo + 1) & (cells <= hi - 3), axis=1)]
    return cells[group_equal_rows(cells.astype(np.float64))[0]]


def _windows(cells: np.ndarray, shape: np.ndarray, *, margin: int) -> np.ndarray:
    """``(n, 2, 3)`` (x, y, z) voxel bounds (``lo``, exclusive ``hi``) of windows holding the
    ``cells`` (low corners) with ``margin`` voxels around: one per 16-voxel block of cells
    (cells cluster where shapes meet)."""
    block = cells // 16
    order = np.lexsort(block.T[::-1])
    block, cells = block[order], cells[order]
    starts = np.flatnonzero(np.concatenate(([True], (block[1:] != block[:-1]).any(axis=1))))
    return np.array([(np.maximum(group.min(axis=0) - margin, 0),
                      np.minimum(group.max(axis=0) + margin + 2, shape))
                     for group in np.split(cells, starts[1:])], dtype=np.int64).reshape(-1, 2, 3)


@dataclass
class _Tiles:
    """Where :func:`_tiled_net` put each window: its x offset in the tiled image."""

    windows: np.ndarray
    offsets: np.ndarray

    def locate(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Crop cells of tiled-image cells, each one's window, and whether it lies wholly in
        that window (cells at the gaps between windows are artefacts)."""
        window = np.maximum(np.searchsorted(self.offsets, cells[:, 0], side="right") - 1, 0)
        local = cells.copy()
        local[:, 0] -= self.offsets[window]
        size = self.windows[window, 1] - self.windows[window, 0]
        inside = np.all((local >= 0) & (local <= size - 2), axis=1)
        return local + self.windows[window, 0], window, inside


def _tiled_net(crop: np.ndarray, values: list[int], windows: np.ndarray
               ) -> tuple[vtkPolyData, _Tiles]:
    """One surface net of several windows of ``crop``, placed side by side along x one
    background voxel apart (one VTK call instead of one per window: ~1.5 ms each).

    Quads between a window's border and the gap are artefacts: :meth:`_Tiles.to_windows` drops
    the cells that are not wholly inside one window.
    """
    size = windows[:, 1] - windows[:, 0]
    offsets = np.concatenate(([0], np.cumsum(size[:, 0] + 1)[:-1]))
    tiled = np.zeros((size[:, 2].max(), size[:, 1].max(), int(offsets[-1] + size[-1, 0])),
                     dtype=np.uint8)
    for (lo, hi), (sx, sy, sz), x in zip(windows, size, offsets, strict=True):
        tiled[:sz, :sy, x:x + sx] = crop[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]]
    return _surface_net(tiled, values, allow_empty=True), _Tiles(windows, offsets)


def _pinched_cells(poly: vtkPolyData, sets: list[tuple[int, ...]]) -> np.ndarray:
    """(x, y, z) low corners of the voxel cells where a structure's surface is not a 2-manifold.

    ``sets`` are the label values of each structure (one value, or a composite's members).

    Unsmoothed surface-net vertices sit at cell centres (``index + 0.5``): a duplicated vertex,
    or an edge used by other than two quads of one structure, marks its cells.
    """
    points = vtk_to_numpy(poly.GetPoints().GetData())
    cell = np.floor(points).astype(np.int64)
    span = cell.max(axis=0) + 1
    key = (cell[:, 2] * span[1] + cell[:, 1]) * span[0] + cell[:, 0]
    order = np.argsort(key)
    ordered = key[order]
    same = ordered[1:] == ordered[:-1]
    bad_points = np.zeros(len(key), dtype=bool)
    bad_points[order[1:][same]] = True  # every copy of a duplicated vertex
    bad_points[order[:-1][same]] = True
    quads = vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 4).astype(np.int64)
    pairs = vtk_to_numpy(poly.GetCellData().GetArray("BoundaryLabels")).astype(np.int64)
    n_points = len(points)
    edge_key = undirected_edge_keys(quads, n_points)  # edge k of quad i at k * len(quads) + i
    # The quads around a net edge are the label changes around its 2x2 voxel square, so away
    # from duplicated vertices a structure bounds an edge of 2 or 3 quads 0 or 2 times: only
    # edges of 1 or 4 quads, or at a duplicated vertex, are counted per structure.
    uniq, n = unique_counts(edge_key)
    odd = uniq[(n != 2) & (n != 3)]
    suspect = bad_points[edge_key // n_points] | bad_points[edge_key % n_points]
    if len(odd):
        at = np.minimum(np.searchsorted(odd, edge_key), len(odd) - 1)
        suspect |= odd[at] == edge_key
    entry = np.flatnonzero(suspect)
    edge_key, side = edge_key[entry], pairs[entry % len(quads)]
    keys = []
    for i, values in enumerate(sets):
        inside = np.zeros(256, dtype=bool)
        inside[list(values)] = True
        bounding = inside[side[:, 0]] != inside[side[:, 1]]
        keys.append(edge_key[bounding] + i * n_points * n_points)
    uniq, n = unique_counts(np.concatenate(keys))
    bad_edges = uniq[n != 2] % (n_points * n_points)
    bad_points[bad_edges // n_points] = True
    bad_points[bad_edges % n_points] = True
    bad = cell[bad_points]
    return bad[group_equal_rows(bad.astype(np.float64))[0]]


def _small_pieces(faces: np.ndarray, n_points: int) -> np.ndarray:
    """Which points belong to separate pieces too small to smooth (they keep their voxel shape).

    A low-pass filter removes the whole shape of a piece only a few voxels across (a one-voxel
    island has no low frequencies): it would collapse to a point.  Pieces of the net with fewer
    than :data:`_SMALL_PIECE` vertices are therefore left unsmoothed.  ``faces`` are polygons
    (triangles or quads) of the net.
    """
    graph = coo_matrix((np.ones(faces[:, 1:].size, dtype=bool),
                        (faces[:, :-1].ravel(), faces[:, 1:].ravel())),
                       shape=(n_points, n_points))
    _, piece = connected_components(graph, directed=False)
    return np.bincount(piece)[piece] < _SMALL_PIECE


def _smoothed_points(poly: vtkPolyData, iterations: int, pass_band: float) -> np.ndarray:
    """The points of :func:`_smooth`'s output (float64); VTK releases the GIL meanwhile."""
    return vtk_to_numpy(_smooth(poly, iterations, pass_band).GetPoints().GetData()).astype(
        np.float64)


def _smooth(poly: vtkPolyData, iterations: int, pass_band: float) -> vtkPolyData:
    """Windowed-sinc smoothing of the whole net (junction lines smoothed along themselves)."""
    sinc = vtkWindowedSincPolyDataFilter()
    sinc.SetInputData(poly)
    sinc.SetNumberOfIterations(iterations)
    sinc.SetPassBand(pass_band)
    sinc.NormalizeCoordinatesOn()
    sinc.BoundarySmoothingOff()
    sinc.FeatureEdgeSmoothingOff()
    sinc.NonManifoldSmoothingOn()
    sinc.Update()
    return sinc.GetOutput()


def _sort_patches(quads: np.ndarray, pairs: np.ndarray, mirrored: bool
                  ) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
    """Sort quads by (low, high) label pair, oriented outward from the low label.

    SurfaceNets3D orients each polygon to face from its first boundary label to the second (on
    a mirroring grid, the other way).  Returns the sorted quads, the pairs, and the bounds of
    each pair's run (``bounds[i]:bounds[i + 1]``).
    """
    first, second = pairs[:, 0], pairs[:, 1]
    low = np.minimum(first, second)
    key = (low * 256 + np.maximum(first, second)).astype(np.uint16)
    order = np.argsort(key, kind="stable")  # a radix sort for 16-bit keys
    ordered = key[order]
    quads = quads[order]
    flip = (first != low)[order] ^ mirrored
    quads[flip] = quads[flip][:, ::-1]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    keys = [(int(k) // 256, int(k) % 256) for k in ordered[starts]]
    return quads, keys, np.append(starts, len(quads))


def _structure_patches(net: _Net, structure: Structure) -> list[tuple[tuple[int, int], bool]]:
    """``(pair, flip)`` of the patches bounding ``structure`` (flip: it is the high label)."""
    inside = set(structure.values)
    out = []
    for low, high in net.patches:
        if (low in inside) != (high in inside):
            out.append(((low, high), high in inside))
    return out


# -- decimation --------------------------------------------------------------------------------
def allocate_budget(patch_sizes: dict[tuple[int, int], int],
                    members: dict[str, list[tuple[int, int]]], budget: int,
                    *, floor: int = MIN_TRIANGLES) -> dict[tuple[int, int], int]:
    """Triangles to keep per patch so that all structures together fit ``budget``.

    Every structure keeps the same fraction ``r`` of its triangles (a uniform density, i.e. a
    share proportional to its surface area) but at least ``min(floor, its triangles)``; a patch
    shared by two structures keeps the larger of their fractions and counts for both.  ``r``
    is the largest value whose total fits.

    Raises
    ------
    MeshError
        ``budget`` is below the total at ``r = 0`` (every structure at its floor); the
        message gives that minimum.

    Examples
    --------
    >>> allocate_budget({(0, 1): 1000, (0, 2): 3000}, {"a": [(0, 1)], "b": [(0, 2)]}, 2000)
    {(0, 1): 500, (0, 2): 1500}
    """
    if _plan_total(patch_sizes, members) <= budget:
        return dict(patch_sizes)
    minimum = _plan_total(_plan(patch_sizes, members, 0.0, floor), members)
    if minimum > budget:
        raise _too_small(budget, len(members), minimum, floor)
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if _plan_total(_plan(patch_sizes, members, mid, floor), members) <= budget:
            lo = mid
        else:
            hi = mid
    counts = _plan(patch_sizes, members, lo, floor)
    return {p: counts.get(p, n) for p, n in patch_sizes.items()}


def _plan(patch_sizes: dict[tuple[int, int], int], members: dict[str, list[tuple[int, int]]],
          r: float, floor: int) -> dict[tuple[int, int], int]:
    """Triangles per patch when every structure keeps a fraction ``r`` (or its floor)."""
    ratio: dict[tuple[int, int], float] = {}
    for ps in members.values():
        full = sum(patch_sizes[p] for p in ps)
        rs = max(r, min(full, floor) / full) if full else 1.0
        for p in ps:
            ratio[p] = min(1.0, max(ratio.get(p, 0.0), rs))
    return {p: max(1, math.ceil(patch_sizes[p] * ratio[p])) for p in ratio}


def _plan_total(counts: dict[tuple[int, int], int],
                members: dict[str, list[tuple[int, int]]]) -> int:
    """Triangles of all structures together (a shared patch counts for each of them)."""
    return sum(counts[p] for ps in members.values() for p in ps)


def _too_small(budget: int, n_structures: int, minimum: int,
               floor: int = MIN_TRIANGLES) -> MeshError:
    return MeshError(f"a budget of {budget} triangles is too small to keep {n_structures} "
                     f"closed structures (at least {floor} triangles each, and the "
                     f"junctions between them); the minimum that works is {minimum} (pass "
                     f"--budget {minimum} or more, or fewer --structures)")


def _decimate(net: _Net, members: dict[str, list[tuple[tuple[int, int], bool]]],
              budget: int) -> _Net:
    """Decimate every patch with locked borders so that the structures fit ``budget``.

    Locked borders can keep a few more triangles than planned; the plan is then tightened,
    but never below every structure's floor.  When even the floors do not fit, the error gives
    the total they really need.
    """
    used = {p for ps in members.values() for p, _ in ps}
    sizes = {p: len(f) for p, f in net.patches.items() if p in used}
    by_name = {name: [p for p, _ in ps] for name, ps in members.items()}

    def kept(decimated: _Net) -> int:
        return _plan_total({p: len(f) for p, f in decimated.patches.items()}, by_name)

    if _plan_total(sizes, by_name) <= budget:
        return net
    floor_plan = _plan(sizes, by_name, 0.0, MIN_TRIANGLES)
    floor_total = _plan_total(floor_plan, by_name)
    goal = budget
    while goal >= floor_total:
        decimated = _decimate_patches(net, allocate_budget(sizes, by_name, goal))
        achieved = kept(decimated)
        if achieved <= budget:
            return decimated
        log.debug("decimation kept %d triangles for a budget of %d; tightening", achieved,
                  budget)
        if goal == floor_total:
            break
        goal = max(floor_total, int(goal * budget / achieved * 0.98))
    needed = max(floor_total, kept(_decimate_patches(net, floor_plan)))
    raise _too_small(budget, len(by_name), needed)


def _decimate_patches(net: _Net, targets: dict[tuple[int, int], int]) -> _Net:
    """Decimate each patch to its target count; the patches keep sharing their locked borders.

    A patch that loses only a small fraction of its triangles (the ``pcvr`` budget on a typical
    CT: ~4 %) is decimated in a part of it, evenly spread blocks that lose
    :data:`_PART_REDUCTION` of theirs (:func:`_decimation_part`): the decimator's cost is
    mostly its setup over every triangle it is given.

    fast-simplification keeps the surviving vertices in input order, so every decimated point
    goes back to its own index in the net (a collapsed vertex's index falls out of use), and
    the locked borders stay shared without any merging.  Should the library ever reorder its
    output (checked on the vertices no collapse touched), the patch's points are matched by
    value instead.
    """
    points = net.points.copy()
    block = _blocks(points, _BLOCK_VOXELS * net.voxel_mm)
    added: list[np.ndarray] = []
    patches = {}
    for pair, faces in progress(net.patches.items(), desc="decimating", total=len(net.patches),
                                unit="patch"):
        goal = targets.get(pair, len(faces))
        if goal >= len(faces) or len(faces) <= _SMALL_PATCH:
            patches[pair] = faces
            continue
        rest, result = faces[:0], None
        part = _decimation_part(block[faces[:, 0]], len(faces) - goal)
        if part is not None:
            rest = faces[~part]
            result = _simplified(points, faces[part], goal - len(rest))
            if len(result[2]) > goal - len(rest):  # its locked borders kept too many
                rest, result = faces[:0], None
        ids, new_points, new_faces, collapses = result or _simplified(points, faces, goal)
        survives = np.ones(len(ids), dtype=bool)
        survives[collapses[:, 1]] = False
        if _in_order(points[ids[survives]], new_points, collapses, survives):
            points[ids[survives]] = new_points
            decimated = ids[survives][new_faces]
        else:
            index = _match_by_value(points[ids], ids, new_points,
                                    len(points) + sum(map(len, added)))
            added.append(new_points[index >= len(points)])
            decimated = index[new_faces]
        patches[pair] = np.concatenate([rest, decimated])
    return _Net(np.concatenate([points, *added]), patches, voxel_mm=net.voxel_mm)


def _simplified(points: np.ndarray, faces: np.ndarray, goal: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """fast-simplification of ``faces`` to ``goal`` triangles with locked borders:
    ``(ids, new_points, new_faces, collapses)``, ``ids`` the net indices of its input points,
    ``collapses`` its (kept, removed) pairs of input points."""
    ids, local = _local_mesh(faces, len(points))
    new_points, new_faces, collapses = fast_simplification.simplify(
        points[ids], local, target_count=int(goal), preserve_border=True, return_collapses=True)
    return ids, new_points, new_faces, np.asarray(collapses).reshape(-1, 2)


def _blocks(points: np.ndarray, size: float) -> np.ndarray:
    """Index of the cube of edge ``size`` (mm) each point lies in."""
    cube = ((points - points.min(axis=0)) // size).astype(np.int64)
    span = cube.max(axis=0) + 1
    return (cube[:, 2] * span[1] + cube[:, 1]) * span[0] + cube[:, 0]


def _decimation_part(block: np.ndarray, remove: int) -> np.ndarray | None:
    """Which faces (``block``: each one's block) to decimate so that ``remove`` triangles go:
    evenly spread blocks holding ``remove / _PART_REDUCTION`` faces, or ``None`` (the whole
    patch) when that is more than half of them.

    Their borders with the rest are locked like the patch's own, so the blocks lose their
    triangles inside; should they keep more than planned, the whole patch is decimated.
    """
    wanted = remove / _PART_REDUCTION
    if wanted > 0.5 * len(block):
        return None
    counts = np.bincount(block)
    blocks = np.flatnonzero(counts)
    stride = max(1, int(len(block) / wanted))
    while stride > 1 and counts[blocks[::stride]].sum() < wanted:
        stride -= 1
    chosen = np.zeros(len(counts), dtype=bool)
    chosen[blocks[::stride]] = True
    return chosen[block]


def _local_mesh(faces: np.ndarray, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, local)``: the point indices ``faces`` use, and ``faces`` renumbered to them
    (int32, for fast-simplification)."""
    used = np.zeros(n_points, dtype=bool)
    used[faces.ravel()] = True
    ids = np.flatnonzero(used)
    remap = np.empty(n_points, dtype=np.int32)
    remap[ids] = np.arange(len(ids), dtype=np.int32)
    return ids, remap[faces]


def _in_order(survivors: np.ndarray, new_points: np.ndarray, collapses: np.ndarray,
              kept: np.ndarray) -> bool:
    """Whether ``new_points`` are the surviving input points in input order (bit-identical
    where no collapse touched them)."""
    if len(survivors) != len(new_points):
        return False
    touched = np.zeros(len(kept), dtype=bool)
    touched[collapses.ravel()] = True
    still = ~touched[kept]
    return bool(np.array_equal(survivors[still], new_points[still]))


def _match_by_value(old_points: np.ndarray, ids: np.ndarray, new_points: np.ndarray,
                    next_index: int) -> np.ndarray:
    """Net indices of a decimated patch's points: an unchanged point (the locked border)
    keeps its index in ``ids``, a moved one gets a new index from ``next_index`` on."""
    first, inverse = group_equal_rows(np.concatenate([old_points, new_points]),
                                      sorted_groups=False)
    source = first[inverse[len(old_points):]]  # the first row of the same value
    old = source < len(old_points)
    index = np.empty(len(new_points), dtype=np.int64)
    index[old] = ids[source[old]]
    index[~old] = next_index + np.arange(int((~old).sum()))
    return index


# -- assembly ----------------------------------------------------------------------------------
def _assemble(net: _Net, patches: list[tuple[tuple[int, int], bool]]) -> pv.PolyData:
    faces = np.concatenate([net.patches[p][:, ::-1] if flip else net.patches[p]
                            for p, flip in patches])
    points, faces = compact(net.points, faces)
    surface = pv.PolyData.from_regular_faces(points.astype(np.float32), faces)
    surface.point_data["Normals"] = vertex_normals(points, faces).astype(np.float32)
    surface.point_data.active_normals_name = "Normals"
    return surface


def _annotate(surface: pv.PolyData, structure: Structure, *, voxel_ml: float,
              smoothing_change_pct: float, relabelled: int) -> None:
    lab = structure.label
    surface.field_data["structure"] = [lab.name]
    surface.field_data["display_name"] = [lab.display_name]
    surface.field_data["label_values"] = np.array(structure.values, dtype=np.int32)
    surface.field_data["color"] = np.array(lab.color, dtype=np.uint8)
    surface.field_data["voxels"] = np.array([structure.voxels], dtype=np.int64)
    surface.field_data["voxel_volume_ml"] = np.array([voxel_ml])
    surface.field_data["smoothing_volume_change_pct"] = np.array([smoothing_change_pct])
    surface.field_data["relabelled_voxels"] = np.array([relabelled], dtype=np.int64)
    surface.field_data["space"] = ["LPS"]


def _require_watertight(surfaces: dict[str, pv.PolyData]) -> None:
    leaky = []
    for name, surface in surfaces.items():
        faces = surface.faces.reshape(-1, 4)[:, 1:]
        topo = edge_topology(faces)
        if not topo["watertight"]:
            leaky.append(f"{name} ({topo['boundary_edges']} open edges, "
                         f"{'non-' if not topo['manifold'] else ''}manifold)")
    if leaky:
        raise MeshError("surfaces for printing must be watertight, but these are not: "
                        f"{'; '.join(leaky)}; repair them with cardioplan.printprep.repair or "
                        "fill holes in the segmentation")
