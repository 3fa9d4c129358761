"""Stage moments_evaluate: moment retrieval in the long recordings with every stage-1 and stage-2 model and their
ensembles (sliding windows, params: moments), scored as DCASE 2026 task 6 scores it.

The metrics file (the declared DVC metric) holds R1@0.5, R1@0.7, mAP (= mAP@[0.5:0.95]), mAP@0.5 and mAP@0.75 per
model and ensemble, in percent as the task reports them; the submissions folder one DCASE submission file per
model and ensemble (<name>.jsonl).
"""

from pathlib import Path

from common import parser, setup

from salsa2.config.params import moments_params, training_params
from salsa2.moments.data import read_moments
from salsa2.moments.evaluate import evaluate_moments, write_moment_reports

if __name__ == "__main__":
    cli = parser(__doc__)
    cli.add_argument("--stage1", required=True, help="the stage-1 models, one folder per encoder")
    cli.add_argument("--stage2", required=True, help="the stage-2 models, one folder per encoder")
    cli.add_argument("--recordings", required=True, help="the long recordings: audio/ and moments.jsonl")
    cli.add_argument("--metrics", required=True, help="output: the moment metrics (JSON)")
    cli.add_argument("--submissions", required=True, help="output: the submission files, one per model (folder)")
    args = cli.parse_args()
    raw = setup()
    encoders = training_params(raw).encoders
    p = moments_params(raw)
    models = {f"stage{stage}-{enc}": Path(folder) / enc
              for stage, folder in ((1, args.stage1), (2, args.stage2)) for enc in encoders}
    ensembles = {f"ensemble-stage{stage}": [f"stage{stage}-{e}" for e in encoders] for stage in (1, 2)}
    queries = read_moments(Path(args.recordings) / "moments.jsonl")
    metrics, rows = evaluate_moments(models, queries, Path(args.recordings) / "audio", p.window, p.hop, p.method,
                                     p.method_params(), ensembles, p.batch_size)
    write_moment_reports(args.metrics, args.submissions, metrics, rows)
    for name, m in metrics.items():
        print(f"{name:>18}: " + "  ".join(f"{k} {v:.2f}" for k, v in m.items()))
