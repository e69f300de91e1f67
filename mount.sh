#!/usr/bin/env bash
# mount.sh — the one-line way to try reservefs.
#   ./mount.sh                      build if needed, create ./store (1G) if absent, mount at ./mnt
#   ./mount.sh -u [MNT]             unmount (default ./mnt)
#   ./mount.sh STORE MNT [-o opts]  mount any other store (created with size=1G if absent)
set -euo pipefail
top=$(cd "$(dirname "$0")" && pwd)
bin="$top/build/fs/reservefs"

need_build() {
	[ -x "$bin" ] || return 0
	[ -n "$(find "$top/fs" "$top/reserve" "$top/cache" "$top/meson.build" -newer "$bin" -print -quit)" ]
}

if [ "${1:-}" = "-u" ]; then
	mnt=${2:-$top/mnt}
	fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"
	echo "unmounted $mnt"
	exit 0
fi

if ! command -v meson >/dev/null || ! pkg-config --exists fuse3 sqlite3 glib-2.0 2>/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq meson ninja-build pkg-config gcc \
			libfuse3-dev fuse3 libsqlite3-dev libglib2.0-dev >/dev/null
	else
		echo "mount.sh: install meson ninja-build pkg-config gcc libfuse3-dev fuse3 libsqlite3-dev libglib2.0-dev" >&2
		exit 1
	fi
fi
if need_build; then
	[ -d "$top/build" ] || meson setup "$top/build" >/dev/null
	ninja -C "$top/build" >/dev/null
fi

store=${1:-$top/store}
mnt=${2:-$top/mnt}
shift $(( $# >= 2 ? 2 : $# ))
if [ ! -e "$store/meta.db" ]; then
	"$bin" mkfs "$store" -o size=1G
fi
mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
	echo "mount.sh: $mnt is already a mount point" >&2
	exit 1
fi
"$bin" "$store" "$mnt" "$@"
for _ in $(seq 50); do mountpoint -q "$mnt" && break; sleep 0.1; done
df -h "$mnt" | tail -n 1
