#!/bin/bash
# `dvc commit` / `dvc status` of one stage output: 100k x 1 KiB loose files vs the same bytes in 4 tar shards
# (docs/benchmarks.md). Needs dvc on PATH; works in a throw-away folder.
set -e
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export DVC_NO_ANALYTICS=1 GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
for layout in loose shards; do
  d=$WORK/$layout; mkdir -p $d; cd $d
  git init -q; dvc init -q
  python - <<PY
import os, tarfile, io
os.makedirs("raw/audio", exist_ok=True)
layout = "$layout"
rng = os.urandom
if layout == "loose":
    for i in range(100_000):
        with open(f"raw/audio/{i:06d}.wav", "wb") as f: f.write(rng(1024))
else:
    for s in range(4):
        with tarfile.open(f"raw/audio/audio-{s:05d}.tar", "w") as t:
            for i in range(s*25_000, (s+1)*25_000):
                data = rng(1024); ti = tarfile.TarInfo(f"{i:06d}.wav"); ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
PY
  cat > dvc.yaml <<Y
stages:
  download:
    cmd: "true"
    outs:
      - raw/audio:
          persist: true
Y
  echo /raw > .gitignore; git add -A >/dev/null; git commit -qm init
  s=$(date +%s.%N); dvc commit -f download >/dev/null; e=$(date +%s.%N); echo "$layout commit_first $(echo "$e - $s" | bc)"
  s=$(date +%s.%N); dvc status -q >/dev/null || true; e=$(date +%s.%N); echo "$layout status_warm $(echo "$e - $s" | bc)"
  s=$(date +%s.%N); dvc status -q >/dev/null || true; e=$(date +%s.%N); echo "$layout status_warm2 $(echo "$e - $s" | bc)"
  touch raw/audio/*00000*; 
  s=$(date +%s.%N); dvc commit -f -q download; e=$(date +%s.%N); echo "$layout commit_again $(echo "$e - $s" | bc)"
  echo "$layout files_in_cache $(find .dvc/cache -type f | wc -l) du_cache $(du -sm .dvc/cache | cut -f1)MB du_ws $(du -sm raw | cut -f1)MB"
done
