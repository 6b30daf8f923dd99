#!/usr/bin/env bash
# lab.sh — the raftlvs kernel lab.
#
# The build machines run a kernel without IPVS and IPIP that cannot load modules, so
# anything that must meet a real IPVS runs here: a qemu VM (software emulation, TCG)
# booting a stock Debian cloud kernel from an initramfs that this script packs. The
# scenario script runs as part of the guest's /init, builds its whole topology in network
# namespaces of the guest, and reports its exit status on the serial console.
#
#   lab.sh setup                 install host packages, fetch and unpack the kernel (cached)
#   lab.sh run SCENARIO [opts]   pack an initramfs, boot it, exit with the scenario's rc
#   lab.sh test --bin PATH       every end-to-end scenario and the Go lab tests, one VM each
#   lab.sh demo --bin PATH       the guided tour: a cluster, traffic, a leader crash
#   lab.sh bench --bin PATH      failover and programming figures
#   lab.sh gotests               the Go packages' lab tests only
#   lab.sh help
#
# See deploy/lab/README.md for the scenario author's view.
set -euo pipefail
shopt -s extglob

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${LAB_CACHE_DIR:-$LAB_DIR/.cache}
KERNEL_DIR=$CACHE_DIR/kernel          # one unpacked .deb per kernel package version
LOG_DIR=${LAB_LOG_DIR:-$CACHE_DIR/logs}

HOST_PKGS=(qemu-system-x86 busybox-static cpio kmod ipvsadm iproute2 jq curl)
KERNEL_META=linux-image-cloud-amd64

# Modules put into the initramfs and loaded by /init before the scenario starts. Their
# dependency closure (modules.dep, softdeps included) comes along. Names absent from this
# kernel (e.g. ip_vs_twos before 6.2) or built into it are skipped, not errors.
BOOT_MODULES=(
	ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh
	ip_vs_sed ip_vs_nq ip_vs_mh ip_vs_fo ip_vs_ovf ip_vs_twos
	ipip tunnel4 ip_tunnel ip6_tunnel tunnel6
	veth bridge dummy macvlan af_packet
	nf_conntrack nf_defrag_ipv4 nf_defrag_ipv6
)

VM_MEM=${LAB_MEM:-2048}
VM_SMP=${LAB_SMP:-2}
VM_APPEND=${LAB_APPEND:-console=ttyS0 quiet panic=-1}
BOOT_ALLOWANCE=${LAB_BOOT_ALLOWANCE:-120} # host timeout = scenario timeout + this

log() { printf 'lab: %s\n' "$*" >&2; }
die() {
	printf 'lab: ERROR: %s\n' "$*" >&2
	exit 1
}

usage() {
	cat <<'EOF'
usage:
  lab.sh setup
      Install the host packages (apt-get) and fetch + unpack the Debian cloud kernel into
      deploy/lab/.cache/. Idempotent; a second run downloads nothing.
  lab.sh run SCENARIO [--bin PATH] [--timeout SECONDS] [--add SRC:DST]... [--tool PATH]...
             [--module NAME]... [--log FILE]
      Boot the VM and run SCENARIO (a file, or a name under deploy/lab/scenarios/) as
      /scenario.sh. Exits with the scenario's exit status.
        --bin PATH      the raftlvs binary; lands at /bin/raftlvs in the guest
        --timeout S     the scenario's time limit inside the guest (default 300)
        --add SRC:DST   copy a host file or directory to DST in the guest (repeatable)
        --tool PATH     copy a host program and its shared libraries, same path (repeatable)
        --module NAME   also pack and load kernel module NAME (repeatable)
        --log FILE      where the console log goes (default .cache/logs/NAME-DATE.log)
  lab.sh test --bin PATH [--only NAME]...
      Build the Go lab-test binaries, then run every scenario of TEST_SCENARIOS (or the
      --only ones), each in a VM of its own. Exits 1 if any failed; prints a table.
  lab.sh demo --bin PATH
      The guided tour (scenarios/demo.sh), console reduced to the scenario's own output.
  lab.sh bench --bin PATH [--trials N] [--services N] [--servers N]
      scenarios/bench.sh: crash-failover time over N trials (default 10), and the time to
      program SERVICES x SERVERS (default 10000 x 10) through raftlvs vs ipvsadm -R, and
      (at 10000 x 10) one director's writes alone (the director/ipvs lab benchmark, built
      with go). LAB_MEM defaults to 4096 here.
  lab.sh gotests
      Build and run only the Go lab tests (go test -c -tags hashicorpmetrics,lab).
  Environment: LAB_MEM (MiB, 2048), LAB_SMP (2), LAB_APPEND, LAB_CACHE_DIR, LAB_LOG_DIR.
