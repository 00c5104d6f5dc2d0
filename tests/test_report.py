"""The HTML report: numbers, embedded images, validation, no patient identifiers, and the
interactive 3D page checked in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image
from viewer_helpers import centroid, color_mask, exact_color_mask, make_phantom_case

from cardioplan.case import Case
from cardioplan.cli import main
from cardioplan.labels import LABELS
from cardioplan.plan import CutPlane, RehearsalStep, edit_plan
from cardioplan.report import build_report
from cardioplan.report.montage import montage, montage_indices
from cardioplan.viewer.lod import decimate_to_budget
from cardioplan.viewer.slices import to_lps

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    case = make_phantom_case(tmp_path_factory.mktemp("report") / "phantom")

    def change(plan):
        plan.add_landmark((10, -10, -150), name="LV apex", structure="left_ventricle")
        plan.add_measurement(kind="distance", points=[(-20, -30, -150), (20, -30, -150)],
                             name="RV width")
        plane = plan.upsert_cut_plane(CutPlane(name="four-chamber cut", origin=(0, -20, -150),
                                               normal=(0, 1, 0)))
        plan.steps.append(RehearsalStep(title="Inspect the VSD", view="rao",
                                        visible=["left_ventricle", "right_ventricle"],
                                        cut_planes=[plane.id]))

    edit_plan(case, change)
    return case


@pytest.fixture(scope="module")
def report(case: Case, tmp_path_factory: pytest.TempPathFactory) -> Path:
    reference = case.read_labels()
    return build_report(case, reference=reference, reference_name="truth.nii.gz",
                        size=(320, 240), views=("anterior", "lao", "superior"))


def test_report_holds_the_numbers(case: Case, report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert report == case.report_dir / "index.html"
    for name, info in case.structures.items():
        mesh = info["mesh"]
        row = text[text.index(LABELS[name].display_name + "</td>"):][:600]
        assert f"{mesh['volume_ml']:.1f}" in row
        assert f"{mesh['area_mm2'] / 100:.1f}" in row
        assert f"{mesh['triangles']:,}" in row
    assert "RV width" in text and "40.0 mm" in text
    assert "LV apex" in text and "(10.0, -10.0, -150.0)" in text
    assert "four-chamber cut" in text and "Inspect the VSD" in text
    # validation against the case's own labels: perfect agreement
    assert "truth.nii.gz" in text
    validation = text[text.index("<h2>Validation</h2>"):]
    assert validation.count("<td>1.000</td>") == len(case.structures)
    assert "80 &times; 80 &times; 65" in text and "2 &times; 2 &times; 2" in text
    summary = text[text.index('<div class="summary">'):text.index("<h2>Scan</h2>")]
    n = len(case.structures)
    watertight = sum(info["mesh"]["watertight"] for info in case.structures.values())
    assert f"{n} structures" in summary and f"{watertight} of {n} watertight" in summary
    assert "mean Dice 1.000" in summary
    assert case.files["report"]["path"] == "report/index.html"


def test_review_summary_puts_problems_first() -> None:
    from cardioplan.report.build import review_summary

    rows = [{"display": "Aorta", "watertight": True, "mean_distance_mm": 0.3, "triangles": 100},
            {"display": "Left atrium", "watertight": True, "mean_distance_mm": 1.7,
             "triangles": 50}]
    metrics = {"aorta": {"dice": 0.95}, "left_atrium": {"dice": 0.62},
               "pulmonary_artery": {"dice": float("nan")}}
    lines = review_summary(rows, metrics)
    assert lines[0].startswith('<span class="bad">Meshes more than 1 mm') and "Left atrium" in \
        lines[0]
    assert "Dice below 0.80: Left atrium" in lines[1]
    assert "mean Dice 0.785 over 2 structures (lowest 0.620)" in lines[2]
    assert lines[-1] == "2 structures, 150 triangles; 2 of 2 watertight"


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing fetched from the web
    assert 'href="model.html#view=lao"' in text  # a snapshot opens the 3D page on its view
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    # 3 views + the cut-plane view + 1 step + 3 montages
    assert len(images) == 8
    first = np.asarray(Image.open(__import__("io").BytesIO(base64.b64decode(images[0]))))
    assert first.shape[:2] == (240, 320)
    model = (report.parent / "model.html").read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', model)
    glb = re.search(r'id="cardioplan-glb"[^>]*>([^<]+)<', model).group(1)
    assert base64.b64decode(glb)[:4] == b"glTF"


def test_report_has_no_patient_identifiers(tmp_path: Path) -> None:
    from cardioplan.dicom import write_series
    from cardioplan.ingest import import_case
    from cardioplan.mesh import mesh_case
    from cardioplan.phantom import make_phantom

    image, labels = make_phantom(spacing=(2.0, 2.0, 2.0), noise_hu=0)
    folder = tmp_path / "Jane_Doe_19700101"
    write_series(image, folder, patient_name="DOE^JANE", patient_id="MRN987654",
                 series_description="CTA heart", extra={"PatientBirthDate": "19700101"})
    case = import_case(folder, tmp_path / "case")
    case.write_labels(labels, produced_by="test")
    mesh_case(case, target="standalone")
    index = build_report(case, size=(160, 120), views=("anterior",), montage_slices=2)
    for page in (index, index.with_name("model.html")):
        text = page.read_text(encoding="utf-8")
        glb = re.search(r'id="cardioplan-glb"[^>]*>([^<]+)<', text)
        if glb is not None:  # the GLB's JSON chunk (node names, extras) is text too
            blob = base64.b64decode(glb.group(1))
            text += blob[20:20 + int.from_bytes(blob[12:16], "little")].decode()
        # leave out base64 images and data, where any 3 letters may appear by chance
        text = re.sub(r"[A-Za-z0-9+/=]{200,}", "", text).upper()
        for secret in ("DOE", "JANE", "MRN987654", "19700101", str(tmp_path).upper()):
            assert not re.search(rf"\b{re.escape(secret)}\b", text), \
                f"{secret} leaked into {page.name}"


def test_report_cli_with_a_reference_in_another_label_convention(case: Case,
                                                                  tmp_path: Path) -> None:
    # an ACDC-like reference: 1 = RV, 2 = myocardium, 3 = LV
    arr = sitk.GetArrayFromImage(case.read_labels())
    ref = np.zeros_like(arr)
    for value, name in ((1, "right_ventricle"), (2, "myocardium"), (3, "left_ventricle")):
        ref[arr == LABELS[name].value] = value
    ref_img = sitk.GetImageFromArray(ref)
    ref_img.CopyInformation(case.read_labels())
    sitk.WriteImage(ref_img, str(tmp_path / "acdc_gt.nii.gz"))
    out = tmp_path / "review"
    assert main(["report", str(case.path), "-o", str(out), "--reference",
                 str(tmp_path / "acdc_gt.nii.gz"), "--ref-map",
                 "1=right_ventricle,2=myocardium,3=left_ventricle", "--views", "anterior",
                 "--size", "160x120", "--slices", "2", "--no-model", "-q"]) == 0
    text = (out / "index.html").read_text(encoding="utf-8")
    validation = text[text.index("<h2>Validation</h2>"):]
    assert validation.count("<td>1.000</td>") == 3
    assert not (out / "model.html").exists()


def test_report_refuses_to_replace_a_foreign_index(case: Case, tmp_path: Path, caplog) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("<html>my own page</html>")
    argv = ["report", str(case.path), "-o", str(out), "--views", "anterior", "--size",
            "160x120", "--slices", "1", "--no-model"]
    assert main(argv) == 1
    assert "--force" in caplog.text
    assert (out / "index.html").read_text() == "<html>my own page</html>"
    assert main([*argv, "--force"]) == 0
    assert "CardioPlan" in (out / "index.html").read_text()
    assert main(argv) == 0  # a CardioPlan report there is simply replaced


def test_montage_slices_cover_the_labelled_region(case: Case) -> None:
    labels = to_lps(case.read_labels())
    arr = sitk.GetArrayViewFromImage(labels)
    zs = np.flatnonzero(arr.any(axis=(1, 2)))
    idx = montage_indices(labels, "axial", labels.GetSize()[2], count=5)
    assert len(idx) == 5 and zs[0] < idx[0] and idx[-1] < zs[-1]
    image = to_lps(case.read_image())
    rgb = montage(image, labels, "coronal", count=3, window=(-200, 600), tile=100)
    assert rgb.shape == (100, 300, 3)
    assert (np.abs(rgb.astype(int) - LABELS["aorta"].color).max(-1) < 10).any()


def test_montage_mesh_cut_lines_lie_on_the_label_outlines(case: Case) -> None:
    from cardioplan.mesh import read_case_meshes

    labels = to_lps(case.read_labels())
    image = to_lps(case.read_image())
    lv = read_case_meshes(case, structures=["left_ventricle"])
    color = LABELS["left_ventricle"].color
    tint = [round(0.4 * c + 0.6 * 255) for c in color]
    for orientation in ("axial", "coronal", "sagittal"):
        plain = montage(image, labels, orientation, count=1, window=(-200, 600), tile=240)
        lined = montage(image, labels, orientation, count=1, window=(-200, 600), tile=240,
                        meshes={"left_ventricle": (lv["left_ventricle"], color)})
        assert exact_color_mask(plain, tint, tol=2).sum() == 0
        lines = exact_color_mask(lined, tint, tol=2)
        outline = exact_color_mask(plain, color, tol=0)
        assert lines.sum() > 30, orientation
        gap = np.hypot(*np.subtract(centroid(lines), centroid(outline)))
        assert gap < 5, (orientation, gap)  # tile pixels (about 1.3 per mm here)


def test_decimation_keeps_names_colours_shape_and_budget(case: Case) -> None:
    from cardioplan.mesh import read_case_meshes

    meshes = read_case_meshes(case)
    small = decimate_to_budget(meshes, budget=10_000)
    total = sum(s.n_cells for s in small.values())
    assert total < 12_000 and list(small) == list(meshes)
    for name, s in small.items():
        assert tuple(s.field_data["color"]) == LABELS[name].color
        assert "Normals" in s.point_data
        # decimation keeps the shape: volume within 5 %
        assert abs(s.volume / meshes[name].volume - 1) < 0.05


def _chromium_screenshot(url: str, out: Path, tmp: Path, size=(800, 600)) -> np.ndarray:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           "--disable-sync", f"--user-data-dir={tmp / 'chromium-profile'}",
           f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=10000",
           f"--screenshot={out}", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.is_file(), proc.stderr[-2000:]
    return np.asarray(Image.open(out).convert("RGB"))


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_3d_page_shows_the_heart_in_a_real_browser(report: Path, tmp_path: Path) -> None:
    rgb = _chromium_screenshot((report.parent / "model.html").as_uri(), tmp_path / "m.png",
                               tmp_path)
    among = ["myocardium", "aorta", "pulmonary_artery", "superior_vena_cava", "right_atrium"]
    canvas = rgb[140:520, 150:500]  # the middle, away from the legend and the buttons
    for name in ("myocardium", "aorta", "pulmonary_artery"):
        assert color_mask(canvas, name, among).sum() > 200, name
    # anterior view: the aorta (descending on the patient's left) is right of the SVC (on the
    # patient's right), and it stands tall (arch on top, descending below), as it does from
    # the front and from no view along the body axis
    aorta_rows, aorta_cols = np.nonzero(color_mask(canvas, "aorta", among))
    svc_cols = np.nonzero(color_mask(canvas, "superior_vena_cava", among))[1]
    assert np.median(aorta_cols) > np.median(svc_cols)
    assert np.ptp(aorta_rows) > 2 * np.ptp(aorta_cols)
    # the plan's measurement is drawn (a white line and its white label; nothing else on the
    # page is pure white)
    assert (canvas.min(-1) >= 250).sum() > 30


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_report_page_renders_its_images_in_a_real_browser(report: Path, tmp_path: Path) -> None:
    rgb = _chromium_screenshot(report.as_uri(), tmp_path / "r.png", tmp_path, size=(1200, 3000))
    # the snapshots' dark background and the heart colours are on the page
    dark = (np.abs(rgb.astype(int) - (26, 28, 33)).max(-1) < 6).sum()
    assert dark > 50_000
    among = ["myocardium", "aorta", "pulmonary_artery"]
    assert color_mask(rgb, "aorta", among).sum() > 100


def test_a_step_with_a_vr_only_view_is_shown_from_the_front(case: Case, tmp_path: Path) -> None:
    from cardioplan.plan import ModelPose, SavedView

    def change(plan):
        plan.upsert_view(SavedView(name="table", model_pose=ModelPose(scale=0.002)))
        plan.steps.append(RehearsalStep(title="From VR", view="table"))

    before = case.plan_path.read_bytes()
    edit_plan(case, change, author="vr")
    try:
        index = build_report(case, tmp_path / "r", size=(160, 120), views=("anterior",),
                             montage_slices=1, model=False)
        assert "From VR (anterior: its view has no desktop camera)" in index.read_text()
    finally:
        case.plan_path.write_bytes(before)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_3d_page_applies_the_plans_cut_planes(case: Case, tmp_path: Path) -> None:
    """The plan cuts the heart open at y = -20 mm (keeping the posterior part): from the front
    the left ventricle, hidden inside the myocardium, comes into view."""
    from cardioplan.mesh import read_case_meshes
    from cardioplan.plan import load_plan
    from cardioplan.report.model3d import model_page

    meshes = read_case_meshes(case)
    plan = load_plan(case)
    assert any(c.enabled for c in plan.cut_planes)
    counts = {}
    for name, with_plan in (("cut", plan), ("whole", None)):
        page = tmp_path / f"{name}.html"
        page.write_text(model_page(meshes, title=name, plan=with_plan), encoding="utf-8")
        rgb = _chromium_screenshot(page.as_uri(), tmp_path / f"{name}.png", tmp_path)
        canvas = rgb[140:500, 150:500]
        among = ["left_ventricle", "myocardium", "right_ventricle", "aorta", "right_atrium"]
        counts[name] = color_mask(canvas, "left_ventricle", among, max_angle_deg=10,
                                  min_brightness=30).sum()
    assert counts["cut"] > 300 and counts["whole"] < 0.1 * counts["cut"], counts


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_3d_page_link_opens_a_view_and_a_cut(case: Case, tmp_path: Path) -> None:
    """model.html#view=...&cut=axis:position&plancuts=0 (the interactive cut, set by a link)."""
    from cardioplan.mesh import read_case_meshes
    from cardioplan.report.model3d import model_page

    page = tmp_path / "m.html"
    page.write_text(model_page(read_case_meshes(case), title="t"), encoding="utf-8")
    among = ["left_ventricle", "myocardium", "right_ventricle", "aorta", "right_atrium"]
    counts = {}
    for name, fragment in (("whole", "#view=anterior"),
                           ("cut", "#view=anterior&cut=coronal:50&plancuts=0"),
                           ("flipped", "#view=anterior&cut=coronal:50&flip=1")):
        rgb = _chromium_screenshot(page.as_uri() + fragment, tmp_path / f"{name}.png", tmp_path)
        counts[name] = color_mask(rgb[140:500, 150:500], "left_ventricle", among,
                                  max_angle_deg=10, min_brightness=30).sum()
    # a coronal cut through the middle keeps the anterior half (normal = anterior): the LV
    # stays hidden behind the myocardium's front wall; flipped, it keeps the posterior half
    # and the opened LV shows
    assert counts["flipped"] > 300 and counts["whole"] < 0.1 * counts["flipped"], counts
    assert counts["cut"] < 0.5 * counts["flipped"], counts


def test_report_web_triangles_sets_the_3d_page_budget(case: Case, tmp_path: Path) -> None:
    out = tmp_path / "small"
    assert main(["report", str(case.path), "-o", str(out), "--views", "anterior", "--size",
                 "160x120", "--slices", "1", "--web-triangles", "5000", "-q"]) == 0
    model = (out / "model.html").read_text(encoding="utf-8")
    triangles = int(re.search(r"([\d,]+) triangles\.", model).group(1).replace(",", ""))
    assert triangles < 8000  # a floor of 400 per structure keeps small ones recognisable
    assert main(["report", str(case.path), "-o", str(out), "--web-triangles", "10"]) == 1
