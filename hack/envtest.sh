#!/usr/bin/env bash
# envtest.sh provides the control-plane binaries that skiff's tests and
# `skiff up` run: kube-apiserver, kube-controller-manager, etcd and kubectl, for
# one pinned Kubernetes version, cached outside the clone.
#
#   hack/envtest.sh          # ensure the binaries, print the directory holding them
#   hack/envtest.sh --bench  # also kube-scheduler, kubelet and kwok, which `make bench` uses
#
# Order of preference for each binary:
#   1. already in the cache directory (a second run is instant);
#   2. kube-apiserver, kubectl: the normal setup-envtest download;
#   3. built from the k8s.io/kubernetes module at the pinned version
#      (kube-controller-manager always comes from here: setup-envtest does not ship it);
#   4. etcd: built from the go.etcd.io/etcd/server/v3 module at ETCD_VERSION.
#      Not Debian's etcd-server 3.4: it lacks RequestWatchProgress, so
#      kube-apiserver's watch cache cannot learn that it is current, and lists
#      and watches at a recent resourceVersion wait ("Too large resource
#      version") while clients relist, tens of seconds late.
#
# Progress goes to stderr; stdout carries only the directory, so callers can do
#   export KUBEBUILDER_ASSETS=$(hack/envtest.sh)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.36.3}"
STAGING_VERSION="v0.${K8S_VERSION#1.}"
CACHE_ROOT="${SKIFF_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/skiff}"
DIR="$CACHE_ROOT/envtest/$K8S_VERSION"
SRC="$CACHE_ROOT/envtest/src-$K8S_VERSION"
GO="${GO:-go}"
KWOK_VERSION="${KWOK_VERSION:-v0.7.0}"
ETCD_VERSION="${ETCD_VERSION:-${BENCH_ETCD_VERSION:-v3.6.16}}"

log() { printf '[envtest %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# run NAME CMD... runs a long step and prints its name and elapsed time every
# 30 seconds, so a first build that takes minutes is visibly alive.
run() {
	local name=$1 start=$SECONDS
	shift
	log "$name ..."
	("$@") &
	local pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		for _ in $(seq 1 30); do
			sleep 1
			kill -0 "$pid" 2>/dev/null || break
		done
		kill -0 "$pid" 2>/dev/null && log "$name: $((SECONDS - start))s elapsed"
	done
	if wait "$pid"; then
		log "$name: done in $((SECONDS - start))s"
	else
		log "$name: FAILED after $((SECONDS - start))s"
		return 1
	fi
}

have() { [ -x "$DIR/$1" ]; }

# have_etcd: etcd in the cache is the pinned build (older caches linked
# Debian's etcd there).
have_etcd() { have "etcd-$ETCD_VERSION" && [ "$(readlink "$DIR/etcd" 2>/dev/null)" = "etcd-$ETCD_VERSION" ]; }

all_present() {
	have kube-apiserver && have kube-controller-manager && have_etcd && have kubectl
}

# try_download asks setup-envtest for the published envtest assets. It is
# expected to fail where the download bucket cannot be reached; that is not an
# error, the build below takes over.
try_download() {
	have kube-apiserver && have kubectl && return 0
	local tool="$CACHE_ROOT/bin/setup-envtest"
	if [ ! -x "$tool" ]; then
		GOBIN="$CACHE_ROOT/bin" timeout 120 "$GO" install sigs.k8s.io/controller-runtime/tools/setup-envtest@v0.25.1 >/dev/null 2>&1 ||
			{ log "setup-envtest could not be installed; building from source instead"; return 0; }
	fi
	local out
	if out=$(timeout 60 "$tool" use "$K8S_VERSION" --bin-dir "$CACHE_ROOT/setup-envtest" -p path 2>/dev/null) && [ -d "$out" ]; then
		for b in kube-apiserver kubectl; do
			have "$b" || cp "$out/$b" "$DIR/$b"
		done
		log "downloaded envtest assets $K8S_VERSION"
	else
		log "envtest download not reachable; building from source instead"
	fi
}

# prepare_source writes a module that requires k8s.io/kubernetes and pins every
# staging module (which k8s.io/kubernetes replaces with local paths) to its
# published version.
prepare_source() {
	[ -f "$SRC/.prepared" ] && return 0
	mkdir -p "$SRC"
	local gomod
	gomod=$(cd "$SRC" && "$GO" mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
	{
		echo "module skiff.dev/envtest-build"
		echo
		echo "go 1.26"
		echo
		echo "require k8s.io/kubernetes v$K8S_VERSION"
		echo
		echo "replace ("
		sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\) => ./staging/.*#\t\1 => \1 '"$STAGING_VERSION"'#p' "$gomod"
		echo ")"
	} >"$SRC/go.mod"
	(cd "$SRC" && GOFLAGS=-mod=mod "$GO" mod download -x k8s.io/kubernetes 2>/dev/null)
	touch "$SRC/.prepared"
}

# The version the binaries report: helm, kubectl and other clients compare it
# with what they support, and a source build would otherwise say v0.0.0.
ldflags() {
	local v="v$K8S_VERSION" minor
	minor=$(echo "$K8S_VERSION" | cut -d. -f2)
	local f="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		f="$f -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	done
	echo "$f"
}

build() {
	local name=$1 pkg=$2
	have "$name" && return 0
	run "building $name $K8S_VERSION from source (first time only, several minutes)" \
		bash -c "cd '$SRC' && GOFLAGS=-mod=mod CGO_ENABLED=0 '$GO' build -trimpath -ldflags '$(ldflags)' -o '$DIR/$name.tmp' '$pkg' && mv '$DIR/$name.tmp' '$DIR/$name'"
}

ensure_etcd() {
	if ! have "etcd-$ETCD_VERSION"; then
		run "building etcd $ETCD_VERSION from source (first time only)" build_etcd
	fi
	ln -sfn "etcd-$ETCD_VERSION" "$DIR/etcd"
}

# ensure_bench_tools builds what the benchmarks run as upstream's reference:
# kube-scheduler and the kubelet from the same source as kube-apiserver, and kwok.
ensure_bench_tools() {
	if ! have kube-scheduler || ! have kubelet; then
		run "fetching k8s.io/kubernetes v$K8S_VERSION sources" prepare_source
		build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
		build kubelet k8s.io/kubernetes/cmd/kubelet
	fi
	if ! have kwok; then
		run "building kwok $KWOK_VERSION (first time only)" bash -c \
			"GOBIN='$DIR/.kwok' CGO_ENABLED=0 '$GO' install sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION && mv '$DIR/.kwok/kwok' '$DIR/kwok'"
	fi
}

build_etcd() {
	local src="$CACHE_ROOT/envtest/src-etcd-$ETCD_VERSION"
	mkdir -p "$src"
	printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' >"$src/main.go"
	printf 'module skiff.dev/etcd-build\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$src/go.mod"
	(cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=0 "$GO" build -trimpath -o "$DIR/etcd-$ETCD_VERSION.tmp" . && mv "$DIR/etcd-$ETCD_VERSION.tmp" "$DIR/etcd-$ETCD_VERSION")
}

main() {
	mkdir -p "$DIR"
	if ! all_present; then
		try_download
		if ! (have kube-apiserver && have kube-controller-manager && have kubectl); then
			run "fetching k8s.io/kubernetes v$K8S_VERSION sources" prepare_source
			build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
			build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
			build kubectl k8s.io/kubernetes/cmd/kubectl
		fi
		ensure_etcd
	fi
	if [ "${1:-}" = "--bench" ]; then
		ensure_bench_tools
	fi
	echo "$DIR"
}

main "$@"