EOF
}

# ---------------------------------------------------------------------------------------
# setup: host packages and the kernel
# ---------------------------------------------------------------------------------------

missing_pkgs() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			printf '%s\n' "$p"
	done
}

# Recommends are skipped on purpose: qemu would pull a GUI stack the lab never uses.
install_host_pkgs() {
	local missing
	missing=$(missing_pkgs "${HOST_PKGS[@]}")
	[[ -z $missing ]] && return 0
	missing=${missing//$'\n'/ }
	log "installing host packages: $missing"
	apt-get update -qq || die "apt-get update failed (is a Debian mirror reachable?)"
	# shellcheck disable=SC2086 # word splitting is wanted: one package per word
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing ||
		die "apt-get install failed for: $missing"
}

# The metapackage depends on exactly one versioned image, e.g. linux-image-6.1.0-48-cloud-amd64;
# that name moves as Debian updates, so it is looked up rather than written down.
resolve_kernel_pkg() {
	local pkg
	pkg=$(apt-cache depends "$KERNEL_META" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-.*-cloud-amd64$/ { print $2; exit }')
	if [[ -z $pkg ]]; then
		log "apt lists do not know $KERNEL_META; running apt-get update"
		apt-get update -qq || die "apt-get update failed"
		pkg=$(apt-cache depends "$KERNEL_META" 2>/dev/null |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-.*-cloud-amd64$/ { print $2; exit }')
	fi
	[[ -n $pkg ]] || die "cannot resolve the image package behind $KERNEL_META"
	printf '%s\n' "$pkg"
}

candidate_version() {
	apt-cache policy "$1" | awk '$1 == "Candidate:" { print $2; exit }'
}

# Download, unpack and depmod one kernel package into $KERNEL_DIR/PKG_VERSION, then point
# $KERNEL_DIR/current at it. Skips everything when that directory is already complete.
fetch_kernel() {
	local pkg ver dest tmp deb kver
	pkg=$(resolve_kernel_pkg)
	ver=$(candidate_version "$pkg")
	[[ -n $ver && $ver != "(none)" ]] || die "no installable version of $pkg"
	dest=$KERNEL_DIR/${pkg}_${ver//:/%}
	if [[ -f $dest/.complete ]]; then
		ln -sfn "$(basename "$dest")" "$KERNEL_DIR/current"
		log "kernel $pkg $ver already cached"
		return 0
	fi
	mkdir -p "$KERNEL_DIR"
	tmp=$(mktemp -d "$KERNEL_DIR/.fetch.XXXXXX")
	log "downloading $pkg=$ver"
	# The _apt sandbox user cannot write into our cache dir; we are root anyway.
	if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2); then
		rm -rf "$tmp"
		die "download of $pkg=$ver failed: the lab needs Debian's apt repositories (try 'apt-get update')"
	fi
	deb=$(ls "$tmp"/*.deb)
	mkdir "$tmp/root"
	dpkg-deb -x "$deb" "$tmp/root" || die "cannot unpack $deb"
	# Newer Debian ships modules under usr/lib; depmod -b expects BASE/lib/modules.
	if [[ ! -d $tmp/root/lib/modules && -d $tmp/root/usr/lib/modules ]]; then
		ln -s usr/lib "$tmp/root/lib"
	fi
	kver=$(ls "$tmp/root/lib/modules")
	[[ -f $tmp/root/boot/vmlinuz-$kver ]] || die "$deb has no boot/vmlinuz-$kver"
	# The .deb carries no modules.dep: it is generated at install time.
	depmod -b "$tmp/root" "$kver" || die "depmod failed for $kver"
	echo "$kver" >"$tmp/root/KVER"
	rm -f "$deb"
	touch "$tmp/root/.complete"
	rm -rf "$dest"
	mv "$tmp/root" "$dest"
	rmdir "$tmp"
	ln -sfn "$(basename "$dest")" "$KERNEL_DIR/current"
	log "kernel $kver unpacked into $dest"
	# Kernels that Debian has since replaced are no use to anyone.
	find "$KERNEL_DIR" -mindepth 1 -maxdepth 1 -type d ! -name "$(basename "$dest")" ! -name '.fetch.*' \
		-exec rm -rf {} +
}

cmd_setup() {
	[[ $(id -u) -eq 0 ]] || die "setup installs packages: run it as root"
	local t0=$EPOCHREALTIME
	install_host_pkgs
	fetch_kernel
	log "setup done in $(elapsed "$t0") s"
}

# run calls this: a no-op once setup has been done, so scenarios never re-resolve the kernel.
ensure_setup() {
	if [[ -n $(missing_pkgs "${HOST_PKGS[@]}") || ! -f $KERNEL_DIR/current/.complete ]]; then
		log "lab not set up yet; running setup"
		cmd_setup
	fi
}

# ---------------------------------------------------------------------------------------
# initramfs: a cached base archive + a small per-run overlay, concatenated
# ---------------------------------------------------------------------------------------
# The kernel unpacks concatenated cpio archives in order, later files winning. The base
# (busybox, ip, ipvsadm, libraries, modules) is keyed by everything it is made of and
# rebuilt only when that changes; the overlay (/init, lib.sh, the scenario, raftlvs,
# --add/--tool files) is packed on every run. Both stay uncompressed: the guest would
# spend longer inflating gzip under emulation than qemu spends reading a bigger file.

# copy_with_libs ROOT PROGRAM: the program at its own path plus what ldd says it loads.
copy_with_libs() {
	local root=$1 prog=$2 lib
	install -D -m 0755 "$prog" "$root$prog"
	# A static program makes ldd exit non-zero ("not a dynamic executable"): nothing to add.
	for lib in $(ldd "$prog" 2>/dev/null | grep -o '/[^ ]*' || true); do
		[[ -e $root$lib ]] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
	done
}

# module_closure KROOT KVER NAME...: the .ko paths (relative to KROOT) needed to load NAMEs.
module_closure() {
	local kroot=$1 kver=$2 m
	shift 2
	for m in "$@"; do
		# "insmod /path.ko" lines are files to copy; "builtin x" lines need nothing.
		modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>/dev/null |
			awk '$1 == "insmod" { print $2 }' || true
	done | sed "s|^$kroot/||" | sort -u
}

# The modules of BOOT_MODULES (plus --module ones) that this kernel has as loadable .ko.
boot_module_list() {
	local kroot=$1 kver=$2 m
	for m in "$@"; do
		modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>/dev/null | grep -q '^insmod ' &&
			printf '%s\n' "$m"
	done
	return 0
}

build_base_tree() {
	local root=$1 kroot=$2 kver=$3
	shift 3
	local applet f
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,var,etc,root,srv,lab,lib/modules}
	ln -s ../run "$root/var/run" # ip netns keeps its mounts under /var/run/netns
	# The kernel gives PID 1 its console only if /dev/console exists before devtmpfs.
	mknod -m 600 "$root/dev/console" c 5 1

	install -m 0755 /bin/busybox "$root/bin/busybox"
	for applet in $(/bin/busybox --list-full); do
		[[ -e $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
	done
	# busybox's ip has no netns: iproute2's ip replaces every ip link. Debian's busybox
	# also always prefers its own applets inside ash (and in timeout, env, xargs...), so
	# that `ip` in an ash script is busybox's ip whatever PATH says. Hence bash is /bin/sh:
	# scenarios run under bash, and `ip` means iproute2 everywhere except as an argument
	# to a busybox applet (there, write /usr/sbin/ip).
	copy_with_libs "$root" "$(command -v ip)"
	copy_with_libs "$root" "$(command -v ipvsadm)"
	copy_with_libs "$root" /bin/bash
	copy_with_libs "$root" "$(command -v jq)" # scenarios read raftlvs status -o json
	copy_with_libs "$root" "$(command -v curl)" # the directors' API is HTTPS with client certificates
	for f in bin/ip sbin/ip usr/bin/ip usr/sbin/ip; do
		[[ /$f == "$(command -v ip)" ]] && continue
		rm -f "$root/$f"
		ln -s "$(command -v ip)" "$root/$f"
	done
	rm -f "$root/bin/sh"
	ln -s bash "$root/bin/sh"
	# A loader cache spares every dynamic program a search of the library directories.
	ldconfig -r "$root"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
	printf 'root:x:0:\n' >"$root/etc/group"
	printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
	# dummy would otherwise add a dummy0 to the switch namespace; scenarios make their own.
	mkdir -p "$root/etc/modprobe.d"
	printf 'options dummy numdummies=0\n' >"$root/etc/modprobe.d/lab.conf"

	# Modules: the closure only, uncompressed (busybox modprobe may lack xz/zstd), then a
	# depmod of the subset so that modprobe in the guest knows exactly what is there.
	local mdir=lib/modules/$kver
	mkdir -p "$root/$mdir"
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		[[ -f $kroot/$mdir/$f ]] && cp "$kroot/$mdir/$f" "$root/$mdir/"
	done
	while read -r f; do
		case $f in
		*.ko) install -D -m 0644 "$kroot/$f" "$root/$f" ;;
		*.ko.xz) mkdir -p "$root/$(dirname "$f")" && xz -dc "$kroot/$f" >"$root/${f%.xz}" ;;
		*.ko.zst) mkdir -p "$root/$(dirname "$f")" && zstd -qdc "$kroot/$f" >"$root/${f%.zst}" ;;
		*.ko.gz) mkdir -p "$root/$(dirname "$f")" && gzip -dc "$kroot/$f" >"$root/${f%.gz}" ;;
		*) die "unexpected module file $f" ;;
		esac
	done < <(module_closure "$kroot" "$kver" "$@")
	sed -i 's/\.ko\.\(xz\|zst\|gz\)$/.ko/' "$root/$mdir/modules.order" 2>/dev/null || true
	depmod -b "$root" "$kver"
	boot_module_list "$kroot" "$kver" "$@" >"$root/lab/modules.boot"
}

pack_cpio() { # DIR > archive
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet)
}

# ensure_base MODULE...: prints the path of the cached base archive, building it if needed.
ensure_base() {
	local kroot=$KERNEL_DIR/current kver key out tmp
	kver=$(cat "$kroot/KVER")
	key=$({
		readlink -f "$kroot"
		printf '%s\n' "$@"
		dpkg-query -W -f='${Package}=${Version}\n' busybox-static iproute2 ipvsadm libc6 kmod jq curl
		declare -f build_base_tree copy_with_libs module_closure boot_module_list pack_cpio
	} | sha256sum | cut -c1-16)
	out=$CACHE_DIR/base-$key.cpio
	if [[ ! -f $out ]]; then
		local t0=$EPOCHREALTIME
		log "building base initramfs ($key)"
		tmp=$(mktemp -d "$CACHE_DIR/.base.XXXXXX")
		build_base_tree "$tmp/root" "$(readlink -f "$kroot")" "$kver" "$@"
		pack_cpio "$tmp/root" >"$tmp/base.cpio"
		mv "$tmp/base.cpio" "$out" # atomic: concurrent runs never see half an archive
		rm -rf "$tmp"
		log "base initramfs built in $(elapsed "$t0") s ($(du -m "$out" | cut -f1) MiB)"
	fi
	# Keep the three most recently used bases: another key (other --module sets) may be in
	# use by a concurrent run; older ones are dead weight.
	touch "$out"
	find "$CACHE_DIR" -maxdepth 1 -name 'base-*.cpio' -printf '%T@ %p\n' | sort -rn |
		tail -n +4 | cut -d' ' -f2- | xargs -r rm -f
	printf '%s\n' "$out"
}

# The guest's PID 1. Runs the scenario under a timeout and prints the result markers.
write_init() {
	cat >"$1" <<'EOF'
#!/bin/busybox sh
# /init of the raftlvs kernel lab (generated by deploy/lab/lab.sh).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
exec </dev/console >/dev/console 2>&1
up() { cut -d' ' -f1 /proc/uptime; }
# Markers start on a fresh line: the firmware and the scenario may leave one unfinished.
echo
echo "@@LAB-INIT uptime=$(up)@@"
hostname lab
ip link set lo up
for m in $(cat /lab/modules.boot); do
	modprobe "$m" || echo "lab-init: modprobe $m failed"
done
. /lab/run.conf
echo "@@LAB-READY uptime=$(up) kernel=$(uname -r)@@"
cd /
start=$(cut -d. -f1 /proc/uptime)
timeout "$LAB_TIMEOUT" /bin/bash /scenario.sh </dev/null
rc=$?
end=$(cut -d. -f1 /proc/uptime)
if [ $((end - start)) -ge "$LAB_TIMEOUT" ]; then
	echo "lab-init: scenario killed after its ${LAB_TIMEOUT}s timeout (rc=$rc); the logs it left:"
	/bin/bash -c '. /lab/lib.sh; lab_show_logs 80'
	echo "@@LAB-TIMEOUT@@"
fi
echo
echo "@@LAB-RESULT rc=$rc@@"
sync
poweroff -f
EOF
	chmod 0755 "$1"
}

# build_overlay DIR: everything that may change between runs.
build_overlay() {
	local root=$1 spec src dst tool
	mkdir -p "$root/lab" "$root/bin"
	write_init "$root/init"
	install -m 0644 "$LAB_DIR/lib.sh" "$root/lab/lib.sh"
	install -m 0644 "$LAB_DIR/cluster.sh" "$root/lab/cluster.sh"
	install -m 0755 "$SCENARIO" "$root/scenario.sh"
	printf 'export LAB_TIMEOUT=%s LAB_SCENARIO=%s\n' "$TIMEOUT" "$(basename "$SCENARIO" .sh)" >"$root/lab/run.conf"
	if [[ -n $BIN ]]; then
		install -m 0755 "$BIN" "$root/bin/raftlvs"
		# A CGO binary would need its libraries; a CGO_ENABLED=0 one has none.
		local lib
		for lib in $(ldd "$BIN" 2>/dev/null | grep -o '/[^ ]*' || true); do
			[[ -e $root$lib ]] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
		done
	fi
	for tool in "${TOOLS[@]}"; do
		copy_with_libs "$root" "$tool"
	done
	for spec in "${ADDS[@]}"; do
		src=${spec%%:*} dst=${spec#*:}
		mkdir -p "$root$(dirname "$dst")"
		cp -a "$src" "$root$dst"
	done
}

# ---------------------------------------------------------------------------------------
# run: boot, stream the console, report
# ---------------------------------------------------------------------------------------

elapsed() { # T0 -> seconds since T0 (EPOCHREALTIME), one decimal
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

VM_PID=
RUN_TMP=
cleanup() {
	# Never leave a qemu behind: it is ours, known by pid (the host-side timeout wrapper,
	# which passes the signal on to qemu).
	if [[ -n $VM_PID ]] && kill -0 "$VM_PID" 2>/dev/null; then
		kill -TERM "$VM_PID" 2>/dev/null || true
		wait "$VM_PID" 2>/dev/null || true
	fi
	[[ -n $RUN_TMP ]] && rm -rf "$RUN_TMP"
	return 0
}

# Boot the VM on INITRD, copy its console to stdout and LOG, note when markers appear.
boot_vm() {
	local initrd=$1 logf=$2 kroot=$KERNEL_DIR/current line t0
	local host_timeout=$((TIMEOUT + BOOT_ALLOWANCE))
	: >"$logf"
	t0=$EPOCHREALTIME
	T_INIT='' T_READY='' T_RESULT=''

	timeout --kill-after=5 "$host_timeout" \
		qemu-system-x86_64 -accel tcg -cpu max -m "$VM_MEM" -smp "$VM_SMP" \
		-nographic -no-reboot -nic none \
		-kernel "$kroot/boot/vmlinuz-$(cat "$kroot/KVER")" -initrd "$initrd" \
		-append "$VM_APPEND" </dev/null >"$logf" 2>&1 &
	VM_PID=$!
	# tail --pid ends once qemu (its timeout wrapper) has exited and the log is drained.
	while IFS= read -r line; do
		line=${line%$'\r'}
		# Drop the firmware's terminal escapes (clear screen, wrap off): noise in a log.
		line=${line//$'\e'[\[]*([0-9;?])[A-Za-z]/}
		line=${line//$'\e'c/}
		case $line in
		*@@LAB-INIT*) T_INIT=$(elapsed "$t0") ;;
		*@@LAB-READY*) T_READY=$(elapsed "$t0") ;;
		*@@LAB-RESULT*) T_RESULT=$(elapsed "$t0") ;;
		esac
		if [[ -n ${LAB_CONSOLE_SCENARIO_ONLY:-} ]]; then
			# Only what the scenario prints: no firmware, kernel or marker lines.
			[[ -n $T_READY && -z $T_RESULT && $line != *@@LAB-* ]] || continue
			[[ $line =~ ^\[\ *[0-9]+\.[0-9]{6}\] ]] && continue
		fi
		printf '%s\n' "$line"
	done < <(tail -n +1 -s 0.2 -f --pid="$VM_PID" "$logf")
	VM_RC=0
	wait "$VM_PID" || VM_RC=$?
	VM_PID=
	T_END=$(elapsed "$t0")
}

cmd_run() {
	SCENARIO='' BIN='' TIMEOUT=300 LOGF=''

	ADDS=() TOOLS=() EXTRA_MODULES=()
	while (($#)); do
		case $1 in
		--bin) BIN=${2:?--bin needs a path}; shift 2 ;;
		--timeout) TIMEOUT=${2:?--timeout needs seconds}; shift 2 ;;
		--add) ADDS+=("${2:?--add needs SRC:DST}"); shift 2 ;;
		--tool) TOOLS+=("${2:?--tool needs a path}"); shift 2 ;;
		--module) EXTRA_MODULES+=("${2:?--module needs a name}"); shift 2 ;;
		--log) LOGF=${2:?--log needs a file}; shift 2 ;;
		-h | --help) usage; exit 0 ;;
		-*) die "unknown option $1" ;;
		*) [[ -z $SCENARIO ]] || die "one scenario per run"; SCENARIO=$1; shift ;;
		esac
	done
	[[ -n $SCENARIO ]] || { usage >&2; exit 2; }
	[[ -f $SCENARIO ]] || [[ ! -f $LAB_DIR/scenarios/$SCENARIO.sh ]] || SCENARIO=$LAB_DIR/scenarios/$SCENARIO.sh
	[[ -f $SCENARIO ]] || die "no scenario $SCENARIO"
	[[ $TIMEOUT =~ ^[0-9]+$ && $TIMEOUT -gt 0 ]] || die "--timeout wants whole seconds"
	[[ -z $BIN || -f $BIN ]] || die "--bin $BIN: no such file"
	local spec tool
	for spec in "${ADDS[@]}"; do
		[[ $spec == *:/* ]] || die "--add $spec: want SRC:/ABSOLUTE/DST"
		[[ -e ${spec%%:*} ]] || die "--add $spec: no such source"
	done
	for tool in "${TOOLS[@]}"; do [[ -x $tool ]] || die "--tool $tool: not an executable path"; done
	[[ $(id -u) -eq 0 ]] || die "run needs root (mknod, and setup may install packages)"

	ensure_setup
	trap cleanup EXIT
	trap 'log "interrupted: stopping the VM"; exit 130' INT
	trap 'log "terminated: stopping the VM"; exit 143' TERM

	local name t0 base initrd logf
	name=$(basename "$SCENARIO" .sh)
	mkdir -p "$LOG_DIR"
	find "$LOG_DIR" -name '*.log' -mtime +7 -delete # a week of console logs is plenty
	logf=${LOGF:-$LOG_DIR/$name-$(date +%Y%m%d-%H%M%S)-$$.log}
	RUN_TMP=$(mktemp -d "$CACHE_DIR/.run.XXXXXX")

	t0=$EPOCHREALTIME
	base=$(ensure_base "${BOOT_MODULES[@]}" "${EXTRA_MODULES[@]}")
	build_overlay "$RUN_TMP/overlay"
	initrd=$RUN_TMP/initrd.cpio
	{ cat "$base"; pack_cpio "$RUN_TMP/overlay"; } >"$initrd"
	local t_pack
	t_pack=$(elapsed "$t0")
	log "initramfs $(du -m "$initrd" | cut -f1) MiB packed in ${t_pack} s; booting $name (timeout ${TIMEOUT}s)"

	boot_vm "$initrd" "$logf"
	report "$name" "$logf" "$t_pack"
}

# Turn the console log into the run's exit status, and print the timings.
report() {
	local name=$1 logf=$2 t_pack=$3 rc
	rc=$(tr -d '\r' <"$logf" | sed -n 's/.*@@LAB-RESULT rc=\([0-9]\{1,3\}\)@@.*/\1/p' | tail -n 1)
	log "timings: pack ${t_pack}s, boot to /init ${T_INIT:-?}s, modules loaded ${T_READY:-?}s," \
		"scenario done ${T_RESULT:-?}s, vm exit ${T_END}s (from qemu start)"
	log "console log: $logf"
	# Figures a scenario printed with lab_figure, gathered in one place.
	tr -d '\r' <"$logf" | sed -n 's/.*@@LAB-FIGURE \(.*\)@@.*/\1/p' | while IFS= read -r fig; do
		log "figure: $fig"
	done
	if [[ -z $rc ]]; then
		if [[ $VM_RC -eq 124 || $VM_RC -eq 137 ]]; then
			log "FAIL: $name: the VM did not finish within $((TIMEOUT + BOOT_ALLOWANCE)) s (host timeout); no result marker"
			exit 124
		fi
		grep -q 'Kernel panic' "$logf" && log "the guest kernel panicked (see the log)"
		log "FAIL: $name: no @@LAB-RESULT marker on the console (qemu exit status $VM_RC)"
		exit 125
	fi
	if grep -q '@@LAB-TIMEOUT@@' "$logf"; then
		log "FAIL: $name: the scenario hit its ${TIMEOUT}s timeout (rc=$rc)"
	elif [[ $rc -eq 0 ]]; then
		log "PASS: $name"
	else
		log "FAIL: $name (rc=$rc)"
	fi
	exit "$rc"
}

# ---------------------------------------------------------------------------------------
# test, demo, bench, gotests: the canned runs
# ---------------------------------------------------------------------------------------

# The scenarios `lab.sh test` runs, in this order, each in a VM of its own (a fresh kernel
# per scenario: no state leaks from one to the next). Seconds are their guest timeouts.
TEST_SCENARIOS=(forwarding:240 failover:240 drift:240 restart:240 agents:300 health:300 rogue:240 gotests:300)

# build_gotests DIR: the Go lab tests as static test binaries, one per package.
build_gotests() {
	local dir=$1 pkg repo
	repo=$(cd "$LAB_DIR/../.." && pwd)
	command -v go >/dev/null || die "go is needed to build the lab tests"
	mkdir -p "$dir"
	for pkg in ./director/ipvs ./director/syncd ./realserver; do
		log "building the lab tests of $pkg"
		(cd "$repo" && CGO_ENABLED=0 GOFLAGS=-tags=hashicorpmetrics,lab \
			go test -c -o "$dir/$(echo "${pkg#./}" | tr / -).test" "$pkg") ||
			die "go test -c $pkg failed"
	done
}

# lab_subrun ARGS...: `lab.sh run ARGS` in a child process (run exits; we go on).
lab_subrun() { "$LAB_DIR/lab.sh" run "$@"; }

cmd_test() {
	local bin='' only=() spec name timeout rc t0 failed=0 results=()
	while (($#)); do
		case $1 in
		--bin) bin=${2:?--bin needs a path}; shift 2 ;;
		--only) only+=("${2:?--only needs a scenario name}"); shift 2 ;;
		*) die "test: unknown argument $1" ;;
		esac
	done
	[[ -n $bin && -f $bin ]] || die "test needs --bin PATH (the raftlvs binary)"
	[[ $(id -u) -eq 0 ]] || die "test needs root"
	ensure_setup
	GOTESTS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/raftlvs-gotests.XXXXXX")
	trap 'rm -rf "$GOTESTS_DIR"' EXIT
	local t_all=$EPOCHREALTIME
	for spec in "${TEST_SCENARIOS[@]}"; do
		name=${spec%%:*} timeout=${spec#*:}
		if ((${#only[@]})) && [[ " ${only[*]} " != *" $name "* ]]; then continue; fi
		t0=$EPOCHREALTIME
		rc=0
		if [[ $name == gotests ]]; then
			build_gotests "$GOTESTS_DIR"
			lab_subrun gotests --timeout "$timeout" --add "$GOTESTS_DIR:/lab/gotests" || rc=$?
		else
			lab_subrun "$name" --bin "$bin" --timeout "$timeout" || rc=$?
		fi
		results+=("$(printf '%-12s %-4s %6s s' "$name" "$([[ $rc -eq 0 ]] && echo PASS || echo "FAIL($rc)")" "$(elapsed "$t0")")")
		[[ $rc -eq 0 ]] || failed=$((failed + 1))
	done
	log "---- lab test summary ($(elapsed "$t_all") s)"
	printf 'lab:   %s\n' "${results[@]}" >&2
	((failed == 0)) || { log "FAIL: $failed scenario(s) failed"; exit 1; }
	log "PASS: every scenario passed"
}

cmd_demo() {
	local bin=''
	while (($#)); do
		case $1 in
		--bin) bin=${2:?--bin needs a path}; shift 2 ;;
		*) die "demo: unknown argument $1" ;;
		esac
	done
	[[ -n $bin && -f $bin ]] || die "demo needs --bin PATH (the raftlvs binary)"
	log "booting the lab VM (about 10 s, more on a busy machine); the full console goes to the log"
	LAB_CONSOLE_SCENARIO_ONLY=1 LAB_APPEND=${LAB_APPEND:-console=ttyS0 quiet loglevel=3 panic=-1} \
		exec "$LAB_DIR/lab.sh" run demo --bin "$bin" --timeout 300
}

cmd_bench() {
	local bin='' trials=10 services=10000 servers=10
	while (($#)); do
		case $1 in
		--bin) bin=${2:?--bin needs a path}; shift 2 ;;
		--trials) trials=${2:?}; shift 2 ;;
		--services) services=${2:?}; shift 2 ;;
		--servers) servers=${2:?}; shift 2 ;;
		*) die "bench: unknown argument $1" ;;
		esac
	done
	[[ -n $bin && -f $bin ]] || die "bench needs --bin PATH (the raftlvs binary)"
	[[ $trials =~ ^[0-9]+$ && $services =~ ^[0-9]+$ && $servers =~ ^[0-9]+$ ]] || die "bench: numbers wanted"
	local conf gotests
	conf=$(mktemp "${TMPDIR:-/tmp}/raftlvs-bench.XXXXXX")
	gotests=$(mktemp -d "${TMPDIR:-/tmp}/raftlvs-gotests.XXXXXX")
	trap 'rm -rf "$conf" "$gotests"' EXIT
	printf 'BENCH_TRIALS=%s BENCH_SERVICES=%s BENCH_SERVERS=%s\n' "$trials" "$services" "$servers" >"$conf"
	build_gotests "$gotests" # for BenchmarkLabProgram10k
	local rc=0
	LAB_MEM=${LAB_MEM:-4096} LAB_APPEND=${LAB_APPEND:-console=ttyS0 quiet loglevel=3 panic=-1} \
		"$LAB_DIR/lab.sh" run bench --bin "$bin" --timeout 3000 --add "$conf:/lab/bench.conf" --add "$gotests:/lab/gotests" || rc=$?
	exit "$rc"
}

cmd_gotests() {
	[[ $(id -u) -eq 0 ]] || die "gotests needs root"
	GOTESTS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/raftlvs-gotests.XXXXXX")
	trap 'rm -rf "$GOTESTS_DIR"' EXIT
	build_gotests "$GOTESTS_DIR"
	lab_subrun gotests --timeout 300 --add "$GOTESTS_DIR:/lab/gotests"
}

main() {
	local cmd=${1:-help}
	(($#)) && shift
	case $cmd in
	setup) cmd_setup "$@" ;;
	run) cmd_run "$@" ;;
	test) cmd_test "$@" ;;
	demo) cmd_demo "$@" ;;
	bench) cmd_bench "$@" ;;
	gotests) cmd_gotests "$@" ;;
	help | -h | --help) usage ;;
	*) usage >&2; exit 2 ;;
	esac
}

main "$@"
