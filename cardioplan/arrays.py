"""Bounding boxes and value counts of masks and label maps (plain NumPy, no SimpleITK or VTK).

Every stage (segmentation, meshing, export) crops to the voxels that hold something before the
expensive work, and counts the voxels of each label value; this module is the one implementation
of both, so that it can sit below all of them in the data flow.

Examples
--------
>>> import numpy as np
>>> labels = np.zeros((4, 5, 6), dtype=np.uint8); labels[1, 2:4, 3] = 7
>>> bounding_box(labels)
(slice(1, 2, None), slice(2, 4, None), slice(3, 4, None))
>>> bounding_box(labels, pad=1)
(slice(0, 3, None), slice(1, 5, None), slice(2, 5, None))
>>> label_counts(labels)[[0, 7]].tolist()
[118, 2]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bounding_box", "grow_box", "label_counts"]


def bounding_box(mask: np.ndarray, pad: int | Sequence[int] = 0) -> tuple[slice, ...] | None:
    """The smallest box holding every nonzero voxel of ``mask``, grown by ``pad`` voxels.

    Parameters
    ----------
    mask : numpy.ndarray
        Any number of dimensions; boolean, or integer (a label map: nonzero is foreground).
    pad : int or sequence of int, optional
        Margin added on both sides, one for all axes or one per axis; the box is clipped to
        the array.

    Returns
    -------
    tuple of slice or None
        One slice per axis (index ``mask[box]`` to crop), or None when ``mask`` is all zero.

    Notes
    -----
    Reductions over the leading axis only (contiguous rows, then the planes OR-ed together):
    tens of times faster than ``scipy.ndimage.find_objects`` on a whole chest's mask.
    """
    extent = _extent(mask)
    if extent is None:
        return None
    return grow_box(tuple(slice(start, stop) for start, stop in extent), pad, mask.shape)


def grow_box(box: Sequence[slice], pad: int | Sequence[int], shape: Sequence[int]
             ) -> tuple[slice, ...]:
    """``box`` (one slice per axis, e.g. from ``scipy.ndimage.find_objects``) grown by ``pad``
    voxels on both sides, one for all axes or one per axis, and clipped to an array of ``shape``.

    Examples
    --------
    >>> grow_box((slice(0, 2), slice(3, 5)), 1, (4, 5))
    (slice(0, 3, None), slice(2, 5, None))
    """
    pads = [pad] * len(box) if isinstance(pad, int) else list(pad)
    return tuple(slice(max(b.start - p, 0), min(b.stop + p, n))
                 for b, p, n in zip(box, pads, shape, strict=True))


def _extent(mask: np.ndarray) -> list[tuple[int, int]] | None:
    """``(start, stop)`` of the nonzero voxels along each axis (None if there are none)."""
    rows = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
    if not rows.size:
        return None
    span = (int(rows[0]), int(rows[-1]) + 1)
    return [span] if mask.ndim == 1 else [span, *_extent(mask[span[0]:span[1]].any(axis=0))]


def label_counts(labels: np.ndarray) -> np.ndarray:
    """Voxel count of every value 0..255 of a label map (a length-256 ``int64`` array).

    ``labels`` holds values 0..255 (any integer dtype; it is read as ``uint8``).  Only the
    bounding box of the nonzero voxels is counted (the heart is a small part of a scan), and
    no ``int64`` copy of the map is made.

    Examples
    --------
    >>> label_counts(np.array([[0, 3], [3, 255]], dtype=np.uint8))[[0, 3, 255]].tolist()
    [1, 2, 1]
    """
    arr = np.asarray(labels)
    if arr.dtype != np.uint8:
        arr = arr.astype(np.uint8)
    counts = np.zeros(256, dtype=np.int64)
    box = bounding_box(arr)
    if box is None:
        counts[0] = arr.size
        return counts
    inside = arr[box]
    counts[:] = _byte_counts(inside)
    counts[0] += arr.size - inside.size
    return counts


def _byte_counts(values: np.ndarray) -> np.ndarray:
    """``np.bincount(values, minlength=256)`` of a uint8 array, counted over byte pairs.

    Each pair of bytes is one 16-bit value (half as many to count, 1.6x faster); the 256 x 256
    table of pairs is summed back to the counts of the first and of the second byte.

    Examples
    --------
    >>> _byte_counts(np.array([3, 0, 3, 255, 3], dtype=np.uint8))[[0, 3, 255]].tolist()
    [1, 3, 1]
    """
    values = np.ascontiguousarray(values, dtype=np.uint8).ravel()
    even = values[:values.size - values.size % 2]
    pairs = np.bincount(even.view("<u2"), minlength=65536).reshape(256, 256)  # [second, first]
    counts = pairs.sum(axis=0) + pairs.sum(axis=1)
    if values.size % 2:
        counts[values[-1]] += 1
    return counts
