#!/usr/bin/env bash
# Side by side: the TypeScript smoke this crate's live gate replaces, and the gate's `all`
# without pi, in interleaved pairs on the same machine, with medians and ratios.
#
#   scripts/side-by-side.sh [--ts DIR|FILE] [--runs N] [--gap S] [--pi] [--pi-runs N]
#
#   --ts DIR|FILE  the TypeScript smoke: the entwurf checkout it lives in (DIR, where
#                  scripts/smoke-entwurf-v2-spawn-live.ts is) or the .ts file itself.
#                  Also $SBS_TS. Without it only our side runs, and the output says so.
#   --runs N       interleaved pairs (default 15; also $SBS_RUNS): the TS smoke, then ours.
#   --gap S        seconds of rest before each run (default 0; also $SBS_GAP). On ext4
#                  without a journal every new inode is placed past the inodes deleted in
#                  the last 30 s, so back-to-back runs pay for each other's temp files
#                  (docs/performance.md); --gap 31 measures each run on a file system at
#                  rest, as a person running the gate once meets it.
#   --pi           also time our `pi` scenario alone with the installed real pi runtimes
#                  ($ENTWURF_REAL_PI_DIR or target/real-pi; ./run.sh install-pi first),
#                  after the pairs.
#   --pi-runs N    runs of `pi` (default 5).
#
# Node: the one `./run.sh node` prints, the Node >= 22.19 install-pi chose (the system's,
# or the pinned one in target/real-pi/node, or in $ENTWURF_REAL_PI_DIR/node when that is
# set). The TS smoke needs >= 22.6 (type stripping).
# Our binary: `./run.sh build` (release), or $ENTWURF_SMOKE_BIN.
#
# Each run gets a fresh scratch HOME and TMPDIR (removed after), must exit 0 and must
# print its summary line (`<name>[ (<scenario>)]: <N> checks passed ...`); anything else aborts the
# whole measurement with that run's output. Wall is measured here ($EPOCHREALTIME around
# the run, µs); CPU (user + sys) and peak RSS come from GNU time (/usr/bin/time, whose
# CPU figures have 10 ms resolution). Medians, p90, min and max per side; ratios TS/ours
# from the same run. The machine's load average is printed at the start and the end:
# compare only ratios from one run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ts=${SBS_TS:-}
runs=${SBS_RUNS:-15}
gap=${SBS_GAP:-0}
pi=""
pi_runs=5

die() {
  echo "[side-by-side] $*" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --ts) [ $# -ge 2 ] || die "--ts needs a directory or a file"; ts=$2; shift ;;
    --ts=*) ts=${1#--ts=} ;;
    --runs) [ $# -ge 2 ] || die "--runs needs a number"; runs=$2; shift ;;
    --runs=*) runs=${1#--runs=} ;;
    --gap) [ $# -ge 2 ] || die "--gap needs a number of seconds"; gap=$2; shift ;;
    --gap=*) gap=${1#--gap=} ;;
    --pi) pi=1 ;;
    --pi-runs) [ $# -ge 2 ] || die "--pi-runs needs a number"; pi_runs=$2; shift ;;
    --pi-runs=*) pi_runs=${1#--pi-runs=} ;;
    -h | --help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (--help lists them)" ;;
  esac
  shift
done
case "$runs" in '' | *[!0-9]* | 0) die "--runs must be a positive number, not '$runs'" ;; esac
case "$pi_runs" in '' | *[!0-9]* | 0) die "--pi-runs must be a positive number, not '$pi_runs'" ;; esac
case "$gap" in '' | *[!0-9]*) die "--gap must be a whole number of seconds, not '$gap'" ;; esac

gnu_time=/usr/bin/time
if ! "$gnu_time" -f '%M' true >/dev/null 2>&1; then
  die "GNU time is not at $gnu_time (Debian: apt-get install time); it gives CPU and peak RSS"
fi

# The TS smoke: its file and the directory it runs from (the checkout's root).
ts_file="" ts_dir="" node=""
if [ -n "$ts" ]; then
  if [ -d "$ts" ]; then
    ts_file=$(cd "$ts" && pwd)/scripts/smoke-entwurf-v2-spawn-live.ts
  else
    ts_file=$(cd "$(dirname "$ts")" && pwd)/$(basename "$ts")
  fi
  [ -f "$ts_file" ] || die "no TypeScript smoke at $ts_file"
  ts_dir=$(dirname "$ts_file")
  [ "$(basename "$ts_dir")" = scripts ] && ts_dir=$(dirname "$ts_dir")
  node=$("$root/run.sh" node "${ENTWURF_REAL_PI_DIR:-}") || die "no Node for the TS smoke: ./run.sh install-pi installs one"
  "$node" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 6) ? 0 : 1)' ||
    die "$node is $("$node" --version), the TS smoke needs >= 22.6"
fi

