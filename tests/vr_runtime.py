"""Test support for the headset: the Monado runtime service, scripted controllers, small cases.

- :class:`MonadoService` starts ``monado-service`` (installed by ``scripts/install_monado.sh``)
  in a private ``XDG_RUNTIME_DIR`` with either the simulated devices or the *remote* driver
  (``P_OVERRIDE_ACTIVE_CONFIG=remote``), and stops it again.  The fixtures in
  ``tests/test_vr_runtime.py`` restart it only when the wanted driver changes.
- :class:`RemoteControllers` speaks the remote driver's TCP protocol (127.0.0.1:4242, one
  376-byte ``r_remote_data`` struct per update, layout of Monado 25.0.0's ``r_interface.h``):
  head and controller poses, trigger, squeeze, thumbstick and buttons.
- :func:`make_mesh_case` writes a case whose ``meshes/`` hold a few spheres, in the layout of
  ``cardioplan.mesh`` (``index.json`` + one ``.vtp`` per structure, label-table colours).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

MONADO_PREFIX = Path(os.environ.get("MONADO_PREFIX", "/opt/monado"))
PORT = 4242


def find_runtime() -> tuple[Path, Path] | None:
    """(runtime manifest, monado-service) installed by scripts/install_monado.sh, or None."""
    env = MONADO_PREFIX / "monado-env.sh"
    if not env.is_file():
        return None
    manifest = service = None
    for line in env.read_text().splitlines():
        if line.startswith("export XR_RUNTIME_JSON="):
            manifest = Path(line.split("=", 1)[1].split()[0])
        if line.startswith("export MONADO_SERVICE="):
            service = Path(line.split("=", 1)[1].split()[0])
    if manifest is None or service is None or not manifest.is_file() or not service.is_file():
        return None
    return manifest, service


class MonadoService:
    """A ``monado-service`` process for the tests (simulated or remote devices)."""

    def __init__(self, manifest: Path, service: Path) -> None:
        self.manifest, self.service = manifest, service
        self.mode: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.run_dir = Path(tempfile.mkdtemp(prefix="cpxr-"))
        self.log_path = self.run_dir / "monado-service.log"

    def env(self) -> dict[str, str]:
        """What a client process (this one) needs to reach the service."""
        return {"XR_RUNTIME_JSON": str(self.manifest), "XDG_RUNTIME_DIR": str(self.run_dir),
                "XRT_COMPOSITOR_NULL": "1", "PYOPENGL_PLATFORM": "egl",
                "EGL_PLATFORM": "surfaceless"}

    def ensure(self, mode: str) -> None:
        """Have a service running with ``mode`` = ``simulated`` or ``remote`` devices."""
        if self.mode == mode and self.proc is not None and self.proc.poll() is None:
            return
        self.stop()
        if mode == "remote" and _port_open(PORT):
            raise RuntimeError(f"TCP port {PORT} is already in use (a leftover monado-service "
                               "with the remote driver?); stop it and rerun the tests")
        env = dict(os.environ)
        env.update(self.env())
        env.update({"XRT_NO_STDIN": "1", "SIMULATED_ENABLE": "1", "SIMULATED_LEFT": "wmr",
                    "SIMULATED_RIGHT": "wmr", "XDG_CONFIG_HOME": str(self.run_dir / "config")})
        if mode == "remote":
            env["P_OVERRIDE_ACTIVE_CONFIG"] = "remote"
        cmd = [str(self.service)]
        if os.geteuid() == 0 and shutil.which("setpriv"):
            # as root Monado takes a real-time thread; not on a shared CI machine
            cmd = ["setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice"] + cmd
        sock = self.run_dir / "monado_comp_ipc"
        sock.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15
        while not sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"monado-service did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        self.mode = mode

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        self.mode = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


# -- remote driver protocol ----------------------------------------------------------------
class _Quat(ctypes.Structure):
    _fields_ = [("x", ctypes.c_float), ("y", ctypes.c_float), ("z", ctypes.c_float),
                ("w", ctypes.c_float)]


class _Vec3(ctypes.Structure):
    _fields_ = [("x", ctypes.c_float), ("y", ctypes.c_float), ("z", ctypes.c_float)]


class _Vec2(ctypes.Structure):
    _fields_ = [("x", ctypes.c_float), ("y", ctypes.c_float)]


class _Pose(ctypes.Structure):
    _fields_ = [("orientation", _Quat), ("position", _Vec3)]


class _Fov(ctypes.Structure):
    _fields_ = [("angle_left", ctypes.c_float), ("angle_right", ctypes.c_float),
                ("angle_up", ctypes.c_float), ("angle_down", ctypes.c_float)]


class _View(ctypes.Structure):
    _fields_ = [("fov", _Fov), ("pose", _Pose), ("_pad", ctypes.c_uint32)]


class _Head(ctypes.Structure):
    _fields_ = [("views", _View * 2), ("center", _Pose), ("per_view_data_valid", ctypes.c_bool),
                ("_pad", ctypes.c_bool * 3)]


class _Controller(ctypes.Structure):
    _fields_ = [("pose", _Pose), ("linear_velocity", _Vec3), ("angular_velocity", _Vec3),
                ("hand_curl", ctypes.c_float * 5), ("trigger_value", ctypes.c_float),
                ("squeeze_value", ctypes.c_float), ("squeeze_force", ctypes.c_float),
                ("thumbstick", _Vec2), ("trackpad_force", ctypes.c_float),
                ("trackpad", _Vec2), ("hand_tracking_active", ctypes.c_bool),
                ("active", ctypes.c_bool), ("system_click", ctypes.c_bool),
                ("system_touch", ctypes.c_bool), ("a_click", ctypes.c_bool),
                ("a_touch", ctypes.c_bool), ("b_click", ctypes.c_bool),
                ("b_touch", ctypes.c_bool), ("trigger_click", ctypes.c_bool),
                ("trigger_touch", ctypes.c_bool), ("thumbstick_click", ctypes.c_bool),
                ("thumbstick_touch", ctypes.c_bool), ("trackpad_touch", ctypes.c_bool),
                ("_pad", ctypes.c_bool * 3)]


class _RemoteData(ctypes.Structure):
    _fields_ = [("header", ctypes.c_uint64), ("head", _Head), ("left", _Controller),
                ("right", _Controller)]


assert ctypes.sizeof(_RemoteData) == 376 and _RemoteData.left.offset == 136


class RemoteControllers:
    """Scripted head and controllers through Monado's remote driver (TCP 127.0.0.1:4242)."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", PORT), timeout=2.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._recv(376)  # the hub sends 'reset' then 'latest'
        self.data = _RemoteData.from_buffer_copy(self._recv(376))
        self.data.header = int.from_bytes(b"mndrmt3\0", "little")
        for c in (self.data.left, self.data.right):
            c.active = True

    def _recv(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the remote hub closed the connection")
            buf += chunk
        return buf

    def set(self, *, head: Any = None, **hands: dict[str, Any]) -> None:
        """Update and send.  ``head=(position, quat)``; ``left=/right=`` dicts of
        ``position``, ``orientation`` (x, y, z, w), ``trigger``, ``squeeze``, ``thumbstick``,
        ``a``, ``b``."""
        if head is not None:
            pos, quat = head
            self.data.head.center = _Pose(_Quat(*quat), _Vec3(*pos))
        for side, values in hands.items():
            c = getattr(self.data, side)
            if "position" in values or "orientation" in values:
                pos = values.get("position", (c.pose.position.x, c.pose.position.y,
                                              c.pose.position.z))
                q = values.get("orientation", (0.0, 0.0, 0.0, 1.0))
                c.pose = _Pose(_Quat(*q), _Vec3(*pos))
            if "trigger" in values:
                c.trigger_value = float(values["trigger"])
                c.trigger_click = values["trigger"] > 0.9
                c.trigger_touch = values["trigger"] > 0.0
            if "squeeze" in values:
                c.squeeze_value = float(values["squeeze"])
                c.squeeze_force = float(values["squeeze"])
            if "thumbstick" in values:
                c.thumbstick = _Vec2(*values["thumbstick"])
            if "a" in values:
                c.a_click = bool(values["a"])
            if "b" in values:
                c.b_click = bool(values["b"])
        self.sock.sendall(bytes(self.data))

    def close(self) -> None:
        self.sock.close()


# -- small cases ---------------------------------------------------------------------------
def write_mesh(case_dir: Path, name: str, mesh: Any) -> None:
    """Write one structure's mesh atomically (as ``cardioplan mesh`` does) into ``meshes/``."""
    from cardioplan.fileio import atomic_path

    with atomic_path(case_dir / "meshes" / f"{name}.vtp") as tmp:
        mesh.save(tmp)


def make_mesh_case(path: Path, spheres: dict[str, tuple[tuple[float, float, float], float]],
                   *, resolution: int = 24) -> Path:
    """A case with one sphere mesh per structure: ``{name: (centre LPS mm, radius mm)}``."""
    import pyvista as pv

    from cardioplan.case import Case
    from cardioplan.mesh import write_meshes

    with Case.create(path):
        pass
    surfaces = {name: pv.Sphere(radius=radius, center=centre, theta_resolution=resolution,
                                phi_resolution=resolution).compute_normals(auto_orient_normals=True)
                for name, (centre, radius) in spheres.items()}
    write_meshes(Case.open(path), surfaces, target="test", budget=None, smoothing="none")
    return path
