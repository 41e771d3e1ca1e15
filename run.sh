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
  check         cargo fmt --check, clippy with warnings as errors (also for
                aarch64-apple-darwin and x86_64-unknown-freebsd when installed),
                every test
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
    # Portability: the crate must also build for macOS and FreeBSD (clippy type-checks,
    # no linker needed). Each target is checked when installed, else named.
    installed=$(rustup target list --installed 2>/dev/null || true)
    for target in aarch64-apple-darwin x86_64-unknown-freebsd; do
      if grep -qx "$target" <<<"$installed"; then
        cargo clippy --locked --all-targets --target "$target" -- -D warnings
      else
        echo "[check] skipped clippy for $target: not installed (rustup target add $target)"
      fi
    done
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
