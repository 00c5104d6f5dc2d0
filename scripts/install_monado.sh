#!/usr/bin/env bash
# Install a headless Monado OpenXR runtime for CardioPlan's VR tests and for
# running `cardioplan vr` without a headset.
#
#   Debian 13 "trixie" (or newer): apt-get install monado-service libopenxr1-monado
#       mesa-vulkan-drivers; the runtime manifest is the packaged one.
#   Debian 12 "bookworm": trixie's *binary* Monado needs glibc >= 2.38, so build
#       Monado 25.0.0 from trixie's *source* package with bookworm's toolchain
#       (null compositor, `simulated` + `remote` drivers, ~2-3 min on 2 cores)
#       and install it to $MONADO_PREFIX (default /opt/monado).
#
# Either way it writes $MONADO_PREFIX/monado-env.sh (environment for clients and the
# service), start-monado.sh (starts the service in the background, prints its PID,
# waits for the IPC socket) and stop-monado.sh PID.  The VR tests find the runtime
# through $MONADO_PREFIX/monado-env.sh (see tests/vr_runtime.py).
#
# Idempotent: when the runtime is already installed and its manifest and service
# binary are present, it only refreshes the helper scripts (no apt, no build).
# Force a rebuild with MONADO_FORCE=1.
#
# Usage (as root, or with sudo available):  bash scripts/install_monado.sh
# Env knobs: MONADO_PREFIX (/opt/monado), MONADO_WORK (/tmp/monado-work),
#            DEBIAN_MIRROR (the configured bookworm URI, else deb.debian.org), JOBS (nproc)
set -euo pipefail

PREFIX=${MONADO_PREFIX:-/opt/monado}
WORK=${MONADO_WORK:-/tmp/monado-work}
JOBS=${JOBS:-$(nproc)}
FORCE=${MONADO_FORCE:-0}
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        SUDO="__need_root__"
    fi
fi
export DEBIAN_FRONTEND=noninteractive

log() { echo "[install_monado] $*"; }

debian_major() {
    local v
    v=$(cut -d. -f1 /etc/debian_version 2>/dev/null || echo 0)
    case "$v" in
        ''|*[!0-9]*) # testing/sid report a codename ("trixie/sid"): treat as new
            echo 99 ;;
        *) echo "$v" ;;
    esac
}

