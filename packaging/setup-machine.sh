#!/usr/bin/env bash
# System packages the studio needs on a fresh Debian machine (Qt's runtime libraries for the
# offscreen/X11 platforms). Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail
# offscreen needs the first five; a real X11 window (xcb platform) needs the xcb ones too.
pkgs=(libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
      libxcb-image0 libxcb-render-util0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-randr0)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "note: not a Debian-like system; install Qt's runtime libraries (${missing[*]}) yourself" >&2
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
