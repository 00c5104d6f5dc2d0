"""Heart segmentation with SimpleITK: Volume (+ seeds) in, uint8 label map out.

This package never touches files; the CLI (``cardioplan segment``) reads and writes the case.
"""

from __future__ import annotations

import logging

logging.getLogger("segmentation").addHandler(logging.NullHandler())

__all__: list[str] = []
