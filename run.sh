#!/usr/bin/env bash
# Entry points for people and CI. See README.md.
set -euo pipefail
cd "$(dirname "$0")"

bin=smoke-entwurf-v2-spawn-live

usage() {
  cat <<USAGE
usage: ./run.sh <command> [args]

commands:
  $bin [ARGS]   the live phase gate (needs LIVE=1: spawns real children and opens
                real unix sockets); ARGS go to the binary, e.g. --format tap, watcher
  check         cargo fmt --check, clippy with warnings as errors, every test
  help          this list
USAGE
}

case "${1:-}" in
  "$bin")
    shift
    if [ "${LIVE:-}" != "1" ]; then
      echo "[$bin] skipped — set LIVE=1 to run (spawns real children and opens real unix sockets)"
      exit 0
    fi
    cargo build --release --locked --quiet --bin "$bin"
    exec "./target/release/$bin" "$@"
    ;;
  check)
    cargo fmt --check
    cargo clippy --locked --all-targets -- -D warnings
    # Not --all-targets: that would also run the observe bench (clippy still builds it).
    cargo test --locked --lib --bins --tests
    cargo test --locked --doc
    ;;
  help | -h | --help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
