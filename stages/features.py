"""Stage features@<frontend>: log-mel cache of every prepared clip for one frontend setting."""

import sys

from common import setup

from salsa2.features import frontend_from_params
from salsa2.pipeline import build_features

if __name__ == "__main__":
    name = sys.argv[1]
    raw = setup()
    rejects = build_features(["data/prepared", "data/pretrain"], frontend_from_params(raw["frontends"][name]),
                             f"data/features/{name}", raw["data"]["min_duration"])
    if len(rejects):
        print(f"{len(rejects)} clips rejected, listed in data/features/{name}/rejects.csv")
