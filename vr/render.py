"""Draw the heart for one eye with moderngl on the session's GL context.

What is drawn, in order:

1. opaque structures (depth-tested, depth-written);
2. the CT/MR slice on the first active cut plane (an oblique slice sampled from a 3D texture);
3. transparent structures sorted back to front by their distance to the eye, each drawn back
   faces first, then front faces, without depth writes — nested structures (chambers inside the
   myocardium) blend in the right order;
4. overlays: measurement lines and end points, landmarks, controller rays and tips, the cut
   plane held in the hand, text labels (textured quads facing the head) and the menu panel.

Lighting is a head-mounted key light with Blinn-Phong highlights and a hemispheric ambient term;
back faces (what a cut opens up) are drawn darker so the inside of a chamber reads as inside.
Clip planes are evaluated per fragment in patient space, per structure.  Label colours are
sRGB; the shader works in linear light and the sRGB swapchain encodes on write
(``GL_FRAMEBUFFER_SRGB``), or the shader encodes itself for a linear target.

Everything the renderer needs per frame is the plain :class:`SceneFrame`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vr import xrmath
from vr.xrmath import Pose

__all__ = ["StructureStyle", "Label", "SceneFrame", "MenuImage", "Renderer", "mesh_arrays",
           "MAX_CLIP_PLANES"]

log = logging.getLogger(__name__)

MAX_CLIP_PLANES = 4
MAX_STRUCTURES = 32
"""Structures drawn at once (each has a slot in the per-structure uniform arrays)."""
SLICE_OPACITY = 0.85
BACKGROUND = (26, 28, 34)
GL_FRAMEBUFFER_SRGB = 0x8DB9
GL_DEPTH_COMPONENT24 = 0x81A6
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "SwiftShader")
"""GL renderers that rasterise on the CPU: multisampling is off by default there."""
Color = tuple[int, int, int]

_MESH_VS = """
#version 330
uniform mat4 u_model;
uniform mat4 u_viewproj;
uniform mat3 u_normal_matrix;
uniform vec4 u_style[MAX_STRUCTURES];  // per structure slot: linear RGB, alpha
uniform int u_clip[MAX_STRUCTURES];    // per structure slot: bit i = clip plane i applies
in vec4 in_pos;                         // x, y, z (LPS mm), structure slot
in vec3 in_norm;
out vec3 v_world;
out vec3 v_normal;
out vec3 v_model;
flat out vec4 v_style;
flat out int v_clip;
void main() {
    int slot = int(in_pos.w + 0.5);
    v_style = u_style[slot];
    v_clip = u_clip[slot];
    v_model = in_pos.xyz;
    vec4 w = u_model * vec4(in_pos.xyz, 1.0);
    v_world = w.xyz;
    v_normal = u_normal_matrix * in_norm;
    gl_Position = u_viewproj * w;
}
""".replace("MAX_STRUCTURES", str(MAX_STRUCTURES))

_MESH_FS = """
#version 330
uniform vec4 u_planes[MAX_PLANES];
uniform vec3 u_eye;
uniform bool u_encode;
in vec3 v_world;
in vec3 v_normal;
in vec3 v_model;
flat in vec4 v_style;
flat in int v_clip;
out vec4 frag;
void main() {
    for (int i = 0; i < MAX_PLANES; i++) {
        if (((v_clip >> i) & 1) != 0 && dot(u_planes[i].xyz, v_model) + u_planes[i].w < 0.0)
            discard;
    }
    vec3 n = normalize(v_normal);
    vec3 v = normalize(u_eye - v_world);
    bool back = dot(n, v) < 0.0;
    if (back) n = -n;
    vec3 l = normalize(v + vec3(0.0, 0.6, 0.0));
    float diff = max(dot(n, l), 0.0);
    float spec = pow(max(dot(n, normalize(l + v)), 0.0), 40.0) * 0.25;
    float amb = mix(0.18, 0.32, 0.5 + 0.5 * n.y);
    vec3 c = v_style.rgb * (amb + 0.8 * diff) + vec3(spec);
    if (back) c *= 0.55;
    if (u_encode) c = pow(clamp(c, 0.0, 1.0), vec3(1.0 / 2.2));
    frag = vec4(c, v_style.a);
}
""".replace("MAX_PLANES", str(MAX_CLIP_PLANES))

_FLAT_VS = """
#version 330
uniform mat4 u_viewproj;
in vec3 in_pos;
in vec4 in_color;
out vec4 v_color;
void main() { v_color = in_color; gl_Position = u_viewproj * vec4(in_pos, 1.0); }
"""

_FLAT_FS = """
#version 330
uniform bool u_encode;
in vec4 v_color;
out vec4 frag;
void main() {
    vec3 c = v_color.rgb;
    if (u_encode) c = pow(clamp(c, 0.0, 1.0), vec3(1.0 / 2.2));
    frag = vec4(c, v_color.a);
}
"""

_TEX_VS = """
#version 330
uniform mat4 u_viewproj;
in vec3 in_pos;
in vec2 in_uv;
out vec2 v_uv;
void main() { v_uv = in_uv; gl_Position = u_viewproj * vec4(in_pos, 1.0); }
"""

_TEX_FS = """
#version 330
uniform sampler2D u_tex;
uniform bool u_encode;
in vec2 v_uv;
out vec4 frag;
void main() {
    vec4 t = texture(u_tex, v_uv);
    vec3 c = pow(t.rgb, vec3(2.2));          // texture holds sRGB pixels
    if (u_encode) c = t.rgb;
    if (t.a < 0.02) discard;
    frag = vec4(c, t.a);
}
"""

_SLICE_VS = """
#version 330
uniform mat4 u_model;
uniform mat4 u_viewproj;
in vec3 in_pos;
out vec3 v_model;
void main() { v_model = in_pos; gl_Position = u_viewproj * (u_model * vec4(in_pos, 1.0)); }
"""

_SLICE_FS = """
#version 330
uniform sampler3D u_volume;
uniform mat4 u_tex_from_model;
uniform bool u_encode;
uniform float u_alpha;
in vec3 v_model;
out vec4 frag;
void main() {
    vec3 t = (u_tex_from_model * vec4(v_model, 1.0)).xyz;
    if (any(lessThan(t, vec3(0.0))) || any(greaterThan(t, vec3(1.0)))) discard;
    float g = texture(u_volume, t).r;
    vec3 c = vec3(g);
    if (!u_encode) c = pow(c, vec3(2.2));
    // air and lung fade out, so the cut structures behind the slice stay visible
    frag = vec4(c, u_alpha * smoothstep(0.04, 0.3, g));
}
"""


# -- frame description (plain data) -----------------------------------------------------------
@dataclass
class StructureStyle:
    """How one structure is drawn this frame; planes are (unit normal, origin) in LPS mm."""

    visible: bool = True
    opacity: float = 1.0
    color: Color = (200, 200, 200)
    planes: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = field(default_factory=list)


@dataclass
class Label:
    """Text on a quad facing the head, centred ``height_m`` above ``position`` (world)."""

    text: str
    position: NDArray[np.float64]
    height_m: float = 0.02
    color: Color = (255, 255, 255)


@dataclass
class MenuImage:
    """The menu panel: its pose (world), size (m) and RGBA pixels (top row first)."""

    pose: Pose
    size_m: tuple[float, float]
    pixels: NDArray[np.uint8]
    key: Any = None
    """Changes when the pixels change (saves re-uploading an unchanged menu)."""


@dataclass
class SceneFrame:
    """Everything drawn in one frame (shared by both eyes)."""

    model: NDArray[np.float64]
    """World (m) <- patient (LPS mm) matrix."""
    styles: dict[str, StructureStyle] = field(default_factory=dict)
    slice_plane: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
    """(origin, unit normal) in LPS mm where the CT/MR slice is shown."""
    lines: list[tuple[NDArray[np.float64], NDArray[np.float64], tuple[float, ...]]] = \
        field(default_factory=list)
    """World segments (a, b, linear RGBA)."""
    points: list[tuple[NDArray[np.float64], float, tuple[float, ...]]] = \
        field(default_factory=list)
    """World markers (centre, radius m, linear RGBA), drawn as small octahedra."""
    quads: list[tuple[Pose, tuple[float, float], tuple[float, ...]]] = field(default_factory=list)
    """Flat translucent rectangles (pose, size m, linear RGBA), e.g. the held cut plane."""
    boxes: list[tuple[Pose, tuple[float, float, float], tuple[float, ...]]] = \
        field(default_factory=list)
    """Solid boxes (pose, size m, linear RGBA) shaded per face: the controllers' bodies."""
    labels: list[Label] = field(default_factory=list)
    menu: MenuImage | None = None
    head: NDArray[np.float64] | None = None
    """Head position (world), which labels face; the eye position when None."""


