"""Stage prepare: params ``data.datasets`` -> data/prepared (fine-tuning and evaluation data) and
``data.pretrain`` -> data/pretrain (stage-1 training data; a copy of data/prepared when the list is empty).
Each folder holds audio.parquet, captions.parquet and rejects.csv."""

from common import setup

from salsa2.pipeline import prepare, prepare_pretrain

if __name__ == "__main__":
    data = setup()["data"]
    for out, rejects in (("data/prepared", prepare(data["datasets"], "data/prepared")),
                         ("data/pretrain", prepare_pretrain(data["datasets"], data.get("pretrain"), "data/prepared",
                                                            "data/pretrain"))):
        if len(rejects):
            print(f"{len(rejects)} clips rejected, listed in {out}/rejects.csv")
