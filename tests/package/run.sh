#!/usr/bin/env bash
# The Debian package on a clean Debian 12 root: build it (scripts/package), install it with apt
# into a debootstrap'ed bookworm (minbase) chroot, start the daemon there as the sioc user with
# the configuration the maintainer script wrote, answer a socket.io-client and the probes over
# loopback (in a network namespace of its own, so no port of this machine is taken), check
# sd_notify (READY=1, RELOADING=1 on SIGHUP, STOPPING=1), reload the log level, stop it, and
# purge the package: nothing of it may remain.
#
# Needs root, debootstrap, unshare and ip; the Debian root is made once and cached as a tar in
# SIOC_PACKAGE_CACHE (default /var/cache/sioc-package-test), with the .debs apt fetched.
#   SIOC_DEB=path.deb        test this package instead of building one
#   SIOC_DEBIAN_MIRROR=URL   debootstrap's mirror (default http://deb.debian.org/debian)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache=${SIOC_PACKAGE_CACHE:-/var/cache/sioc-package-test}
mirror=${SIOC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
started=$SECONDS

say() { echo "package: $*"; }
fail() {
    echo "package: FAIL: $*" >&2
    exit 1
}
[[ $(id -u) -eq 0 ]] || fail "needs root (chroot, mount)"
for tool in debootstrap unshare ip chroot /usr/bin/python3 node; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps --test)"
done

deb=${SIOC_DEB:-}
if [[ -z "$deb" ]]; then
    deb=$("$repo/scripts/package" | tail -1)
fi
[[ -f "$deb" ]] || fail "no package: $deb"
say "testing $(basename "$deb") ($((SECONDS - started)) s)"

mkdir -p "$cache/archives"
base="$cache/bookworm-minbase.tar"
if [[ ! -f "$base" ]]; then
    say "creating the cached Debian 12 root (debootstrap, once)"
    fresh=$(mktemp -d)
    if ! timeout 900 debootstrap --variant=minbase bookworm "$fresh/root" "$mirror" >"$fresh/log" 2>&1; then
        tail -20 "$fresh/log"
        rm -rf --one-file-system "$fresh"
        fail "debootstrap failed"
    fi
    tar -C "$fresh/root" -cf "$base.new" .
    mv "$base.new" "$base"
    rm -rf --one-file-system "$fresh"
fi

