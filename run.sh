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
                every test, for every workspace member, and semver
  semver [ARGS] cargo semver-checks of the library against its last release (the commit
                named in this script), with a pinned cargo-semver-checks installed from
                crates.io into target/tools/ on first use (minutes to compile, once).
                ARGS go to it: --release-type minor lists every breaking change
                since that release, whatever the version says (for CHANGELOG.md).
  install-pi [DIR]
                installs the pinned real pi runtimes (and a Node >= 22.19 when the
                system's is older) into target/real-pi/ (or DIR) from the committed
                npm lock files in real-pi/; the live gate's pi scenario and the
                real-pi tests use them (another DIR: ENTWURF_REAL_PI_DIR=DIR).
                Nothing global; nothing is fetched at test time.
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

# The pinned real `pi` runtimes (real-pi/README.md). Everything lands in target/real-pi/:
#   node/      a Node >= 22.19 from the npm registry, only when the system's is older
#   runtime/   every pinned pi version (`npm ci` from real-pi/runtime/package-lock.json)
#   bin/pi-X   one launcher per version: the chosen node on that version's cli, offline
# and npm's cache for these installs is target/real-pi-npm-cache/ (not the user's ~/.npm),
# so a second install into another DIR comes from it.
# A rerun with unchanged lock files reinstalls nothing.
install_pi() {
  local dest=${1:-$root/target/real-pi}
  case "$dest" in /*) ;; *) dest=$PWD/$dest ;; esac
  case "$dest" in *[[:space:]\'\"\\]*)
    echo "[install-pi] the install dir must not contain whitespace or quotes: $dest" >&2
    exit 2 ;;
  esac
  if ! command -v npm >/dev/null 2>&1; then
    echo "[install-pi] npm is not on PATH: install Node.js and npm (Debian: apt-get install nodejs npm), then rerun" >&2
    exit 2
  fi
  mkdir -p "$dest/bin"
  local npm_flags=(ci --ignore-scripts --no-audit --no-fund --loglevel=error
    --engine-strict=false --cache "$root/target/real-pi-npm-cache")

  # Copies a committed package.json + lock into $dest/$1 and runs `npm ci` there, unless
  # the same lock is installed already.
  npm_ci_into() {
    local name=$1 target=$dest/$1 stamp
    stamp=$(cat "$root/real-pi/$name/package.json" "$root/real-pi/$name/package-lock.json" | sha256sum | cut -d' ' -f1)
    if [ -d "$target/node_modules" ] && [ "$(cat "$target/.installed-lock" 2>/dev/null)" = "$stamp" ]; then
      echo "[install-pi] $name: already installed from this lock"
      return
    fi
    rm -rf "$target"
    mkdir -p "$target"
    cp "$root/real-pi/$name/package.json" "$root/real-pi/$name/package-lock.json" "$target/"
    echo "[install-pi] $name: npm ci (from real-pi/$name/package-lock.json)"
    (cd "$target" && npm "${npm_flags[@]}")
    echo "$stamp" >"$target/.installed-lock"
  }

  local node="" version
  if command -v node >/dev/null 2>&1; then
    version=$(node --version 2>/dev/null || true)
    if node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)' 2>/dev/null; then
      node=$(command -v node)
      echo "[install-pi] node: the system's $version at $node (>= 22.19)"
    else
      echo "[install-pi] node: the system's is ${version:-unusable} (< 22.19); installing the pinned one"
    fi
  fi
  if [ -z "$node" ]; then
    npm_ci_into node
    node=$(ls "$dest"/node/node_modules/node-linux-*/bin/node 2>/dev/null | head -n 1)
    if [ -z "$node" ] || ! "$node" --version >/dev/null 2>&1; then
      echo "[install-pi] no runnable node in $dest/node (the pinned packages cover Linux x64 and arm64): install Node >= 22.19 on PATH and rerun" >&2
      exit 1
    fi
    echo "[install-pi] node: $("$node" --version) at $node"
  fi

  npm_ci_into runtime
  rm -f "$dest"/bin/pi-*
  local pkg cli launcher found=0
  for pkg in "$dest"/runtime/node_modules/pi-*/package.json; do
    [ -e "$pkg" ] || continue
    version=$("$node" -p 'require(process.argv[1]).version' "$pkg")
    cli=$("$node" -p 'const p = require(process.argv[1]); require("path").join(require("path").dirname(process.argv[1]), typeof p.bin === "string" ? p.bin : p.bin.pi)' "$pkg")
    launcher=$dest/bin/pi-$version
    cat >"$launcher" <<LAUNCHER
#!/bin/sh
# Written by ./run.sh install-pi: pi $version on $("$node" --version), offline.
PI_OFFLINE=1
export PI_OFFLINE
exec '$node' '$cli' "\$@"
LAUNCHER
    chmod 755 "$launcher"
    if [ "$("$launcher" --version 2>/dev/null)" != "$version" ]; then
      echo "[install-pi] $launcher does not answer --version with $version" >&2
      exit 1
    fi
    echo "[install-pi] pi $version: $launcher"
    found=$((found + 1))
  done
  if [ "$found" = 0 ]; then
    echo "[install-pi] no pi runtime was installed from real-pi/runtime/package.json" >&2
    exit 1
  fi
  echo "[install-pi] $found pi runtimes in $dest/bin (the live gate's pi scenario and the real-pi tests find them there)"
}

