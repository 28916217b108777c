#!/usr/bin/env bash
# Build the one-folder desktop bundle with PyInstaller (packaging/seqwb.spec) and check that it starts.
#
#   packaging/build_bundle.sh                 # PyInstaller goes into the Python the project is installed in
#   PYTHON=/path/to/venv/bin/python packaging/build_bundle.sh
#   SEQWB_BUNDLE_DIR=/tmp/b packaging/build_bundle.sh   # where dist/ and work/ go (default packaging/build)
#
# The Python used must have the project installed (pip install . or -e .) with its dependencies: PyInstaller
# bundles what that environment imports.  Checks, all offscreen and on one CPU thread:
#   1. seqwb --version
#   2. seqwb plugins --json lists the built-in plugins (entry-point metadata made it into the bundle)
#   3. the main window opens on a project passed on the command line, paints, and quits
#   4. a short headless training of a tiny template
# and prints the bundle's size.  Exit status 0 only when every check passed.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PYTHON:-$(command -v python3)}"
OUT="${SEQWB_BUNDLE_DIR:-$HERE/build}"

if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    echo "== installing pyinstaller into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip install --quiet "pyinstaller>=6.6"
fi
"$PY" -c "import workbench, workbench_plugins" || {
    echo "build_bundle: the project is not installed in $PY (pip install $ROOT)" >&2; exit 1; }

mkdir -p "$OUT"
# The bundle gets the installed distribution's metadata (its entry points are how plugins are found).  Run from
# $OUT, not the checkout, so that a sequence_workbench.egg-info lying in the source tree is not picked up, and
# refuse metadata that no longer matches pyproject.toml (an editable install made before an entry point was added).
(cd "$OUT" && "$PY" - "$ROOT/pyproject.toml" <<'PYEOF'
import sys, tomllib
from importlib.metadata import distribution
want = tomllib.load(open(sys.argv[1], "rb"))["project"]["entry-points"]["seqwb.plugins"]
dist = distribution("sequence-workbench")
have = {ep.name: ep.value for ep in dist.entry_points if ep.group == "seqwb.plugins"}
if have != want:
    sys.exit(f"build_bundle: the installed metadata ({dist._path}) lists the plugin entry points {sorted(have)}, "
             f"pyproject.toml {sorted(want)}: reinstall the project first (pip install -e .)")
PYEOF
)

echo "== building with $("$PY" -m PyInstaller --version) into $OUT/dist/seqwb"
start=$(date +%s)
(cd "$OUT" && "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$OUT/dist" --workpath "$OUT/work" "$HERE/seqwb.spec")
echo "== built in $(( $(date +%s) - start )) s"

EXE="$OUT/dist/seqwb/seqwb"
CHECK="$(mktemp -d)"
trap 'rm -rf "$CHECK"' EXIT
export QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
failed=0
check() {  # check NAME COMMAND...: run, show the last lines, count a failure
    local name="$1"; shift
    echo "== check: $name"
    if timeout 600 "$@" >"$CHECK/out.txt" 2>&1; then
        tail -n 4 "$CHECK/out.txt"; echo "   ok"
    else
        tail -n 20 "$CHECK/out.txt"; echo "   FAILED: $name"; failed=$((failed + 1))
    fi
}

check "seqwb --version" "$EXE" --version
check "plugins found through entry points" bash -c \
    "'$EXE' plugins --json | '$PY' -c 'import json,sys; rows=json.load(sys.stdin); kinds={r[\"kind\"] for r in rows if r[\"status\"]==\"ok\"}; bad=[r for r in rows if r[\"status\"]!=\"ok\"]; print(len(rows), \"contributions:\", sorted(kinds)); sys.exit(1 if bad or not {\"cell\",\"task\",\"template\"} <= kinds else 0)'"
check "new project from a template" "$EXE" new adding-problem-rnn -o "$CHECK/tiny.seqwb" \
    --set rnn.hidden_size=8 --set threads=1
# SEQWB_STARTUP_PROBE: the window prints one JSON line at its first paint and quits (workbench/gui/app.py)
check "window opens the project given on the command line, paints and quits" bash -c \
    "SEQWB_STARTUP_PROBE=1 '$EXE' '$CHECK/tiny.seqwb' | tee /dev/stderr | grep -q '\"title\"'"
check "headless training (20 steps, 1 thread)" "$EXE" train "$CHECK/tiny.seqwb" --steps 20 --set threads=1 -q
check "the trained project reads back" "$EXE" info "$CHECK/tiny.seqwb"

echo "== bundle size: $(du -sh "$OUT/dist/seqwb" | cut -f1) ($(du -sb "$OUT/dist/seqwb" | cut -f1) bytes," \
     "$(find "$OUT/dist/seqwb" -type f | wc -l) files) in $OUT/dist/seqwb"
if [ "$failed" -ne 0 ]; then
    echo "== $failed check(s) FAILED"; exit 1
fi
echo "== all checks passed"
