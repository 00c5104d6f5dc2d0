"""Camera presets named as cardiologists expect, in LPS patient coordinates (pure maths).

LPS: +x points to the patient's **left**, +y **posterior**, +z **superior**.  Every preset looks at
the centre of the scene's bounds from a direction given in that frame, and is far enough away
that a sphere around the bounds fits the view.

The obliques follow the angiography C-arm convention: the view direction is where the image
intensifier sits.  ``LAO θ`` rotates the anterior view by θ towards the patient's left,
``RAO θ`` towards the right; ``cranial φ`` tilts it towards the head, ``caudal φ`` towards the
feet.

Examples
--------
>>> cam = preset_camera("anterior", (-10, 10, -10, 10, -10, 10))
>>> [round(c) for c in cam.position[:2]], cam.view_up
([0, -70], (0.0, 0.0, 1.0))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cardioplan.errors import InputError
from cardioplan.plan import Camera

__all__ = ["Preset", "PRESETS", "preset_camera", "c_arm_direction", "bounds_center_radius",
           "screen_axes", "project_point"]


@dataclass(frozen=True)
class Preset:
    """A named view: the direction from the focal point to the camera and the view-up vector."""

    name: str
    title: str
    direction: tuple[float, float, float]
    view_up: tuple[float, float, float]


def c_arm_direction(lao_deg: float, cranial_deg: float) -> tuple[float, float, float]:
    """Unit vector from the heart to the image intensifier (LPS).

    Parameters
    ----------
    lao_deg : float
        Positive: left anterior oblique; negative: right anterior oblique.
    cranial_deg : float
        Positive: cranial angulation; negative: caudal.

    Examples
    --------
    >>> [round(c, 3) for c in c_arm_direction(90, 0)]   # LAO 90 = left lateral
    [1.0, -0.0, 0.0]
    """
    a, c = math.radians(lao_deg), math.radians(cranial_deg)
    return (math.sin(a) * math.cos(c), -math.cos(a) * math.cos(c), math.sin(c))


def _up_for(direction: Sequence[float]) -> tuple[float, float, float]:
    """Superior (+z) projected perpendicular to ``direction``; anterior when looking along z."""
    d = direction
    up = (0.0, 0.0, 1.0)
    dot = sum(u * v for u, v in zip(up, d, strict=True))
    proj = tuple(u - dot * v for u, v in zip(up, d, strict=True))
    n = math.hypot(*proj)
    if n < 1e-6:
        return (0.0, -1.0, 0.0)
    return tuple(round(c / n, 12) + 0.0 for c in proj)  # type: ignore[return-value]


def _oblique(name: str, title: str, lao: float, cranial: float) -> Preset:
    d = tuple(round(c, 12) + 0.0 for c in c_arm_direction(lao, cranial))
    return Preset(name, title, d, _up_for(d))  # type: ignore[arg-type]


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("anterior", "Anterior (AP)", (0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    Preset("posterior", "Posterior (PA)", (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    Preset("left", "Left lateral", (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    Preset("right", "Right lateral", (-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    Preset("superior", "Superior (from the head)", (0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),
    Preset("inferior", "Inferior (from the feet)", (0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
    _oblique("lao", "LAO 45", 45, 0),
    _oblique("rao", "RAO 30", -30, 0),
    _oblique("lao-cranial", "LAO 45 cranial 20", 45, 20),
    _oblique("lao-caudal", "LAO 45 caudal 30 (spider)", 45, -30),
    _oblique("rao-caudal", "RAO 30 caudal 20", -30, -20),
    _oblique("four-chamber", "LAO 40 cranial 40 (four-chamber)", 40, 40),
]}
"""Camera presets by name, in the order the viewer cycles through them."""


def bounds_center_radius(bounds: Sequence[float]) -> tuple[tuple[float, float, float], float]:
    """Centre and half-diagonal of ``(xmin, xmax, ymin, ymax, zmin, zmax)``."""
    if len(bounds) != 6:
        raise InputError(f"bounds must be (xmin, xmax, ymin, ymax, zmin, zmax), got {bounds!r}")
    lo, hi = bounds[0::2], bounds[1::2]
    center = tuple((a + b) / 2.0 for a, b in zip(lo, hi, strict=True))
    radius = 0.5 * math.sqrt(sum((b - a) ** 2 for a, b in zip(lo, hi, strict=True)))
    return center, max(radius, 1e-3)  # type: ignore[return-value]


def preset_camera(name: str, bounds: Sequence[float], *, view_angle: float = 30.0,
                  margin: float = 1.05) -> Camera:
    """The camera for preset ``name`` framing ``bounds`` (LPS mm).

    Raises
    ------
    InputError
        Unknown preset name (the message lists the known ones).

    Examples
    --------
    >>> preset_camera("left", (0, 2, 0, 2, 0, 2)).position[0] > 2
    True
    """
    preset = PRESETS.get(name)
    if preset is None:
        raise InputError(f"unknown view {name!r}; use one of: {', '.join(PRESETS)} or a view "
                         "saved in the plan")
    center, radius = bounds_center_radius(bounds)
    distance = margin * radius / math.sin(math.radians(view_angle) / 2.0)
    position = tuple(c + distance * d for c, d in zip(center, preset.direction, strict=True))
    return Camera(position=position, focal_point=center,  # type: ignore[arg-type]
                  view_up=preset.view_up, view_angle=view_angle)


def screen_axes(camera: Camera) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """World directions of the screen's right and up axes for ``camera``.

    Examples
    --------
    >>> right, up = screen_axes(preset_camera("anterior", (-1, 1, -1, 1, -1, 1)))
    >>> [round(c) for c in right]   # the patient's left is on the viewer's right
    [1, 0, 0]
    """
    f = [b - a for a, b in zip(camera.position, camera.focal_point, strict=True)]
    n = math.hypot(*f)
    f = [c / n for c in f]
    u = camera.view_up
    right = (f[1] * u[2] - f[2] * u[1], f[2] * u[0] - f[0] * u[2], f[0] * u[1] - f[1] * u[0])
    rn = math.hypot(*right)
    right = tuple(c / rn for c in right)
    up = (right[1] * f[2] - right[2] * f[1], right[2] * f[0] - right[0] * f[2],
          right[0] * f[1] - right[1] * f[0])
    return right, up  # type: ignore[return-value]


def project_point(camera: Camera, point: Sequence[float],
                  size: tuple[int, int]) -> tuple[float, float]:
    """Pixel ``(column, row)`` of a world point in an image of ``size = (width, height)``
    rendered with the perspective ``camera`` (row 0 at the top, as in screenshots).

    Examples
    --------
    >>> cam = preset_camera("anterior", (-1, 1, -1, 1, -1, 1))
    >>> col, row = project_point(cam, (1, 0, 0), (200, 100))
    >>> col > 100, row == 50.0    # the patient's left appears right of the centre
    (True, True)
    """
    right, up = screen_axes(camera)
    f = [b - a for a, b in zip(camera.position, camera.focal_point, strict=True)]
    n = math.hypot(*f)
    f = [c / n for c in f]
    rel = [p - e for p, e in zip(point, camera.position, strict=True)]
    depth = sum(r * c for r, c in zip(rel, f, strict=True))
    if depth <= 0:
        raise InputError("the point is behind the camera")
    t = math.tan(math.radians(camera.view_angle) / 2.0) * depth
    x = sum(r * c for r, c in zip(rel, right, strict=True)) / t
    y = sum(r * c for r, c in zip(rel, up, strict=True)) / t
    w, h = size
    return (w / 2.0 + x * h / 2.0, h / 2.0 - y * h / 2.0)
