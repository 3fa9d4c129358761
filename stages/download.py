"""Stage download@<name>: params ``downloads.<name>`` ({dataset, args}) -> the raw dataset as a few tar shards +
manifest.json (salsa2.data.raw_shards). The dataset's own builder fetches and verifies it into a scratch folder
named after these params (nothing of a run with other params is reused; a failed run of the same params resumes
there), which is packed and then becomes the unpacked copy prepare and features read."""

from pathlib import Path

from common import parser, setup

from salsa2.data.datasets import DATASETS
from salsa2.data.raw_shards import hand_over, pack, scratch_for

if __name__ == "__main__":
    cli = parser(__doc__)
    cli.add_argument("name", help="the entry of params `downloads`")
    cli.add_argument("--scratch", required=True, help="where the dataset is fetched, one folder per params (not a "
                     "DVC output; emptied when the stage succeeds)")
    cli.add_argument("--unpacked", required=True, help="the unpacked copy the fetched folder becomes "
                     "(not a DVC output)")
    cli.add_argument("--out", required=True, help="the folder of tar shards")
    args = cli.parse_args()
    entry = setup()["downloads"][args.name]
    work = scratch_for(entry, args.scratch)
    DATASETS.build(entry["dataset"], **{**(entry.get("args") or {}), "root": str(work)})
    manifest = pack(work, Path(args.out))
    hand_over(work, args.unpacked)
    print(f"{args.name}: {manifest['files']} files in {len(manifest['shards'])} shard(s) under {args.out}")
