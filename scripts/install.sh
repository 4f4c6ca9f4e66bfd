#!/usr/bin/env bash
# Builds the release binaries (Swift runtime linked statically, stripped: a copied binary runs on
# a Debian 12 host without Swift, needing only libnl-3-200, libnl-route-3-200, libnftnl11 and
# libmnl0) and installs them.
#
#   scripts/install.sh --prefix DIR [--with-conflists] [--force]
#       the plugins (one multi-call executable, netlab-cni, and a hard link per plugin name)
#       into DIR/opt/cni/bin; netlab and overlayd into DIR/usr/local/bin; the overlayd systemd
#       unit into DIR/etc/systemd/system; with --with-conflists the example conflists into
#       DIR/etc/cni/net.d. `--prefix /` is the system install.
#   scripts/install.sh --prefix DIR --uninstall
#       removes exactly what the install put there (files and the directories it created),
#       as its manifest DIR/usr/local/share/netlab/install-manifest lists them.
#   scripts/install.sh [DEST]
#       everything flat in DEST (default out/bin): what scripts/demo.sh and the docs' examples
#       run from (`--uninstall` works here too; its manifest is DEST/.netlab-install-manifest).
#
# A file that is already there and was not installed by this script is not replaced unless
# --force is given (it would be lost at --uninstall).
set -euo pipefail
caller_dir=$PWD
repo=$(cd "$(dirname "$0")/.." && pwd)

prefix="" dest="" conflists=0 uninstall=0 force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --with-conflists) conflists=1; shift ;;
    --uninstall) uninstall=1; shift ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$dest" ] || { echo "install.sh: one destination only" >&2; exit 2; }; dest=$1; shift ;;
  esac
done
if [ -n "$prefix" ] && [ -n "$dest" ]; then echo "install.sh: --prefix or a destination, not both" >&2; exit 2; fi
# Paths given are the caller's (relative to where it ran us); the default is the repository's.
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
[ -n "$prefix" ] && prefix=$(absolute "$prefix")
if [ -n "$dest" ]; then dest=$(absolute "$dest"); elif [ -z "$prefix" ]; then dest=$repo/out/bin; fi
cd "$repo"
. scripts/env.sh

if [ -n "$prefix" ]; then
  prefix=${prefix%/}
  plugin_dir=$prefix/opt/cni/bin bin_dir=$prefix/usr/local/bin
  unit_dir=$prefix/etc/systemd/system conf_dir=$prefix/etc/cni/net.d
  manifest=$prefix/usr/local/share/netlab/install-manifest
else
  dest=${dest%/}
  plugin_dir=$dest bin_dir=$dest unit_dir=$dest conf_dir=$dest
  manifest=$dest/.netlab-install-manifest
fi

# The manifest: "d DIR" for each directory the install created, "f FILE" for each file it
# wrote, in the order made. Uninstall undoes it backwards.
uninstall_all() {
  [ -f "$manifest" ] || { echo "install.sh: nothing installed here (no $manifest)" >&2; exit 1; }
  local entries kind path
  mapfile -t entries < <(tac "$manifest")
  rm -f -- "$manifest"
  for entry in "${entries[@]}"; do
    kind=${entry%% *} path=${entry#* }
    case "$kind" in
      f) rm -f -- "$path"; echo "removed $path" ;;
      # A directory the install made goes only when nothing else was put in it meanwhile.
      d) if rmdir -- "$path" 2>/dev/null; then echo "removed $path/"; else echo "kept $path/ (not empty)"; fi ;;
    esac
  done
}
if [ "$uninstall" = 1 ]; then uninstall_all; exit 0; fi

# A re-install keeps what an earlier install recorded (a conflist installed then and not now
# is still removed by --uninstall).
declare -A ours=()
created_dirs=() files=()
if [ -f "$manifest" ]; then
  while read -r kind path; do
    case "$kind" in
      f) ours[$path]=1; [ -e "$path" ] && files+=("$path") ;;
      d) created_dirs+=("$path") ;;
    esac
  done < "$manifest"
fi

make_dir() {  # mkdir -p, remembering each directory it created
  local d=$1 missing=()
  while [ ! -d "$d" ]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
  for d in "${missing[@]}"; do mkdir -m 0755 "$d"; created_dirs+=("$d"); done
}
check_replaceable() {
  if [ -e "$1" ] && [ -z "${ours[$1]:-}" ] && [ "$force" != 1 ]; then
    echo "install.sh: $1 exists and was not installed by this script; --force replaces it" >&2; exit 1
  fi
}
put() {  # put MODE SOURCE TARGET [strip]
  check_replaceable "$3"; make_dir "$(dirname "$3")"
  if [ "${4:-}" = strip ]; then install -m "$1" -s "$2" "$3"; else install -m "$1" "$2" "$3"; fi
  files+=("$3"); echo "installed $3"
}
write_manifest() {
  make_dir "$(dirname "$manifest")"
  { for d in "${created_dirs[@]}"; do echo "d $d"; done
    for f in "${files[@]}"; do echo "f $f"; done; } | awk '!seen[$0]++' > "$manifest.tmp"
  mv -f "$manifest.tmp" "$manifest"
}

# Build. overlayd is installed when this tree has it.
products=(netlab-cni netlab)
[ -d Sources/overlayd ] && products+=(overlayd)
release=.build-release/release
for p in "${products[@]}"; do
  swift build -c release --static-swift-stdlib --scratch-path .build-release --product "$p" >&2
done

# The plugins: one executable, a hard link per name it answers to.
put 0755 "$release/netlab-cni" "$plugin_dir/netlab-cni" strip
names=$("$release/netlab-cni" --list)
for name in $names; do
  check_replaceable "$plugin_dir/$name"
  ln -f "$plugin_dir/netlab-cni" "$plugin_dir/$name"
  files+=("$plugin_dir/$name"); echo "linked $plugin_dir/$name"
done

put 0755 "$release/netlab" "$bin_dir/netlab" strip
if [[ " ${products[*]} " == *" overlayd "* ]]; then
  put 0755 "$release/overlayd" "$bin_dir/overlayd" strip
else
  echo "note: this tree has no overlayd yet (Sources/overlayd); not installed" >&2
fi
if [ -n "$prefix" ] && [ -f conf/overlayd.service ]; then
  put 0644 conf/overlayd.service "$unit_dir/overlayd.service"
fi
if [ "$conflists" = 1 ]; then
  for c in conf/*.conflist; do [ -e "$c" ] && put 0644 "$c" "$conf_dir/$(basename "$c")"; done
fi
write_manifest
echo "manifest $manifest (scripts/install.sh ${prefix:+--prefix $prefix}${dest} --uninstall removes it all)"
