"""Desktop review of a case with PyVista: the scene, camera presets, slices and interaction.

The modules split pure logic from rendering so the logic is tested without a window:

* :mod:`~cardioplan.viewer.camera` -- camera presets in LPS (anterior, LAO...), pure maths;
* :mod:`~cardioplan.viewer.slices` -- image slices with label outlines, pure numpy;
* :mod:`~cardioplan.viewer.state` -- what the scene shows, derived from the plan, pure;
* :mod:`~cardioplan.viewer.interaction` -- picking, measuring, key map, rehearsal steps, pure;
* :mod:`~cardioplan.viewer.scene` -- draws a state with PyVista (on- or off-screen);
* :mod:`~cardioplan.viewer.snapshot` -- off-screen PNGs (EGL, no display);
* :mod:`~cardioplan.viewer.window` -- the interactive window of ``cardioplan view``.

``vr`` never imports this package (and this package never imports ``vr``); both share the
case folder and :mod:`cardioplan.plan`.
"""

from __future__ import annotations

__all__: list[str] = []
