#!/usr/bin/env bash
# Soak: repeat the live gate and the lock race until a rare failure would have shown.
#
#   scripts/soak.sh            both parts
#   scripts/soak.sh smoke      (a) `smoke-entwurf-v2-spawn-live all`, SOAK_RUNS times (default 500)
#   scripts/soak.sh lock       (b) 8 processes racing for one lock, SOAK_LOCK_ROUNDS rounds (default 1000)
#
# (a) passes when every run exits 0 with no failed check, its own hygiene checks (H1: no
#     descriptor leaked, H2: no child left) pass every time, no process of the smoke
#     binary (the stand-in residents are that binary re-executed) is left after any run,
#     and no zombie of it is left behind (an orphaned grandchild stand-in is reaped by
#     init a moment after its run: the final count waits up to 10 s for that). System-wide open file handles (/proc/sys/fs/file-nr)
#     are printed before and after for the record; the machine is shared, so they are
#     informational, not a gate.
# (b) passes when every round has exactly one winner and seven conflicts, one lock file
#     on disk with the winner's nonce, and no reclaim marker left.
#
# Exit 0 when every part run passed, 1 otherwise. Builds in release mode first.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
runs="${SOAK_RUNS:-500}"
rounds="${SOAK_LOCK_ROUNDS:-1000}"
bin=smoke-entwurf-v2-spawn-live
status=0

file_handles() { cut -f1 /proc/sys/fs/file-nr; }

# Processes whose executable is the smoke binary (its stand-ins included).
smoke_processes() {
  local exe n=0
  exe="$(readlink -f "target/release/$bin")"
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/exe" 2>/dev/null)" = "$exe" ] && n=$((n + 1))
  done
  echo "$n"
}

# Zombies of the smoke or its stand-ins (comm is cut to 15 chars; the stand-in pi is
# started as `pi`). Others' zombies on a shared machine are not counted.
# pid, state, age and argv of each leftover, for the report.
leftover_details() {
  local exe
  exe="$(readlink -f "target/release/$bin")"
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/exe" 2>/dev/null)" = "$exe" ]; then
      printf '[%s %s %s] ' "${p#/proc/}" "$(ps -o stat=,etime= -p "${p#/proc/}" 2>/dev/null)" \
        "$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null | cut -c1-160)"
    fi
  done
}

zombies() { ps -eo stat=,comm= | awk '$1 ~ /^Z/ && ($2 ~ /^smoke-entwurf/ || $2 == "pi")' | wc -l; }

soak_smoke() {
  cargo build --release --locked --quiet --bin "$bin"
  local out fails=0 leftovers=0 hygiene=0 started handles_before handles_after zombies_before
  out="$(mktemp -d)"
  handles_before="$(file_handles)"
  zombies_before="$(zombies)"
  started=$(date +%s)
  for i in $(seq 1 "$runs"); do
    if ! "./target/release/$bin" --format json all > "$out/run.json" 2> "$out/run.err"; then
      fails=$((fails + 1))
      cp "$out/run.json" "$out/fail-$i.json"; cp "$out/run.err" "$out/fail-$i.err"
      echo "run $i FAILED: $(grep -h '"ok":false' "$out/run.json" | head -3)"
    fi
    # Both hygiene checks must have run and passed (not failed, not missing).
    if [ "$(grep -E '"id":"H[12]"' "$out/run.json" | grep -c '"ok":true')" != 2 ]; then
      hygiene=$((hygiene + 1))
      cp "$out/run.json" "$out/hygiene-$i.json"
      echo "run $i: hygiene check failed or missing: $(grep -E '"id":"H[12]"' "$out/run.json")"
    fi
    left="$(smoke_processes)"
    if [ "$left" != 0 ]; then
      leftovers=$((leftovers + left))
      echo "run $i left $left smoke process(es) behind: $(leftover_details)"
    fi
    if [ $((i % 50)) = 0 ]; then
      echo "smoke soak: $i/$runs runs, $fails failed, $((($(date +%s) - started))) s"
    fi
  done
  handles_after="$(file_handles)"
  # A killed grandchild stand-in is orphaned to init, which reaps it within a moment:
  # give it that moment before counting.
  local zombies_after waited=0
  zombies_after="$(zombies)"
  while [ "$zombies_after" -gt "$zombies_before" ] && [ "$waited" -lt 20 ]; do
    sleep 0.5; waited=$((waited + 1)); zombies_after="$(zombies)"
  done
  echo "smoke soak: $runs runs of '$bin all' in $((($(date +%s) - started))) s:" \
    "$fails failed, $hygiene with a hygiene failure, $leftovers leftover processes," \
    "zombies $zombies_before -> $zombies_after," \
    "system file handles $handles_before -> $handles_after (shared machine: informational)"
  if [ "$fails" = 0 ] && [ "$hygiene" = 0 ]; then
    rm -rf "$out"
  else
    rm -f "$out/run.json" "$out/run.err"
    echo "smoke soak: the full output of every failed run is kept in $out"
  fi
  [ "$fails" = 0 ] && [ "$hygiene" = 0 ] && [ "$leftovers" = 0 ] && [ "$zombies_after" -le "$zombies_before" ]
}

soak_lock() {
  ENTWURF_LOCK_SOAK_ROUNDS="$rounds" cargo test --release --locked --quiet --test integration -- \
    --ignored --exact lock::race::racing_processes_soak --nocapture 2>&1 | grep -E '^lock soak|panicked|test result'
  return "${PIPESTATUS[0]}"
}

case "$what" in
  smoke) soak_smoke || status=1 ;;
  lock) soak_lock || status=1 ;;
  all) soak_lock || status=1; soak_smoke || status=1 ;;
  *) echo "usage: scripts/soak.sh [all|smoke|lock]" >&2; exit 2 ;;
esac
exit "$status"
