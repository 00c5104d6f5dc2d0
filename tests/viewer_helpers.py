"""Shared helpers of the viewer, snapshot and report tests: a phantom case and colour masks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cardioplan.case import Case
from cardioplan.labels import LABELS

PHANTOM_SPACING = (2.0, 2.0, 2.0)


def make_phantom_case(path: Path, *, target: str = "standalone") -> Case:
    """A complete case (CT, labels, meshes) of the project's phantom at 2 mm."""
    from cardioplan.mesh import mesh_case
    from cardioplan.phantom import make_phantom

    image, labels = make_phantom(spacing=PHANTOM_SPACING, noise_hu=0)
    with Case.create(path) as case:
        case.write_image(image, produced_by="test", modality="CT")
        case.write_labels(labels, produced_by="test")
    case = Case.open(path)
    mesh_case(case, target=target)
    return Case.open(path)


def _unit(rgb: np.ndarray) -> np.ndarray:
    v = rgb.astype(np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def color_mask(rgb: np.ndarray, structure: str, among: Sequence[str], *,
               max_angle_deg: float = 7.0, min_brightness: int = 45) -> np.ndarray:
    """Pixels whose hue is closest to ``structure``'s label colour among ``among``'s colours
    (shading changes brightness, not hue) and within ``max_angle_deg`` of it."""
    colors = np.array([LABELS[s].color for s in among], float)
    cos = np.einsum("hwc,kc->hwk", _unit(rgb), _unit(colors))
    best = cos.argmax(-1)
    target = list(among).index(structure)
    bright = rgb.max(-1) >= min_brightness
    close = cos[..., target] >= math.cos(math.radians(max_angle_deg))
    return (best == target) & close & bright


def exact_color_mask(rgb: np.ndarray, color: Sequence[int], *, tol: int = 12) -> np.ndarray:
    """Pixels within ``tol`` of an exact (unlit) colour."""
    return (np.abs(rgb.astype(int) - np.asarray(color, int)) <= tol).all(-1)


def centroid(mask: np.ndarray) -> tuple[float, float]:
    """``(column, row)`` centre of the True pixels."""
    rows, cols = np.nonzero(mask)
    assert rows.size, "no pixel of that colour"
    return float(cols.mean()), float(rows.mean())
