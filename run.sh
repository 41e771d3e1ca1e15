#!/usr/bin/env bash
# Entry points for people and CI. See README.md.
set -euo pipefail
# Not `cd`: a relative path the user passes (`--record notes.md`) means relative to
# where they ran this script, so the live gate runs in the caller's directory.
root=$(cd "$(dirname "$0")" && pwd)

bin=smoke-entwurf-v2-spawn-live

usage() {
  cat <<USAGE
usage: ./run.sh <command> [args]

commands:
  $bin [ARGS]   the live phase gate (needs LIVE=1: spawns real children and opens
                real unix sockets); ARGS go to the binary, e.g. --format tap, watcher.
                --help, -h, --list and --version run nothing and need no LIVE.
  check         cargo fmt --check, clippy with warnings as errors (also for
                aarch64-apple-darwin and x86_64-unknown-freebsd when installed),
                every test
  help          this list
USAGE
}

need_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "[$bin] cargo is not on PATH: install Rust with rustup (https://rustup.rs), then open a new shell" >&2
    exit 2
  fi
}

# Builds the release binary and prints its path. Cargo's progress goes to stderr, so a
# first build (about a minute) is visible rather than silent. ENTWURF_SMOKE_BIN names a
# binary built already (the CLI tests use their own build), skipping cargo.
build() {
  if [ -n "${ENTWURF_SMOKE_BIN:-}" ]; then
    echo "$ENTWURF_SMOKE_BIN"
    return
  fi
  need_cargo
  cargo build --release --locked --manifest-path "$root/Cargo.toml" --bin "$bin" >&2
  local target=${CARGO_TARGET_DIR:-$root/target}
  case "$target" in /*) ;; *) target=$root/$target ;; esac
  echo "$target/release/$bin"
}

case "${1:-}" in
  "$bin")
    shift
    # Options that run nothing work without LIVE.
    for arg in "$@"; do
      case "$arg" in
        --help | -h | --list | --version | -V)
          exe=$(build)
          exec "$exe" "$@"
          ;;
      esac
    done
    case "${LIVE-}" in
      1) ;;
      "" | 0)
        echo "[$bin] skipped — set LIVE=1 to run (spawns real children and opens real unix sockets)"
        exit 0
        ;;
      *)
        echo "[$bin] LIVE must be 1 (run) or unset/0 (skip), not '${LIVE}'" >&2
        exit 2
        ;;
    esac
    exe=$(build)
    exec "$exe" "$@"
    ;;
  check)
    need_cargo
    cd "$root"
    cargo fmt --check
    cargo clippy --locked --all-targets -- -D warnings
    # Portability: the crate must also build for macOS and FreeBSD (clippy type-checks,
    # no linker needed). Each target is checked when installed, else named.
    installed=$(rustup target list --installed 2>/dev/null || true)
    for target in aarch64-apple-darwin x86_64-unknown-freebsd; do
      if grep -qx "$target" <<<"$installed"; then
        cargo clippy --locked --all-targets --target "$target" -- -D warnings
      elif [ -n "${CI:-}" ]; then
        echo "[check] clippy for $target: target not installed on CI (rustup target add $target)" >&2
        exit 1
      else
        echo "[check] skipped clippy for $target: not installed (rustup target add $target)"
      fi
    done
    # Not --all-targets: that would also run the observe bench (clippy still builds it).
    cargo test --locked --lib --bins --tests
    cargo test --locked --doc
    # The library as a dependent gets it (no cli feature), and the runnable example.
    cargo check --locked --no-default-features --lib
    cargo run --locked --quiet --example resume >/dev/null
    ;;
  help | -h | --help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
