"""Stage prepare: params ``data.datasets`` -> data/prepared (fine-tuning and evaluation data) and
``data.pretrain`` -> data/pretrain (stage-1 training data; a copy of data/prepared when the list is empty).
Each folder holds audio.parquet, captions.parquet and rejects.csv. data/judgements.csv is a copy of the
multi-relevance judgements ``evaluate.relevance`` names (empty when null), so that evaluate depends on them and
nothing else does."""

import shutil
from pathlib import Path

from common import fail, setup

from salsa2.data.prepare import prepare, prepare_pretrain
from salsa2.data.tables import TooManyRejects, check_reject_share, max_reject_share, read_tables, rejected_clips

if __name__ == "__main__":
    raw = setup()
    data = raw["data"]
    relevance = (raw.get("evaluate") or {}).get("relevance")
    if relevance and not Path(relevance).is_file():
        fail(f"params.yaml evaluate.relevance: {relevance} does not exist; set it to the judgements CSV or to null")
    for out, rejects in (("data/prepared", prepare(data["datasets"], "data/prepared")),
                         ("data/pretrain", prepare_pretrain(data["datasets"], data.get("pretrain"), "data/prepared",
                                                            "data/pretrain"))):
        kept, dropped = len(read_tables(out)[0]), rejected_clips(rejects)
        if len(rejects):
            print(f"{dropped} clips and {len(rejects) - dropped} caption rows rejected, listed in {out}/rejects.csv")
        try:
            check_reject_share(dropped, kept + dropped, f"{out}/rejects.csv",
                               max_reject_share(data))
        except TooManyRejects as err:
            fail(f"stage prepare: {err}")
    if relevance:
        shutil.copyfile(relevance, "data/judgements.csv")
    else:
        Path("data/judgements.csv").write_text("")
