"""OpenGL contexts for OpenXR graphics bindings: EGL (headless, Monado), GLX (Xlib) and WGL.

Each context makes itself current, reports its GL version and builds the ``XrGraphicsBinding*``
structure that goes into ``XrSessionCreateInfo.next``:

- ``egl``: a surfaceless/pbuffer EGL context on Mesa or a GPU driver, bound through
  ``XR_MNDX_egl_enable`` (``XrGraphicsBindingEGLMNDX``).  Works without a display.
- ``glx``: a hidden GLFW window on X11, bound through ``XrGraphicsBindingOpenGLXlibKHR``
  (SteamVR, Monado and WiVRn on a desktop).
- ``wgl``: a hidden GLFW window on Windows, bound through ``XrGraphicsBindingOpenGLWin32KHR``
  (SteamVR, Meta Link, WMR).  Designed like the GLX path; not testable on Linux CI.

``PYOPENGL_PLATFORM`` must be ``egl`` before PyOpenGL is first imported for the EGL path;
:func:`prepare_platform` sets it (and ``EGL_PLATFORM=surfaceless`` when there is no display).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from typing import Any

from cardioplan.errors import RuntimeMissingError

__all__ = ["GRAPHICS", "default_graphics", "prepare_platform", "GLContext", "EglContext",
           "GlfwContext", "create_context"]

log = logging.getLogger(__name__)

GRAPHICS = ("egl", "glx", "wgl")


def default_graphics() -> str:
    """``wgl`` on Windows, ``glx`` with an X display (unless EGL is forced), else ``egl``."""
    if sys.platform == "win32":
        return "wgl"
    if os.environ.get("DISPLAY") and os.environ.get("PYOPENGL_PLATFORM") != "egl":
        return "glx"
    return "egl"


def prepare_platform(graphics: str) -> None:
    """Set the environment PyOpenGL and Mesa read, before ``OpenGL`` is imported."""
    if graphics == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    if "OpenGL" in sys.modules and graphics == "egl" and \
            os.environ.get("PYOPENGL_PLATFORM") != "egl":
        raise RuntimeMissingError("PyOpenGL was already loaded for another platform; run the "
                                  "headset session in a fresh process or set "
                                  "PYOPENGL_PLATFORM=egl")


class GLContext:
    """Base class: a current OpenGL context plus its OpenXR graphics binding."""

    name = "none"
    extension = ""
    """The OpenXR extension the binding needs besides ``XR_KHR_opengl_enable``."""

    def make_current(self) -> None:
        """Make this context current on the calling thread."""
        raise NotImplementedError

    def binding(self) -> Any:
        """The ``XrGraphicsBinding*`` structure (kept alive by this object)."""
        raise NotImplementedError

    def destroy(self) -> None:
        """Release the context (after every GL object made with it)."""
        raise NotImplementedError

    def gl_version(self) -> tuple[int, int]:
        """(major, minor) OpenGL version of the context."""
        from OpenGL import GL

        self.make_current()
        major = int(GL.glGetIntegerv(GL.GL_MAJOR_VERSION))
        return major, int(GL.glGetIntegerv(GL.GL_MINOR_VERSION))

    def gl_info(self) -> dict[str, str]:
        """GL renderer and version strings (reported in the session summary)."""
        from OpenGL import GL

        self.make_current()
        return {"renderer": GL.glGetString(GL.GL_RENDERER).decode(),
                "version": GL.glGetString(GL.GL_VERSION).decode()}


class EglContext(GLContext):
    """An EGL OpenGL context on a 1x1 pbuffer (rendering goes to swapchain framebuffers)."""

    name = "egl"
    extension = "XR_MNDX_egl_enable"

    def __init__(self) -> None:
        from OpenGL import EGL

        self._egl = EGL
        self.display = EGL.eglGetDisplay(EGL.EGL_DEFAULT_DISPLAY)
        if self.display == EGL.EGL_NO_DISPLAY or not EGL.eglInitialize(self.display, None, None):
            raise RuntimeMissingError("no EGL display: install Mesa's EGL (Debian: libegl1 "
                                      "libegl-mesa0 libgl1-mesa-dri) or a GPU driver")
        attrs = [EGL.EGL_RED_SIZE, 8, EGL.EGL_GREEN_SIZE, 8, EGL.EGL_BLUE_SIZE, 8,
                 EGL.EGL_ALPHA_SIZE, 8, EGL.EGL_DEPTH_SIZE, 24,
                 EGL.EGL_RENDERABLE_TYPE, EGL.EGL_OPENGL_BIT,
                 EGL.EGL_SURFACE_TYPE, EGL.EGL_PBUFFER_BIT, EGL.EGL_NONE]
        configs = (EGL.EGLConfig * 1)()
        n = EGL.EGLint()
        if not EGL.eglChooseConfig(self.display, attrs, configs, 1, n) or n.value < 1:
            raise RuntimeMissingError("EGL offers no OpenGL pbuffer configuration")
        self.config = configs[0]
        self.surface = EGL.eglCreatePbufferSurface(
            self.display, self.config, [EGL.EGL_WIDTH, 1, EGL.EGL_HEIGHT, 1, EGL.EGL_NONE])
        EGL.eglBindAPI(EGL.EGL_OPENGL_API)
        self.context = EGL.eglCreateContext(self.display, self.config, EGL.EGL_NO_CONTEXT, None)
        if self.context == EGL.EGL_NO_CONTEXT:
            raise RuntimeMissingError("EGL could not create an OpenGL context")
        self.make_current()
        self._binding: Any = None

    def make_current(self) -> None:
        if not self._egl.eglMakeCurrent(self.display, self.surface, self.surface, self.context):
            raise RuntimeMissingError("eglMakeCurrent failed")

    def binding(self) -> Any:
        import xr

        if self._binding is None:
            b = xr.GraphicsBindingEGLMNDX()
            b.display = self.display
            b.config = self.config
            b.context = self.context
            b.get_proc_address = ctypes.cast(self._egl.eglGetProcAddress.load(),
                                             xr.PFN_xrEglGetProcAddressMNDX)
            self._binding = b
        return self._binding

    def destroy(self) -> None:
        egl = self._egl
        if self.display is None:
            return
        egl.eglMakeCurrent(self.display, egl.EGL_NO_SURFACE, egl.EGL_NO_SURFACE,
                           egl.EGL_NO_CONTEXT)
        egl.eglDestroySurface(self.display, self.surface)
        egl.eglDestroyContext(self.display, self.context)
        egl.eglTerminate(self.display)
        self.display = None


class GlfwContext(GLContext):
    """A GLFW window's context (hidden unless used as the spectator mirror), bound via GLX or WGL.

    Parameters
    ----------
    kind : {"glx", "wgl"}
    visible : bool
        Show the window (the spectator mirror draws into it).
    size : (int, int)
        Window size in pixels.
    """

    def __init__(self, kind: str, *, visible: bool = False,
                 size: tuple[int, int] = (640, 480)) -> None:
        import glfw

        self._glfw = glfw
        self.name = kind
        self.extension = ""
        if not glfw.init():
            raise RuntimeMissingError("GLFW could not start: no display? Use --graphics egl "
                                      "for a headless session")
        glfw.window_hint(glfw.VISIBLE, glfw.TRUE if visible else glfw.FALSE)
        glfw.window_hint(glfw.DOUBLEBUFFER, glfw.TRUE)
        glfw.window_hint(glfw.SRGB_CAPABLE, glfw.TRUE)
        self.window = glfw.create_window(size[0], size[1], "CardioPlan VR - spectator", None,
                                         None)
        if not self.window:
            glfw.terminate()
            raise RuntimeMissingError("could not open an OpenGL window (GLFW); use --graphics "
                                      "egl for a headless session")
        glfw.make_context_current(self.window)
        glfw.swap_interval(0)
        self._binding: Any = None

    def make_current(self) -> None:
        self._glfw.make_context_current(self.window)

    def binding(self) -> Any:
        import xr

        if self._binding is not None:
            return self._binding
        self.make_current()
        if self.name == "glx":
            from OpenGL import GLX

            self._binding = xr.GraphicsBindingOpenGLXlibKHR(
                x_display=GLX.glXGetCurrentDisplay(), glx_drawable=GLX.glXGetCurrentDrawable(),
                glx_context=GLX.glXGetCurrentContext())
        else:  # pragma: no cover - Windows only
            from OpenGL import WGL

            b = xr.GraphicsBindingOpenGLWin32KHR()
            b.h_dc = WGL.wglGetCurrentDC()
            b.h_glrc = WGL.wglGetCurrentContext()
            self._binding = b
        return self._binding

    def destroy(self) -> None:
        if self.window is not None:
            self._glfw.destroy_window(self.window)
            self.window = None
            self._glfw.terminate()


def create_context(graphics: str, *, mirror: bool = False) -> GLContext:
    """The GL context for ``graphics`` (``egl``, ``glx`` or ``wgl``).

    Raises
    ------
    RuntimeMissingError
        The platform has no such context (no display for GLX, no EGL, not Windows for WGL).
    """
    if graphics not in GRAPHICS:
        raise RuntimeMissingError(f"unsupported graphics binding {graphics!r}; choose one of "
                                  f"{', '.join(GRAPHICS)}")
    if graphics == "wgl" and sys.platform != "win32":
        raise RuntimeMissingError("the WGL binding needs Windows; use --graphics glx or egl")
    if graphics == "glx" and not os.environ.get("DISPLAY"):
        raise RuntimeMissingError("the GLX binding needs an X display (DISPLAY is unset); use "
                                  "--graphics egl for a headless session")
    prepare_platform(graphics)
    if graphics == "egl":
        return EglContext()
    return GlfwContext(graphics, visible=mirror)
