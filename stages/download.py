"""Stage download@<name>: params ``downloads.<name>`` ({dataset, args}) -> the raw dataset as a few tar shards +
manifest.json (salsa2.data.raw_shards). The dataset's own builder fetches and verifies it into the unpacked
folder, which stays as the unpacked copy prepare and features read."""

from pathlib import Path

from common import parser, setup

from salsa2.data.datasets import DATASETS
from salsa2.data.raw_shards import pack

if __name__ == "__main__":
    cli = parser(__doc__)
    cli.add_argument("name", help="the entry of params `downloads`")
    cli.add_argument("--unpacked", required=True, help="the folder the dataset is fetched into (not a DVC output)")
    cli.add_argument("--out", required=True, help="the folder of tar shards")
    args = cli.parse_args()
    entry = setup()["downloads"][args.name]
    DATASETS.build(entry["dataset"], **{**(entry.get("args") or {}), "root": args.unpacked})
    manifest = pack(Path(args.unpacked), Path(args.out))
    print(f"{args.name}: {manifest['files']} files in {len(manifest['shards'])} shard(s) under {args.out}")
