# Sourced by the scripts/bench-* benchmarks: what they all do the same way. Defines functions
# only (and cleanup_pools, from cleanup-pools.sh beside it); sets no shell option.
# log/die prefix lines with BENCH_NAME, by default the script's file name.

# shellcheck source=scripts/lib/cleanup-pools.sh
source "$(dirname "${BASH_SOURCE[0]}")/cleanup-pools.sh"

log() { printf '[%s %(%H:%M:%S)T] %s\n' "${BENCH_NAME:-${0##*/}}" -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The comment block at the top of the script (from its second line), without the "# ".
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }

# ensure_tools COMMAND=PACKAGE...: as root, installs the Debian package of every COMMAND
# missing here (apt-get update only then).
ensure_tools() {
  [[ $EUID -eq 0 ]] || die "run as root: it mounts filesystems and runs btrfs send/receive"
  command -v node >/dev/null || die "node (>= 20) is needed"
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# private_build NAME PATH...: compiles the working tree of the repository this file is in
# into its .bench/NAME/dist, beside a copy of package.json (which makes the .js files ES
# modules, and which main.js reads its version from); node_modules is found in the
# repository above. A benchmark runs for minutes, and someone rebuilding dist/ meanwhile
# would swap the code under it. Sets BUILT_DIST, and REVISION to the commit, "with
# uncommitted changes" when git has any in PATH...
private_build() {
  local name=$1 repo out
  shift
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  out="$repo/.bench/$name"
  REVISION="commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '(unknown)')"
  [[ -z $(git -C "$repo" status --porcelain -- "$@" 2>/dev/null) ]] || REVISION+=" with uncommitted changes"
  log "building buttersink into $out (tsc)"
  [[ -x $repo/node_modules/.bin/tsc ]] || (cd "$repo" && npm ci --no-audit --no-fund)
  rm -rf "$out"
  mkdir -p "$out"
  cp "$repo/package.json" "$out/"
  (cd "$repo" && npx tsc -p tsconfig.json --outDir "$out/dist")
  BUILT_DIST="$out/dist"
}

# private_bundle: after private_build, buttersink as the package installs it beside that build:
# the esbuild bundle in BUILT_DIST/bundle (scripts/bundle.mjs) and bin/ (whose buttersink.js
# loads it). Sets BUILT_CLI to that bin/buttersink.js: the command users run, a few files to
# load instead of ~200 small modules (private_build's paths should include bin and
# scripts/bundle.mjs and scripts/bundle, so that REVISION notes changes there).
private_bundle() {
  local repo
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  log "bundling into $BUILT_DIST/bundle (esbuild)"
  node "$repo/scripts/bundle.mjs" "$BUILT_DIST" >/dev/null
  cp -r "$repo/bin" "$(dirname "$BUILT_DIST")/"
  BUILT_CLI="$(dirname "$BUILT_DIST")/bin/buttersink.js"
}

# make_pool IMAGE MOUNTPOINT SIZE: a fresh btrfs on a sparse image file, loop-mounted
# nodiscard: btrfs on a loop device defaults to discard=async, which punches the space of
# deleted runs out of the image file minutes later (extents must stay free for a while
# first), in the middle of whatever run is timed then. Space inside the pool is reused all
# the same; the image only keeps its blocks. The loop device is autoclear: umount detaches it.
make_pool() {
  mkdir -p "$(dirname "$1")" "$2"
  truncate -s "$3" "$1"
  mkfs.btrfs -q "$1" >/dev/null
  mount -o loop,nodiscard "$1" "$2"
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# rotate RUNS FUNCTION METHOD...: calls FUNCTION METHOD REPETITION for every method, RUNS
# repetitions, the order rotated by one each repetition, so that no method always goes first.
# (Its locals are prefixed: bash's locals are visible to the functions it calls.)
rotate() {
  local rotate_runs=$1 rotate_call=$2 rotate_rep rotate_i
  shift 2
  local rotate_methods=("$@")
  for ((rotate_rep = 1; rotate_rep <= rotate_runs; rotate_rep++)); do
    for rotate_i in "${!rotate_methods[@]}"; do
      "$rotate_call" "${rotate_methods[(rotate_i + rotate_rep - 1) % ${#rotate_methods[@]}]}" "$rotate_rep"
    done
  done
}

# CPU time the hypervisor gave to others while this machine wanted it (all CPUs, in ticks):
# a virtual machine's timings are only as good as its host is quiet.
steal_ticks() { awk '$1 == "cpu" { print $9 }' /proc/stat; }

# steal_summary "SECONDS:LABEL ...": the total and the worst run, or "none".
steal_summary() {
  tr ' ' '\n' <<<"$1" | grep . | sort -g | awk -F: '
    { total += $1; last = $1; worst = $2 }
    END { if (last + 0 < 0.005) print "none"; else printf "%.2f s in all, at most %.2f s in one run (%s)", total, last, worst }'
}

# --- numbers (awk: a fresh machine may lack bc) ---------------------------------------------
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; } # START END ($EPOCHREALTIME)
calc() { awk "BEGIN { printf \"$1\", $2 }"; }                           # FORMAT EXPRESSION
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }         # BYTES
# The median of the numbers on stdin, separated by spaces or newlines.
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The numbers on stdin (spaces or newlines) as "a, b, c".
list() { tr ' ' '\n' | grep . | paste -sd, | sed 's/,/, /g'; }
# ratio_bounds "A-TIMES" "B-TIMES": the lowest and highest A/B over runs paired in order (the
# runs of one repetition ran back to back), as "LOW HIGH".
ratio_bounds() {
  paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) |
    awk '{ x = $1 / $2; if (NR == 1 || x < lo) lo = x; if (NR == 1 || x > hi) hi = x } END { printf "%.2f %.2f\n", lo, hi }'
}

# manifest DIR [FILES-PER-B2SUM]: one line per entry (type, mode, owner, size, mtime, symlink
# target, path), then the BLAKE2 checksum of every file's content, hashed on both cores.
manifest() {
  (
    cd "$1"
    find . -printf '%y %m %U:%G %s %T@ %l %P\n' | LC_ALL=C sort
    find . -type f -print0 | xargs -0 -r -P2 -n "${2:-100}" b2sum | LC_ALL=C sort -k2
  )
}

# --- BENCHMARKS.md ------------------------------------------------------------------------------
# benchmarks_file FILE: creates it with its intro line when missing.
benchmarks_file() {
  [[ -f $1 ]] || printf '# Benchmarks\n\nMeasured results of the scripts in scripts/, one section per benchmark; each script rewrites only its own section (--record).\n' >"$1"
}

# record_section TITLE SECTION-FILE MARKDOWN-FILE: the section (its first line is TITLE) in
# place of the one titled TITLE, up to the next "## " heading, or appended; one blank line
# after it, none at the end of the file.
record_section() {
  local title=$1 body=$2 file=$3 tmp
  benchmarks_file "$file"
  tmp=$(mktemp "$file.XXXX")
  awk -v title="$title" -v body="$body" '
    function emit(line) { while ((getline line < body) > 0) lines[n++] = line; close(body); lines[n++] = ""; done = 1 }
    $0 == title { inside = 1; emit(); next }
    inside && /^## / { inside = 0 }
    inside { next }
    { lines[n++] = $0 }
    END {
      if (!done) { if (n > 0 && lines[n - 1] != "") lines[n++] = ""; emit() }
      while (n > 0 && lines[n - 1] == "") n--
      for (i = 0; i < n; i++) print lines[i]
    }
  ' "$file" >"$tmp"
  mv "$tmp" "$file"
  log "recorded in $file"
}
