#!/usr/bin/env bash
# HotPixels: set up and run.
#
#   ./run.sh            set up, then the demo: simulate a camera, build a profile, correct a frame
#   ./run.sh test       set up (with test tools), then every test (pytest + busted + luacheck)
#   ./run.sh serve      the worker on stdio (JSON-RPC, one message per line)
#   ./run.sh build      the frozen worker (PyInstaller onedir) into hotpixel.lrdevplugin/bin/<os>-<arch>/,
#                       signed when a certificate is configured, then the plug-in zipped (build/release.py)
#   ./run.sh bench      benchmarks (quality on the simulator, speed, memory); names select some:
#                       dng_io profiles correct residual worker robustness speed (--quick: small frames)
#                       e.g. ./run.sh bench speed: whole-job speed as ratios to the codec floor and darktable-cli
#   ./run.sh ARGS...    anything else goes to the `hotpixels` CLI, e.g. ./run.sh inspect FILE.dng
#
# Idempotent: the venv (.venv) is re-installed only when pyproject.toml changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.hotpixels-stamp"
TORCH_VERSION="2.13.0"

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

find_python() {
    local c
    for c in "${HOTPIXELS_PYTHON:-}" python3.11 python3 python; do
        [ -n "$c" ] || continue
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
            command -v "$c"; return 0
        fi
    done
    return 1
}

is_debian_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -f /etc/debian_version ]; }

# --- system packages ---------------------------------------------------------------------------
# command-or-lua-module -> Debian package
missing_system_parts() {
    local want="$1" out=()
    command -v exiftool >/dev/null 2>&1 || out+=("exiftool:libimage-exiftool-perl")
    if [ "$want" = test ]; then
        command -v lua5.1 >/dev/null 2>&1 || out+=("lua5.1:lua5.1")
        command -v busted >/dev/null 2>&1 || out+=("busted:lua-busted")
        command -v luacheck >/dev/null 2>&1 || out+=("luacheck:lua-check")
        if command -v lua5.1 >/dev/null 2>&1; then
            lua5.1 -e 'require("socket")' >/dev/null 2>&1 || out+=("luasocket:lua-socket")
            lua5.1 -e 'require("cjson")' >/dev/null 2>&1 || out+=("lua-cjson:lua-cjson")
        else
            out+=("luasocket:lua-socket" "lua-cjson:lua-cjson")
        fi
        command -v darktable-cli >/dev/null 2>&1 || out+=("darktable-cli:darktable")
        command -v rawtherapee-cli >/dev/null 2>&1 || out+=("rawtherapee-cli:rawtherapee")
    fi
    printf '%s\n' "${out[@]:-}" | sed '/^$/d'
}

ensure_system() {
    local want="$1" missing pkgs
    missing="$(missing_system_parts "$want")"
    [ -z "$missing" ] && return 0
    pkgs="$(printf '%s\n' "$missing" | cut -d: -f2 | sort -u | tr '\n' ' ')"
    if is_debian_root; then
        say "run.sh: installing system packages: $pkgs"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null || true
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $pkgs >/dev/null || die "apt-get install $pkgs failed"
        return 0
    fi
    say "run.sh: these system parts are missing: $(printf '%s\n' "$missing" | cut -d: -f1 | tr '\n' ' ')"
    say "  Debian/Ubuntu:  sudo apt-get install $pkgs"
    say "  macOS (Homebrew): brew install exiftool lua@5.1 luarocks && luarocks --lua-version=5.1 install busted luasocket lua-cjson luacheck; brew install --cask darktable rawtherapee"
    say "  Windows: install ExifTool (exiftool.org) and put exiftool.exe on PATH"
    if ! command -v exiftool >/dev/null 2>&1; then
        die "exiftool is required (sensor temperature and maker-note serials); install it and run again"
    fi
    if [ "${HOTPIXELS_CI:-0}" = 1 ]; then
        die "HOTPIXELS_CI=1: a missing system part fails the run"
    fi
    say "run.sh: continuing; tests that need the missing parts will be skipped"
}

# --- python environment ------------------------------------------------------------------------
torch_pip_args() {
    # GPU present: the default PyPI wheel (CUDA on Linux). No GPU on Linux: a CPU build, never the
    # multi-GB CUDA one. A local wheel that already is a CPU build (as on our CI machines) is used
    # as it is.
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo "torch==$TORCH_VERSION"; return
    fi
    if [ "$(uname -s)" != Linux ]; then
        echo "torch==$TORCH_VERSION"; return
    fi
    local report
    report="$("$VENV/bin/python" -m pip install --dry-run --quiet --report - "torch==$TORCH_VERSION" 2>/dev/null || true)"
    if printf '%s' "$report" | grep -q "\"version\": \"$TORCH_VERSION+cpu\"" || \
       "$VENV/bin/python" -c "import torch,sys; sys.exit(0 if torch.__version__=='$TORCH_VERSION+cpu' else 1)" 2>/dev/null; then
        echo "torch==$TORCH_VERSION"
    else
        echo "torch==$TORCH_VERSION --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple"
    fi
}

