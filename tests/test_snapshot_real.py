"""Viewer, snapshot and report on real public scans (../shared/data): a chest CTA with aorta and
heart masks, and an abdominal CT stored with a flipped direction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from viewer_helpers import centroid, color_mask, exact_color_mask

from cardioplan.case import Case
from cardioplan.labels import LABELS
from cardioplan.plan import Plan
from cardioplan.viewer.camera import project_point
from cardioplan.viewer.scene import camera_for, load_scene_data
from cardioplan.viewer.slices import slice_rgb, to_lps
from cardioplan.viewer.snapshot import OffscreenRenderer
from cardioplan.viewer.state import scene_state

SIZE = (320, 240)


@pytest.fixture(scope="module")
def cta_case(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Case:
    """The chest CTA crop with the aorta (value 6) and the heart (11) as labels."""
    from cardioplan.mesh import mesh_case

    folder = shared_data / "ct" / "chest_cta"
    image = sitk.ReadImage(str(folder / "aorta_ct_cropped.nii.gz"))
    aorta = sitk.ReadImage(str(folder / "aorta_mask.nii.gz"))
    heart = sitk.Resample(sitk.ReadImage(str(folder / "heart_mask.nii.gz")), image,
                          sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    labels = np.where(sitk.GetArrayViewFromImage(heart) > 0, LABELS["heart"].value, 0)
    labels[sitk.GetArrayViewFromImage(aorta) > 0] = LABELS["aorta"].value
    label_img = sitk.GetImageFromArray(labels.astype(np.uint8))
    label_img.CopyInformation(image)
    path = tmp_path_factory.mktemp("real") / "cta"
    with Case.create(path) as case:
        case.write_image(image, produced_by="test", modality="CT")
        case.write_labels(label_img, produced_by="test")
    mesh_case(Case.open(path), target="standalone")
    return Case.open(path)


def test_real_cta_aorta_and_heart_render_where_they_are(cta_case: Case) -> None:
    data = load_scene_data(cta_case)
    plan = Plan()
    among = ["aorta", "heart"]
    with OffscreenRenderer(data, size=SIZE) as renderer:
        rgb = renderer.render(scene_state(plan, data.structures, only=["aorta"]), plan,
                              view="anterior")
        aorta = color_mask(rgb, "aorta", among)
        camera = camera_for("anterior", plan, data.bounds(["aorta"]))
        expected = project_point(camera, data.meshes["aorta"].center, SIZE)
        got = centroid(aorta)
        assert aorta.sum() > 500
        assert abs(got[0] - expected[0]) < 0.1 * SIZE[0]
        assert abs(got[1] - expected[1]) < 0.1 * SIZE[1]
        # from behind, the aorta's picture is mirrored: its projection follows
        rgb = renderer.render(scene_state(plan, data.structures, only=["aorta"]), plan,
                              view="posterior")
        camera = camera_for("posterior", plan, data.bounds(["aorta"]))
        expected = project_point(camera, data.meshes["aorta"].center, SIZE)
        got = centroid(color_mask(rgb, "aorta", among))
        assert abs(got[0] - expected[0]) < 0.1 * SIZE[0]
        both = renderer.render(scene_state(plan, data.structures), plan, view="anterior")
        assert color_mask(both, "heart", among).sum() > 500


def test_real_cta_report_with_a_reference(cta_case: Case, shared_data: Path,
                                          tmp_path: Path) -> None:
    from cardioplan.cli import main

    reference = shared_data / "ct" / "chest_cta" / "aorta_mask.nii.gz"
    out = tmp_path / "report"
    assert main(["report", str(cta_case.path), "-o", str(out), "--reference", str(reference),
                 "--ref-map", "1=aorta", "--views", "anterior", "lao", "--size", "240x180",
                 "--slices", "3", "-q"]) == 0
    text = (out / "index.html").read_text(encoding="utf-8")
    validation = text[text.index("<h2>Validation</h2>"):]
    assert "<td>1.000</td>" in validation  # the case's aorta is the reference mask
    assert "aorta_mask.nii.gz" in text and str(shared_data) not in text
    volume = cta_case.structures["aorta"]["mesh"]["volume_ml"]
    assert f"{volume:.1f}" in text
    assert 200 < volume < 300  # the data README gives 246 mL


def test_real_ct_with_flipped_direction_is_shown_radiologically(shared_data: Path) -> None:
    """example_ct_sm is stored with direction diag(-1,-1,1); its TotalSegmentator labels put
    the liver (5) on the patient's right and the spleen (1) on the left, the vertebrae behind."""
    folder = shared_data / "ct" / "abdomen_small"
    image = to_lps(sitk.ReadImage(str(folder / "example_ct_sm.nii.gz")))
    seg = sitk.GetArrayFromImage(to_lps(sitk.ReadImage(str(folder / "example_seg.nii.gz"))))
    # draw the liver as "aorta" and the spleen as "left_ventricle" outlines
    remap = np.zeros_like(seg, dtype=np.uint8)
    remap[seg == 5] = LABELS["aorta"].value
    remap[seg == 1] = LABELS["left_ventricle"].value
    labels = sitk.GetImageFromArray(remap)
    labels.CopyInformation(image)
    k = int(np.argmax(((seg == 5).any(axis=(1, 2)) & (seg == 1).any(axis=(1, 2)))
                      * (seg == 1).sum(axis=(1, 2))))
    rgb = slice_rgb(image, labels, "axial", k, window=(-200, 600))
    liver = exact_color_mask(rgb, LABELS["aorta"].color, tol=0)
    spleen = exact_color_mask(rgb, LABELS["left_ventricle"].color, tol=0)
    assert centroid(liver)[0] < rgb.shape[1] / 2 < centroid(spleen)[0]
    # the vertebral body (TotalSegmentator vertebrae labels, 26..50) lies behind: lower half
    vertebra = np.isin(seg[k], np.arange(26, 51))
    grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
    assert vertebra.sum() > 20 and centroid(vertebra)[1] > rgb.shape[0] / 2
    # and the picture there is brighter (bone) than inside the liver (soft tissue)
    liver_inside = (seg[k] == 5) & grey
    assert rgb[vertebra & grey][:, 0].mean() > rgb[liver_inside][:, 0].mean() + 30


