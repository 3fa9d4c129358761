"""Stage features@<frontend>: log-mel cache of every prepared clip for one frontend setting."""

import sys

from common import fail, setup

from salsa2.features.logmel_cache import build_features, frontend_from_params, union_audio
from salsa2.data.raw_shards import unpack_all
from salsa2.data.tables import TooManyRejects, check_reject_share, max_reject_share

if __name__ == "__main__":
    name = sys.argv[1]
    raw = setup()
    sources = ["data/prepared", "data/pretrain"]
    unpack_all(raw.get("downloads"))  # the audio the tables point at, in any checkout (dvc exp run --temp)
    rejects = build_features(sources, frontend_from_params(raw["frontends"][name]), f"data/features/{name}",
                             raw["data"]["min_duration"])
    if len(rejects):
        print(f"{len(rejects)} clips rejected, listed in data/features/{name}/rejects.csv")
    try:
        check_reject_share(len(rejects), len(union_audio(sources)), f"data/features/{name}/rejects.csv",
                           max_reject_share(raw["data"]))
    except TooManyRejects as err:
        fail(f"stage features@{name}: {err}")
