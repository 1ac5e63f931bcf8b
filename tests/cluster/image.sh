#!/usr/bin/env bash
# Builds the cluster test bed's Debian image (tests/cluster/), once: prints its directory.
#   tests/cluster/image.sh VAR_DIR
# The image is Debian 12 (what the hosts of README "Production" run) with systemd as PID 1,
# the packages the README installs, a Python 3.12 (Debian 12 has 3.11: the README allows one
# from pyenv, copied here from this machine's) and the project's virtualenv at
# /opt/pipeline/.venv, installed with pip from requirements/production.txt. The code itself
# is not in the image: each run clones the checkout (tests/cluster/bed.py).
# Cached under VAR_DIR/image-<key>, the key a hash of this file, the requirements and the
# Python; a build that fails leaves nothing behind.
set -euo pipefail

var=$1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python_home=$("$repo/.venv/bin/python" -c 'import sys; print(sys.base_prefix)')
python_version=$("$repo/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$(cat "$0" "$repo"/requirements/base.txt "$repo"/requirements/production.txt \
      <(echo "$python_home") | sha256sum | cut -c1-12)
image=$var/image-$key
if [ -d "$image/root" ]; then
    echo "$image"
    exit 0
fi

mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
build=$var/build-$key
rm -rf "$build"
mkdir -p "$build"
trap 'rm -rf "$build"' EXIT

log=$build.log
echo "building the cluster image in $image (log: $log)" >&2
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,iproute2,python3,curl,procps,ca-certificates \
    bookworm "$build/root" "$mirror" >"$log" 2>&1

# Packages install without starting anything (no systemd runs during the build).
printf '#!/bin/sh\nexit 101\n' >"$build/root/usr/sbin/policy-rc.d"
chmod 0755 "$build/root/usr/sbin/policy-rc.d"
in_image() {
    systemd-nspawn -q -D "$build/root" --register=no --keep-unit --pipe \
        --bind-ro="$build/wheels:/wheels" --bind-ro="$repo/requirements:/requirements" \
        sh -c "$1" >>"$log" 2>&1
}
mkdir -p "$build/wheels"
in_image 'export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq --no-install-recommends \
    postgresql redis-server redis-sentinel nginx git nftables iputils-ping netcat-openbsd \
    openssl passwd'

# Python 3.12: this machine's, at a path outside /root (the units' ProtectHome=yes hides it).
mkdir -p "$build/root/opt/python$python_version"
cp -a "$python_home/." "$build/root/opt/python$python_version/"
echo "/opt/python$python_version/lib" >"$build/root/etc/ld.so.conf.d/python$python_version.conf"
in_image "ldconfig && ln -sf /opt/python$python_version/bin/python$python_version /usr/local/bin/python$python_version"

# The virtualenv, from wheels fetched here by this machine's pip (its index and caches).
"$repo/.venv/bin/pip" download --quiet -d "$build/wheels" -r "$repo/requirements/production.txt" >>"$log" 2>&1
in_image "python$python_version -m venv /opt/pipeline/.venv && \
    /opt/pipeline/.venv/bin/pip install --quiet --no-index --find-links /wheels \
        -r /requirements/production.txt"

# The service user, with a fixed uid: the hosts share the media directory.
in_image 'useradd --system --uid 990 --user-group --home-dir /var/lib/pipeline \
    --shell /usr/sbin/nologin pipeline'
# Each host enables what its role needs; nothing starts by itself.
in_image 'systemctl disable postgresql redis-server redis-sentinel nginx 2>/dev/null || true;
    systemctl mask systemd-resolved.service getty@tty1.service 2>/dev/null || true'
rm -f "$build/root/usr/sbin/policy-rc.d"

# PID 1: nspawn mounts the cgroup v1 controllers read-only, so MemoryMax= and TasksMax= would
# silently not be enforced. Made writable, then systemd.
cat >"$build/root/usr/local/sbin/cluster-init" <<'EOF'
#!/bin/sh
for controller in memory pids cpu cpuacct blkio devices; do
    [ -d "/sys/fs/cgroup/$controller" ] && mount -o remount,bind,rw "/sys/fs/cgroup/$controller"
done
exec /lib/systemd/systemd "$@"
EOF
chmod 0755 "$build/root/usr/local/sbin/cluster-init"
echo "cluster" >"$build/root/etc/hostname"

mv "$build" "$image"
trap - EXIT
mv "$log" "$image/build.log"
echo "$image"
