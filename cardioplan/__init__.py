"""CardioPlan: plan and rehearse congenital heart surgery.

The data flows one way (see ``ARCHITECTURE.md``)::

    scan -> cardioplan.dicom (Volume) -> segmentation (label map) -> cardioplan.mesh (surfaces)
         -> Case folder -> cardioplan.viewer (desktop) / vr (OpenXR) / cardioplan.export

Library code never prints or exits; it logs to the ``"cardioplan"`` logger and raises the
exceptions in :mod:`cardioplan.errors`.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger("cardioplan").addHandler(logging.NullHandler())

__all__ = ["__version__"]
