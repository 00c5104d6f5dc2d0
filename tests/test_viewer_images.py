"""Image regression tests of the rendered scene against committed reference images.

Like pytest-pyvista's ``verify_image_cache``: each render is compared with
``tests/reference_images/<name>.png`` within a tolerance; a missing reference fails.  After an
intended change of the rendering, regenerate the references with::

    CARDIOPLAN_UPDATE_REFERENCE_IMAGES=1 pytest tests/test_viewer_images.py

and look at the new images before committing them.  The scene is synthetic (spheres and a
cylinder at known LPS positions, a labelled image), so the references change only when the
viewer's rendering does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from cardioplan.labels import LABELS
from cardioplan.plan import CutPlane, Plan
from cardioplan.viewer.scene import SceneData
from cardioplan.viewer.slices import SliceSpec, to_lps
from cardioplan.viewer.snapshot import OffscreenRenderer
from cardioplan.viewer.state import scene_state

REFERENCES = Path(__file__).parent / "reference_images"
UPDATE = os.environ.get("CARDIOPLAN_UPDATE_REFERENCE_IMAGES") == "1"
SIZE = (240, 180)
MEAN_TOLERANCE = 3.0
"""Mean absolute difference per channel (0..255) allowed (anti-aliasing, driver rounding)."""
OUTLIER_FRACTION = 0.01
"""Fraction of pixels allowed to differ by more than 48 levels in some channel."""

# structure -> (centre LPS mm, radius mm)
BALLS = {"left_ventricle": ((20.0, 0.0, 0.0), 18.0), "right_ventricle": ((-18.0, -10.0, 0.0), 15.0),
         "left_atrium": ((5.0, 25.0, 20.0), 12.0)}


def _scene() -> SceneData:
    import pyvista as pv

    meshes = {}
    for name, (center, radius) in BALLS.items():
        meshes[name] = pv.Sphere(radius=radius, center=center, theta_resolution=48,
                                 phi_resolution=48)
    meshes["aorta"] = pv.Cylinder(center=(0, 10, 35), direction=(0, 0, 1), radius=7,
                                  height=40, resolution=48).triangulate()
    # a labelled image: the same balls, CT-like intensities
    size, spacing, origin = (60, 60, 50), 1.5, (-45.0, -45.0, -37.5)
    z, y, x = np.mgrid[:size[2], :size[1], :size[0]].astype(float)
    pts = [origin[i] + spacing * c for i, c in enumerate((x, y, z))]
    labels = np.zeros(x.shape, np.uint8)
    ct = np.full(x.shape, -800.0)
    body = (pts[0] ** 2 + pts[1] ** 2) < 42 ** 2
    ct[body] = 40.0
    for name, (c, r) in BALLS.items():
        inside = sum((p - ci) ** 2 for p, ci in zip(pts, c, strict=True)) < r ** 2
        labels[inside] = LABELS[name].value
        ct[inside] = 400.0
    image = sitk.GetImageFromArray(ct.astype(np.int16))
    lab = sitk.GetImageFromArray(labels)
    for img in (image, lab):
        img.SetSpacing((spacing,) * 3)
        img.SetOrigin(origin)
    return SceneData(meshes, image=to_lps(image), labels=to_lps(lab), modality="CT")


def _plan() -> Plan:
    plan = Plan()
    plan.add_landmark((20, -18, 0), name="apex")
    plan.add_measurement(kind="distance", points=[(-18, -25, 0), (20, -18, 0)], name="d")
    plan.set_display("left_atrium", opacity=0.5)
    plan.add_seed("right_ventricle", (-18, -10, 0))
    return plan


CASES = {
    "anterior": dict(view="anterior"),
    "lao_cut": dict(view="lao", clip=True),
    "superior_slice": dict(view="superior", slice=SliceSpec("axial", 25)),
    "rao_only_lv_rv": dict(view="rao", only=["left_ventricle", "right_ventricle"]),
}


@pytest.fixture(scope="module")
def renderer():
    with OffscreenRenderer(_scene(), size=SIZE) as r:
        yield r


def compare(rgb: np.ndarray, name: str) -> tuple[float, float]:
    """(mean absolute difference, outlier fraction) against the reference ``name``."""
    path = REFERENCES / f"{name}.png"
    if UPDATE:
        REFERENCES.mkdir(exist_ok=True)
        Image.fromarray(rgb).save(path)
    if not path.is_file():
        pytest.fail(f"no reference image {path}; create it with "
                    "CARDIOPLAN_UPDATE_REFERENCE_IMAGES=1 and check it by eye")
    ref = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert ref.shape == rgb.shape, f"{name}: size {rgb.shape} vs reference {ref.shape}"
    diff = np.abs(rgb.astype(int) - ref)
    return float(diff.mean()), float((diff.max(-1) > 48).mean())


@pytest.mark.parametrize("name", list(CASES))
def test_render_matches_the_reference_image(renderer, name: str) -> None:
    options = dict(CASES[name])
    view = options.pop("view")
    plan = _plan()
    if options.pop("clip", False):
        plan.cut_planes.append(CutPlane(name="c", origin=(0, 0, 0), normal=(0, 1, 0)))
    data = renderer.scene.data
    rgb = renderer.render(scene_state(plan, data.structures, **options), plan, view=view)
    mean, outliers = compare(rgb, name)
    assert mean <= MEAN_TOLERANCE and outliers <= OUTLIER_FRACTION, \
        f"{name}: mean difference {mean:.2f}, {outliers:.2%} outlier pixels"


def test_the_comparison_catches_a_wrong_render(renderer) -> None:
    """The tolerance is tight enough to see a hidden structure or a wrong view."""
    data = renderer.scene.data
    plan = _plan()
    plan.set_display("left_ventricle", visible=False)
    rgb = renderer.render(scene_state(plan, data.structures), plan, view="anterior")
    mean, outliers = compare(rgb, "anterior") if not UPDATE else (99.0, 1.0)
    assert mean > MEAN_TOLERANCE or outliers > OUTLIER_FRACTION
    rgb = renderer.render(scene_state(_plan(), data.structures), _plan(), view="posterior")
    mean, outliers = compare(rgb, "anterior") if not UPDATE else (99.0, 1.0)
    assert mean > MEAN_TOLERANCE or outliers > OUTLIER_FRACTION
