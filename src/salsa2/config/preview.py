"""What an experiment will run and download, before anything is downloaded: the stages of dvc.yaml expanded over
the experiment's params and compared with dvc.lock, the downloads, the disk and the GPU time.

Reads only dvc.yaml, dvc.lock and the params. A stage *runs* when dvc.lock has no entry for it or a declared
param or its command differs; stages downstream of one that runs run too (DVC may skip one whose inputs come out
byte-identical). Code and data deps are not hashed here (``dvc status`` does that). Sizes are the published
counts and durations (docs/datasets.md); disk figures are estimates from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Published facts per dataset (docs/datasets.md; Labbeti/aac-datasets' README for clips and hours): clips,
# hours of audio, training caption-clip pairs, GB fetched by download@ (archives and metadata), GB of audio on disk,
# where the audio is from.
DATASET_FACTS: dict[str, dict[str, Any]] = {
    "clotho": {"clips": 5929, "hours": 37.0, "train_pairs": 19195, "download_gb": 11.0, "audio_gb": 11.0,
               "source": "Zenodo record 4783391 (three 7z archives, 44.1 kHz WAV; size estimated from the hours)"},
    "audiocaps": {"clips": 51308, "hours": 142.0, "train_pairs": 49838, "download_gb": 0.004, "audio_gb": 43.0,
                  "source": "caption CSVs from GitHub; the audio is your copy (audio_dir, about 43 GB at 32 kHz) "
                            "or a mirror; 5-10 % of the YouTube videos are gone"},
    "wavcaps": {"clips": 403050, "hours": 7563.0, "train_pairs": 403050, "download_gb": 830.0, "audio_gb": 830.0,
                "source": "Hugging Face cvssp/WavCaps (json + split zips; ~2 TB peak while the zips are joined)"},
    "macs": {"clips": 3930, "hours": 10.9, "train_pairs": 17275, "download_gb": 13.0, "audio_gb": 13.0,
             "source": "Zenodo 5114771 + the TAU Urban Acoustic Scenes 2019 zips that hold MACS clips"},
}
# A40 seconds per caption-clip pair and epoch: the authors' Clotho stage 1 (PaSST, fp16, batch 64) took about
# 2 h 16 min for 20 epochs x 19,195 pairs (OptimusPrimus/salsa README; docs/reproduce.md, GPU time).
A40_SECONDS_PER_PAIR = (2 * 3600 + 16 * 60) / (20 * 19195)


@dataclass
class Stage:
    name: str
    cmd: str
    deps: list[str]
    outs: list[str]
    params: list[str]
    marker: bool = False  # depends on the whole params.yaml, writes a constant (stage params): re-runs nothing after it
    runs: bool = False
    why: list[str] = field(default_factory=list)


def _interpolate(text: str, key: Any, item: Any) -> str:
    def value(m: re.Match) -> str:
        parts = m.group(1).split(".")
        if parts[0] == "key":
            return str(key)
        if parts[0] == "item":
            v = item
            for p in parts[1:]:
                v = v[p]
            return str(v)
        return m.group(0)

    return re.sub(r"\$\{([^}]+)\}", value, text)


def _paths(entries: list | None) -> list[str]:
    out = []
    for e in entries or []:
        out.append(next(iter(e)) if isinstance(e, dict) else e)
    return out


def _lookup(params: dict, dotted: str) -> tuple[bool, Any]:
    node: Any = params
    for p in dotted.split("."):
        if not isinstance(node, dict) or p not in node:
            return False, None
        node = node[p]
    return True, node


def expand(dvc_yaml: dict, params: dict) -> list[Stage]:
    """dvc.yaml's stages with ``foreach`` expanded over ``params`` (``name@key``), in file order."""
    stages = []
    for name, spec in (dvc_yaml.get("stages") or {}).items():
        if "foreach" in spec:
            ref = re.fullmatch(r"\$\{([^}]+)\}", str(spec["foreach"]))
            members = _lookup(params, ref.group(1))[1] if ref else spec["foreach"]
            pairs = (members or {}).items() if isinstance(members, dict) else enumerate(members or [])
            body = spec["do"]
        else:
            pairs, body = [(None, None)], spec
        for key, item in pairs:
            def sub(text: str, key=key, item=item) -> str:
                return _interpolate(str(text), key, item)
            whole = any(isinstance(p, dict) and "params.yaml" in p for p in body.get("params") or [])
            stages.append(Stage(
                name=name if key is None else f"{name}@{key}",
                cmd=" ".join(sub(body["cmd"]).split()),
                deps=[sub(d) for d in _paths(body.get("deps"))],
                outs=[sub(o) for o in _paths(body.get("outs"))],
                params=[sub(p) for p in body.get("params") or [] if isinstance(p, str)]
                + (list(params) if whole else []),
                marker=whole,
            ))
    return stages


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def mark_runs(stages: list[Stage], params: dict, lock: dict) -> list[Stage]:
    """Set ``runs``/``why`` of each stage from dvc.lock (``lock``: its parsed content, {} when absent)."""
    locked = (lock or {}).get("stages") or {}
    produced: list[tuple[str, str]] = []  # (out path, stage name) of stages that run
    for stage in stages:
        entry = locked.get(stage.name)
        if entry is None:
            stage.why.append("not in dvc.lock")
        else:
            if " ".join(str(entry.get("cmd", "")).split()) != stage.cmd:
                stage.why.append("command")
            recorded = (entry.get("params") or {}).get("params.yaml") or {}
            for key in stage.params:
                found, value = _lookup(params, key)
                if not found:
                    stage.why.append(f"param {key} missing")
                elif key not in recorded or recorded[key] != value:
                    stage.why.append(f"param {key}")
        upstream = sorted({s for out, s in produced for dep in stage.deps if _overlap(dep, out)})
        if upstream:
            stage.why.append("after " + ", ".join(upstream))
        stage.runs = bool(stage.why)
        if stage.runs and not stage.marker:
            produced += [(out, stage.name) for out in stage.outs]
    return stages


