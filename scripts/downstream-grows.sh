#!/usr/bin/env bash
# Proves that tests/downstream (a dependent that builds options and requests through
# their constructors) compiles against the library's current field sets and against
# grown ones: in a scratch copy, every `#[non_exhaustive]` struct of the library gains a
# public field, the library's own struct literals are given it (compiler-guided), and
# the downstream crate is built against that. Nothing in the checkout changes.
#
# usage: scripts/downstream-grows.sh        (about a minute; needs python3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$root"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$scratch"
export CARGO_TARGET_DIR="$scratch/target"
cargo check --quiet --offline -p entwurf-downstream
echo "[downstream-grows] builds against the current field sets"

cd "$scratch"
python3 - <<'PY'
import pathlib, re
grown = 0
for path in pathlib.Path("src").rglob("*.rs"):
    if "bin" in path.parts:
        continue
    text = path.read_text()
    new = re.sub(r"(#\[non_exhaustive\]\npub struct \w+(?:<'a>)? \{\n)",
                 r"\1    /// Added after the dependent was written.\n    pub grown: u8,\n", text)
    if new != text:
        grown += new.count("pub grown: u8") - text.count("pub grown: u8")
        path.write_text(new)
print(f"[downstream-grows] {grown} structs gained a field")
PY
# The library's own literals get the field: each E0063 (missing field) names one.
for _ in 1 2 3; do
  # Fails while literals lack the field: that is what the messages are read for.
  { cargo check --offline -p entwurf-v2-spawn --lib --message-format=json 2>/dev/null || true; } | python3 -c '
import json, sys
fixes = set()
for line in sys.stdin:
    m = json.loads(line)
    msg = m.get("message") or {}
    if m.get("reason") == "compiler-message" and (msg.get("code") or {}).get("code") == "E0063":
        span = next(s for s in msg["spans"] if s["is_primary"])
        fixes.add((span["file_name"], span["line_start"], span["column_end"]))
for name, line, col in sorted(fixes, reverse=True):
    lines = open(name).read().split("\n")
    at = lines[line - 1].find("{", col - 1)
    lines[line - 1] = lines[line - 1][: at + 1] + " grown: 0," + lines[line - 1][at + 1 :]
    open(name, "w").write("\n".join(lines))
'
done
cargo check --quiet --offline -p entwurf-v2-spawn --lib
cargo check --quiet --offline -p entwurf-downstream
echo "[downstream-grows] builds against the grown field sets too"
