#!/usr/bin/env bash
# Debian packages the tests need on the host (qemu for real pod VMs, libseccomp for the real node's runc).
# Skipped when already present.
set -euo pipefail
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
# The pod VM image build unpacks the zstd-compressed kernel with it (npm run podvm:build).
command -v zstd >/dev/null || need+=(zstd)
# cluster:build compiles runc with seccomp support (cgo), which links libseccomp found through pkg-config.
command -v gcc >/dev/null || need+=(gcc)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists libseccomp 2>/dev/null || need+=(libseccomp-dev)
sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
# podvm:build fetches the kernel and busybox with apt-get download, which needs package lists.
if [ ${#need[@]} -gt 0 ] || ! apt-cache show busybox-static >/dev/null 2>&1; then
  $sudo_cmd apt-get update -qq
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
