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
  $bin [ARGS]   the live gate (needs LIVE=1: spawns real children and opens
                real unix sockets); ARGS go to the binary, e.g. --format tap, watcher.
                --help, -h, --list and --version run nothing and need no LIVE.
                Without LIVE it checks ARGS (a usage error is exit 2), then
                skips, reported in the --format asked for.
  check         cargo fmt --check, clippy with warnings as errors (also for
                aarch64-apple-darwin and x86_64-unknown-freebsd when installed),
                every test, cargo doc with warnings as errors, for every
                workspace member, and semver
  semver [ARGS] cargo semver-checks of the library against its last release (the commit
                named in this script), with a pinned cargo-semver-checks installed from
                crates.io into target/tools/ (or \$ENTWURF_TOOLS_DIR) on first use
                (minutes to compile, once).
                ARGS go to it: --release-type minor lists every breaking change
                since that release, whatever the version says (for CHANGELOG.md).
  install-pi [DIR]
                installs the pinned real pi runtimes (and a Node >= 22.19 when the
                system's is older) into target/real-pi/ (or DIR) from the committed
                npm lock files in real-pi/; the live gate's pi scenario and the
                real-pi tests use them (another DIR: ENTWURF_REAL_PI_DIR=DIR).
                Nothing global; nothing is fetched at test time.
  build         builds the gate's release binary (cargo's progress on stderr) and prints
                its path; with \$ENTWURF_SMOKE_BIN set, prints that instead
  node [DIR]    prints the Node >= 22.19 install-pi runs pi on: the system's when new
                enough, else the pinned one it installed into target/real-pi/ (or DIR);
                exit 1 when there is neither (scripts/side-by-side.sh runs the
                TypeScript smoke on it)
  mutants [--in-place] [--since REV] [PATH...]
                mutation testing of the core (src/ without the live gate, or the
                files/dirs given) with cargo-mutants, pinned and installed into
                target/tools/ (or \$ENTWURF_TOOLS_DIR) on first use; prints the
                survivors and fails on one (docs/testing.md). --since REV: only
                the mutants on lines changed since REV (what CI runs). --in-place: mutate this checkout instead of
                a copy (faster; do not edit meanwhile). Runs under nice.
  help          this list
USAGE
}

# Whether this is a CI run: what `entwurf_ci::on_ci` (tests/ci) answers for the gate
# and the tests, so all three read `CI` alike: unset, empty, 0 or false is not CI.
on_ci() {
  local ci=${CI:-}
  ci=${ci//[[:space:]]/}
  case "${ci,,}" in
    "" | 0 | false) return 1 ;;
  esac
}

need_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "[$bin] cargo is not on PATH: install Rust with rustup (https://rustup.rs), then open a new shell" >&2
    exit 2
  fi
}

# Builds the release binary and prints its path. Cargo's progress goes to stderr, so a
# first build (a few minutes on 2 cores) is visible rather than silent. ENTWURF_SMOKE_BIN names a
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

# Whether the system's `node` is new enough for pi (>= 22.19; also enough for the
# TypeScript smoke's type stripping, >= 22.6).
system_node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)' 2>/dev/null
}

# The pinned node install-pi put into $1/node, if it did and it runs.
installed_node() {
  local node
  for node in "$1"/node/node_modules/node-linux-*/bin/node; do
    if "$node" --version >/dev/null 2>&1; then
      echo "$node"
      return 0
    fi
  done
  return 1
}