def test_real_cine_mri_case_renders_and_reports(shared_data: Path, tmp_path: Path) -> None:
    """ACDC short-axis MRI (intensities 0..1, 10 mm slices): the MR grey window comes from the
    image's percentiles, and the report validates against the expert labels."""
    from cardioplan.cli import main
    from cardioplan.mesh import mesh_case
    from cardioplan.viewer.slices import default_window

    folder = shared_data / "mri" / "acdc"
    image = sitk.ReadImage(str(folder / "patient001_frame01.nii.gz"))
    gt = sitk.ReadImage(str(folder / "patient001_frame01_gt.nii.gz"))
    acdc = {1: "right_ventricle", 2: "myocardium", 3: "left_ventricle"}
    arr = sitk.GetArrayFromImage(gt)
    labels = np.zeros(arr.shape, np.uint8)
    for value, name in acdc.items():
        labels[arr == value] = LABELS[name].value
    label_img = sitk.GetImageFromArray(labels)
    label_img.CopyInformation(gt)
    with Case.create(tmp_path / "acdc") as case:
        case.write_image(image, produced_by="test", modality="MR")
        case.write_labels(label_img, produced_by="test")
    case = Case.open(tmp_path / "acdc")
    mesh_case(case, target="standalone")

    lo, hi = default_window(to_lps(image), "MR")
    assert 0.0 <= lo < hi <= 1.0  # normalised intensities, not a CT window
    lps, lab = to_lps(image), to_lps(label_img)
    k = int(np.argmax((sitk.GetArrayViewFromImage(lab) == LABELS["left_ventricle"].value)
                      .sum(axis=(1, 2))))
    rgb = slice_rgb(lps, lab, "axial", k, window=(lo, hi))
    inside = sitk.GetArrayViewFromImage(lab)[k] == LABELS["left_ventricle"].value
    grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
    assert rgb[inside & grey][:, 0].mean() > 100  # bright blood in cine MRI
    assert exact_color_mask(rgb, LABELS["left_ventricle"].color, tol=0).sum() > 10

    ref = tmp_path / "gt.nii.gz"
    sitk.WriteImage(gt, str(ref))
    assert main(["report", str(case.path), "--reference", str(ref), "--ref-map",
                 "1=right_ventricle,2=myocardium,3=left_ventricle", "--views", "anterior",
                 "--size", "200x150", "--slices", "2", "--no-model", "-q"]) == 0
    text = (case.report_dir / "index.html").read_text(encoding="utf-8")
    assert text[text.index("<h2>Validation</h2>"):].count("<td>1.000</td>") == 3
    assert "<td>MR</td>" in text
