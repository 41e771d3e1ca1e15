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
                Without LIVE it skips, reported in the --format asked for.
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
#
# The path is the one cargo reports (the `executable` of its compiler-artifact message),
# never one guessed here: cargo resolves CARGO_TARGET_DIR, CARGO_BUILD_TARGET_DIR,
# `build.target-dir` in a config file, relative paths (against the caller's directory)
# and a `--target` layout itself, and a guess that differs runs a missing or stale binary.
build() {
  if [ -n "${ENTWURF_SMOKE_BIN:-}" ]; then
    echo "$ENTWURF_SMOKE_BIN"
    return
  fi
  need_cargo
  local messages exe
  messages=$(cargo build --release --locked --manifest-path "$root/Cargo.toml" --bin "$bin" \
    --message-format=json-render-diagnostics) || exit $?
  # One JSON object per line; the binary's artifact is the one with a non-null
  # "executable". Paths with a '"' or '\' in them are not supported (JSON escapes).
  exe=$(printf '%s\n' "$messages" | grep '"reason":"compiler-artifact"' |
    grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//' | tail -n 1)
  if [ -z "$exe" ] || [ ! -x "$exe" ]; then
    echo "[$bin] cargo built, but did not name an executable for $bin (got '${exe}')" >&2
    exit 2
  fi
  echo "$exe"
}

# The requested output format, for the skip report (`--format X` or `--format=X`).
requested_format() {
  local format=text previous=""
  for arg in "$@"; do
    case "$arg" in
      --format=*) format=${arg#--format=} ;;
      *) [ "$previous" = --format ] && format=$arg ;;
    esac
    previous=$arg
  done
  echo "$format"
}

# Without LIVE the gate skips, and says so in the format asked for: a CI step that
# writes `--format junit > report.xml` gets a valid report with one skipped test, not a
# text line in an XML file (and TAP gets a skipped plan, JSON a summary object).
skip_report() {
  local why="set LIVE=1 to run (spawns real children and opens real unix sockets)"
  case "$(requested_format "$@")" in
    tap)
      echo "TAP version 13"
      echo "1..0 # SKIP $why"
      ;;
    json)
      echo "{\"type\":\"summary\",\"summary\":null,\"skipped\":true,\"reason\":\"$why\",\"passed\":0,\"failed\":0,\"total\":0,\"interrupted\":false}"
      ;;
    junit)
      cat <<XML
<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="$bin" tests="1" skipped="1" failures="0" errors="0">
    <testsuite name="live gate" tests="1" skipped="1" errors="0" failures="0">
        <testcase name="$bin" classname="$bin">
            <skipped message="$why"/>
        </testcase>
    </testsuite>
</testsuites>
XML
      ;;
    *)
      echo "[$bin] skipped — $why"
      ;;
  esac
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
        skip_report "$@"
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
