"""Desktop review from Python: plan a VSD closure on the phantom, render views, write a report.

What a reviewer does in ``cardioplan view``, scripted with the library:

1. build a case from the project's synthetic phantom (CT, labels, meshes);
2. edit the shared plan: a landmark at the VSD, its diameter, a cut plane that opens the
   ventricles, a saved camera and two rehearsal steps (the headset sees the same plan);
3. render snapshots off-screen (no display needed), one per step;
4. write the HTML report with the interactive 3D page.

Run::

    python examples/desktop_review.py [OUTPUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cardioplan.case import Case
from cardioplan.mesh import mesh_case
from cardioplan.phantom import make_phantom
from cardioplan.plan import CutPlane, RehearsalStep, SavedView, edit_plan, load_plan
from cardioplan.report import build_report
from cardioplan.viewer.camera import preset_camera
from cardioplan.viewer.scene import load_scene_data
from cardioplan.viewer.snapshot import render_snapshot


def main(out: Path) -> None:
    # 1. a complete case: the phantom at 1.5 mm, its exact labels, surfaces for a PC headset
    image, labels = make_phantom(spacing=(1.5, 1.5, 1.5))
    with Case.create(out / "case", force=True) as case:
        case.write_image(image, produced_by="examples/desktop_review.py", modality="CT")
        case.write_labels(labels, produced_by="examples/desktop_review.py")
    case = Case.open(out / "case")
    mesh_case(case, target="pcvr")

    # 2. the plan: the VSD is where the LV and RV blood pools touch (their surfaces meet);
    #    its distance to the aorta tells a perimembranous from a muscular defect
    meshes = load_scene_data(case).meshes
    lv, rv, aorta = meshes["left_ventricle"], meshes["right_ventricle"], meshes["aorta"]
    gaps = np.linalg.norm(lv.points - rv.points[[rv.find_closest_point(p) for p in lv.points]],
                          axis=1)
    vsd = np.asarray(lv.points[gaps < gaps.min() + 0.5]).mean(axis=0)
    nearest_aorta = np.asarray(aorta.points[aorta.find_closest_point(vsd)])
    rao = preset_camera("rao", lv.bounds)

    def plan_vsd_closure(plan):
        plan.add_landmark(tuple(vsd), name="VSD", structure="myocardium")
        plan.add_measurement(kind="distance", points=[tuple(vsd), tuple(nearest_aorta)],
                             name="VSD to aorta")
        cut = plan.upsert_cut_plane(CutPlane(name="open the ventricles", origin=tuple(vsd),
                                             normal=(0, 1, 0),
                                             structures=["myocardium", "right_ventricle"]))
        plan.upsert_view(SavedView(name="surgeon", camera=rao))
        plan.steps += [
            RehearsalStep(title="Overview", view="anterior"),
            RehearsalStep(title="Approach the VSD", note="through the RV, septum opened",
                          view="surgeon", cut_planes=[cut.id],
                          visible=["left_ventricle", "right_ventricle", "myocardium"]),
        ]

    plan = edit_plan(case, plan_vsd_closure, author="script")
    print(f"plan revision {plan.revision}: {plan.measurements[0].label()}")

    # 3. one picture per rehearsal step (the same scene as the window, off-screen)
    for i, step in enumerate(load_plan(case).steps, start=1):
        png = render_snapshot(case, out / f"step{i}.png", step=str(i), size=(800, 600))
        print(f"step {i} ({step.title}): {png}")

    # 4. the report (index.html + model.html), validated against the exact labels
    report = build_report(case, reference=labels, reference_name="phantom ground truth")
    print(f"report: {report}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("desktop-review-example"))