# The library's public API against its last release, by cargo-semver-checks: a change
# that needs a bigger version step than Cargo.toml's fails. The tool is pinned (its lints
# change between versions) and lands in target/tools/, nothing global.
semver_checks_version=0.51.0
# The last release: 0.1.0, whose last commit is the one before Cargo.toml said 0.2.0
# ("Workspace: tests/support and the new tests/procfs are members...", a26f3d4).
semver_baseline=7b84c93898b8eea0ff321cce50a6da02dd80cb80
semver() {
  need_cargo
  local tools=$root/target/tools exe
  exe=$tools/bin/cargo-semver-checks
  if ! "$exe" --version 2>/dev/null | grep -qx "cargo-semver-checks $semver_checks_version"; then
    echo "[semver] installing cargo-semver-checks $semver_checks_version into target/tools/ (minutes, once)"
    cargo install --quiet --locked --version "$semver_checks_version" --root "$tools" cargo-semver-checks
  fi
  if ! git -C "$root" cat-file -e "$semver_baseline^{commit}" 2>/dev/null; then
    echo "[semver] the last release's commit $semver_baseline is not in this clone (a shallow one?): git fetch --unshallow" >&2
    exit 2
  fi
  "$exe" semver-checks --manifest-path "$root/Cargo.toml" --package entwurf-v2-spawn \
    --baseline-rev "$semver_baseline" "$@"
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
    # Every workspace member (the crate, tests/support, tests/procfs) is under the gate.
    cargo fmt --all --check
    cargo clippy --locked --workspace --all-targets -- -D warnings
    # Portability: the crate must also build for macOS and FreeBSD (clippy type-checks,
    # no linker needed). Each target is checked when installed, else named.
    installed=$(rustup target list --installed 2>/dev/null || true)
    for target in aarch64-apple-darwin x86_64-unknown-freebsd; do
      if grep -qx "$target" <<<"$installed"; then
        cargo clippy --locked --workspace --all-targets --target "$target" -- -D warnings
      elif [ -n "${CI:-}" ]; then
        echo "[check] clippy for $target: target not installed on CI (rustup target add $target)" >&2
        exit 1
      else
        echo "[check] skipped clippy for $target: not installed (rustup target add $target)"
      fi
    done
    # Not --all-targets: that would also run the observe bench (clippy still builds it).
    cargo test --locked --workspace --lib --bins --tests
    cargo test --locked --workspace --doc
    # The library as a dependent gets it (no cli feature), and the runnable example.
    cargo check --locked --no-default-features --lib
    cargo run --locked --quiet --example resume >/dev/null
    semver
    ;;
  semver)
    shift
    semver "$@"
    ;;
  install-pi)
    install_pi "${2:-}"
    ;;
  help | -h | --help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
