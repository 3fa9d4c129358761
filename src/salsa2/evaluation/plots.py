"""Static PNG plots (DVC's HTML plots need a CDN, so they are blank offline)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from salsa2.utils.fsutil import atomic_path


def _read_curve(run_dir: Path, metric: str) -> pd.DataFrame | None:
    path = run_dir / "plots" / "metrics" / f"{metric}.tsv"
    return pd.read_csv(path, sep="\t") if path.exists() else None


def plot_training_curves(run_dirs: list[str | Path], out_path: str | Path) -> None:
    """Training loss and validation t2a mAP@10 per epoch for each dvclive run directory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(11, 4))
    for run in map(Path, run_dirs):
        loss = _read_curve(run, "train/loss")
        val = _read_curve(run, "val/t2a/mAP@10")
        if loss is not None:
            ax_loss.plot(loss["step"], loss.iloc[:, -1], marker="o", ms=3, label=run.name)
        if val is not None:
            ax_map.plot(val["step"], val.iloc[:, -1], marker="o", ms=3, label=run.name)
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="loss")
    ax_map.set(title="validation text-to-audio mAP@10", xlabel="epoch", ylabel="mAP@10")
    for ax in (ax_loss, ax_map):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
