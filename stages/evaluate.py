"""Stage evaluate: test metrics of every stage-1 and stage-2 model and of their ensembles -> reports/.

reports/headline.json (the declared DVC metric: `dvc exp show`, `dvc metrics diff`) holds test t2a mAP@10, R@1
and R@10 per model and ensemble; reports/metrics.json holds everything (both directions, mAP@16 of the
multi-relevance judgements when ``evaluate.relevance`` is set, data/judgements.csv being its copy).
"""

from pathlib import Path

from common import setup, setup_training

from salsa2.evaluation.evaluate import evaluate, write_headline, write_metrics
from salsa2.features.logmel_cache import cache_key
from salsa2.evaluation.plots import plot_training_curves

if __name__ == "__main__":
    params = setup_training()
    models = {}
    for stage in (1, 2):
        for enc in params.encoders:
            models[f"stage{stage}-{enc}"] = Path(f"models/stage{stage}/{enc}")
    # The caches the selected encoders read (encoders: name -> frontend), by the frontend key each cache records.
    features = {cache_key(f"data/features/{name}"): Path(f"data/features/{name}") for name in params.encoders.values()}
    ensembles = {
        "ensemble-stage1": [f"stage1-{e}" for e in params.encoders],
        "ensemble-stage2": [f"stage2-{e}" for e in params.encoders],
    }
    judged = setup().get("evaluate") or {}
    relevance = ("data/judgements.csv", judged["relevance_dataset"]) if judged.get("relevance") else None
    results = evaluate(params, models, "data/prepared", features, "data/text_features.npz", "test", ensembles,
                       relevance=relevance, relevance_k=int(judged.get("relevance_k", 16)))
    write_metrics("reports/metrics.json", results)
    write_headline("reports/headline.json", results)
    plot_training_curves([f"reports/train/{name}" for name in models], "reports/training_curves.png")
    for name, m in results.items():
        print(f"{name:>18}: t2a mAP@10 {m['t2a/mAP@10']:.4f}  R@1 {m['t2a/R@1']:.4f}  R@5 {m['t2a/R@5']:.4f}  "
              f"R@10 {m['t2a/R@10']:.4f}" + "".join(f"  {k} {v:.4f}" for k, v in m.items() if "multi" in k))
