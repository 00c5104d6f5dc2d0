"""Case-level steps that chain the library: what ``cardioplan segment`` and ``demo`` share.

Each function takes an open :class:`~cardioplan.case.Case`, runs one stage of the one-way flow
(segment -> mesh -> report) and records its results in the case.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from cardioplan.case import Case
from cardioplan.errors import CardioPlanError
from cardioplan.seeds import Seed
from cardioplan.volume import Volume

__all__ = ["segment_volume", "write_segmentation", "mesh_after_segmentation"]

log = logging.getLogger(__name__)


def segment_volume(volume: Volume, *, modality: str = "auto",
                   structures: Sequence[str] | None = None, seeds: Sequence[Seed] = (),
                   bias_correction: bool = False) -> Any:
    """Run :func:`segmentation.pipeline.segment` (imported lazily: it is the heavy stage)."""
    from segmentation.pipeline import segment

    return segment(volume, modality=modality, structures=structures, seeds=seeds,
                   bias_correction=bias_correction)


def write_segmentation(case: Case, result: Any, *, force: bool = False) -> None:
    """Write a segmentation result into ``case``.

    Writes ``labels.nii.gz``, ``labels.seg.nrrd`` (3D Slicer), per-structure volumes and the
    method and warnings (section ``segmentation`` of ``case.json``).
    """
    from cardioplan.export.seg_nrrd import write_seg_nrrd

    case.write_labels(result.labels, produced_by="cardioplan segment", force=force)
    write_seg_nrrd(result.labels, case.slicer_labels_path, crop=True,
                   counts=result.voxel_counts())
    case.record_file("labels_seg_nrrd", case.slicer_labels_path, produced_by="cardioplan segment")
    case.set_structures(result.structures, merge=False)
    case.set_section("segmentation", {"modality": result.modality,
                                      "warnings": list(result.warnings), **result.method})


def mesh_after_segmentation(case: Case, *, warnings: list[str], force: bool = False,
                            target: str = "pcvr") -> dict[str, Any] | None:
    """Build the case's meshes; a failure is logged and appended to ``warnings``.

    The segmentation stays in place when meshing fails, and the message says how to retry.
    """
    from cardioplan.mesh import mesh_case

    try:
        return mesh_case(case, target=target, force=force)
    except CardioPlanError as exc:
        msg = f"meshes were not built ({exc}); run `cardioplan mesh {case.path}` to retry"
        log.warning("%s", msg)
        warnings.append(msg)
        return None
