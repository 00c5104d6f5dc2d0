#!/usr/bin/env bash
# Set up CardioPlan on a fresh Debian 12/13 or Ubuntu 22.04+ machine.
#
#   bash scripts/install.sh          # runtime: system GL/EGL libraries + .venv with cardioplan[all]
#   bash scripts/install.sh --dev    # + test tools: Xvfb, Chromium, dcm2niix, the Monado OpenXR
#                                    #   runtime (headless), and cardioplan[all,dev]
#
# Idempotent: packages already installed are skipped.  System packages need root (or sudo);
# without either, the script says which packages are missing and continues with the venv.
# Env: CARDIOPLAN_VENV (default .venv in the repository), PYTHON (default python3).
set -euo pipefail

DEV=0
for arg in "$@"; do
    case "$arg" in
        --dev) DEV=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $arg (use --dev or --help)" >&2; exit 2 ;;
    esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=${CARDIOPLAN_VENV:-$REPO/.venv}
PYTHON=${PYTHON:-python3}

# Off-screen rendering (VTK/PyVista and moderngl over Mesa EGL), X for the desktop window.
PKGS=(python3-venv dcmtk libegl1 libegl-mesa0 libgl1 libglx-mesa0 libgl1-mesa-dri libopengl0
      libx11-6 libxrender1 libxext6 libxcursor1 libxi6 libxrandr2)
# Tests: a virtual display, a real browser for the report's 3D page, the reference DICOM
# converter for the ingest benchmark.  (dcmtk, in PKGS, decodes 12-bit lossy JPEG, which the
# Python decoders get wrong.)
DEV_PKGS=(xvfb xauth chromium dcm2niix fonts-dejavu-core)

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else return 1
    fi
}

install_debs() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "install.sh: installing Debian packages: ${missing[*]}"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
       ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null; then
        echo "install.sh: could not install ${missing[*]} (need root or sudo); install them" \
             "yourself for off-screen rendering and the tests" >&2
        return 1
    fi
}

if command -v dpkg-query >/dev/null 2>&1; then
    install_debs "${PKGS[@]}" || true
    if [ "$DEV" = 1 ]; then
        install_debs "${DEV_PKGS[@]}"
        bash "$REPO/scripts/install_monado.sh"
    fi
else
    echo "install.sh: not a Debian/Ubuntu system; install Mesa EGL/GL yourself" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
EXTRAS=all
[ "$DEV" = 1 ] && EXTRAS=all,dev
"$VENV/bin/python" -m pip install -q -e "$REPO[$EXTRAS]"
echo "install.sh: CardioPlan is installed in $VENV (run $VENV/bin/cardioplan --help)"
