#!/usr/bin/env bash
# Make sure the non-Python tools the labs need are on the machine (called by `make lab` / `make test`).
#   tools/ensure_system_packages.sh lab    # Python venv support + graphviz's `dot`
#   tools/ensure_system_packages.sh test   # ... + Debian's Chromium and a CJK font for the browser test
# As root on Debian/Ubuntu it installs what is missing with apt-get; otherwise it stops and prints the
# exact command to run. Does nothing (quickly) when everything is there.
set -euo pipefail
what="${1:-lab}"
python="${PYTHON:-python3}"
missing=()

if ! "$python" -c "import sys; assert sys.version_info >= (3, 11)" 2>/dev/null; then
  echo "error: $python is not Python >= 3.11 (found: $("$python" --version 2>&1 | head -1))." >&2
  echo "       Install Python 3.11+ or run: make $what PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ] && ! "$python" -c "import ensurepip, venv" 2>/dev/null; then
  missing+=("python3-venv")                       # Debian's python3 ships without ensurepip
fi
command -v dot >/dev/null 2>&1 || missing+=("graphviz")   # the `dot` binary behind every graph view
if [ "$what" = "test" ] && [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  missing+=("chromium")                           # driven by Playwright in the browser test
fi
if [ "$what" = "test" ] && ! { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]; }; then
  missing+=("fonts-noto-cjk")                     # the labs' Chinese terms; the browser test asserts no tofu boxes
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
  exit 0
fi
echo "error: missing system packages: ${missing[*]}" >&2
if command -v apt-get >/dev/null 2>&1; then
  echo "       run:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
else
  echo "       install them with your system's package manager (graphviz provides 'dot'; any CJK font" >&2
  echo "       such as Noto Sans CJK draws the labs' Chinese terms)," >&2
  echo "       then run make $what again" >&2
fi
exit 1