# ---- helper scripts (written on every run so fixes reach existing installs) ----------
write_helpers() {
    local manifest=$1 service=$2
    if [ ! -w "$PREFIX" ] && [ -f "$PREFIX/monado-env.sh" ] && \
       grep -q "^export MONADO_SERVICE=$service\$" "$PREFIX/monado-env.sh"; then
        return 0  # installed by root earlier and up to date enough; nothing to write
    fi
    need_root
    $SUDO mkdir -p "$PREFIX"
    $SUDO tee "$PREFIX/monado-env.sh" >/dev/null <<EOF
# Source this before running OpenXR apps or tests against the headless Monado runtime.
export XR_RUNTIME_JSON=$manifest          # the OpenXR loader (pyopenxr bundles one) picks this runtime
export MONADO_SERVICE=$service
export XRT_COMPOSITOR_NULL=1              # null compositor: no display, no GPU needed
export SIMULATED_ENABLE=1                 # 'simulated' builder: HMD + two controllers
export SIMULATED_LEFT=wmr                 # wmr controllers: trigger value, grip + aim poses
export SIMULATED_RIGHT=wmr
# Scripted input instead: export P_OVERRIDE_ACTIVE_CONFIG=remote before starting the
# service; the remote hub then listens on TCP 4242 (connect to 127.0.0.1 only).
export XRT_NO_STDIN=1                     # the service must not read stdin in the background
export XDG_RUNTIME_DIR=\${XDG_RUNTIME_DIR:-/tmp/monado-run}    # IPC socket: \$XDG_RUNTIME_DIR/monado_comp_ipc
export XDG_CONFIG_HOME=\${XDG_CONFIG_HOME:-/tmp/monado-config} # Monado's config_v0.json lookup
export PYOPENGL_PLATFORM=\${PYOPENGL_PLATFORM:-egl}          # GL-over-EGL clients (XR_MNDX_egl_enable)
export EGL_PLATFORM=\${EGL_PLATFORM:-surfaceless}            # Mesa EGL without X/Wayland (llvmpipe)
EOF
    $SUDO tee "$PREFIX/start-monado.sh" >/dev/null <<'EOF'
#!/usr/bin/env bash
# Start monado-service in the background; print its PID once the IPC socket exists.
set -euo pipefail
. "$(dirname "$0")/monado-env.sh"
mkdir -p "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME"; chmod 700 "$XDG_RUNTIME_DIR"
LOG=${MONADO_LOG:-$XDG_RUNTIME_DIR/monado-service.log}
rm -f "$XDG_RUNTIME_DIR/monado_comp_ipc"   # stale socket left by a killed service
# As root Monado raises a thread to SCHED_FIFO 99; drop CAP_SYS_NICE on shared machines.
NORT=()
[ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && NORT=(setpriv --bounding-set=-sys_nice --inh-caps=-sys_nice)
"${NORT[@]}" "$MONADO_SERVICE" >"$LOG" 2>&1 </dev/null &
PID=$!
for _ in $(seq 1 150); do
    [ -S "$XDG_RUNTIME_DIR/monado_comp_ipc" ] && { echo "$PID"; exit 0; }
    kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
    sleep 0.1
done
echo "monado-service did not create its socket" >&2; cat "$LOG" >&2; kill "$PID"; exit 1
EOF
    $SUDO tee "$PREFIX/stop-monado.sh" >/dev/null <<'EOF'
#!/usr/bin/env bash
# stop-monado.sh PID : SIGTERM the service and wait until it has really gone
# (a service started while the old one is still exiting fails with "already running").
PID=$1
kill "$PID" 2>/dev/null || exit 0
for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || exit 0; sleep 0.1; done
kill -9 "$PID" 2>/dev/null; exit 0
EOF
    $SUDO chmod +x "$PREFIX/start-monado.sh" "$PREFIX/stop-monado.sh"
}

installed_ok() {
    # $1 manifest, $2 service binary: present, every shared library found, and lavapipe
    # installed (the null compositor always creates a Vulkan device).
    [ -f "$1" ] && [ -x "$2" ] || return 1
    ! ldd "$2" 2>/dev/null | grep -q "not found" || return 1
    ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1
}

need_root() {
    if [ "$SUDO" = "__need_root__" ]; then
        echo "install_monado.sh: installing Monado needs root or sudo (apt-get, $PREFIX);" \
             "run it as root, or install it once by hand: see docs/vr.md" >&2
        exit 1
    fi
}

# ---- Debian 13+: packaged Monado ------------------------------------------------------
install_packaged() {
    local manifest=/usr/share/openxr/1/openxr_monado.json service=/usr/bin/monado-service
    if [ "$FORCE" != 1 ] && installed_ok "$manifest" "$service"; then
        log "packaged Monado already installed"
    else
        need_root
        $SUDO apt-get update
        $SUDO apt-get install -y --no-install-recommends monado-service libopenxr1-monado \
            mesa-vulkan-drivers libegl1 libegl-mesa0 libgl1-mesa-dri util-linux
    fi
    [ -f "$manifest" ] || manifest=$(dpkg -L libopenxr1-monado | grep -m1 'openxr_monado.json')
    write_helpers "$manifest" "$service"
}

# ---- Debian 12: build trixie's Monado source --------------------------------------------
install_from_source() {
    local manifest="$PREFIX/share/openxr/1/openxr_monado.json" service="$PREFIX/bin/monado-service"
    if [ "$FORCE" != 1 ] && installed_ok "$manifest" "$service"; then
        log "Monado already built in $PREFIX"
        write_helpers "$manifest" "$service"
        return
    fi
    need_root
    local mirror=${DEBIAN_MIRROR:-}
    if [ -z "$mirror" ]; then
        mirror=$(grep -h -m1 -oE '^URIs: *[^ ]+' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
                 | awk '{print $2}' || true)
        mirror=${mirror:-http://deb.debian.org/debian}
    fi
    $SUDO apt-get update
    # Build deps + run-time deps (lavapipe is needed at run time even for headless sessions;
    # llvmpipe EGL/GL for GL client sessions; setpriv from util-linux).
    $SUDO apt-get install -y --no-install-recommends \
        ca-certificates dpkg-dev xz-utils build-essential cmake ninja-build pkg-config python3 \
        glslang-tools libvulkan-dev libeigen3-dev libcjson-dev libudev-dev libbsd-dev \
        libx11-dev libx11-xcb-dev libxcb-randr0-dev libxrandr-dev \
        libgl-dev libegl-dev libglvnd-dev libwayland-dev wayland-protocols \
        libvulkan1 mesa-vulkan-drivers libegl1 libgl1 libopengl0 libegl-mesa0 libgl1-mesa-dri \
        util-linux debian-archive-keyring

    # Monado's source from trixie through a private apt state (system sources untouched).
    mkdir -p "$WORK"/apt/{lists/partial,archives/partial,sourceparts} "$WORK/src"
    cat > "$WORK/apt/sourceparts/trixie.sources" <<EOF
Types: deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    touch "$WORK/apt/status"
    cat > "$WORK/apt/apt.conf" <<EOF
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$WORK/apt/sourceparts";
Dir::State::Lists "$WORK/apt/lists";
Dir::State::status "$WORK/apt/status";
Dir::Cache "$WORK/apt";
Dir::Cache::archives "$WORK/apt/archives";
EOF
    APT_CONFIG="$WORK/apt/apt.conf" apt-get update
    (
        cd "$WORK/src"
        # Only the checksum-verified upstream tarball is needed; some mirrors 404 the .dsc.
        APT_CONFIG="$WORK/apt/apt.conf" apt-get source --download-only monado || true
    )
    local orig
    orig=$(ls -1 "$WORK"/src/monado_*.orig.tar.* 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$orig" ] || { echo "Monado source tarball was not downloaded from $mirror" >&2; exit 1; }
    local src="$WORK/src/monado-src"
    rm -rf "$src" "$WORK/build" && mkdir -p "$src"
    tar -xf "$orig" -C "$src" --strip-components=1

    local drivers_off=()
    for d in ANDROID ARDUINO DAYDREAM HANDTRACKING HDK HYDRA ILLIXR NS OHMD OPENGLOVES PSMV PSSENSE \
             PSVR REALSENSE RIFT_S ROKID SURVIVE V4L2 ULV2 ULV5 VF DEPTHAI VIVE QWERTY WMR EUROC \
             SIMULAVR TWRAP XREAL_AIR STEAMVR_LIGHTHOUSE; do
        drivers_off+=("-DXRT_BUILD_DRIVER_$d=OFF")
    done
    cmake -S "$src" -B "$WORK/build" -G Ninja \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" \
        -DBUILD_TESTING=OFF -DXRT_BUILD_SAMPLES=OFF -DXRT_FEATURE_STEAMVR_PLUGIN=OFF \
        -DXRT_MODULE_MONADO_GUI=OFF -DXRT_FEATURE_DEBUG_GUI=OFF -DXRT_FEATURE_WINDOW_PEEK=OFF \
        -DXRT_MODULE_COMPOSITOR_MAIN=OFF -DXRT_MODULE_COMPOSITOR_NULL=ON -DXRT_MODULE_AUX_VIVE=ON \
        -DXRT_HAVE_OPENCV=OFF -DXRT_HAVE_GST=OFF -DXRT_HAVE_SDL2=OFF -DXRT_HAVE_SYSTEMD=OFF \
        -DXRT_HAVE_DBUS=OFF -DXRT_HAVE_HIDAPI=OFF -DXRT_HAVE_LIBUSB=OFF -DXRT_HAVE_LIBUVC=OFF \
        -DXRT_HAVE_JPEG=OFF -DXRT_BUILD_DRIVER_SIMULATED=ON -DXRT_BUILD_DRIVER_REMOTE=ON \
        -DXRT_FEATURE_SERVICE=ON -DXRT_MODULE_MONADO_CLI=ON "${drivers_off[@]}"
    ninja -C "$WORK/build" -j"$JOBS"
    $SUDO ninja -C "$WORK/build" install
    test -f "$manifest"
    write_helpers "$manifest" "$service"
}

if [ "$(debian_major)" -ge 13 ]; then
    install_packaged
else
    install_from_source
fi
log "Monado ready: source $PREFIX/monado-env.sh; $PREFIX/start-monado.sh prints the service PID"