def mesh_arrays(mesh: Any) -> tuple[NDArray[np.float32], NDArray[np.uint32]]:
    """Interleaved ``[x, y, z, nx, ny, nz]`` vertices (float32) and triangle indices of a PolyData.

    Uses the mesh's point normals when present (the mesh step writes them), else computes them.
    """
    tri = mesh if mesh.is_all_triangles else mesh.triangulate()
    if "Normals" not in tri.point_data:
        tri = tri.compute_normals(cell_normals=False, point_normals=True, split_vertices=False,
                                  auto_orient_normals=False)
    pts = np.asarray(tri.points, dtype=np.float32)
    nrm = np.asarray(tri.point_data["Normals"], dtype=np.float32)
    faces = np.asarray(tri.faces).reshape(-1, 4)[:, 1:].astype(np.uint32)
    return np.ascontiguousarray(np.hstack([pts, nrm])), np.ascontiguousarray(faces)


def _linear(c: Color) -> NDArray[np.float32]:
    return (np.asarray(c, dtype=np.float32) / 255.0) ** 2.2


def _gl(m: NDArray[np.float64]) -> bytes:
    """Row-major NumPy matrix -> column-major float32 bytes for a GL uniform."""
    return np.asarray(m, dtype=np.float32).T.copy().tobytes()


