"""The score of a query over time in each file with a hit, its moments shaded (``salsa2 search --moments --plot``)."""

from __future__ import annotations

from pathlib import Path

from salsa2.moments.moment_search import MomentResult
from salsa2.utils.fsutil import atomic_path

MAX_FILES = 8  # panels per figure: the files of the best moments


def plot_moments(result: MomentResult, out_path: str | Path, max_files: int = MAX_FILES) -> list[str]:
    """One panel per file (best first, at most ``max_files``): window score at each window's centre, the
    file's moments shaded and labelled with rank and score. Returns the files drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = list(dict.fromkeys(h.path for h in result.hits))[:max_files]
    fig, axes = plt.subplots(max(1, len(paths)), 1, figsize=(10, 2.2 * max(1, len(paths))), squeeze=False)
    if not paths:
        axes[0, 0].text(0.5, 0.5, "no moments found", ha="center", va="center", transform=axes[0, 0].transAxes)
        axes[0, 0].set_axis_off()
    for ax, path in zip(axes[:, 0], paths):
        curve = result.curves[path]
        centres = (curve.starts + curve.ends) / 2
        ax.plot(centres, curve.scores, lw=1.2, color="tab:blue", label="window score")
        for h in (h for h in result.hits if h.path == path):
            ax.axvspan(h.start, h.end, color="tab:orange", alpha=0.3)
            ax.annotate(f"#{h.rank} {h.score:.3f}", ((h.start + h.end) / 2, 1.0), xycoords=("data", "axes fraction"),
                        ha="center", va="top", fontsize=8)
        ax.set_xlim(0, float(curve.ends.max()))
        ax.set_ylabel("cosine")
        ax.set_title(Path(path).name, fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time (s)")
    query = " | ".join(result.query)
    fig.suptitle(f"{query[:90]}  ({result.method}, models: {', '.join(result.models)})", fontsize=10)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return paths
