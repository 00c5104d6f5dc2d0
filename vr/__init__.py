"""The case on a VR headset through OpenXR (pyopenxr) and OpenGL.

Reads a case and writes only its plan; never imports the desktop viewer.
"""

from __future__ import annotations

import logging

logging.getLogger("vr").addHandler(logging.NullHandler())

__all__: list[str] = []
