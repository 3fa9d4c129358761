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


# The figures each source repository's README publishes for its released model (percent, text -> audio, Clotho
# v2.1 evaluation split; mAP@16 with the DCASE 2025 task 6 multi-relevance judgements). docs/reproduce.md
# "Released models" gives the command that re-measures them.
PUBLISHED = {
    "https://github.com/OptimusPrimus/salsa": {
        "where": "Clotho v2.1 evaluation split (OptimusPrimus/salsa README)",
        "mAP@10": 40.11, "R@1": 27.69, "R@5": 57.05, "R@10": 70.50},
    "https://github.com/CPJKU/dcase2025_task6_baseline": {
        "where": "Clotho v2.1 evaluation split with the DCASE 2025 task 6 judgements "
                 "(CPJKU/dcase2025_task6_baseline README)",
        "mAP@16": 40.59, "mAP@10": 35.23, "R@1": 23.29},
}


def released_provenance(info: dict) -> dict | None:
    """Where a released model came from (its config.json ``trained_on``): source, file, sha256, train_on and
    the figures its source publishes; None for a model salsa2 trained."""
    record = info.get("trained_on") or {}
    if not isinstance(record, dict) or "source" not in record:
        return None
    out = {key: record.get(key) for key in ("source", "file", "sha256", "train_on", "note")}
    published = record.get("published") or PUBLISHED.get(str(record["source"]).rstrip("/"))
    if published:
        out["published"] = published
    return out


def provenance_lines(info: dict, name: str) -> list[str]:
    """A few human-readable lines on where checkpoint ``name`` came from (``salsa2 info``)."""
    released = released_provenance(info)
    if released is not None:
        lines = [f"{name}: released model from {released['source']}",
                 f"  file {released['file']}, sha256 {released['sha256'] or 'not recorded'}",
                 f"  trained on {released['train_on'] or 'not recorded'}"]
        if released.get("published"):
            figures = {k: v for k, v in released["published"].items() if k != "where"}
            lines.append("  published: " + ", ".join(f"{k} {v}" for k, v in figures.items())
                         + f" ({released['published'].get('where', 'its source')})")
        return lines
    record = info.get("trained_on") or {}
    if not record:
        return [f"{name}: training data not recorded"]
    sets = ", ".join(f"{k} ({v.get('clips')} clips)" for k, v in (record.get("datasets") or {}).items())
    warning = demo_only_warning(info, name)
    return [f"{name}: trained by salsa2 on {sets or 'unknown data'} (data hash {record.get('data_hash')})"] + (
        [f"  warning: {warning}"] if warning else [])
