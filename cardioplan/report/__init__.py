"""The HTML review report of a case (``cardioplan report``).

* :func:`build_report` -- ``index.html`` (scan, structures, snapshots, slice montages, plan,
  validation) and ``model.html`` (interactive 3D, WebGL, offline);
* :mod:`~cardioplan.report.montage` -- slice montages with label outlines (pure);
* :mod:`~cardioplan.report.model3d` -- the GLB-based 3D page and its small WebGL viewer.
"""

from __future__ import annotations

from cardioplan.report.build import REPORT_VIEWS, build_report

__all__ = ["build_report", "REPORT_VIEWS"]