ensure_venv() {
    local extras="$1" py want have
    if [ ! -x "$VENV/bin/python" ]; then
        py="$(find_python)" || die "Python 3.11 is required (the one version the worker, its frozen build and the pinned torch 2.13.0 are tested with). Install python3.11 (apt-get install python3.11 python3.11-venv, brew install python@3.11, or pyenv) or set HOTPIXELS_PYTHON=/path/to/python3.11"
        say "run.sh: creating .venv with $py"
        "$py" -m venv "$VENV"
    fi
    want="$( (sha256sum "$ROOT/pyproject.toml" 2>/dev/null || shasum -a 256 "$ROOT/pyproject.toml") | cut -d" " -f1)"
    have="$(cat "$STAMP" 2>/dev/null || true)"
    # stamp lines are "<pyproject hash> <extras>"; an install with extras covers the plain one
    if printf '%s\n' "$have" | grep -q "^$want " && \
       { [ -z "$extras" ] || printf '%s\n' "$have" | grep -qx "$want $extras"; }; then
        :
    else
        say "run.sh: installing Python dependencies ($extras)"
        # shellcheck disable=SC2046
        "$VENV/bin/python" -m pip install --quiet $(torch_pip_args) || die "installing torch failed"
        local spec="$ROOT"
        [ -n "$extras" ] && spec="$ROOT[$extras]"
        "$VENV/bin/python" -m pip install --quiet -e "$spec" || die "pip install failed"
        printf '%s %s\n' "$want" "$extras" >>"$STAMP"
    fi
    # the plugin's development fallback finds the worker through this file
    printf '%s\n' "$ROOT" >"$ROOT/hotpixel.lrdevplugin/PluginPath.txt"
}

run_tests() {
    local rc=0
    cd "$ROOT"
    say "run.sh: Python tests"
    "$VENV/bin/python" -m pytest -q "$@" tests/python || rc=$?
    if command -v busted >/dev/null 2>&1 && command -v lua5.1 >/dev/null 2>&1; then
        if command -v luacheck >/dev/null 2>&1; then
            say "run.sh: luacheck"
            luacheck -q hotpixel.lrdevplugin tests/lua || rc=1
        fi
        say "run.sh: Lua tests (busted, Lua 5.1)"
        # the worker's reports go to a scratch folder, not the user's data folder
        local reports; reports="$(mktemp -d "${TMPDIR:-/tmp}/hotpixels-reports.XXXXXX")"
        HOTPIXELS_REPORTS="$reports" HOTPIXELS_ROOT="$ROOT" HOTPIXELS_PYTHON_BIN="$VENV/bin" \
            busted --lua=lua5.1 tests/lua || rc=1
        rm -rf "$reports"
    elif [ "${HOTPIXELS_CI:-0}" = 1 ]; then
        say "run.sh: busted/lua5.1 missing under HOTPIXELS_CI=1"; rc=1
    else
        say "run.sh: busted/lua5.1 missing: Lua tests skipped"
    fi
    return $rc
}

cmd="${1:-demo}"
[ $# -gt 0 ] && shift
case "$cmd" in
    demo)
        ensure_system main
        ensure_venv ""
        exec "$VENV/bin/hotpixels" demo "$@"
        ;;
    test)
        ensure_system test
        ensure_venv "dev"
        run_tests "$@"
        ;;
    serve)
        ensure_system main
        ensure_venv "" >&2
        # stdio unless the caller picked the socket pair (the plugin's dev fallback passes --connect)
        case " $* " in
            *" --connect "*) exec "$VENV/bin/hotpixels-worker" "$@" ;;
            *) exec "$VENV/bin/hotpixels-worker" --stdio "$@" ;;
        esac
        ;;
    build)
        ensure_system main
        ensure_venv "build"
        "$VENV/bin/python" "$ROOT/build/build_worker.py" "$@"
        # signing (when a certificate is configured) and the zip for download
        exec "$VENV/bin/python" "$ROOT/build/release.py"
        ;;
    bench)
        ensure_system main
        ensure_venv "dev"
        exec "$VENV/bin/python" -m hotpixels.bench "$@"
        ;;
    -h|--help|help)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        ;;
    *)
        ensure_system main
        ensure_venv ""
        exec "$VENV/bin/hotpixels" "$cmd" "$@"
        ;;
esac