_OCTAHEDRON = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]],
                       dtype=np.float64)[[0, 2, 4, 2, 1, 4, 1, 3, 4, 3, 0, 4,
                                          2, 0, 5, 1, 2, 5, 3, 1, 5, 0, 3, 5]]
"""24 vertices (8 triangles) of a unit octahedron: the markers."""


def _octahedron(c: NDArray[np.float64], r: float) -> NDArray[np.float64]:
    """A marker of radius ``r`` at ``c``: 8 triangles."""
    return c + r * _OCTAHEDRON


_QUAD = np.array([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, -0.5, 0.0],
                  [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]])
"""Two triangles of a unit square in its local XY plane (scale by [w, h, 0])."""
_QUAD_UV = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
"""Texture coordinates of :data:`_QUAD` (textures are uploaded bottom row first, as GL wants)."""


def _billboard(label: Label, aspect: float, head: NDArray[np.float64]) -> NDArray[np.float64]:
    """Corners (as :data:`_QUAD`) of a label's quad facing the head, just above its point."""
    h = label.height_m
    to_head = np.asarray(head, dtype=np.float64) - label.position
    n = to_head / max(float(np.linalg.norm(to_head)), 1e-9)
    right = np.cross([0.0, 1.0, 0.0], n)
    if np.linalg.norm(right) < 1e-6:
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(n, right)
    centre = label.position + up * (h * 1.3)
    return centre + _QUAD[:, :1] * right * (h * aspect) + _QUAD[:, 1:2] * up * h


def _unit_box() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """36 vertices (two triangles per face) of a unit cube centred at 0, and the 6 normals."""
    verts, normals = [], []
    for axis in range(3):
        for sign in (1.0, -1.0):
            u, v = [a for a in range(3) if a != axis]
            corners = []
            for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                c = np.zeros(3)
                c[axis], c[u], c[v] = 0.5 * sign, 0.5 * a, 0.5 * b
                corners.append(c)
            verts += [corners[i] for i in (0, 1, 2, 0, 2, 3)]
            n = np.zeros(3)
            n[axis] = sign
            normals.append(n)
    return np.array(verts), np.array(normals)


_BOX_VERTS, _BOX_NORMALS = _unit_box()
_BOX_LIGHT = np.array([0.3, 0.9, 0.3]) / np.linalg.norm([0.3, 0.9, 0.3])


