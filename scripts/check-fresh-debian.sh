#!/usr/bin/env bash
# Runs README "Quick start" on a truly fresh Debian 12: a minimal root (mmdebstrap minbase
# bookworm), the committed HEAD cloned into it, line 1 run inside with chroot (and line 2 with
# --full). This is the only check that sees a package the project forgot to install: every other
# check runs on a machine where something may have been installed by hand.
#
# Usage: scripts/check-fresh-debian.sh [--full] [--rev REV] [--refresh] [--keep]
#   --full     also run Quick start line 2 (set-up and the whole test suite) inside the root
#   --rev REV  the commit to check (default HEAD; uncommitted changes are never seen)
#   --refresh  rebuild the cached base root instead of reusing it
#   --keep     leave the root directory for inspection (still unmounted)
# Needs root (or sudo) and the Debian registry, like scripts/setup.sh.
# Cache: $GMMAV_FRESH_CACHE (default /var/cache/gmmav-fresh-debian): the base root's tarball, the
# .deb files the root downloaded (only a download cache: apt inside still decides everything) and
# the last log of each line (last-quick-start-line-N.log).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

full=0 rev=HEAD refresh=0 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --full) full=1 ;;
    --rev) rev=${2:?--rev needs a commit}; shift ;;
    --refresh) refresh=1 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-fresh-debian: unknown argument '$1' (expected --full, --rev REV, --refresh, --keep)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "check-fresh-debian: needs root (chroot, mounts) and sudo is absent" >&2; exit 2; }
  exec sudo -E "$0" "$@"
fi

say() { echo "check-fresh-debian: $*"; }
commit=$(git -C "$repo" rev-parse --verify "$rev^{commit}") \
  || { say "'$rev' is not a commit of $repo" >&2; exit 2; }

# The two Quick start lines, read from the committed README (what a user of that commit reads).
quick_start_line() {  # $1 = 1 or 2
  git -C "$repo" show "$commit:README.md" | awk -v want="$1" '
    /^## Quick start/ { in_section = 1; next }
    in_section && /^## / { exit }
    in_section && /^```/ { if (in_block) exit; in_block = 1; next }
    in_block && NF { if (++n == want) { print; exit } }'
}
line1=$(quick_start_line 1)
line2=$(quick_start_line 2)
[ -n "$line1" ] && [ -n "$line2" ] || { say "README.md of $commit has no two-line Quick start block" >&2; exit 2; }

cache=${GMMAV_FRESH_CACHE:-/var/cache/gmmav-fresh-debian}
base=$cache/bookworm-minbase.tar
mkdir -p "$cache/apt-archives/partial"

if ! command -v mmdebstrap >/dev/null; then
  say "installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >/dev/null
fi
if [ "$refresh" = 1 ] || [ ! -s "$base" ]; then
  say "building a minimal Debian 12 root (mmdebstrap --variant=minbase bookworm) into $base"
  mmdebstrap --quiet --variant=minbase --format=tar bookworm "$base.part" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main"
  mv "$base.part" "$base"
else
  say "reusing the cached root $base (--refresh rebuilds it)"
fi

root=$(mktemp -d /var/tmp/gmmav-fresh-debian.XXXXXX)
mounted=()
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  # Processes still running inside the root (interrupted) hold its mounts: stop them first.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount -R "${mounted[$i]}" 2>/dev/null || umount -R -l "${mounted[$i]}" 2>/dev/null || true
  done
  if grep -q " $root/" /proc/mounts; then
    say "something is still mounted under $root; not deleting it" >&2
  elif [ "$keep" = 1 ]; then
    say "root kept in $root"
  else
    rm -rf --one-file-system "$root"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
for fs in proc sys dev; do
  mount --rbind "/$fs" "$root/$fs"
  mount --make-rslave "$root/$fs"
  mounted+=("$root/$fs")
done
mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
mounted+=("$root/var/cache/apt/archives")

# The committed tree only, as a user's clone would have it (no ../shared next to it).
git clone -q --no-hardlinks --no-checkout "$repo" "$root/root/gmmav"
git -C "$root/root/gmmav" checkout -q --detach "$commit"
say "checking $(git -C "$repo" log -1 --format='%h %s' "$commit" | cut -c1-80)"

in_root() {  # $1 = label, $2 = command line; output to $root/root/<label>.log
  local log=$root/root/$1.log start=$SECONDS rc=0
  say "$1: $2"
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /root/gmmav && $2" >"$log" 2>&1 &
  wait $! || rc=$?  # waiting in the background lets INT/TERM reach the trap at once
  cp "$log" "$cache/last-$1.log" 2>/dev/null || true  # the root is deleted at the end
  if [ "$rc" != 0 ]; then
    say "$1 FAILED (exit $rc, $((SECONDS - start)) s). First error:"
    first_error "$log"
    if grep -q "The following tests FAILED" "$log"; then
      sed -n '/The following tests FAILED/,$p' "$log" | head -n 30 | sed 's/^/  | /'
    fi
    say "whole log: $cache/last-$1.log"
    return 1
  fi
  say "$1 passed ($((SECONDS - start)) s); its last lines:"
  tail -n "${3:-6}" "$log" | sed 's/^/  | /'
}

first_error() {  # the first line that looks like a real error, with what follows it
  local n
  n=$(grep -n -m1 -E '^E: |CMake Error|error:|FAILED|Error [0-9]+|Errors while running|\*\*\*|not found|No such file|Could NOT find|Segmentation fault|Aborted|FAIL$' "$1" | cut -d: -f1 || true)
  if [ -n "$n" ]; then
    sed -n "$((n > 3 ? n - 3 : 1)),$((n + 15))p" "$1" | sed 's/^/  | /'
  else
    tail -n 30 "$1" | sed 's/^/  | /'
  fi
}

in_root quick-start-line-1 "$line1"
if [ "$full" = 1 ]; then
  in_root quick-start-line-2 "$line2" 12
fi
say "PASS"
