"""Benchmark: time to the first frame of the desktop viewer on a ~1M-triangle case.

Builds (or reuses) a phantom case meshed to about a million triangles, then measures, in the
same process and alternating to share the machine's noise:

* **baseline** -- a bare PyVista plot of the same meshes: ``pv.read`` each ``.vtp`` file,
  ``add_mesh`` with a colour, render one frame;
* **viewer** -- ``ViewerWindow`` (what ``cardioplan view`` opens): plan, meshes through
  ``read_case_meshes``, legend, annotations, camera preset, first frame.

Both render off-screen (EGL), so the numbers exclude the window manager.  Prints the median
of each, their ratio and whether the viewer meets the 3 s first-frame target.

Usage::

    python scripts/bench_viewer.py [--case DIR] [--spacing 0.45] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

TARGET_S = 3.0


def build_case(path: Path, spacing: float) -> None:
    from cardioplan.case import Case
    from cardioplan.mesh import mesh_case
    from cardioplan.phantom import make_phantom

    image, labels = make_phantom(spacing=(spacing,) * 3, noise_hu=0)
    with Case.create(path, force=True) as case:
        case.write_image(image, produced_by="bench_viewer", modality="CT")
        case.write_labels(labels, produced_by="bench_viewer")
    mesh_case(Case.open(path), target="desktop", force=True)


def baseline(case_path: Path) -> float:
    import pyvista as pv

    start = time.perf_counter()
    plotter = pv.Plotter(off_screen=True, window_size=[1280, 860])
    for i, vtp in enumerate(sorted((case_path / "meshes").glob("*.vtp"))):
        plotter.add_mesh(pv.read(vtp), color=(0.3 + 0.05 * i, 0.4, 0.5))
    plotter.ren_win.Render()  # a real frame (pyvista.render() skips it before show())
    elapsed = time.perf_counter() - start
    plotter.close()
    return elapsed


def viewer(case_path: Path) -> float:
    from cardioplan.case import Case
    from cardioplan.viewer.window import ViewerWindow

    start = time.perf_counter()
    window = ViewerWindow(Case.open(case_path), off_screen=True, size=(1280, 860))
    window.plotter.ren_win.Render()  # a real frame
    elapsed = time.perf_counter() - start
    window.plotter.close()
    return elapsed


def interaction(case_path: Path, repeats: int) -> dict[str, float]:
    """Median seconds from a key press to the next frame, and of a bare re-render."""
    from cardioplan.case import Case
    from cardioplan.viewer.window import ViewerWindow

    Case.open(case_path).plan_path.unlink(missing_ok=True)
    window = ViewerWindow(Case.open(case_path), off_screen=True, size=(1280, 860))
    window.plotter.ren_win.Render()  # a real frame

    def timed(action) -> float:
        start = time.perf_counter()
        action()
        window.plotter.ren_win.Render()  # a real frame (pyvista's render() may skip it)
        return time.perf_counter() - start

    out = {"bare re-render": statistics.median(
        timed(lambda: None) for _ in range(repeats))}
    out["show/hide a structure (saved to the plan)"] = statistics.median(
        timed(lambda: window.on_key("2")) for _ in range(2 * repeats))
    start = time.perf_counter()
    window.scene.build_proxies()
    out["build the level-of-detail stand-ins (once, after the first frame)"] = \
        time.perf_counter() - start
    window.scene.set_lod(True)
    out["frame while the camera moves (stand-ins)"] = statistics.median(
        timed(lambda: None) for _ in range(repeats))
    window.scene.set_lod(False)
    window.on_key("i")  # the slice (and the scan) once
    out["scroll the slice (+ inset cut lines)"] = statistics.median(
        timed(lambda: window.on_key("Up")) for _ in range(repeats))
    window.plotter.close()
    Case.open(case_path).plan_path.unlink(missing_ok=True)
    return out


def cold(kind: str, case_path: Path) -> float:
    """Wall time of a fresh Python process (imports, EGL start-up) rendering the first frame."""
    import subprocess

    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import bench_viewer as b; b.{kind}(__import__('pathlib').Path({str(case_path)!r}))")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=Path, help="an existing meshed case (default: build one)")
    parser.add_argument("--spacing", type=float, default=0.45,
                        help="phantom voxel size in mm when building (0.45 -> ~1.07M triangles)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        case_path = args.case
        if case_path is None:
            case_path = Path(tmp) / "bench_case"
            t = time.perf_counter()
            build_case(case_path, args.spacing)
            print(f"built the phantom case in {time.perf_counter() - t:.1f} s")
        from cardioplan.case import Case

        triangles = sum(s.get("mesh", {}).get("triangles", 0)
                        for s in Case.open(case_path).structures.values())
        print(f"case: {case_path} ({triangles:,} triangles)")
        baseline(case_path)  # warm-up: EGL context, file cache, imports
        viewer(case_path)
        base, ours = [], []
        for _ in range(args.repeats):
            base.append(baseline(case_path))
            ours.append(viewer(case_path))
        b, v = statistics.median(base), statistics.median(ours)
        for name, runs in (("bare PyVista plot", base), ("cardioplan viewer", ours)):
            print(f"{name}, first frame: median {statistics.median(runs):.2f} s  "
                  f"({', '.join(f'{x:.2f}' for x in runs)})")
        print(f"ratio viewer / bare PyVista: {v / b:.2f}")
        cb = statistics.median(cold("baseline", case_path) for _ in range(args.repeats))
        cv = statistics.median(cold("viewer", case_path) for _ in range(args.repeats))
        print(f"cold process (imports + EGL + first frame): bare {cb:.2f} s, viewer {cv:.2f} s, "
              f"ratio {cv / cb:.2f}")
        for name, seconds in interaction(case_path, args.repeats).items():
            print(f"interaction: {name}: median {seconds * 1000:.0f} ms")
        met = max(v, cv) <= TARGET_S
        print(f"target <= {TARGET_S:.0f} s (cold and warm): {'met' if met else 'NOT met'}")
        return 0 if max(v, cv) <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