def _box(pose: Pose, size: tuple[float, float, float]
         ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Triangles (36 vertices, world) of a box centred on ``pose`` and per-vertex shading
    (a light from above and slightly in front), so a flat colour still reads as a solid."""
    verts = pose.transform_point(_BOX_VERTS * np.asarray(size, dtype=np.float64))
    lit = np.clip(pose.transform_direction(_BOX_NORMALS) @ _BOX_LIGHT, 0.0, None)
    return verts, np.repeat(0.45 + 0.55 * lit, 6)


class _GpuMesh:
    def __init__(self, ctx: Any, prog: Any, vertices: NDArray[np.float32],
                 faces: NDArray[np.uint32], slot: int) -> None:
        data = np.empty((len(vertices), 7), dtype=np.float32)
        data[:, :3] = vertices[:, :3]
        data[:, 3] = slot
        data[:, 4:] = vertices[:, 3:6]
        self.slot = slot
        self.vbo = ctx.buffer(data.tobytes())
        self.ibo = ctx.buffer(faces.tobytes())
        self.vao = ctx.vertex_array(prog, [(self.vbo, "4f 3f", "in_pos", "in_norm")],
                                    index_buffer=self.ibo, index_element_size=4)
        pts = vertices[:, :3].astype(np.float64)
        self.lo = pts.min(axis=0) if len(pts) else np.zeros(3)
        self.hi = pts.max(axis=0) if len(pts) else np.zeros(3)
        self.centre = (self.lo + self.hi) / 2
        self.n_triangles = len(faces)

    def release(self) -> None:
        for o in (self.vao, self.vbo, self.ibo):
            o.release()


class Renderer:
    """Draws :class:`SceneFrame` objects into swapchain images with moderngl.

    Parameters
    ----------
    ctx : moderngl.Context
        Created on the session's GL context (``moderngl.create_context()`` while it is current).
    srgb : bool
        The targets are sRGB (the hardware encodes; the shader outputs linear light).
    near, far : float
        Clip distances in metres.
    msaa : int
        Samples per pixel (0 or 1: none); the eyes are drawn multisampled and resolved into
        the swapchain images.
    """

    def __init__(self, ctx: Any, *, srgb: bool, near: float = 0.05, far: float = 20.0,
                 msaa: int = 0) -> None:
        import moderngl

        self._mgl = moderngl
        self.ctx = ctx
        self.srgb = srgb
        self.msaa = int(msaa)
        self.depth_format = GL_DEPTH_COMPONENT24
        """Depth format of the targets (the depth swapchain's): the multisampled depth must
        match it for the resolve to copy depth."""
        self._msaa_fbos: dict[tuple[int, int], Any] = {}
        self._warned_planes = False
        self.near, self.far = near, far
        self.mesh_prog = ctx.program(vertex_shader=_MESH_VS, fragment_shader=_MESH_FS)
        self.flat_prog = ctx.program(vertex_shader=_FLAT_VS, fragment_shader=_FLAT_FS)
        self.tex_prog = ctx.program(vertex_shader=_TEX_VS, fragment_shader=_TEX_FS)
        self.slice_prog = ctx.program(vertex_shader=_SLICE_VS, fragment_shader=_SLICE_FS)
        for p in (self.mesh_prog, self.flat_prog, self.tex_prog, self.slice_prog):
            if "u_encode" in p:
                p["u_encode"].value = not srgb
        self.meshes: dict[str, _GpuMesh] = {}
        self.driver_s = 0.0
        """Time spent inside GL calls that do the rendering work on a software rasteriser:
        draws (llvmpipe shades vertices there), clears and framebuffer binds (it flushes and
        may wait for the previous target).  On a GPU these calls only queue work."""
        self._fbos: dict[tuple[int, int | None], Any] = {}
        self._own: list[Any] = []
        self._text: dict[tuple[str, Color], tuple[Any, float]] = {}
        self._menu_tex: Any = None
        self._menu_key: Any = None
        self._volume: Any = None
        self._tex_from_model: NDArray[np.float64] | None = None
        self._volume_corners: NDArray[np.float64] | None = None
        self._mesh_uniforms = {name: self.mesh_prog[name] for name in (
            "u_model", "u_viewproj", "u_normal_matrix", "u_eye", "u_planes", "u_style",
            "u_clip")}
        self._background = tuple(float(x) for x in (
            _linear(BACKGROUND) if srgb else np.array(BACKGROUND) / 255.0))
        self._dyn = ctx.buffer(reserve=1 << 16, dynamic=True)
        self._dyn_tex = ctx.buffer(reserve=1 << 12, dynamic=True)
        self._slice_buf = ctx.buffer(reserve=6 * 5 * 4, dynamic=True)
        self._flat_vao = ctx.vertex_array(self.flat_prog,
                                          [(self._dyn, "3f 4f", "in_pos", "in_color")])
        self._tex_vao = ctx.vertex_array(self.tex_prog, [(self._dyn_tex, "3f 2f", "in_pos",
                                                          "in_uv")])
        self._slice_vao = ctx.vertex_array(self.slice_prog, [(self._slice_buf, "3f 8x",
                                                              "in_pos")])
        self._opaque: list[Any] = []
        self._transparent: list[Any] = []
        self._textured: list[Any] = []
        self._n_labels = 0
        self._flat_ranges = (0, 0, 0)
        self._slice_verts: NDArray[np.float32] | None = None
        self._model_bytes = b""

    # -- resources ----------------------------------------------------------------------------
    def set_meshes(self, meshes: dict[str, tuple[NDArray[np.float32], NDArray[np.uint32]]]
                   ) -> None:
        """Upload (or replace) structures: name -> (interleaved vertices, faces)."""
        for name, (v, f) in meshes.items():
            old = self.meshes.pop(name, None)
            if old is not None:
                old.release()
            if not len(f):
                continue
            used = {m.slot for m in self.meshes.values()}
            slot = next((i for i in range(MAX_STRUCTURES) if i not in used), None)
            if slot is None:
                raise ValueError(f"at most {MAX_STRUCTURES} structures can be shown at once")
            self.meshes[name] = _GpuMesh(self.ctx, self.mesh_prog, v, f, slot)

    def remove_meshes(self, names: Sequence[str]) -> None:
        """Free the GPU buffers of structures that are gone."""
        for name in names:
            old = self.meshes.pop(name, None)
            if old is not None:
                old.release()

    @property
    def n_triangles(self) -> int:
        """Triangles on the GPU, all structures."""
        return sum(m.n_triangles for m in self.meshes.values())

    def set_volume(self, voxels: NDArray[np.uint8] | None,
                   index_to_model: NDArray[np.float64] | None = None) -> None:
        """Upload the scan for the slice plane.

        Parameters
        ----------
        voxels : ndarray (z, y, x) of uint8, or None
            Windowed grey values (NumPy order of a SimpleITK image).
        index_to_model : ndarray (4, 4)
            Maps the (i, j, k) = (x, y, z) voxel index to LPS mm (spacing, direction, origin).
        """
        if self._volume is not None:
            self._volume.release()
            self._volume = None
        if voxels is None or index_to_model is None:
            return
        nz, ny, nx = voxels.shape
        self._volume = self.ctx.texture3d((nx, ny, nz), 1, np.ascontiguousarray(voxels).tobytes(),
                                          alignment=1)
        self._volume.filter = (self._mgl.LINEAR, self._mgl.LINEAR)
        self._volume.repeat_x = self._volume.repeat_y = self._volume.repeat_z = False
        # texture coords: (index + 0.5) / size
        tex_from_index = np.diag([1 / nx, 1 / ny, 1 / nz, 1.0])
        tex_from_index[:3, 3] = 0.5 / np.array([nx, ny, nz])
        self._tex_from_model = tex_from_index @ np.linalg.inv(index_to_model)
        corners = np.array([[i, j, k] for i in (-0.5, nx - 0.5) for j in (-0.5, ny - 0.5)
                            for k in (-0.5, nz - 0.5)])
        self._volume_corners = xrmath.transform_points(index_to_model, corners)

    def _bounds(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """What the slice should cover (LPS mm box): the structures, else the whole scan."""
        if self.meshes:
            lo = np.min([m.lo for m in self.meshes.values()], axis=0)
            hi = np.max([m.hi for m in self.meshes.values()], axis=0)
            return lo - 5.0, hi + 5.0
        corners = self._volume_corners
        assert corners is not None
        return corners.min(axis=0), corners.max(axis=0)

    def framebuffer(self, color_tex: int, depth_tex: int | None, size: tuple[int, int]) -> Any:
        """A framebuffer on a swapchain's colour (and depth) GL texture, created once."""
        key = (color_tex, depth_tex)
        fbo = self._fbos.get(key)
        if fbo is None:
            from OpenGL import GL

            color = self.ctx.external_texture(color_tex, size, 4, 0, "f1")
            if depth_tex is not None:
                glo = GL.glGenFramebuffers(1)
                GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, glo)
                GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0,
                                          GL.GL_TEXTURE_2D, color_tex, 0)
                GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT,
                                          GL.GL_TEXTURE_2D, depth_tex, 0)
                status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
                GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
                if status != GL.GL_FRAMEBUFFER_COMPLETE:
                    raise RuntimeError(f"swapchain framebuffer incomplete (0x{status:x})")
                fbo = self.ctx.detect_framebuffer(glo)
                self._own.append(("fbo", glo))
            else:
                depth = self.ctx.depth_renderbuffer(size)
                self._own.append(depth)
                fbo = self.ctx.framebuffer(color_attachments=[color], depth_attachment=depth)
            self._fbos[key] = fbo
        return fbo

    def offscreen(self, size: tuple[int, int]) -> Any:
        """An own framebuffer like a swapchain image (sRGB when the renderer is), for figures
        and tests without a runtime; freed by :meth:`release`."""
        color = self.ctx.texture(size, 4, internal_format=0x8C43 if self.srgb else None)
        depth = self.ctx.depth_renderbuffer(size)
        self._own += [color, depth]
        return self.ctx.framebuffer(color_attachments=[color], depth_attachment=depth)

    # -- drawing ------------------------------------------------------------------------------
    def prepare(self, frame: SceneFrame, *, head: NDArray[np.float64] | None = None) -> None:
        """Do the per-frame work shared by both eyes: draw order, per-structure uniforms,
        overlay geometry (uploaded once).  :meth:`draw` calls it when given a new frame.

        ``head`` (world) is what labels face and transparency is sorted from, when the frame
        has no ``head``.
        """
        model = frame.model
        if frame.head is not None:
            head = frame.head
        head = np.zeros(3) if head is None else np.asarray(head, dtype=np.float64)
        head_model = xrmath.transform_points(np.linalg.inv(model), head)
        opaque, transparent = [], []
        styles = np.zeros((MAX_STRUCTURES, 4), dtype=np.float32)
        clip = np.zeros(MAX_STRUCTURES, dtype=np.int32)
        planes: list[tuple[float, float, float, float]] = []
        for name, mesh in self.meshes.items():
            style = frame.styles.get(name)
            if style is None or not style.visible or style.opacity <= 0.01:
                continue
            styles[mesh.slot, :3] = _linear(style.color)
            styles[mesh.slot, 3] = style.opacity
            for n, o in style.planes:
                key = (float(n[0]), float(n[1]), float(n[2]), -float(np.dot(n, o)))
                if key not in planes:
                    if len(planes) == MAX_CLIP_PLANES:
                        if not self._warned_planes:
                            log.warning("only %d cut planes are drawn at once; the others "
                                        "are ignored", MAX_CLIP_PLANES)
                            self._warned_planes = True
                        continue
                    planes.append(key)
                clip[mesh.slot] |= 1 << planes.index(key)
            (opaque if style.opacity >= 0.99 else transparent).append(mesh)
        plane_data = np.zeros((MAX_CLIP_PLANES, 4), dtype=np.float32)
        if planes:
            plane_data[:len(planes)] = planes
        u = self._mesh_uniforms
        u["u_style"].write(styles.tobytes())
        u["u_clip"].write(clip.tobytes())
        u["u_planes"].write(plane_data.tobytes())
        # back to front from the head (the same order suits both eyes)
        transparent.sort(key=lambda m: -float(np.linalg.norm(m.centre - head_model)))
        self._opaque, self._transparent = opaque, transparent
        nm = np.linalg.inv(model[:3, :3]).T
        self._model_bytes = _gl(model)
        u["u_model"].write(self._model_bytes)
        u["u_normal_matrix"].write(np.asarray(nm, dtype=np.float32).T.copy().tobytes())
        self._slice_verts = self._slice_quad(frame.slice_plane) \
            if frame.slice_plane is not None and self._volume is not None else None
        self._prepare_overlays(frame, head)
        self._prepared = frame

    def draw(self, fbo: Any, proj: NDArray[np.float64], view: NDArray[np.float64],
             eye: NDArray[np.float64], frame: SceneFrame) -> None:
        """Draw ``frame`` for one eye (``proj``/``view`` from :mod:`vr.xrmath`)."""
        if getattr(self, "_prepared", None) is not frame:
            self.prepare(frame, head=eye)
        ctx = self.ctx
        mgl = self._mgl
        target = self._multisampled(fbo.size) if self.msaa > 1 else fbo
        self._driver(target.use)  # binding another target makes llvmpipe flush the last one
        if self.srgb:
            ctx.enable_direct(GL_FRAMEBUFFER_SRGB)
        self._driver(ctx.clear, *self._background, 1.0, depth=1.0)
        ctx.enable(mgl.DEPTH_TEST)
        ctx.disable(mgl.CULL_FACE)
        ctx.disable(mgl.BLEND)
        viewproj = _gl(proj @ view)
        u = self._mesh_uniforms
        u["u_viewproj"].write(viewproj)
        u["u_eye"].value = (float(eye[0]), float(eye[1]), float(eye[2]))
        triangles = self._mgl.TRIANGLES
        for mesh in self._opaque:
            self._driver(mesh.vao.render, triangles)
        ctx.enable(mgl.BLEND)
        ctx.blend_func = mgl.SRC_ALPHA, mgl.ONE_MINUS_SRC_ALPHA
        ctx.depth_mask = False
        if self._slice_verts is not None:
            self._draw_slice(viewproj)
        if self._transparent:
            ctx.enable(mgl.CULL_FACE)
            for mesh in self._transparent:
                for face in ("front", "back"):  # back faces first (cull the front ones)
                    ctx.cull_face = face
                    self._driver(mesh.vao.render, triangles)
            ctx.disable(mgl.CULL_FACE)
        self._draw_overlays(viewproj)
        ctx.depth_mask = True
        ctx.disable(mgl.BLEND)
        if target is not fbo:
            self._driver(self._resolve, target, fbo)
        if self.srgb:
            ctx.disable_direct(GL_FRAMEBUFFER_SRGB)

    def _multisampled(self, size: tuple[int, int]) -> Any:
        """The multisampled framebuffer the eyes are drawn into before the resolve (one per
        size, sRGB like the swapchains; built with GL calls since moderngl has no sRGB
        multisampled renderbuffers)."""
        fbo = self._msaa_fbos.get(size)
        if fbo is None:
            from OpenGL import GL

            color, depth = GL.glGenRenderbuffers(2)
            GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, color)
            GL.glRenderbufferStorageMultisample(
                GL.GL_RENDERBUFFER, self.msaa, 0x8C43 if self.srgb else GL.GL_RGBA8, *size)
            GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, depth)
            GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, self.msaa,
                                                self.depth_format, *size)
            glo = GL.glGenFramebuffers(1)
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, glo)
            GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0,
                                         GL.GL_RENDERBUFFER, color)
            GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT,
                                         GL.GL_RENDERBUFFER, depth)
            status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
            self._own += [("fbo", glo), ("rbo", color), ("rbo", depth)]
            if status != GL.GL_FRAMEBUFFER_COMPLETE:
                raise RuntimeError(f"multisampled framebuffer incomplete (0x{status:x})")
            fbo = self._msaa_fbos[size] = self.ctx.detect_framebuffer(glo)
        return fbo

    def _resolve(self, source: Any, target: Any) -> None:
        """Average the samples into the swapchain image (and copy the depth for the layer)."""
        from OpenGL import GL

        w, h = target.size
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, source.glo)
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, target.glo)
        GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
        GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_DEPTH_BUFFER_BIT, GL.GL_NEAREST)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        target.use()

    def _driver(self, call: Any, *args: Any, **kwargs: Any) -> None:
        """Make a GL call that may do the rendering work itself, timing it in ``driver_s``."""
        t0 = time.perf_counter()
        call(*args, **kwargs)
        self.driver_s += time.perf_counter() - t0

    def _slice_quad(self, plane: tuple[NDArray[np.float64], NDArray[np.float64]]
                    ) -> NDArray[np.float32]:
        """The rectangle of the plane that covers the box of :meth:`_bounds`."""
        origin, normal = (np.asarray(a, dtype=np.float64) for a in plane)
        lo, hi = self._bounds()
        u = np.cross(normal, [0.0, 0.0, 1.0])
        if np.linalg.norm(u) < 1e-6:
            u = np.cross(normal, [0.0, 1.0, 0.0])
        u /= np.linalg.norm(u)
        v = np.cross(normal, u)
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                            for z in (lo[2], hi[2])])
        cu, cv = (corners - origin) @ u, (corners - origin) @ v
        u0, u1, v0, v1 = cu.min(), cu.max(), cv.min(), cv.max()
        quad = np.array([origin + a * u + b * v for a, b in
                         ((u0, v0), (u1, v0), (u1, v1), (u0, v0), (u1, v1), (u0, v1))])
        return np.hstack([quad, np.zeros((6, 2))]).astype(np.float32)

    def _draw_slice(self, viewproj: bytes) -> None:
        assert self._slice_verts is not None and self._tex_from_model is not None
        self._slice_buf.write(self._slice_verts.tobytes())
        p = self.slice_prog
        p["u_model"].write(self._model_bytes)
        p["u_viewproj"].write(viewproj)
        p["u_tex_from_model"].write(_gl(self._tex_from_model))
        p["u_alpha"].value = SLICE_OPACITY
        self._volume.use(0)
        p["u_volume"].value = 0
        self._driver(self._slice_vao.render, self._mgl.TRIANGLES, vertices=6)

    def _prepare_overlays(self, frame: SceneFrame, head: NDArray[np.float64]) -> None:
        """Build every overlay vertex once per frame: flat triangles (markers, quads), lines,
        textured quads (labels, menu)."""
        tris: list[NDArray[np.float64]] = []
        cols: list[NDArray[np.float64]] = []
        for centre, r, col in frame.points:
            tris.append(_octahedron(np.asarray(centre, dtype=np.float64), r))
            cols.append(np.broadcast_to(col, (24, 4)))
        for pose, size, col in frame.boxes:
            verts, shade = _box(pose, size)
            tris.append(verts)
            c = np.empty((len(verts), 4))
            c[:, :3] = np.outer(shade, col[:3])
            c[:, 3] = col[3]
            cols.append(c)
        n_solid = sum(len(t) for t in tris)
        for pose, (w, h), col in frame.quads:
            tris.append(pose.transform_point(_QUAD * [w, h, 0.0]))
            cols.append(np.broadcast_to(col, (6, 4)))
        n_tris = sum(len(t) for t in tris)
        for a, b, col in frame.lines:
            tris.append(np.array([a, b], dtype=np.float64))
            cols.append(np.broadcast_to(col, (2, 4)))
        self._flat_ranges = (n_solid, n_tris, sum(len(t) for t in tris) - n_tris)
        if tris:
            data = np.hstack([np.vstack(tris), np.vstack(cols)]).astype(np.float32)
            self._upload(self._dyn, data)
        textured: list[tuple[Any, NDArray[np.float64]]] = []
        for label in frame.labels:
            tex, aspect = self._text_texture(label.text, label.color)
            textured.append((tex, _billboard(label, aspect, head)))
        if frame.menu is not None:
            textured.append((self._menu_texture(frame.menu),
                             frame.menu.pose.transform_point(_QUAD * [*frame.menu.size_m, 0.0])))
        self._textured = [t for t, _ in textured]
        self._n_labels = len(frame.labels)
        if textured:
            uv = np.tile(_QUAD_UV, (len(textured), 1))
            data = np.hstack([np.vstack([c for _, c in textured]), uv]).astype(np.float32)
            self._upload(self._dyn_tex, data)

    def _upload(self, buf: Any, data: NDArray[np.float32]) -> None:
        # orphaning gives the driver fresh storage: no wait for the previous frame's draws
        buf.orphan(max(buf.size, data.nbytes))
        buf.write(data.tobytes())

    def _draw_overlays(self, viewproj: bytes) -> None:
        mgl = self._mgl
        solid, n_tris, n_lines = self._flat_ranges
        if n_tris or n_lines:
            self.flat_prog["u_viewproj"].write(viewproj)
            self.ctx.depth_mask = True
            if solid:
                self._driver(self._flat_vao.render, mgl.TRIANGLES, vertices=solid)
            if n_lines:
                self._driver(self._flat_vao.render, mgl.LINES, vertices=n_lines, first=n_tris)
            self.ctx.depth_mask = False
            if n_tris > solid:
                self._driver(self._flat_vao.render, mgl.TRIANGLES, vertices=n_tris - solid,
                             first=solid)
        if self._textured:
            self.tex_prog["u_viewproj"].write(viewproj)
            self.tex_prog["u_tex"].value = 0
            for i, tex in enumerate(self._textured):
                # text labels stay readable in front of everything; the menu is a solid panel
                on_top = i < self._n_labels
                if on_top:
                    self.ctx.disable(mgl.DEPTH_TEST)
                tex.use(0)
                self._driver(self._tex_vao.render, mgl.TRIANGLES, vertices=6, first=6 * i)
                if on_top:
                    self.ctx.enable(mgl.DEPTH_TEST)

    def _text_texture(self, text: str, color: Color) -> tuple[Any, float]:
        key = (text, color)
        if key not in self._text:
            from vr.overlay import text_image

            if len(self._text) > 256:  # labels change rarely; keep the cache bounded
                for t, _ in self._text.values():
                    t.release()
                self._text.clear()
            img = text_image(text, color=color)
            tex = self.ctx.texture((img.shape[1], img.shape[0]), 4, img[::-1].tobytes())
            tex.filter = (self._mgl.LINEAR, self._mgl.LINEAR)
            self._text[key] = (tex, img.shape[1] / img.shape[0])
        return self._text[key]

    def _menu_texture(self, menu: MenuImage) -> Any:
        if self._menu_tex is None or menu.key != self._menu_key or menu.key is None:
            if self._menu_tex is not None:
                self._menu_tex.release()
            h, w = menu.pixels.shape[:2]
            self._menu_tex = self.ctx.texture((w, h), 4, menu.pixels[::-1].tobytes())
            self._menu_tex.filter = (self._mgl.LINEAR, self._mgl.LINEAR)
            self._menu_key = menu.key
        return self._menu_tex

    # -- read-back and shutdown ----------------------------------------------------------------
    def read_pixels(self, fbo: Any) -> NDArray[np.uint8]:
        """The framebuffer's RGBA pixels, top row first (as an image file stores them)."""
        w, h = fbo.size
        data = np.frombuffer(fbo.read(components=4, alignment=1), dtype=np.uint8)
        return data.reshape(h, w, 4)[::-1].copy()

    def release(self) -> None:
        """Free every GL object (before the GL context goes)."""
        for m in self.meshes.values():
            m.release()
        self.meshes.clear()
        for tex, _ in self._text.values():
            tex.release()
        self._text.clear()
        for o in self._own:
            if isinstance(o, tuple):
                from OpenGL import GL

                if o[0] == "fbo":
                    GL.glDeleteFramebuffers(1, [o[1]])
                else:
                    GL.glDeleteRenderbuffers(1, [o[1]])
            else:
                o.release()
        self._own.clear()
        self._fbos.clear()
        self._msaa_fbos.clear()
        for o in (self._menu_tex, self._volume):
            if o is not None:
                o.release()
        self._menu_tex = self._volume = None
