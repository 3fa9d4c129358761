"""Stage evaluate: test metrics of every stage-1 and stage-2 model, of their ensembles and of every released model
(params ``released``, imported by release@<name>; reported as ``released-<name>``).

The headline file (the declared DVC metric: `dvc exp show`, `dvc metrics diff`) holds test t2a mAP@10, R@1 and
R@10 per model and ensemble; the metrics file holds everything (both directions, mAP@16 of the multi-relevance
judgements when ``evaluate.relevance`` is set, the judgements file being its copy).
"""

from pathlib import Path

from common import parser, setup

from salsa2.config.params import training_params
from salsa2.evaluation.evaluate import evaluate, released_models, write_headline, write_metrics
from salsa2.features.caches import feature_caches
from salsa2.evaluation.plots import plot_training_curves

if __name__ == "__main__":
    cli = parser(__doc__)
    cli.add_argument("--stage1", required=True, help="the stage-1 models, one folder per encoder")
    cli.add_argument("--stage2", required=True, help="the stage-2 models, one folder per encoder")
    cli.add_argument("--released", required=True, help="the released models, one folder per entry of `released`")
    cli.add_argument("--data", required=True, help="the prepared tables (their test split)")
    cli.add_argument("--features", required=True, help="the log-mel caches, one folder per frontend")
    cli.add_argument("--text-features", required=True, help="the frozen text encoder's features (.npz)")
    cli.add_argument("--judgements", required=True, help="the copy of evaluate.relevance (empty when null)")
    cli.add_argument("--live", required=True, help="the training stages' dvclive folders, stage<N>-<encoder>")
    cli.add_argument("--metrics", required=True, help="output: every metric (JSON)")
    cli.add_argument("--headline", required=True, help="output: the headline metrics (JSON)")
    cli.add_argument("--curves", required=True, help="output: the training curves (PNG)")
    args = cli.parse_args()
    raw = setup()
    params = training_params(raw)
    models = {}
    for stage, folder in ((1, args.stage1), (2, args.stage2)):
        for enc in params.encoders:
            models[f"stage{stage}-{enc}"] = Path(folder) / enc
    models.update(released_models(args.released, raw.get("released") or {}))
    # Every cache in the features folder (the declared dep), by the frontend key it records: each model reads the
    # one its own frontend made.
    features = feature_caches(args.features)
    ensembles = {
        "ensemble-stage1": [f"stage1-{e}" for e in params.encoders],
        "ensemble-stage2": [f"stage2-{e}" for e in params.encoders],
    }
    judged = raw.get("evaluate") or {}
    relevance = (args.judgements, judged["relevance_dataset"]) if judged.get("relevance") else None
    results = evaluate(params, models, args.data, features, args.text_features, "test", ensembles,
                       relevance=relevance, relevance_k=int(judged.get("relevance_k", 16)))
    write_metrics(args.metrics, results)
    write_headline(args.headline, results)
    plot_training_curves([Path(args.live) / name for name in models if name.startswith("stage")], args.curves)
    for name, m in results.items():
        print(f"{name:>18}: t2a mAP@10 {m['t2a/mAP@10']:.4f}  R@1 {m['t2a/R@1']:.4f}  R@5 {m['t2a/R@5']:.4f}  "
              f"R@10 {m['t2a/R@10']:.4f}" + "".join(f"  {k} {v:.4f}" for k, v in m.items() if "multi" in k))
