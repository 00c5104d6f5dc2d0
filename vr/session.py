"""The OpenXR instance, system and session: lifecycle, swapchains, frames (pyopenxr).

:class:`XrSession` is a context manager.  Entering it creates the GL context and the graphics
binding (EGL through ``XR_MNDX_egl_enable``, GLX or WGL), the instance, the system (the headset),
the session, the reference space (STAGE, else LOCAL), sRGB colour swapchains and, where the
runtime has ``XR_KHR_composition_layer_depth``, depth swapchains.  Leaving it tears everything
down in reverse order, whatever happened — runtime errors included.

The session state machine is :class:`Lifecycle` (pure, unit-tested): the runtime's
``XrSessionState`` events drive it; ``READY`` begins the session, ``STOPPING`` ends it,
``EXITING`` and ``LOSS_PENDING`` (or ``XrEventDataInstanceLossPending``) end the frame loop so
the app can save the plan and shut down cleanly.

Examples
--------
>>> with XrSession(graphics="egl") as xs:                        # doctest: +SKIP
...     while not xs.lifecycle.should_exit:
...         xs.poll_events()
...         if xs.lifecycle.running:
...             fs = xs.wait_frame(); xs.begin_frame(); xs.end_frame(fs, None)
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardioplan.errors import RuntimeMissingError

__all__ = [
    "EXT_OPENGL", "EXT_EGL", "EXT_DEPTH", "EXT_HEADLESS", "EXT_TIMESPEC",
    "Lifecycle", "EyeSwapchain", "XrSession", "runtime_diagnosis", "instance_extensions",
    "COLOR_FORMATS", "DEPTH_FORMATS", "choose_format", "check_runtime", "explain_missing_runtime",
]

log = logging.getLogger(__name__)

EXT_OPENGL = "XR_KHR_opengl_enable"
EXT_EGL = "XR_MNDX_egl_enable"
EXT_DEPTH = "XR_KHR_composition_layer_depth"
EXT_HEADLESS = "XR_MND_headless"
EXT_TIMESPEC = "XR_KHR_convert_timespec_time"

GL_SRGB8_ALPHA8, GL_SRGB8, GL_RGBA8, GL_RGB10_A2, GL_RGBA16F = \
    0x8C43, 0x8C41, 0x8058, 0x8059, 0x881A
GL_DEPTH_COMPONENT32F, GL_DEPTH_COMPONENT24, GL_DEPTH24_STENCIL8, GL_DEPTH_COMPONENT16 = \
    0x8CAC, 0x81A6, 0x88F0, 0x81A5
COLOR_FORMATS = (GL_SRGB8_ALPHA8, GL_SRGB8, GL_RGBA8, GL_RGB10_A2, GL_RGBA16F)
"""Colour swapchain formats in order of preference: sRGB first, chosen explicitly (a generic
helper may take RGBA16F, which the compositor then treats as linear)."""
DEPTH_FORMATS = (GL_DEPTH_COMPONENT32F, GL_DEPTH_COMPONENT24, GL_DEPTH24_STENCIL8,
                 GL_DEPTH_COMPONENT16)
SRGB_FORMATS = (GL_SRGB8_ALPHA8, GL_SRGB8)


def choose_format(offered: list[int], preferred: tuple[int, ...]) -> int | None:
    """The first of ``preferred`` that the runtime offers, or None.

    Examples
    --------
    >>> hex(choose_format([0x881A, 0x8C43, 0x8058], COLOR_FORMATS))
    '0x8c43'
    """
    offered_set = set(int(f) for f in offered)
    return next((f for f in preferred if f in offered_set), None)


# -- diagnosis ----------------------------------------------------------------------------------
def _active_runtime_candidates() -> list[Path]:
    """Where the Linux OpenXR loader looks for ``active_runtime.json`` (in order)."""
    dirs = [os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")]
    dirs += (os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")
    dirs += ["/etc"]
    return [Path(d) / "openxr" / "1" / "active_runtime.json" for d in dirs if d]


def runtime_diagnosis() -> dict[str, Any]:
    """How the OpenXR loader will find a runtime here (environment and files), as plain data."""
    env = os.environ.get("XR_RUNTIME_JSON")
    found = [str(p) for p in _active_runtime_candidates() if p.is_file()]
    return {
        "XR_RUNTIME_JSON": env,
        "XR_RUNTIME_JSON_exists": bool(env) and Path(env).is_file(),
        "active_runtime_json": found,
        "searched": [str(p) for p in _active_runtime_candidates()],
    }


def explain_missing_runtime(detail: str) -> str:
    """A message that says what is missing for the loader to find a runtime, and the fix."""
    d = runtime_diagnosis()
    if d["XR_RUNTIME_JSON"] and not d["XR_RUNTIME_JSON_exists"]:
        what = (f"XR_RUNTIME_JSON points to {d['XR_RUNTIME_JSON']}, which does not exist; fix "
                "the path or unset it")
    elif d["XR_RUNTIME_JSON"]:
        what = (f"the runtime named by XR_RUNTIME_JSON={d['XR_RUNTIME_JSON']} failed to load "
                "(for Monado: is monado-service running?)")
    elif not d["active_runtime_json"]:
        what = ("XR_RUNTIME_JSON is unset and there is no active_runtime.json (looked in "
                f"{', '.join(d['searched'])})")
    else:
        what = f"the active runtime {d['active_runtime_json'][0]} failed to load"
    return (f"no OpenXR runtime: {what}. The loader said: {detail.rstrip('.')}. Start your runtime "
            "(SteamVR, Monado, WiVRn, Meta Link) or, for a headless test runtime, run "
            "scripts/install_monado.sh and `source /opt/monado/monado-env.sh`")


def _headset_system(instance: Any, runtime_name: str) -> Any:
    """The runtime's head-mounted system; a clear error when there is no headset."""
    import xr

    try:
        return xr.get_system(instance, xr.SystemGetInfo(
            form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY))
    except xr.XrException as exc:
        raise RuntimeMissingError(f"the OpenXR runtime ({runtime_name}) has no headset "
                                  f"({_xr_error_text(exc)}): connect and switch on the "
                                  "headset, or start the runtime's simulated device") from None


