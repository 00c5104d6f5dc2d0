"""The case on a VR headset through OpenXR (pyopenxr) and OpenGL (moderngl).

Reads a case and writes only its plan; never imports the desktop viewer.

Modules
-------
- :mod:`vr.app` — the headset session on a case (``VrApp``, ``VrOptions``, ``run_vr``).
- :mod:`vr.session` — OpenXR instance/system/session, swapchains, the session state machine,
  ``check_runtime``.
- :mod:`vr.graphics` — EGL, GLX and WGL contexts and their OpenXR graphics bindings.
- :mod:`vr.actions`, :mod:`vr.bindings` — controller actions and their suggested bindings.
- :mod:`vr.interaction` — what the hands do (pure state machine), menu layout, ray picking.
- :mod:`vr.xrmath` — pose, projection and picking maths (pure).
- :mod:`vr.render`, :mod:`vr.overlay` — drawing the scene, labels and the menu.
- :mod:`vr.live` — noticing meshes changed on disk during a session.

:mod:`vr.xrmath`, :mod:`vr.interaction` and :mod:`vr.bindings` need neither a runtime nor GL;
the others load pyopenxr, PyOpenGL and moderngl only when used.
"""

from __future__ import annotations

import logging

logging.getLogger("vr").addHandler(logging.NullHandler())

__all__: list[str] = []
