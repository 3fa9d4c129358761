"""Stage download@<name>: params ``downloads.<name>`` ({dataset, args}) -> data/raw/<name>, the raw dataset as a
few tar shards + manifest.json (salsa2.data.raw_shards). The dataset's own builder fetches and verifies it into
data/unpacked/<name>, which stays as the unpacked copy prepare and features read."""

import sys
from pathlib import Path

from common import setup

from salsa2.data.datasets import DATASETS
from salsa2.data.raw_shards import pack

if __name__ == "__main__":
    name = sys.argv[1]
    entry = setup()["downloads"][name]
    scratch = Path("data/unpacked") / name
    DATASETS.build(entry["dataset"], **{**(entry.get("args") or {}), "root": str(scratch)})
    manifest = pack(scratch, Path("data/raw") / name)
    print(f"{name}: {manifest['files']} files in {len(manifest['shards'])} shard(s) under data/raw/{name}")