def _datasets(params: dict) -> list[str]:
    data = params.get("data") or {}
    names = [e.get("name") for e in (data.get("datasets") or []) + (data.get("pretrain") or [])]
    names += [(d or {}).get("dataset") for d in (params.get("downloads") or {}).values()]
    return sorted({n for n in names if n})


def _train_pairs(entries: list[dict]) -> int:
    return sum(DATASET_FACTS.get(e.get("name"), {}).get("train_pairs", 0) for e in entries or [])


def _frontend_gib_per_hour(cfg: dict) -> float:
    """Float16 log-mel cache per hour of audio: n_mels x frames/s x 2 bytes x 3600 (docs/datasets.md)."""
    return cfg.get("n_mels", 64) * cfg.get("sample_rate", 16000) / cfg.get("hop_length", 160) * 2 * 3600 / 2**30


def preview(params: dict, dvc_yaml: str | Path = "dvc.yaml", dvc_lock: str | Path = "dvc.lock") -> dict:
    """The preview of running ``params`` (the merged params.yaml of an experiment) as a mapping."""
    spec = yaml.safe_load(Path(dvc_yaml).read_text())
    lock = yaml.safe_load(Path(dvc_lock).read_text()) if Path(dvc_lock).is_file() else {}
    stages = mark_runs(expand(spec, params), params, lock)
    names = _datasets(params)
    hours = sum(DATASET_FACTS.get(n, {}).get("hours", 0.0) for n in names)
    downloads = {n: DATASET_FACTS.get(n, {"source": "size unknown to the preview"}) for n in names}
    fetched = sum(DATASET_FACTS.get(n, {}).get("download_gb", 0.0) for n in names)
    audio_gb = sum(DATASET_FACTS.get(n, {}).get("audio_gb", 0.0) for n in names)
    features_gb = {f: round(hours * _frontend_gib_per_hour(cfg) * 2**30 / 1e9, 1)
                   for f, cfg in (params.get("frontends") or {}).items()}
    # the shards in data/raw, their unpacked copy in data/unpacked and DVC's cache copy of the shards (the default
    # cache.type copy); features once in the workspace and once in the cache; the peak: the archives, not yet
    # deleted, next to the audio's three copies (the features come after the downloads)
    steady = 3 * audio_gb + 2 * sum(features_gb.values())
    data = params.get("data") or {}
    encoders = list((params.get("encoders") or {}).keys())
    s1 = _train_pairs(data.get("pretrain") or data.get("datasets"))
    s2 = _train_pairs(data.get("datasets"))
    e1 = (params.get("stage1") or {}).get("epochs", 0)
    e2 = (params.get("stage2") or {}).get("epochs", 0)
    stage1_h = s1 * e1 * A40_SECONDS_PER_PAIR / 3600
    stage2_h = s2 * e2 * A40_SECONDS_PER_PAIR / 3600
    return {
        "stages": [{"name": s.name, "runs": s.runs, "why": s.why} for s in stages],
        "downloads": downloads,
        "disk_gb": {"downloaded": round(fetched, 1), "audio": round(audio_gb, 1), "features": features_gb,
                    "steady": round(steady, 1), "peak": round(max(steady, fetched + 3 * audio_gb), 1)},
        "gpu_hours": {"stage1_per_encoder": round(stage1_h, 1), "stage2_per_encoder": round(stage2_h, 1),
                      "encoders": encoders, "total": round(len(encoders) * (stage1_h + stage2_h), 1)},
    }


def render(report: dict) -> str:
    """The preview as text."""
    lines = ["stages (dvc.yaml order):"]
    for s in report["stages"]:
        lines.append(f"  {'runs' if s['runs'] else 'kept'}  {s['name']}"
                     + (f"  ({'; '.join(s['why'])})" if s["why"] else ""))
    lines.append("datasets:")
    for name, facts in report["downloads"].items():
        size = (f"{facts['clips']:,} clips, {facts['hours']:,.0f} h, download ~{facts['download_gb']:g} GB; "
                if "clips" in facts else "")
        lines.append(f"  {name}: {size}{facts['source']}")
    d = report["disk_gb"]
    feats = ", ".join(f"{k} {v:g}" for k, v in d["features"].items())
    lines.append(f"disk (GB, estimates): downloads {d['downloaded']:g} (deleted once unpacked), audio "
                 f"{d['audio']:g} (x3: data/raw shards, data/unpacked, DVC cache), log-mel caches {feats} (x2 with "
                 f"the cache); steady ~{d['steady']:g}, peak ~{d['peak']:g}")
    g = report["gpu_hours"]
    lines.append(f"GPU time (A40-hours, scaled from the authors' Clotho stage 1): stage 1 ~{g['stage1_per_encoder']:g} "
                 f"and stage 2 ~{g['stage2_per_encoder']:g} per encoder ({', '.join(g['encoders'])}); "
                 f"~{g['total']:g} in all, plus one similarity pass per stage-1 model")
    return "\n".join(lines)
