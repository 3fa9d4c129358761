#!/usr/bin/env bash
# Link counts of DVC outputs after `dvc repro` and after `rm` + `dvc checkout`, per cache.type (docs/benchmarks.md).
#   bash scripts/cache_type_links.sh [TYPE ...]   (default: the types of the table in docs/benchmarks.md)
# A throw-away project in a temporary folder: one stage writing a folder output (3 files) and a file output, and a
# second stage with a file output; link count 2 = the workspace file is the cache file, 1 = a second copy.
set -euo pipefail
types=("$@")
[ ${#types[@]} -gt 0 ] || types=("reflink,hardlink,copy" "hardlink,copy" "reflink,copy" "hardlink")
export DVC_NO_ANALYTICS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${types[@]}"; do
  p="$work/$(echo "$t" | tr , _)"
  mkdir -p "$p" && cd "$p"
  git init -q && dvc init -q && dvc config core.analytics false && dvc config cache.type "$t"
  cat > write.py <<'PY'
import os
os.makedirs("outdir", exist_ok=True)
for name in ("outdir/f0.bin", "outdir/f1.bin", "outdir/f2.bin", "one.bin"):
    with open(name, "wb") as f:
        f.write(os.urandom(1 << 20))
PY
  cat > dvc.yaml <<'Y'
stages:
  a:
    cmd: python write.py
    deps: [write.py]
    outs: [outdir, one.bin]
  b:
    cmd: python -c "open('b.bin', 'wb').write(open('one.bin', 'rb').read()[::-1])"
    deps: [one.bin]
    outs: [b.bin]
Y
  git add -A && git -c user.name=t -c user.email=t@t commit -qm init
  dvc repro -q >/dev/null
  echo "$t | dvc repro: $(stat -c '%n=%h' outdir/* one.bin b.bin | tr '\n' ' ')"
  rm -rf outdir one.bin b.bin && dvc checkout -q
  echo "$t | rm + dvc checkout: $(stat -c '%n=%h' outdir/* one.bin b.bin | tr '\n' ' ')"
  echo "$t | modes: $(stat -c '%A' one.bin)"
done