def _xr_error_text(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def instance_extensions() -> list[str]:
    """The runtime's instance extensions.

    Raises
    ------
    RuntimeMissingError
        No runtime could be loaded; the message says why (see :func:`explain_missing_runtime`).
    """
    import xr

    try:
        props = xr.enumerate_instance_extension_properties()
    except xr.XrException as exc:
        raise RuntimeMissingError(explain_missing_runtime(_xr_error_text(exc))) from None
    names = []
    for p in props:
        n = p.extension_name
        names.append(n.decode() if isinstance(n, bytes) else str(n))
    return names


# -- lifecycle -----------------------------------------------------------------------------------
@dataclass
class Lifecycle:
    """The session state machine (pure: feed it state names, it says what to do).

    States follow ``XrSessionState``: IDLE -> READY -> SYNCHRONIZED -> VISIBLE -> FOCUSED and
    back through STOPPING -> IDLE; EXITING and LOSS_PENDING end the loop.

    Examples
    --------
    >>> lc = Lifecycle()
    >>> lc.on_state("READY"), lc.running
    (['begin'], True)
    >>> lc.on_state("STOPPING"), lc.running
    (['end'], False)
    >>> lc.on_state("EXITING"), lc.should_exit, lc.exit_reason
    (['exit'], True, 'the runtime ended the session')
    """

    state: str = "UNKNOWN"
    running: bool = False
    should_exit: bool = False
    exit_reason: str = ""
    exit_requested: bool = False
    history: list[str] = field(default_factory=list)

    def on_state(self, state: str) -> list[str]:
        """Record a new session state; return the calls to make: ``begin``, ``end``, ``exit``."""
        self.state = state
        self.history.append(state)
        if state == "READY" and not self.running:
            self.running = True
            return ["begin"]
        if state == "STOPPING":
            was = self.running
            self.running = False
            return ["end"] if was else []
        if state == "EXITING":
            self._exit("the user or the app asked to exit" if self.exit_requested
                       else "the runtime ended the session")
            return ["exit"]
        if state == "LOSS_PENDING":
            self._exit("the runtime is going away (headset disconnected or runtime stopped)")
            return ["exit"]
        if state == "IDLE" and self.exit_requested and not self.running:
            self._exit("the user or the app asked to exit")
            return ["exit"]
        return []

    def on_exit_request(self) -> list[str]:
        """The app wants to quit: ``request`` (ask the runtime to stop the running session),
        or ``exit`` at once when the session is not running."""
        self.exit_requested = True
        if self.running:
            return ["request"]
        self._exit("the user or the app asked to exit")
        return ["exit"]

    def on_instance_loss(self) -> list[str]:
        """``XrEventDataInstanceLossPending``: the runtime is about to go away."""
        self._exit("the OpenXR runtime is shutting down")
        return ["exit"]

    def on_error(self, message: str) -> list[str]:
        """A runtime call failed: stop the loop (the app saves and shuts down)."""
        self._exit(f"runtime error: {message}")
        return ["exit"]

    @property
    def focused(self) -> bool:
        """The session has input focus (controllers are read only then)."""
        return self.state == "FOCUSED"

    def _exit(self, reason: str) -> None:
        if not self.should_exit:
            self.should_exit = True
            self.exit_reason = reason


# -- the session --------------------------------------------------------------------------------
@dataclass
class EyeSwapchain:
    """One eye's colour (and optional depth) swapchain and its GL texture names."""

    color: Any
    width: int
    height: int
    color_textures: list[int]
    depth: Any = None
    depth_textures: list[int] = field(default_factory=list)
    acquired: tuple[int, int | None] | None = None


class XrSession:
    """A running OpenXR session with GL swapchains (or headless).  Use as a context manager.

    Parameters
    ----------
    graphics : {"egl", "glx", "wgl", "headless"}
        The graphics binding (``headless`` uses ``XR_MND_headless``: no frames, input only).
    app_name : str
        Shown by the runtime.
    reference : {"stage", "local"}
        Preferred reference space; STAGE falls back to LOCAL when the runtime has none.
    depth : bool
        Submit depth swapchains (``XR_KHR_composition_layer_depth``) when supported.
    mirror : bool
        Keep a visible window for the spectator mirror (GLX/WGL only).
    near, far : float
        Clip distances in metres (also sent with the depth layers).
    input_setup : callable, optional
        ``input_setup(instance, session)`` creates and attaches action sets (see
        :mod:`vr.actions`); called before the session begins.

    Raises
    ------
    RuntimeMissingError
        No runtime, no headset (system), missing extensions or an unsupported binding.
    """

    def __init__(self, *, graphics: str = "egl", app_name: str = "CardioPlan",
                 reference: str = "stage", depth: bool = True, mirror: bool = False,
                 near: float = 0.05, far: float = 20.0, input_setup: Any = None) -> None:
        self.graphics_name = graphics
        self.app_name = app_name
        self.reference_preference = reference
        self.want_depth = depth
        self.mirror = mirror
        self.near, self.far = near, far
        self._input_setup = input_setup
        self.lifecycle = Lifecycle()
        self.gl: Any = None
        self.instance: Any = None
        self.system: Any = None
        self.session: Any = None
        self.space: Any = None
        self.reference_space = ""
        self.swapchains: list[EyeSwapchain] = []
        self.extensions: list[str] = []
        self.enabled_extensions: list[str] = []
        self.runtime_name = ""
        self.system_name = ""
        self.color_format = 0
        self.depth_format: int | None = None
        self.input: Any = None
        self._keep: list[Any] = []

    # -- properties ----------------------------------------------------------------------------
    @property
    def headless(self) -> bool:
        """A session without graphics (``XR_MND_headless``)."""
        return self.graphics_name == "headless"

    @property
    def srgb(self) -> bool:
        """Whether the colour swapchains are sRGB (enable GL_FRAMEBUFFER_SRGB when drawing)."""
        return self.color_format in SRGB_FORMATS


    # -- start-up -------------------------------------------------------------------------------
    def __enter__(self) -> XrSession:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        import xr

        self.extensions = instance_extensions()
        wanted = []
        if self.headless:
            wanted = [EXT_HEADLESS]
        else:
            from vr import graphics as gfx

            if self.graphics_name not in gfx.GRAPHICS:
                raise RuntimeMissingError(f"unsupported graphics binding {self.graphics_name!r}")
            wanted = [EXT_OPENGL] + ([EXT_EGL] if self.graphics_name == "egl" else [])
        missing = [e for e in wanted if e not in self.extensions]
        if missing:
            hint = (" (the EGL binding needs Monado; use --graphics glx on a desktop)"
                    if EXT_EGL in missing else "")
            raise RuntimeMissingError(f"the OpenXR runtime does not support {', '.join(missing)}"
                                      f", needed for the {self.graphics_name} graphics binding"
                                      f"{hint}")
        optional = [EXT_TIMESPEC] + ([EXT_DEPTH] if self.want_depth and not self.headless
                                     else [])
        self.enabled_extensions = wanted + [e for e in optional if e in self.extensions]
        if not self.headless:
            from vr.graphics import create_context

            self.gl = create_context(self.graphics_name, mirror=self.mirror)
        try:
            self.instance = xr.create_instance(xr.InstanceCreateInfo(
                application_info=xr.ApplicationInfo(
                    application_name=self.app_name, application_version=1,
                    engine_name="CardioPlan", engine_version=1,
                    api_version=xr.Version(1, 0, 0)),
                enabled_extension_names=self.enabled_extensions))
        except xr.XrException as exc:
            raise RuntimeMissingError(explain_missing_runtime(_xr_error_text(exc))) from None
        props = xr.get_instance_properties(self.instance)
        self.runtime_name = f"{_s(props.runtime_name)} {xr.Version(props.runtime_version)}"
        self.system = _headset_system(self.instance, self.runtime_name)
        self.system_name = _s(xr.get_system_properties(self.instance, self.system).system_name)
        next_ptr = None
        if not self.headless:
            self._check_gl_requirements()
            binding = self.gl.binding()
            self._keep.append(binding)
            next_ptr = ctypes.cast(ctypes.pointer(binding), ctypes.c_void_p)
        try:
            self.session = xr.create_session(self.instance, xr.SessionCreateInfo(
                system_id=self.system, next=next_ptr))
        except xr.XrException as exc:
            raise RuntimeMissingError(f"the runtime refused a session with the "
                                      f"{self.graphics_name} graphics binding "
                                      f"({_xr_error_text(exc)})") from None
        self._create_space()
        if not self.headless:
            self._create_swapchains()
        if self._input_setup is not None:
            self.input = self._input_setup(self.instance, self.session)
        log.info("OpenXR session: runtime %s, system %s, %s space, graphics %s, colour 0x%x%s",
                 self.runtime_name, self.system_name, self.reference_space, self.graphics_name,
                 self.color_format, f", depth 0x{self.depth_format:x}" if self.depth_format
                 else "")

    def _check_gl_requirements(self) -> None:
        import xr

        req = xr.get_opengl_graphics_requirements_khr(self.instance, self.system)
        have = self.gl.gl_version()
        lo = xr.Version(req.min_api_version_supported)
        if have < (lo.major, lo.minor):
            raise RuntimeMissingError(f"the runtime needs OpenGL {lo.major}.{lo.minor} or newer; "
                                      f"this context is {have[0]}.{have[1]}")

    def _create_space(self) -> None:
        import xr

        offered = list(xr.enumerate_reference_spaces(self.session))
        want = xr.ReferenceSpaceType.STAGE if self.reference_preference == "stage" else \
            xr.ReferenceSpaceType.LOCAL
        kind = want if want in offered else xr.ReferenceSpaceType.LOCAL
        if kind != want:
            log.info("the runtime has no STAGE space; using LOCAL")
        self.space = xr.create_reference_space(self.session, xr.ReferenceSpaceCreateInfo(
            reference_space_type=kind, pose_in_reference_space=xr.Posef()))
        self.reference_space = xr.ReferenceSpaceType(kind).name

    def _create_swapchains(self) -> None:
        import xr

        formats = [int(f) for f in xr.enumerate_swapchain_formats(self.session)]
        color = choose_format(formats, COLOR_FORMATS)
        if color is None:
            raise RuntimeMissingError("the runtime offers no usable colour swapchain format "
                                      f"({[hex(f) for f in formats]})")
        self.color_format = color
        if EXT_DEPTH in self.enabled_extensions:
            self.depth_format = choose_format(formats, DEPTH_FORMATS)
        views = xr.enumerate_view_configuration_views(
            self.instance, self.system, xr.ViewConfigurationType.PRIMARY_STEREO)
        for v in views:
            w, h = v.recommended_image_rect_width, v.recommended_image_rect_height
            sc = xr.create_swapchain(self.session, xr.SwapchainCreateInfo(
                usage_flags=xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT
                | xr.SwapchainUsageFlags.SAMPLED_BIT,
                format=color, sample_count=1, width=w, height=h, face_count=1, array_size=1,
                mip_count=1))
            imgs = xr.enumerate_swapchain_images(sc, xr.SwapchainImageOpenGLKHR)
            self._keep.append(imgs)
            eye = EyeSwapchain(sc, w, h, [int(i.image) for i in imgs])
            if self.depth_format is not None:
                try:
                    dsc = xr.create_swapchain(self.session, xr.SwapchainCreateInfo(
                        usage_flags=xr.SwapchainUsageFlags.DEPTH_STENCIL_ATTACHMENT_BIT,
                        format=self.depth_format, sample_count=1, width=w, height=h,
                        face_count=1, array_size=1, mip_count=1))
                except xr.XrException as exc:
                    log.info("no depth swapchain (%s); depth is not submitted", exc)
                    self.depth_format = None
                else:
                    dimgs = xr.enumerate_swapchain_images(dsc, xr.SwapchainImageOpenGLKHR)
                    self._keep.append(dimgs)
                    eye.depth = dsc
                    eye.depth_textures = [int(i.image) for i in dimgs]
            self.swapchains.append(eye)

    # -- events and frames ----------------------------------------------------------------------
    def poll_events(self) -> list[str]:
        """Handle all pending runtime events; returns the session states seen (names)."""
        import xr

        seen = []
        while True:
            try:
                ev = xr.poll_event(self.instance)
            except xr.EventUnavailable:
                break
            kind = xr.StructureType(ev.type)
            if kind == xr.StructureType.EVENT_DATA_INSTANCE_LOSS_PENDING:
                self.lifecycle.on_instance_loss()
            elif kind == xr.StructureType.EVENT_DATA_SESSION_STATE_CHANGED:
                sc = ctypes.cast(ctypes.byref(ev),
                                 ctypes.POINTER(xr.EventDataSessionStateChanged)).contents
                name = xr.SessionState(sc.state).name
                seen.append(name)
                log.debug("session state %s", name)
                for action in self.lifecycle.on_state(name):
                    if action == "begin":
                        xr.begin_session(self.session, xr.SessionBeginInfo(
                            primary_view_configuration_type=xr.ViewConfigurationType
                            .PRIMARY_STEREO))
                    elif action == "end":
                        xr.end_session(self.session)
            elif kind == xr.StructureType.EVENT_DATA_INTERACTION_PROFILE_CHANGED and \
                    self.input is not None:
                self.input.profile_changed()
        return seen

    def request_exit(self) -> None:
        """Ask the runtime to end the session (it goes STOPPING -> IDLE -> EXITING)."""
        import xr

        if self.lifecycle.on_exit_request() == ["request"]:
            xr.request_exit_session(self.session)

    def now(self) -> int:
        """The runtime's current time (``XrTime``), for headless sessions without frames."""
        import xr

        t = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        r = xr.convert_timespec_time_to_time_khr(
            self.instance, xr.timespec(tv_sec=t // 1_000_000_000, tv_nsec=t % 1_000_000_000))
        return int(getattr(r, "value", r))

    def wait_frame(self) -> Any:
        """``xrWaitFrame``: blocks until the runtime wants the next frame; its ``XrFrameState``."""
        import xr

        return xr.wait_frame(self.session)

    def begin_frame(self) -> None:
        """``xrBeginFrame``."""
        import xr

        xr.begin_frame(self.session)

    def locate_views(self, display_time: int) -> tuple[bool, list[Any]]:
        """(poses valid, the two ``XrView``) at ``display_time`` in the reference space."""
        import xr

        state, views = xr.locate_views(self.session, xr.ViewLocateInfo(
            view_configuration_type=xr.ViewConfigurationType.PRIMARY_STEREO,
            display_time=display_time, space=self.space))
        flags = int(state.view_state_flags)
        valid = bool(flags & xr.VIEW_STATE_POSITION_VALID_BIT) and \
            bool(flags & xr.VIEW_STATE_ORIENTATION_VALID_BIT)
        return valid, list(views)

    def acquire(self, eye: int) -> tuple[int, int | None]:
        """Acquire and wait for eye ``eye``'s next images; returns (colour, depth) GL textures."""
        import xr

        sc = self.swapchains[eye]
        ci = xr.acquire_swapchain_image(sc.color, xr.SwapchainImageAcquireInfo())
        xr.wait_swapchain_image(sc.color, xr.SwapchainImageWaitInfo(timeout=xr.INFINITE_DURATION))
        di = None
        if sc.depth is not None:
            di = xr.acquire_swapchain_image(sc.depth, xr.SwapchainImageAcquireInfo())
            xr.wait_swapchain_image(sc.depth,
                                    xr.SwapchainImageWaitInfo(timeout=xr.INFINITE_DURATION))
        sc.acquired = (ci, di)
        return sc.color_textures[ci], (sc.depth_textures[di] if di is not None else None)

    def release(self, eye: int) -> None:
        """Release eye ``eye``'s images (always before :meth:`end_frame`)."""
        import xr

        sc = self.swapchains[eye]
        if sc.acquired is None:
            return
        xr.release_swapchain_image(sc.color, xr.SwapchainImageReleaseInfo())
        if sc.depth is not None and sc.acquired[1] is not None:
            xr.release_swapchain_image(sc.depth, xr.SwapchainImageReleaseInfo())
        sc.acquired = None

    def end_frame(self, frame_state: Any, views: list[Any] | None) -> None:
        """Submit the frame: a projection layer of ``views`` (with depth when available), or no
        layer when ``views`` is None (nothing rendered this frame)."""
        import xr

        layers = []
        keep = []  # depth infos referenced by pointer: alive until xrEndFrame returns
        if views is not None:
            proj_views = []
            for i, v in enumerate(views):
                sc = self.swapchains[i]
                rect = xr.Rect2Di(offset=xr.Offset2Di(0, 0), extent=xr.Extent2Di(sc.width,
                                                                                 sc.height))
                pv = xr.CompositionLayerProjectionView(
                    pose=v.pose, fov=v.fov,
                    sub_image=xr.SwapchainSubImage(swapchain=sc.color, image_rect=rect))
                if sc.depth is not None:
                    info = xr.CompositionLayerDepthInfoKHR(
                        sub_image=xr.SwapchainSubImage(swapchain=sc.depth, image_rect=rect),
                        min_depth=0.0, max_depth=1.0, near_z=self.near, far_z=self.far)
                    keep.append(info)
                    pv.next = ctypes.cast(ctypes.pointer(info), ctypes.c_void_p)
                proj_views.append(pv)
            layer = xr.CompositionLayerProjection(space=self.space, views=proj_views)
            layers.append(ctypes.byref(layer))
        xr.end_frame(self.session, xr.FrameEndInfo(
            display_time=frame_state.predicted_display_time,
            environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE, layers=layers))
        del keep

    # -- shutdown --------------------------------------------------------------------------------
    def close(self) -> None:
        """Destroy everything that was created, newest first; never raises."""
        import xr

        def quietly(fn: Any, *args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - tear-down must go on
                log.debug("during shutdown: %s(%s) failed: %s", getattr(fn, "__name__", fn),
                          args, exc)

        for i in range(len(self.swapchains)):
            quietly(self.release, i)
        if self.session is not None and self.lifecycle.running:
            quietly(xr.end_session, self.session)
            self.lifecycle.running = False
        if self.input is not None:
            quietly(self.input.destroy)
            self.input = None
        for sc in self.swapchains:
            quietly(xr.destroy_swapchain, sc.color)
            if sc.depth is not None:
                quietly(xr.destroy_swapchain, sc.depth)
        self.swapchains = []
        if self.space is not None:
            quietly(xr.destroy_space, self.space)
            self.space = None
        if self.session is not None:
            quietly(xr.destroy_session, self.session)
            self.session = None
        if self.instance is not None:
            quietly(xr.destroy_instance, self.instance)
            self.instance = None
        if self.gl is not None:
            quietly(self.gl.destroy)
            self.gl = None
        self._keep = []


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check_runtime() -> dict[str, Any]:
    """What the OpenXR runtime offers: name, headset, view sizes, extensions, graphics bindings.

    Raises
    ------
    RuntimeMissingError
        No runtime could be loaded (the message says what is missing), or it has no headset.

    Examples
    --------
    >>> check_runtime()["graphics"]["egl"]          # doctest: +SKIP
    True
    """
    import sys

    import xr

    exts = instance_extensions()
    info: dict[str, Any] = {
        "runtime": None, "system": None, "views": [], "reference_spaces": [],
        "extensions": sorted(exts),
        "graphics": {
            "egl": EXT_OPENGL in exts and EXT_EGL in exts,
            "glx": EXT_OPENGL in exts and sys.platform.startswith("linux"),
            "wgl": EXT_OPENGL in exts and sys.platform == "win32",
        },
        "depth_layers": EXT_DEPTH in exts,
        "headless": EXT_HEADLESS in exts,
        "diagnosis": runtime_diagnosis(),
    }
    enable = [e for e in (EXT_HEADLESS, EXT_OPENGL) if e in exts]
    try:
        instance = xr.create_instance(xr.InstanceCreateInfo(
            application_info=xr.ApplicationInfo(application_name="CardioPlan check",
                                                engine_name="CardioPlan",
                                                api_version=xr.Version(1, 0, 0)),
            enabled_extension_names=enable))
    except xr.XrException as exc:
        raise RuntimeMissingError(explain_missing_runtime(_xr_error_text(exc))) from None
    try:
        props = xr.get_instance_properties(instance)
        info["runtime"] = f"{_s(props.runtime_name)} {xr.Version(props.runtime_version)}"
        system = _headset_system(instance, info["runtime"])
        sp = xr.get_system_properties(instance, system)
        info["system"] = _s(sp.system_name)
        info["tracking"] = {"orientation": bool(sp.tracking_properties.orientation_tracking),
                            "position": bool(sp.tracking_properties.position_tracking)}
        info["views"] = [
            {"width": v.recommended_image_rect_width, "height": v.recommended_image_rect_height}
            for v in xr.enumerate_view_configuration_views(
                instance, system, xr.ViewConfigurationType.PRIMARY_STEREO)]
        if EXT_OPENGL in exts:
            req = xr.get_opengl_graphics_requirements_khr(instance, system)
            lo = xr.Version(req.min_api_version_supported)
            info["opengl_min"] = f"{lo.major}.{lo.minor}"
        if EXT_HEADLESS in exts:  # a session without graphics lists the reference spaces
            session = xr.create_session(instance, xr.SessionCreateInfo(system_id=system))
            try:
                info["reference_spaces"] = [xr.ReferenceSpaceType(r).name
                                            for r in xr.enumerate_reference_spaces(session)]
            finally:
                xr.destroy_session(session)
    finally:
        xr.destroy_instance(instance)
    return info
