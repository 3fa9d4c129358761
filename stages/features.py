"""Stage features@<frontend>: log-mel cache of every prepared clip for one frontend setting."""

from pathlib import Path

from common import fail, parser, setup

from salsa2.features.logmel_cache import build_features, frontend_from_params, union_audio
from salsa2.data.raw_shards import unpack_referenced
from salsa2.data.tables import TooManyRejects, check_reject_share, max_reject_share

if __name__ == "__main__":
    cli = parser(__doc__)
    cli.add_argument("frontend", help="the entry of params `frontends`")
    cli.add_argument("--data", required=True, nargs="+", help="the prepared folders whose clips are cached")
    cli.add_argument("--raw", required=True, help="the downloads, those the tables point into unpacked for their audio")
    cli.add_argument("--unpacked", required=True, help="where the downloads are unpacked (not a DVC output)")
    cli.add_argument("--out", required=True, help="the cache folder")
    args = cli.parse_args()
    name, rejects_file = args.frontend, Path(args.out) / "rejects.csv"
    raw = setup()
    # the audio the tables point at, in any checkout (dvc exp run --temp); params `downloads` is not read
    unpack_referenced(union_audio(args.data)["path"], args.raw, args.unpacked)
    rejects = build_features(args.data, frontend_from_params(raw["frontends"][name]), args.out,
                             raw["data"]["min_duration"])
    if len(rejects):
        print(f"{len(rejects)} clips rejected, listed in {rejects_file}")
    try:
        check_reject_share(len(rejects), len(union_audio(args.data)), rejects_file, max_reject_share(raw["data"]))
    except TooManyRejects as err:
        fail(f"stage features@{name}: {err}")
