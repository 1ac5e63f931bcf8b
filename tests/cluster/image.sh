#!/usr/bin/env bash
# Builds the cluster test bed's Debian image (tests/cluster/), once: prints its directory.
#   tests/cluster/image.sh VAR_DIR
# The image is Debian 12 (what the hosts of README "Production" run) with systemd as PID 1,
# the packages the README installs, a Python 3.12 (Debian 12 has 3.11: the README allows one
# from pyenv, copied here from this machine's) and the project's virtualenv at
# /opt/pipeline/.venv, installed with pip from requirements/production.txt. The code itself
# is not in the image: each run copies the checkout (tests/cluster/bed.py).
# Cached under VAR_DIR/image-<key>, the key a hash of IMAGE_VERSION, the requirements and the
# Python. The build goes in stages under VAR_DIR/build; a failed one resumes at the stage
# that failed.
set -euo pipefail

# Bump when a stage below changes what it builds.
IMAGE_VERSION=1

var=$1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python_home=$("$repo/.venv/bin/python" -c 'import sys; print(sys.base_prefix)')
python_version=$("$repo/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$(cat <(echo "$IMAGE_VERSION $python_home") "$repo"/requirements/base.txt \
      "$repo"/requirements/production.txt | sha256sum | cut -c1-12)
image=$var/image-$key
if [ -d "$image/root" ]; then
    echo "$image"
    exit 0
fi

mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
build=$var/build
root=$build/root
mkdir -p "$build/wheels"
log=$build/build.log
echo "building the cluster image in $image (log: $log)" >&2

stage() {
    # stage NAME COMMAND...: runs COMMAND unless NAME was done.
    local name=$1
    shift
    [ -e "$build/done-$name" ] && return 0
    echo "== $name" >>"$log"
    "$@" >>"$log" 2>&1
    touch "$build/done-$name"
}
in_image() {
    systemd-nspawn -q -D "$root" --machine=pipeline-image --register=no --keep-unit --pipe \
        --bind-ro="$build/wheels:/wheels" --bind-ro="$repo/requirements:/requirements" \
        sh -c "$1"
}

bootstrap() {
    rm -rf "$root"
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,iproute2,python3,curl,procps,ca-certificates \
        bookworm "$root" "$mirror"
}
stage bootstrap bootstrap

packages() {
    # Packages install without starting anything (no systemd runs during the build).
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    in_image 'export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq \
        --no-install-recommends postgresql redis-server redis-sentinel nginx git nftables \
        iputils-ping netcat-openbsd openssl'
}
stage packages packages

python312() {
    # Python 3.12: this machine's, at a path outside /root (the units' ProtectHome=yes hides
    # /root); its shared library found through ld.so.conf.
    rm -rf "$root/opt/python$python_version"
    mkdir -p "$root/opt/python$python_version"
    cp -a "$python_home/." "$root/opt/python$python_version/"
    echo "/opt/python$python_version/lib" >"$root/etc/ld.so.conf.d/python$python_version.conf"
    in_image "ldconfig && ln -sf /opt/python$python_version/bin/python$python_version \
        /usr/local/bin/python$python_version && python$python_version -c 'import ssl, sqlite3'"
}
stage python python312

virtualenv() {
    # The wheels are fetched here, by this machine's pip (its index and caches).
    "$repo/.venv/bin/pip" download --quiet -d "$build/wheels" -r "$repo/requirements/production.txt"
    # By its real path: a virtualenv finds its Python's library from the directory it was
    # made with (a symlink elsewhere would send it to pyenv's compiled-in prefix).
    local python=/opt/python$python_version/bin/python$python_version
    in_image "rm -rf /opt/pipeline/.venv && \
        $python -m venv --without-pip /opt/pipeline/.venv && \
        $python -m pip --python /opt/pipeline/.venv/bin/python install \
            --quiet --no-index --find-links /wheels -r /requirements/production.txt && \
        /opt/pipeline/.venv/bin/python -c 'import django, daphne, psycopg, PIL'"
}
stage virtualenv virtualenv

finish() {
    # The service user, with a fixed uid: the hosts share the media directory.
    in_image 'id pipeline 2>/dev/null || useradd --system --uid 990 --user-group \
        --home-dir /var/lib/pipeline --shell /usr/sbin/nologin pipeline'
    # Each host enables what its role needs; nothing starts by itself.
    in_image 'systemctl disable postgresql redis-server redis-sentinel nginx || true;
        systemctl mask getty@tty1.service console-getty.service || true'
    rm -f "$root/usr/sbin/policy-rc.d"
    # PID 1: nspawn mounts the cgroup v1 controllers read-only, so MemoryMax= and TasksMax=
    # would silently not be enforced. Made writable, then systemd.
    cat >"$root/usr/local/sbin/cluster-init" <<'EOF'
#!/bin/sh
for controller in memory pids cpu cpuacct blkio devices; do
    [ -d "/sys/fs/cgroup/$controller" ] && mount -o remount,bind,rw "/sys/fs/cgroup/$controller"
done
exec /lib/systemd/systemd "$@"
EOF
    chmod 0755 "$root/usr/local/sbin/cluster-init"
}
stage finish finish

mkdir -p "$image"
mv "$root" "$image/root"
mv "$log" "$image/build.log"
rm -rf "$build"
echo "$image"
