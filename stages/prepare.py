"""Stage prepare: params ``data.datasets`` -> the prepared tables (fine-tuning and evaluation data) and
``data.pretrain`` -> the pretraining tables (stage-1 training data; a copy of the prepared tables when the list is
empty). Each folder holds audio.parquet, captions.parquet and rejects.csv. The judgements file is a copy of the
multi-relevance judgements ``evaluate.relevance`` names in salsa2's format (converted from the DCASE 2025 task 6
metadata_eval.csv where that is given; fetched from ``evaluate.relevance_url`` when missing; empty when null), so
that evaluate depends on them and nothing else does. Each dataset's rejected clips are checked against its
``max_reject_share`` (default ``data.max_reject_share``)."""

from pathlib import Path

from common import fail, parser, setup

from salsa2.data.prepare import check_rejects, prepare, prepare_pretrain
from salsa2.data.tables import TooManyRejects, max_reject_share, rejects_summary
from salsa2.evaluation.judgements import write_judgements
from salsa2.utils.download import Remote, fetch

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
    judged = raw.get("evaluate") or {}
    relevance = judged.get("relevance")
    if relevance and judged.get("relevance_url"):
        fetch(Remote(Path(relevance).name, judged["relevance_url"], sha256=judged.get("relevance_sha256")),
              Path(relevance).parent)
    if relevance and not Path(relevance).is_file():
        fail(f"params.yaml evaluate.relevance: {relevance} does not exist; put the judgements there (docs/datasets.md"
             f", multi-relevance judgements), give evaluate.relevance_url, or set it to null")
    downloads = {"raw_root": args.raw, "unpacked_root": args.unpacked}
    for out, entries, rejects in (
            (args.prepared, data["datasets"], prepare(data["datasets"], args.prepared, **downloads)),
            (args.pretrain, data.get("pretrain") or data["datasets"],
             prepare_pretrain(data["datasets"], data.get("pretrain"), args.prepared, args.pretrain, **downloads))):
        if len(rejects):
            print(f"{rejects_summary(rejects)}, listed in {out}/rejects.csv")
        try:
            check_rejects(entries, out, max_reject_share(data),
                          "data.pretrain" if data.get("pretrain") and out == args.pretrain else "data.datasets")
        except TooManyRejects as err:
            fail(f"stage prepare: {err}")
    if relevance:
        n = write_judgements(relevance, judged.get("relevance_dataset", "demo"), args.prepared, args.judgements)
        print(f"{n} judged queries from {relevance} in {args.judgements}")
    else:
        Path(args.judgements).write_text("")
