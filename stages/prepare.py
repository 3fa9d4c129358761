"""Stage prepare: params ``data.datasets`` -> the prepared tables (fine-tuning and evaluation data) and
``data.pretrain`` -> the pretraining tables (stage-1 training data; a copy of the prepared tables when the list is
empty). Each folder holds audio.parquet, captions.parquet and rejects.csv. The judgements file is a copy of the
multi-relevance judgements ``evaluate.relevance`` names (empty when null), so that evaluate depends on them and
nothing else does."""

import shutil
from pathlib import Path

from common import fail, parser, setup

from salsa2.data.prepare import prepare, prepare_pretrain
from salsa2.data.tables import (TooManyRejects, check_reject_share, max_reject_share, read_tables, rejected_clips,
                                rejects_summary)

if __name__ == "__main__":
    cli = parser(__doc__)
    cli.add_argument("--raw", required=True, help="the downloads (a dataset with `raw: <name>` reads RAW/<name>)")
    cli.add_argument("--unpacked", required=True, help="where the downloads are unpacked (not a DVC output)")
    cli.add_argument("--prepared", required=True, help="output: the tables of data.datasets")
    cli.add_argument("--pretrain", required=True, help="output: the tables of data.pretrain")
    cli.add_argument("--judgements", required=True, help="output: the copy of evaluate.relevance")
    args = cli.parse_args()
    raw = setup()
    data = raw["data"]
    relevance = (raw.get("evaluate") or {}).get("relevance")
    if relevance and not Path(relevance).is_file():
        fail(f"params.yaml evaluate.relevance: {relevance} does not exist; set it to the judgements CSV or to null")
    downloads = {"raw_root": args.raw, "unpacked_root": args.unpacked}
    for out, rejects in ((args.prepared, prepare(data["datasets"], args.prepared, **downloads)),
                         (args.pretrain, prepare_pretrain(data["datasets"], data.get("pretrain"), args.prepared,
                                                          args.pretrain, **downloads))):
        kept, dropped = len(read_tables(out)[0]), rejected_clips(rejects)
        if len(rejects):
            print(f"{rejects_summary(rejects)}, listed in {out}/rejects.csv")
        try:
            check_reject_share(dropped, kept + dropped, f"{out}/rejects.csv",
                               max_reject_share(data))
        except TooManyRejects as err:
            fail(f"stage prepare: {err}")
    if relevance:
        shutil.copyfile(relevance, args.judgements)
    else:
        Path(args.judgements).write_text("")
