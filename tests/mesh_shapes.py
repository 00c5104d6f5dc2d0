"""Analytic label maps for the mesh and export tests (known volume, area and surface)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

ROTATED = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # 90 degrees about z
MIRRORED = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0)  # det -1


def physical_grid(size, spacing, origin, direction):
    """Physical coordinates (x, y, z arrays in numpy z, y, x order) of every voxel centre."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in size[::-1]), indexing="ij")
    idx = np.stack([i, j, k], axis=-1).astype(float) * np.asarray(spacing)
    d = np.asarray(direction).reshape(3, 3)
    pts = idx @ d.T + np.asarray(origin)
    return pts[..., 0], pts[..., 1], pts[..., 2]


def image(arr, spacing, origin, direction) -> sitk.Image:
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction)
    return img


def nested_spheres(*, inner_mm=14.0, outer_mm=17.0, spacing=(0.9, 1.0, 1.1),
                   direction=ROTATED, centre=(3.2, -4.1, 10.3), inner=1, outer=5,
                   extra=None):
    """A ball (``inner``) in a shell (``outer``), optionally a separate box (``extra``).

    Returns the label image; the analytic radii are ``inner_mm`` and ``outer_mm``.
    """
    size = (48, 44, 42)
    half = 0.5 * (np.asarray(size) - 1) * np.asarray(spacing)
    origin = tuple(np.asarray(centre) - np.asarray(direction).reshape(3, 3) @ half)
    x, y, z = physical_grid(size, spacing, origin, direction)
    r = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2)
    arr = np.zeros(size[::-1], np.uint8)
    arr[r < outer_mm] = outer
    arr[r < inner_mm] = inner
    if extra is not None:
        arr[2:8, 2:10, 2:9] = extra
    return image(arr, spacing, origin, direction)
