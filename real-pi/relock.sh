#!/usr/bin/env bash
# Rewrites the committed npm lock files after a change to a package.json here (a new
# pinned pi version, a newer Node). Not part of the install: `./run.sh install-pi` only
# ever runs `npm ci` against what is committed.
#
# The locks keep every integrity hash and name no host: `--omit-lockfile-registry-resolved`
# leaves out the registry URLs, and the packages' `funding` links (informational only,
# never read by `npm ci`) are dropped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for dir in runtime node; do
  (cd "$here/$dir" && npm install --package-lock-only --omit-lockfile-registry-resolved \
    --ignore-scripts --no-audit --no-fund >/dev/null)
  node -e '
    const fs = require("fs");
    const file = process.argv[1];
    const lock = JSON.parse(fs.readFileSync(file, "utf8"));
    for (const entry of Object.values(lock.packages ?? {})) delete entry.funding;
    fs.writeFileSync(file, JSON.stringify(lock, null, 2) + "\n");
  ' "$here/$dir/package-lock.json"
  if grep -q '://' "$here/$dir/package-lock.json"; then
    echo "relock: $dir/package-lock.json still names a host" >&2
    exit 1
  fi
  echo "relock: $dir/package-lock.json written"
done
