"""What a checkpoint was trained on (recorded in its config.json as ``trained_on``), and the one-line warning
that `salsa2 index` / `salsa2 search` print for a model that saw only the synthetic demo: such a model is at
chance on real recordings (R@10 0.12 against chance 0.095 on a set of real sound effects)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from salsa2.data.tables import read_tables

DEMO_MARKERS = ("clips.csv", "relevance_test.csv")  # written together only by `salsa2 demo` (demo.generate)


def is_synthetic_demo(clip_path: str | Path) -> bool:
    """True when the clip lies in a folder written by the demo generator (its clips.csv has an events column)."""
    for folder in list(Path(clip_path).parents)[:4]:
        if all((folder / m).is_file() for m in DEMO_MARKERS):
            with open(folder / "clips.csv", encoding="utf-8", errors="replace") as f:
                return "events" in f.readline().strip().split(",")
    return False


def training_data(data_dir: str | Path, split: str = "train") -> dict:
    """{datasets: {name: {clips, captions, synthetic}}, clips, captions, data_hash, synthetic_only} of a split.

    ``data_hash`` is a sha1 of the sorted (audio_id, caption) pairs: equal data, equal hash.
    """
    audio, captions = read_tables(data_dir)
    audio = audio[audio["split"] == split]
    captions = captions[captions["audio_id"].isin(set(audio["audio_id"]))]
    datasets = {}
    for name, group in audio.groupby("dataset", sort=True):
        n_caps = int(captions["audio_id"].isin(set(group["audio_id"])).sum())
        datasets[str(name)] = {"clips": int(len(group)), "captions": n_caps,
                               "synthetic": bool(len(group)) and is_synthetic_demo(group["path"].iloc[0])}
    h = hashlib.sha1()
    for a, t in sorted(zip(captions["audio_id"].astype(str), captions["text"].astype(str))):
        h.update(f"{a}\t{t}\n".encode())
    return {"split": split, "datasets": datasets, "clips": int(len(audio)), "captions": int(len(captions)),
            "data_hash": h.hexdigest()[:16],
            "synthetic_only": bool(datasets) and all(d["synthetic"] for d in datasets.values())}


def demo_only_warning(info: dict, name: str) -> str | None:
    """The warning line for a checkpoint (its config.json) trained only on the synthetic demo, else None."""
    records = [r for r in (info.get("trained_on"), info.get("init_trained_on")) if r]
    if not records or not all(r.get("synthetic_only") for r in records):
        return None
    return (f"model {name} was trained only on the synthetic demo ({records[0]['clips']} clips): its results on "
            "real recordings are near chance; train on real data (params.yaml data.datasets) for a real library")
