"""Stage prepare: the datasets of params ``data.datasets`` -> data/prepared/{audio,captions}.parquet, rejects.csv."""

from common import setup

from salsa2.pipeline import prepare

if __name__ == "__main__":
    rejects = prepare(setup()["data"]["datasets"], "data/prepared")
    if len(rejects):
        print(f"{len(rejects)} clips rejected, listed in data/prepared/rejects.csv")
