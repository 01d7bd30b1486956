#!/usr/bin/env bash
# FFmpeg's shared libraries, which torchcodec loads at import (FFmpeg 4 to 8; PyAV and decord bring
# their own). When they are missing, installs the distribution's ffmpeg package with apt-get if
# this is root on Debian or Ubuntu; otherwise says why torchcodec will not load. Never fails: video
# is read by PyAV without them, and the torchcodec tests say they skip and why.
set -u
libs=(libavcodec libavformat libavutil libavfilter libavdevice libswscale libswresample)
have_all() {
  local found
  found=$(ldconfig -p 2>/dev/null)
  for lib in "${libs[@]}"; do grep -q "$lib\.so\." <<<"$found" || return 1; done
}
have_all && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "FFmpeg's shared libraries are missing; installing them needs root and apt-get (apt-get install ffmpeg, or your system's FFmpeg 4-8 package): torchcodec will not load and its tests skip" >&2
  exit 0
fi
echo "installing FFmpeg's shared libraries for torchcodec: apt-get install ffmpeg"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; } || ! have_all; then
  echo "apt-get could not install FFmpeg's shared libraries: torchcodec will not load and its tests skip" >&2
fi
exit 0