bin=$("$root/run.sh" build) || die "could not build the gate binary"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/side-by-side.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# run_timed LABEL DIR CMD...: one run in DIR with a fresh HOME and TMPDIR; appends
# "wall_ms cpu_ms rss_kib checks" to $scratch/LABEL. Aborts with the run's output when it
# fails or prints no summary line.
run_timed() {
  local label=$1 dir=$2
  shift 2
  local run=$scratch/run
  rm -rf "$run"
  mkdir -p "$run/home" "$run/tmp"
  local start end status=0
  start=$EPOCHREALTIME
  (cd "$dir" && HOME=$run/home TMPDIR=$run/tmp \
    "$gnu_time" -f '%U %S %M' -o "$run/time" "$@" >"$run/out" 2>&1) || status=$?
  end=$EPOCHREALTIME
  local checks
  # `<name>: N checks passed`, or `<name> (<scenario>): ...` for one scenario.
  checks=$(sed -n 's/^smoke-entwurf-v2-spawn-live\( ([^)]*)\)\{0,1\}: \([0-9][0-9]*\) checks passed.*/\2/p' "$run/out" | tail -n 1)
  if [ "$status" != 0 ] || [ -z "$checks" ]; then
    echo "[side-by-side] $label run failed (exit $status) in $dir: $*" >&2
    cat "$run/out" >&2
    exit 1
  fi
  local user sys rss
  read -r user sys rss <"$run/time"
  awk -v s="$start" -v e="$end" -v u="$user" -v y="$sys" -v r="$rss" -v c="$checks" \
    'BEGIN { printf "%.1f %.0f %d %d\n", (e - s) * 1000, (u + y) * 1000, r, c }' >>"$scratch/$label"
  tail -n 1 "$run/out" >"$scratch/$label.summary"
  rm -rf "$run"
}

# stats LABEL COLUMN: "median p90 min max" of one column (nearest-rank p90).
stats() {
  cut -d' ' -f"$2" "$scratch/$1" | sort -n | awk '
    { v[NR] = $1 }
    END {
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      p = int(NR * 0.9 + 0.999999); if (p < 1) p = 1
      printf "%g %g %g %g\n", m, v[p], v[1], v[NR]
    }'
}

ts_cmd=(env LIVE=1 "$node" --experimental-strip-types "$ts_file")
ours_cmd=(env LIVE=1 ENTWURF_REAL_PI_DIR= "$bin" all)

start_load=$(loadavg)
echo "side by side: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average at start $start_load"
if [ -n "$ts_file" ]; then
  echo "  TS smoke: (cd $ts_dir && HOME=<fresh> TMPDIR=<fresh> ${ts_cmd[*]})  [node $("$node" --version)]"
else
  echo "  TS smoke: not given (--ts DIR|FILE): only our side runs"
fi
echo "  ours:     (HOME=<fresh> TMPDIR=<fresh> ${ours_cmd[*]})"
echo "  each timed by $gnu_time -f '%U %S %M'; wall by \$EPOCHREALTIME around it; ${gap} s of rest before each run"
echo

for i in $(seq "$runs"); do
  if [ -n "$ts_file" ]; then
    sleep "$gap"
    run_timed ts "$ts_dir" "${ts_cmd[@]}"
  fi
  sleep "$gap"
  run_timed ours "$root" "${ours_cmd[@]}"
  printf '\r  pair %d/%d' "$i" "$runs" >&2
done
printf '\r%*s\r' 20 '' >&2
if [ -n "$pi" ]; then
  for i in $(seq "$pi_runs"); do
    run_timed pi "$root" env LIVE=1 "$bin" pi
    printf '\r  pi %d/%d' "$i" "$pi_runs" >&2
  done
  printf '\r%*s\r' 20 '' >&2
fi
end_load=$(loadavg)

row() { # LABEL NAME
  local w c r checks
  read -r -a w <<<"$(stats "$1" 1)"
  read -r -a c <<<"$(stats "$1" 2)"
  read -r -a r <<<"$(stats "$1" 3)"
  checks=$(cut -d' ' -f4 "$scratch/$1" | sort -n | uniq | paste -sd/)
  printf '| %s | %s | %s | **%s** | %s | %s–%s | **%s** | %s | %s–%s | %s |\n' "$2" "$checks" \
    "$(wc -l <"$scratch/$1")" "${w[0]}" "${w[1]}" "${w[2]}" "${w[3]}" "${c[0]}" "${c[1]}" "${c[2]}" "${c[3]}" \
    "$(awk -v k="${r[3]}" 'BEGIN { printf "%.1f", k / 1024 }')"
}
echo "| side | checks | runs | wall ms median | p90 | min–max | CPU ms median | p90 | min–max | peak RSS MiB, max |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
if [ -n "$ts_file" ]; then row ts "TypeScript smoke"; fi
row ours "ours \`all\`, no pi"
if [ -n "$pi" ]; then row pi "ours \`pi\` alone"; fi
echo
if [ -n "$ts_file" ]; then
  read -r tw _ <<<"$(stats ts 1)"
  read -r ow _ <<<"$(stats ours 1)"
  read -r tc _ <<<"$(stats ts 2)"
  read -r oc _ <<<"$(stats ours 2)"
  awk -v tw="$tw" -v ow="$ow" -v tc="$tc" -v oc="$oc" 'BEGIN {
    printf "ratio TS/ours (medians): wall %.2f, CPU %.2f  (above 1: ours is faster)\n", tw / ow, (oc > 0 ? tc / oc : 0)
  }'
  echo "summary lines: TS \"$(cat "$scratch/ts.summary")\"; ours \"$(cat "$scratch/ours.summary")\""
else
  echo "summary line: ours \"$(cat "$scratch/ours.summary")\""
fi
echo "load average at start $start_load, at end $end_load"
