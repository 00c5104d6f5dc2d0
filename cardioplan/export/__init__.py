"""Writers of CardioPlan results in other tools' formats.

* :mod:`cardioplan.export.seg_nrrd` -- the label map as 3D Slicer's ``.seg.nrrd`` segmentation.
* :mod:`cardioplan.export.dicom_seg` -- the label map as a DICOM Segmentation object
  (highdicom; the one module downstream of ingest that writes DICOM).
* :mod:`cardioplan.export.meshes` -- surfaces as STL, OBJ (+MTL), PLY, VTP, GLB and 3MF.

Submodules are imported on use so that, e.g., writing a ``.seg.nrrd`` does not load VTK.
"""

from __future__ import annotations
