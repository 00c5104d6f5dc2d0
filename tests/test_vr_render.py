"""The headset renderer on Mesa's EGL (no OpenXR runtime): colours, nesting, clip planes, slice.

A fixed eye looks down -Z at the model; pixels are read back from an sRGB framebuffer like the
swapchain images.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from vr import xrmath
from vr.render import Label, SceneFrame, StructureStyle, mesh_arrays

SIZE = (160, 160)
EYE = np.array([0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def renderer():
    pytest.importorskip("moderngl")
    from vr.graphics import create_context, prepare_platform

    prepare_platform("egl")
    try:
        gl = create_context("egl")
    except Exception as exc:  # noqa: BLE001 - no EGL on this machine
        pytest.skip(f"no EGL OpenGL context: {exc}")
    import moderngl

    from vr.render import Renderer

    moderngl.init_context()
    ctx = moderngl.get_context()
    r = Renderer(ctx, srgb=True)
    r.fbo = r.offscreen(SIZE)  # an sRGB target, like the swapchain images
    yield r
    r.release()
    ctx.release()
    gl.destroy()


def sphere(centre, radius):
    import pyvista as pv

    return mesh_arrays(pv.Sphere(radius=radius, center=centre, theta_resolution=32,
                                 phi_resolution=32))


def render(r, frame):
    proj = xrmath.projection_from_fov(-0.5, 0.5, 0.5, -0.5, near=0.05, far=10)
    view = xrmath.view_matrix(EYE, (0, 0, 0, 1))
    r.draw(r.fbo, proj, view, EYE, frame)
    return r.read_pixels(r.fbo)[:, :, :3].astype(int)


# model: patient origin 15 cm ahead, life size, patient facing the eye: 1 mm ~ 1 pixel here
MODEL = xrmath.model_matrix((0, 0, -0.15), (0, 0, 0, 1), 1.0, (0, 0, 0))
CENTRE = (SIZE[1] // 2, SIZE[0] // 2)


def px(img, row, col, r=2):
    return img[row - r:row + r + 1, col - r:col + r + 1].reshape(-1, 3).mean(axis=0)


def test_opaque_structure_shows_its_label_colour_lit_from_the_head(renderer):
    renderer.set_meshes({"left_ventricle": sphere((0, 0, 0), 40)})
    img = render(renderer, SceneFrame(model=MODEL, styles={
        "left_ventricle": StructureStyle(color=(221, 72, 72))}))
    c = px(img, *CENTRE)
    # the head light faces the surface: close to the label colour (sRGB), hue preserved
    assert c[0] > 180 and c[0] > 2.2 * c[1] and abs(c[1] - c[2]) < 15
    assert px(img, 3, 3).max() < 50  # background in the corner
    renderer.remove_meshes(["left_ventricle"])


def test_transparent_shell_over_an_opaque_chamber_blends_both_colours(renderer):
    renderer.set_meshes({"left_ventricle": sphere((0, 0, 0), 20),
                         "myocardium": sphere((0, 0, 0), 45)})
    styles = {"left_ventricle": StructureStyle(color=(221, 72, 72)),
              "myocardium": StructureStyle(color=(40, 170, 230), opacity=0.4)}
    img = render(renderer, SceneFrame(model=MODEL, styles=styles))
    inner, shell_only = px(img, *CENTRE), px(img, CENTRE[0], CENTRE[1] + 32)
    assert inner[0] > inner[2]  # the red chamber shows through the blue shell
    assert shell_only[2] > shell_only[0]  # the shell alone is blue
    assert inner[2] > 40  # ... and tints the chamber
    # hidden myocardium: the chamber is pure red again
    styles["myocardium"] = StructureStyle(visible=False)
    img2 = render(renderer, SceneFrame(model=MODEL, styles=styles))
    assert px(img2, *CENTRE)[2] < inner[2] - 20
    renderer.remove_meshes(["left_ventricle", "myocardium"])


def test_clip_plane_removes_the_near_half_and_opens_the_inside(renderer):
    renderer.set_meshes({"aorta": sphere((0, 0, 0), 40)})
    # keep the patient-left half (x >= 0 LPS) = the right half of the image
    plane = (np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.0]))
    img = render(renderer, SceneFrame(model=MODEL, styles={
        "aorta": StructureStyle(color=(200, 30, 130), planes=[plane])}))
    left, right = px(img, CENTRE[0], CENTRE[1] - 20), px(img, CENTRE[0], CENTRE[1] + 20)
    assert left.max() < 50  # cut away
    assert right[0] > right[1] + 60  # the aorta's magenta
    # a plane facing the eye removes the front cap: the (darker) inside shows
    front = (np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 0.0]))  # keep posterior half
    img2 = render(renderer, SceneFrame(model=MODEL, styles={
        "aorta": StructureStyle(color=(200, 30, 130), planes=[front])}))
    inside = px(img2, *CENTRE)
    outside = px(img, CENTRE[0], CENTRE[1] + 20)
    assert inside[0] > inside[1] and inside.sum() < outside.sum()
    renderer.remove_meshes(["aorta"])


def test_ct_slice_is_drawn_on_the_cut_plane_from_the_volume(renderer):
    # a 60 mm cube of air with a bright 20 mm block at patient left (x > 0)
    vox = np.zeros((60, 60, 60), dtype=np.uint8)
    vox[:, :, 40:] = 230
    index_to_model = np.eye(4)
    index_to_model[:3, 3] = (-29.5, -29.5, -29.5)
    renderer.set_meshes({"heart": sphere((0, 0, 0), 25)})
    renderer.set_volume(vox, index_to_model)
    plane = (np.array([0.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))  # coronal, facing the eye
    img = render(renderer, SceneFrame(model=MODEL, slice_plane=plane, styles={
        "heart": StructureStyle(visible=False)}))
    bright = px(img, CENTRE[0], CENTRE[1] + 20)
    assert bright.min() > 170 and abs(bright[0] - bright[2]) < 10  # grey, from the volume
    assert px(img, CENTRE[0], CENTRE[1] - 20).max() < 60  # air is transparent
    renderer.set_volume(None)
    renderer.remove_meshes(["heart"])


def test_labels_and_markers_are_drawn_over_the_scene(renderer):
    p = xrmath.transform_points(MODEL, (0, 0, 0))
    frame = SceneFrame(model=MODEL, labels=[Label("12.3 mm", p, 0.012, (255, 220, 60))],
                       points=[(p, 0.004, (0.1, 0.9, 1.0, 1.0))])
    img = render(renderer, frame)
    assert px(img, *CENTRE, r=1)[2] > 150  # the cyan marker at the point
    above = img[: CENTRE[0] - 5, CENTRE[1] - 40:CENTRE[1] + 40]
    yellow = (above[..., 0] > 180) & (above[..., 1] > 150) & (above[..., 2] < 120)
    assert yellow.sum() > 20  # the label's text sits above the point


def test_menu_panel_texture_is_upright_and_not_mirrored(renderer):
    from vr.render import MenuImage
    from vr.xrmath import Pose

    pix = np.zeros((100, 200, 4), np.uint8)
    pix[..., 3] = 255
    pix[:50, :100, 0] = 255  # top-left red
    pix[:50, 100:, 1] = 255  # top-right green
    pix[50:, :100, 2] = 255  # bottom-left blue
    panel = MenuImage(Pose((0, 0, -0.15)), (0.12, 0.06), pix, key="quadrants")
    img = render(renderer, SceneFrame(model=MODEL, menu=panel))
    top, bottom = CENTRE[0] - 15, CENTRE[0] + 15
    left, right = CENTRE[1] - 30, CENTRE[1] + 30
    assert np.argmax(px(img, top, left)) == 0  # red
    assert np.argmax(px(img, top, right)) == 1  # green
    assert np.argmax(px(img, bottom, left)) == 2  # blue
    assert px(img, bottom, right).max() < 30  # black


def test_linear_swapchain_path_encodes_in_the_shader_to_the_same_colours(renderer):
    """Runtimes without sRGB formats get RGBA8: the shader then encodes, same result."""
    from vr.render import Renderer

    ctx = renderer.ctx
    linear = Renderer(ctx, srgb=False)
    linear.fbo = linear.offscreen(SIZE)  # GL_RGBA8
    try:
        frames = []
        for r in (renderer, linear):
            r.set_meshes({"aorta": sphere((0, 0, 0), 40)})
            frames.append(render(r, SceneFrame(model=MODEL, styles={
                "aorta": StructureStyle(color=(200, 30, 130))})))
            r.remove_meshes(["aorta"])
        a, b = (px(f, *CENTRE) for f in frames)
        assert np.abs(a - b).max() < 12  # 8-bit rounding of the two encodings
        assert a[0] > 150
    finally:
        linear.release()


def test_multisampling_smooths_edges_and_keeps_the_colours(renderer):
    from vr.render import Renderer

    ctx = renderer.ctx
    msaa = Renderer(ctx, srgb=True, msaa=4)
    msaa.fbo = msaa.offscreen(SIZE)
    try:
        frames = []
        for r in (renderer, msaa):
            r.set_meshes({"aorta": sphere((0, 0, 0), 40)})
            frames.append(render(r, SceneFrame(model=MODEL, styles={
                "aorta": StructureStyle(color=(200, 30, 130))})))
            r.remove_meshes(["aorta"])
        plain, smooth = frames
        assert np.abs(px(plain, *CENTRE) - px(smooth, *CENTRE)).max() < 6  # same interior
        # along the silhouette, multisampling gives in-between values (more distinct levels)
        row = CENTRE[0]
        edge = slice(CENTRE[1] + 30, CENTRE[1] + 50)
        assert len(np.unique(smooth[row, edge, 0])) > len(np.unique(plain[row, edge, 0]))
    finally:
        msaa.release()


def test_more_cut_planes_than_the_shader_holds_are_ignored_with_one_warning(renderer, caplog):
    renderer.set_meshes({"aorta": sphere((0, 0, 0), 40)})
    planes = [(np.array([1.0, 0.0, 0.0]), np.array([x, 0.0, 0.0])) for x in (-30, -20, -10, 0,
                                                                              10, 20)]
    frame = SceneFrame(model=MODEL, styles={"aorta": StructureStyle(color=(200, 30, 130),
                                                                    planes=planes)})
    with caplog.at_level("WARNING", logger="vr.render"):
        img = render(renderer, frame)
        render(renderer, SceneFrame(model=MODEL, styles=frame.styles))
    assert sum("cut planes are drawn at once" in r.message for r in caplog.records) == 1
    # the first four planes apply: x >= 0 is kept, the left half is gone
    assert px(img, CENTRE[0], CENTRE[1] - 20).max() < 50
    assert px(img, CENTRE[0], CENTRE[1] + 20)[0] > 120
    renderer.remove_meshes(["aorta"])