# The pinned real `pi` runtimes (real-pi/README.md). Everything lands in target/real-pi/:
#   node/      a Node >= 22.19 from the npm registry, only when the system's is older
#   runtime/   every pinned pi version (`npm ci` from real-pi/runtime/package-lock.json)
#   bin/pi-X   one launcher per version: the chosen node on that version's cli, offline,
#              with Node's compile cache in node-compile-cache/ next to them
# and npm's cache for these installs is target/real-pi-npm-cache/ (not the user's ~/.npm),
# with the trees npm ci installed last (trees/), so a second install of the same locks
# into another DIR, or after target/real-pi was removed, copies them.
# A rerun with unchanged lock files, node and launchers reinstalls and reruns nothing
# (.install-stamp: their hashes and what each launcher answered to --version).
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
  # pi turns on Node's module compile cache, which lands in $TMPDIR/node-compile-cache
  # unless told otherwise: every `node`/`pi --version` below would leave 2 MB outside
  # target/. Under the install dir instead, where the launchers point every later run of
  # pi too (warm from the checks below: pi starts about a third faster).
  local compile_cache=$dest/node-compile-cache
  export NODE_COMPILE_CACHE=$compile_cache
  # --prefer-offline: the locks pin every version and hash, so npm's cached metadata is
  # as good as the registry's (no revalidation round trip per package on a warm cache).
  local npm_flags=(ci --ignore-scripts --no-audit --no-fund --loglevel=error
    --prefer-offline --no-update-notifier
    --engine-strict=false --cache "$root/target/real-pi-npm-cache")

  # The whole install's stamp: the committed trees, the system's node, and this function
  # (the launchers' text). Same stamp and every launcher still there: nothing to do.
  local stamp_file=$dest/.install-stamp stamp
  stamp=$({
    cat "$root"/real-pi/node/package.json "$root"/real-pi/node/package-lock.json \
      "$root"/real-pi/runtime/package.json "$root"/real-pi/runtime/package-lock.json
    command -v node 2>/dev/null && node --version 2>/dev/null
    declare -f install_pi
  } | sha256sum | cut -d' ' -f1)
  if [ "$(head -n 1 "$stamp_file" 2>/dev/null)" = "$stamp" ] && up_to_date "$stamp_file"; then
    echo "[install-pi] up to date: same locks, node and launchers as at $(sed -n 2p "$stamp_file")"
    tail -n +3 "$stamp_file" | while read -r version launcher; do
      echo "[install-pi] pi $version: $launcher (answered --version at install)"
    done
    return
  fi
  rm -f "$stamp_file"

  # Copies a committed package.json + lock into $dest/$1 and runs `npm ci` there, unless
  # the same lock is installed already. npm ci spends most of its time unpacking (the
  # runtimes are 37 000 files, 350 MB), even from a warm cache: the tree it installed is
  # kept beside npm's cache by the lock's hash (trees/<name>-<hash>), and an install of
  # the same lock elsewhere (another DIR, or after target/real-pi was removed) links it,
  # as pnpm's store does: hard links, about 2 s instead of about 20 (a copy of the data
  # took 2-16 s here, and is the fallback across file systems). Nothing writes into an
  # installed tree (a reinstall removes it first; node's compile cache lives apart).
  # Only the current lock's tree is kept.
  local trees=$root/target/real-pi-npm-cache/trees
  npm_ci_into() {
    local name=$1 target=$dest/$1 stamp kept
    stamp=$(cat "$root/real-pi/$name/package.json" "$root/real-pi/$name/package-lock.json" | sha256sum | cut -d' ' -f1)
    kept=$trees/$name-$stamp
    if [ -d "$target/node_modules" ] && [ "$(cat "$target/.installed-lock" 2>/dev/null)" = "$stamp" ]; then
      echo "[install-pi] $name: already installed from this lock"
      return
    fi
    # (A `.copying` dir an interrupted install left would take the copy inside it.)
    rm -rf "$target" "$target.copying"
    if [ -f "$kept/.installed-lock" ] && [ "$(cat "$kept/.installed-lock")" = "$stamp" ] &&
      { cp -alT "$kept" "$target.copying" 2>/dev/null ||
        { rm -rf "$target.copying" && cp -aT "$kept" "$target.copying"; }; }; then
      mv -T "$target.copying" "$target"
      echo "[install-pi] $name: linked the tree npm ci installed from this lock before ($kept)"
      return
    fi
    rm -rf "$target.copying"
    mkdir -p "$target"
    cp "$root/real-pi/$name/package.json" "$root/real-pi/$name/package-lock.json" "$target/"
    echo "[install-pi] $name: npm ci (from real-pi/$name/package-lock.json)"
    (cd "$target" && npm "${npm_flags[@]}")
    echo "$stamp" >"$target/.installed-lock"
    # Kept for the next install of this lock: copied aside, then renamed into place in
    # one step (a concurrent install keeps whichever came first); older locks' trees go.
    mkdir -p "$trees"
    local aside
    aside=$(mktemp -d "$trees/.$name.XXXXXX")
    if { cp -al "$target/." "$aside/" 2>/dev/null || cp -a "$target/." "$aside/"; } &&
      mv -T "$aside" "$kept" 2>/dev/null; then
      # Older locks' trees, and what an interrupted install left aside.
      find "$trees" -mindepth 1 -maxdepth 1 \( -name "$name-*" ! -name "$name-$stamp" \
        -o -name ".$name.*" ! -path "$aside" \) -exec rm -rf {} +
    fi
    rm -rf "$aside"
  }

  local node="" version
  if command -v node >/dev/null 2>&1; then
    version=$(node --version 2>/dev/null || true)
    if system_node_ok; then
      node=$(command -v node)
      echo "[install-pi] node: the system's $version at $node (>= 22.19)"
    else
      echo "[install-pi] node: the system's is ${version:-unusable} (< 22.19); installing the pinned one"
    fi
  fi
  # The two trees are independent: the pinned node (when needed) installs beside pi's.
  local node_job=""
  if [ -z "$node" ]; then
    npm_ci_into node &
    node_job=$!
  fi
  npm_ci_into runtime
  if [ -n "$node_job" ]; then
    wait "$node_job"
    node=$(installed_node "$dest" || true)
    if [ -z "$node" ]; then
      echo "[install-pi] no runnable node in $dest/node (the pinned packages cover Linux x64 and arm64): install Node >= 22.19 on PATH and rerun" >&2
      exit 1
    fi
    echo "[install-pi] node: $("$node" --version) at $node"
  fi

  rm -f "$dest"/bin/pi-*
  local node_version line cli launcher found=0
  node_version=$("$node" --version)
  # One node for every package: "<version> <cli path>" per line.
  local packages
  packages=$("$node" -e '
    const path = require("path");
    for (const file of process.argv.slice(1)) {
      const p = require(file);
      const bin = typeof p.bin === "string" ? p.bin : p.bin.pi;
      console.log(p.version + " " + path.join(path.dirname(file), bin));
    }' "$dest"/runtime/node_modules/pi-*/package.json 2>/dev/null || true)
  while read -r version cli; do
    [ -n "$version" ] || continue
    launcher=$dest/bin/pi-$version
    cat >"$launcher" <<LAUNCHER
#!/bin/sh
# Written by ./run.sh install-pi: pi $version on $node_version, offline, with Node's
# compile cache (unless the caller chose another) next to this launcher.
PI_OFFLINE=1
: "\${NODE_COMPILE_CACHE:=$compile_cache}"
export PI_OFFLINE NODE_COMPILE_CACHE
exec '$node' '$cli' "\$@"
LAUNCHER
    chmod 755 "$launcher"
    found=$((found + 1))
  done <<<"$packages"
  if [ "$found" = 0 ]; then
    echo "[install-pi] no pi runtime was installed from real-pi/runtime/package.json" >&2
    exit 1
  fi
  # Each launcher must answer --version with its version: all at once (each is a node
  # start-up), which also warms the compile cache for them.
  local checks=() answered=()
  while read -r version cli; do
    [ -n "$version" ] || continue
    "$dest/bin/pi-$version" --version >"$dest/bin/.version-$version" 2>/dev/null &
    checks+=("$!:$version")
  done <<<"$packages"
  local check
  for check in "${checks[@]}"; do
    version=${check#*:}
    wait "${check%%:*}" || true
    if [ "$(cat "$dest/bin/.version-$version" 2>/dev/null)" != "$version" ]; then
      rm -f "$dest/bin/.version-$version"
      echo "[install-pi] $dest/bin/pi-$version does not answer --version with $version" >&2
      exit 1
    fi
    rm -f "$dest/bin/.version-$version"
    echo "[install-pi] pi $version: $dest/bin/pi-$version"
    answered+=("$version $dest/bin/pi-$version")
  done
  { echo "$stamp"; date -u +%Y-%m-%dT%H:%M:%SZ; printf '%s\n' "${answered[@]}"; } >"$stamp_file"
  echo "[install-pi] $found pi runtimes in $dest/bin (the live gate's pi scenario and the real-pi tests find them there)"
}

# Whether the install a stamp describes is still whole: every launcher it lists is there
# and runnable, and the node and the cli each one execs still exist (cheap: no node
# start-up; the --version answers were checked when the stamp was written).
up_to_date() {
  local version launcher target n=0
  while read -r version launcher; do
    [ -x "$launcher" ] || return 1
    # The launcher's exec line names '<node>' '<cli>'.
    for target in $(sed -n "s/^exec '\([^']*\)' '\([^']*\)'.*/\1 \2/p" "$launcher"); do
      [ -e "$target" ] || return 1
    done
    n=$((n + 1))
  done < <(tail -n +3 "$1")
  [ "$n" -gt 0 ]
}

# The pinned cargo tools (cargo-semver-checks, cargo-mutants) live in one dir:
# target/tools/ of the checkout, or $ENTWURF_TOOLS_DIR when set (.ci/run points it at a
# cache under $HOME, outside the clone, so a second run on the same machine does not
# compile them again: they take minutes). Nothing is installed on PATH.
tools_dir() {
  echo "${ENTWURF_TOOLS_DIR:-$root/target/tools}"
}

# The library's public API against its last release, by cargo-semver-checks: a change
# that needs a bigger version step than Cargo.toml's fails. The tool is pinned (its lints
# change between versions) and lands in the tools dir (tools_dir), nothing global.
semver_checks_version=0.51.0
# The last release: 0.1.0, whose last commit is the one before Cargo.toml said 0.2.0
# ("Workspace: tests/support and the new tests/procfs are members...", a26f3d4).
semver_baseline=7b84c93898b8eea0ff321cce50a6da02dd80cb80
semver() {
  need_cargo
  local tools exe
  tools=$(tools_dir)
  exe=$tools/bin/cargo-semver-checks
  if ! "$exe" --version 2>/dev/null | grep -qx "cargo-semver-checks $semver_checks_version"; then
    echo "[semver] installing cargo-semver-checks $semver_checks_version into $tools (minutes, once)"
    cargo install --quiet --locked --version "$semver_checks_version" --root "$tools" cargo-semver-checks
  fi
  if ! git -C "$root" cat-file -e "$semver_baseline^{commit}" 2>/dev/null; then
    echo "[semver] the last release's commit $semver_baseline is not in this clone (a shallow one?): git fetch --unshallow" >&2
    exit 2
  fi
  "$exe" semver-checks --manifest-path "$root/Cargo.toml" --package entwurf-v2-spawn \
    --baseline-rev "$semver_baseline" "$@"
}

# cargo-mutants, pinned: its mutants and its output format are part of what
# docs/testing.md and CI rely on, so a new version is a deliberate bump.
mutants_version=27.1.0

# Installs the pinned cargo-mutants into the tools dir (nothing global) and prints the
# binary's path.
cargo_mutants() {
  local tools exe
  tools=$(tools_dir)
  exe=$tools/bin/cargo-mutants
  if [ "$("$exe" mutants --version 2>/dev/null)" != "cargo-mutants $mutants_version" ]; then
    echo "[mutants] installing cargo-mutants $mutants_version into $tools (once)" >&2
    cargo install --quiet --locked --root "$tools" cargo-mutants --version "$mutants_version" >&2
  fi
  echo "$exe"
}

# ./run.sh mutants [--in-place] [--since REV] [PATH...]: see usage. The test binaries,
# the excluded (equivalent) mutants and the core's extent are in .cargo/mutants.toml.
mutants() {
  need_cargo
  local in_place="" since="" exe out status
  local -a files=() extra=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --in-place) in_place=1 ;;
      --since)
        [ $# -ge 2 ] || { echo "[mutants] --since needs a revision" >&2; exit 2; }
        since=$2
        shift
        ;;
      --since=*) since=${1#--since=} ;;
      -*) echo "[mutants] unknown option $1 (see ./run.sh help)" >&2; exit 2 ;;
      *)
        # A path as the user typed it, relative to where they are; cargo-mutants wants
        # it relative to the crate root. A directory means every file under it.
        local path=$1
        case "$path" in /*) ;; *) path=$PWD/$path ;; esac
        if [ ! -e "$path" ]; then
          echo "[mutants] no such file or directory: $1" >&2
          exit 2
        fi
        path=$(cd "$(dirname "$path")" && pwd)/$(basename "$path")
        path=${path#"$root"/}
        if [ -d "$root/$path" ]; then
          files+=(--file "${path%/}/**/*.rs")
        else
          files+=(--file "$path")
        fi
        ;;
    esac
    shift
  done
  exe=$(cargo_mutants)
  cd "$root"
  out=$root/target/mutants
  mkdir -p "$out"
  # A run that finds no mutant writes no report: never print the previous run's.
  rm -rf "$out/mutants.out" "$out/mutants.out.old"
  if [ -n "$since" ]; then
    # Only the lines this change touched in the core (the binary and tests aside).
    git diff "$since" -- src ':(exclude)src/bin' >"$out/since.diff"
    if [ ! -s "$out/since.diff" ]; then
      echo "[mutants] nothing in the core changed since $since: no mutants to run"
      return 0
    fi
    extra+=(--in-diff "$out/since.diff")
  fi
  [ -n "$in_place" ] && extra+=(--in-place)
  # nextest, where installed, stops a mutant's tests at the first failure and kills the
  # rest (a caught mutant costs its first failing test, not the slowest), and runs the
  # test binaries side by side. Four threads: most of the suite waits on processes and
  # sockets, not the CPU. cargo test is the fallback with the same verdicts (also for a
  # nextest too old for `--max-fail N:immediate`).
  if cargo nextest run --help 2>/dev/null | grep -q 'N:immediate'; then
    extra+=(--test-tool nextest --cargo-test-arg=--max-fail=1:immediate
      --cargo-test-arg=--test-threads=4)
  fi
  local started=$SECONDS
  set +e
  nice -n "${MUTANTS_NICE:-19}" "$exe" mutants --output "$out" "${files[@]}" "${extra[@]}"
  status=$?
  set -e
  local report=$out/mutants.out
  count() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
  echo "[mutants] $(($SECONDS - started)) s; caught $(count "$report/caught.txt")," \
    "timeouts $(count "$report/timeout.txt")," \
    "unviable $(count "$report/unviable.txt")," \
    "missed $(count "$report/missed.txt") (details in $report)"
  # The survivors are read from the report, not from the exit status: cargo-mutants
  # exits 3 (timeouts) when a run has both timeouts and survivors, which hid six
  # survivors of the first full run.
  if [ "$(count "$report/missed.txt")" -gt 0 ] && [ "$status" -le 3 ]; then
    status=2
  fi
  case "$status" in
    # 0: all caught; 3: some timed out (a hang is a caught mutant), none missed.
    0 | 3) ;;
    2)
      echo "[mutants] survivors (a test must fail on each, or exclude it in .cargo/mutants.toml with why it is equivalent):" >&2
      sed 's/^/  /' "$report/missed.txt" >&2
      exit 1
      ;;
    *)
      echo "[mutants] cargo-mutants failed (exit $status): see $report/debug.log" >&2
      exit "$status"
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
        # The binary checks the arguments as a run would (a usage error is exit 2
        # whatever LIVE says), then skips in the format asked for: a CI step that writes
        # `--format junit > report.xml` gets a valid report with one skipped test.
        exe=$(build)
        exec "$exe" --not-live "$@"
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
      elif on_ci; then
        echo "[check] clippy for $target: target not installed on CI (rustup target add $target)" >&2
        exit 1
      else
        echo "[check] skipped clippy for $target: not installed (rustup target add $target)"
      fi
    done
    # Not --all-targets: that would also run the observe bench (clippy still builds it).
    cargo test --locked --workspace --lib --bins --tests
    cargo test --locked --workspace --doc
    # The docs build without a warning (a broken link, `P<n>` read as an HTML tag).
    RUSTDOCFLAGS="${RUSTDOCFLAGS:-} -D warnings" cargo doc --locked --no-deps --workspace
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
  build)
    build
    ;;
  node)
    # The node install-pi chose (or would choose), without installing anything.
    dest=${2:-$root/target/real-pi}
    if system_node_ok; then
      command -v node
    elif ! installed_node "$dest"; then
      echo "[node] no Node >= 22.19: neither the system's nor one installed by ./run.sh install-pi in $dest" >&2
      exit 1
    fi
    ;;
  mutants)
    shift
    mutants "$@"
    ;;
  help | -h | --help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
