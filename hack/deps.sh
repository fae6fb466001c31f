#!/usr/bin/env bash
# deps.sh installs the Debian packages that skiff's tests and `skiff up` need,
# when they are missing. It needs root and apt-get; elsewhere it names what is
# missing and how to install it.
set -euo pipefail

# package:command pairs; a package is installed when its command is missing.
PACKAGES=(
	# etcd is not here: hack/envtest.sh builds a pinned etcd 3.6 (Debian's
	# 3.4 lacks what kube-apiserver's watch cache needs).
	# skiff-agent and its end-to-end tests: a managed containerd with runc
	# and the CNI plugins, ip for network cleanup, nft for the service
	# proxy, conntrack to clear the proxy's stale UDP flows,
	# busybox-static for the root file system of test images and
	# docker-registry to serve them on 127.0.0.1.
	containerd:containerd
	runc:runc
	containernetworking-plugins:/usr/lib/cni/bridge
	iproute2:ip
	nftables:nft
	conntrack:conntrack
	busybox-static:busybox
	docker-registry:docker-registry
	# The README quick start fetches from a Service with curl.
	curl:curl
)

missing=()
for pc in "${PACKAGES[@]}"; do
	pkg=${pc%%:*} cmd=${pc#*:}
	command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "$cmd" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "missing packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "[deps] installing ${missing[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
	{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
# Packaged daemons may start system services; skiff starts its own instances.
for pkg in "${missing[@]}"; do
	case $pkg in
	containerd | docker-registry)
		# skiff-agent runs its own containerd (own socket and root); the
		# tests start their own registry on a free loopback port.
		if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$pkg" >/dev/null 2>&1 || true; fi ;;
	esac
done