work=$(mktemp -d /tmp/sioc-package-XXXXXX)
root="$work/root"
mounted=0
cleanup() {
    [[ -n "${notify_pid:-}" ]] && kill "$notify_pid" 2>/dev/null || true
    if [[ $mounted -eq 1 ]]; then
        umount "$root/proc" || { echo "package: cannot unmount $root/proc; left $work" >&2; return; }
    fi
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
mkdir -p "$root"
tar -C "$root" -xf "$base"
mount -t proc proc "$root/proc"
mounted=1
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/sioc.deb"
cp "$cache"/archives/*.deb "$root/var/cache/apt/archives/" 2>/dev/null || true
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

say "installing with apt-get ($((SECONDS - started)) s)"
in_root apt-get update -qq >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "apt-get update"; }
DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -qq --no-install-recommends /tmp/sioc.deb \
    >>"$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "apt-get install"; }
cp "$root"/var/cache/apt/archives/*.deb "$cache/archives/" 2>/dev/null || true
in_root dpkg -L sioc | sort >"$work/files"

# What the package and its maintainer script put in place.
in_root id sioc >/dev/null || fail "no sioc user"
[[ $(in_root stat -c '%U:%G %a' /var/lib/sioc) == "sioc:sioc 750" ]] || fail "/var/lib/sioc: $(in_root stat -c '%U:%G %a' /var/lib/sioc)"
[[ $(in_root stat -c '%U:%G %a' /etc/sioc/sioc.json) == "root:sioc 640" ]] || fail "/etc/sioc/sioc.json: $(in_root stat -c '%U:%G %a' /etc/sioc/sioc.json)"
grep -q '@JWT_SECRET@\|@API_KEY@' "$root/etc/sioc/sioc.json" && fail "placeholders left in /etc/sioc/sioc.json"
for file in /usr/bin/sioc /usr/include/sioc.h /usr/lib/systemd/system/sioc.service \
    /usr/share/man/man1/sioc.1.gz /usr/share/man/man5/sioc.json.5.gz /usr/share/sioc/sioc.json; do
    grep -qx "$file" "$work/files" || fail "$file is not in the package"
done
grep -q '^/usr/lib/x86_64-linux-gnu/libsioc.so.0' "$work/files" || grep -q '^/usr/lib/.*/libsioc.so.0' "$work/files" ||
    fail "libsioc.so.0 is not in the package"
grep -q '^prefix=/usr$' "$root"/usr/lib/*/pkgconfig/sioc.pc || fail "sioc.pc: prefix is not /usr"
in_root su -s /bin/sh sioc -c 'sioc check-config /etc/sioc/sioc.json' || fail "check-config as sioc"
in_root sioc version
if command -v systemd-analyze >/dev/null; then
    # The unit's syntax, directives and executables (the chroot's). The root has no systemd of
    # its own, so the missing default dependencies (sysinit.target) are not the unit's problem.
    SYSTEMD_LOG_LEVEL=err systemd-analyze verify --man=no --root="$root" \
        /usr/lib/systemd/system/sioc.service >"$work/verify.log" 2>&1 || true
    if grep -v -e 'Unit sysinit.target not found' -e 'Failed to create sioc.service/start' "$work/verify.log" | grep -q .; then
        cat "$work/verify.log"
        fail "systemd-analyze verify sioc.service"
    fi
fi

secret=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["auth"]["jwt"]["secret"])' "$root/etc/sioc/sioc.json")
token=$(in_root sioc token --secret "$secret" --subject 7 --claim firstName=Pat)

say "starting the daemon in the root as sioc ($((SECONDS - started)) s)"
# One network namespace for the daemon, the notify listener and the client: its own loopback.
cat >"$work/inside.sh" <<INSIDE
set -euo pipefail
ip link set lo up
/usr/bin/python3 "$here/notify.py" "$root/run/sioc-notify" >"$work/notify.log" &
notify=\$!
for i in \$(seq 50); do [[ -S "$root/run/sioc-notify" ]] && break; sleep 0.1; done
chroot --userspec=sioc:sioc "$root" env -i PATH=/usr/bin:/bin NOTIFY_SOCKET=/run/sioc-notify \
    sh -c 'cd /var/lib/sioc && exec /usr/bin/sioc serve --config /etc/sioc/sioc.json' \
    >"$work/daemon.out" 2>"$work/daemon.err" &
daemon=\$!
for i in \$(seq 100); do grep -q READY=1 "$work/notify.log" && break; sleep 0.1; done
grep -q READY=1 "$work/notify.log" || { echo "no READY=1"; cat "$work/daemon.err"; exit 1; }
timeout 20 node "$here/client.mjs" http://127.0.0.1:3000 http://127.0.0.1:3001 "$token"
# SIGHUP: log level debug in the file, applied without a restart.
sed -i 's/"level": "info"/"level": "debug"/' "$root/etc/sioc/sioc.json"
kill -HUP \$daemon
for i in \$(seq 50); do grep -q 'read again: log level debug' "$work/daemon.err" && break; sleep 0.1; done
grep -q 'read again: log level debug' "$work/daemon.err" || { echo "SIGHUP not applied"; cat "$work/daemon.err"; exit 1; }
kill -0 \$daemon
kill -TERM \$daemon
status=0
timeout 15 tail --pid=\$daemon -f /dev/null || status=\$?
wait \$daemon || status=\$?
sleep 0.2
kill \$notify 2>/dev/null || true
exit \$status
INSIDE
timeout 60 unshare --net bash "$work/inside.sh" || {
    echo "--- daemon stdout"; cat "$work/daemon.out" 2>/dev/null
    echo "--- daemon stderr"; cat "$work/daemon.err" 2>/dev/null
    fail "the daemon in the root did not serve the client and stop with 0"
}
for state in READY=1 RELOADING=1 STOPPING=1; do
    grep -qx "$state" "$work/notify.log" || fail "sd_notify: no $state (got: $(tr '\n' ' ' <"$work/notify.log"))"
done
grep -q '^listening on 127.0.0.1:3000$' "$work/daemon.out" || fail "no listening line"
grep -q ' info  stopped$' "$work/daemon.err" || fail "the daemon did not log its stop"
[[ -s "$root/var/lib/sioc/sioc.db" ]] || fail "no database in /var/lib/sioc"

say "purging ($((SECONDS - started)) s)"
DEBIAN_FRONTEND=noninteractive in_root apt-get purge -y -qq sioc >"$work/purge.log" 2>&1 ||
    { cat "$work/purge.log"; fail "apt-get purge"; }
in_root dpkg -s sioc >/dev/null 2>&1 && fail "still installed after purge"
left=()
while read -r file; do
    [[ -e "$root$file" && ! -d "$root$file" ]] && left+=("$file")
done <"$work/files"
for path in /etc/sioc /var/lib/sioc; do [[ -e "$root$path" ]] && left+=("$path"); done
((${#left[@]} == 0)) || fail "left after purge: ${left[*]}"
say "ok: installed, served a client, reloaded, stopped, purged ($((SECONDS - started)) s)"
echo "package: 1 passed, 0 failed"
