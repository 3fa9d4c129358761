"""The long-recording demo: the demo's test clips placed at known times in one- to five-minute backgrounds.

Built the way Clotho-Moment was built (Munakata et al. 2025, "Language-based audio moment retrieval"): a
captioned clip is mixed into a longer background recording at a random time, at a random level relative to
the background, and the clip's span becomes the ground-truth window of its caption. Clotho-Moment puts one
Clotho clip into a one-minute walking-tour segment; its annotations' ``fg_dB`` (the clip's level over the
background) spread uniformly over [-5, 5] dB. Here, as in CASTELLA's one- to five-minute recordings with
several moments, each recording holds one or more clips:

* recording ``r`` (``long_<r>``) lasts ``U{min_seconds..max_seconds}`` whole seconds; its background is one
  of the demo's ambient kinds (rain, wind, stream, engine; ``salsa2.data.demo``) at -30 dB over its noise floor;
* ``U{min_clips..max_clips}`` test clips of ``data/demo`` (as many as fill at most 80 % of it; each used once in
  the whole demo, none holding the background's kind) are placed without overlap at random times (onsets on a
  0.1 s grid, as Clotho-Moment's windows), each at ``fg_dB ~ U[-5, 5]`` dB over the background's RMS under it;
* each placed clip gives one query, one of its five captions (``qid = <vid>_<k>``, k from 1, as CASTELLA's);
  its ground-truth windows are the spans of every clip in the recording that holds all the sound kinds the
  caption mentions (the demo's multi-relevance rule, ``salsa2.data.demo.relevance_table``), so a query may
  have several windows.

Output (``salsa2.moments.data`` reads it; the format of lighthouse's Clotho-Moment files, with ``fg_dB`` and
the clip's ``source`` file as extra keys)::

    audio/<vid>.flac      16 kHz mono
    moments.jsonl         qid, query, duration, vid, relevant_windows, fg_dB, source
    recordings.csv        vid, duration, background, clips (JSON: source, start, end, fg_dB)

Deterministic for a seed: recording ``r`` draws from its own stream ``(seed, r)`` after one shared draw that
deals the clips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from salsa2.data.demo import KINDS, SR, _lowpass_noise
from salsa2.moments.data import MomentQuery, write_moment_jsonl
from salsa2.utils.errors import UserError
from salsa2.utils.fsutil import atomic_dir

BACKGROUNDS = ("rain", "wind", "stream", "engine")  # the demo's ambient kinds (Clotho-Moment: walking tours)
BACKGROUND_DB = -30.0  # background RMS in dB re full scale
FG_DB = (-5.0, 5.0)  # clip level over the background (Clotho-Moment's fg_dB range)
GRID = 0.1  # onset resolution in seconds


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) + 1e-12


def _background(rng: np.random.Generator, kind: str, seconds: int) -> np.ndarray:
    n = seconds * SR
    sig = KINDS[kind].synth(rng, n, 1.0)
    sig = sig / _rms(sig) * 10 ** (BACKGROUND_DB / 20)
    return sig + 0.003 * _lowpass_noise(rng, n, 3000)


def _kinds(events_json: str) -> set[str]:
    return {e["kind"] for e in json.loads(events_json)}


def _placements(rng: np.random.Generator, lengths: list[float], seconds: int) -> list[float]:
    """Onsets (0.1 s grid) of clips of ``lengths`` s, in the given order, without overlap, inside ``seconds``."""
    free = seconds - sum(lengths) - GRID * (len(lengths) + 1)
    gaps = rng.dirichlet(np.ones(len(lengths) + 1)) * free
    onsets, t = [], 0.0
    for gap, length in zip(gaps, lengths):
        t += gap
        onset = float(np.ceil(t / GRID - 1e-9) * GRID)
        onsets.append(round(onset, 1))
        t = onset + length + GRID
    return onsets


def build_long_demo(demo: str | Path, out_dir: str | Path, recordings: int = 12, min_seconds: int = 60,
                    max_seconds: int = 300, min_clips: int = 1, max_clips: int = 5, seed: int = 0,
                    split: str = "test") -> None:
    """Write the long-recording demo built from ``demo``'s ``split`` clips to ``out_dir`` (module docstring)."""
    demo = Path(demo)
    if not 0 < min_seconds <= max_seconds or recordings < 1 or not 1 <= min_clips <= max_clips:
        raise UserError(f"moments.demo: need recordings >= 1, 1 <= min_clips <= max_clips and 0 < min_seconds <= "
                        f"max_seconds, got {recordings}, {min_clips}, {max_clips}, {min_seconds}, {max_seconds}")
    clips = pd.read_csv(demo / "clips.csv")
    clips = clips[clips["split"] == split].reset_index(drop=True)
    captions = pd.read_csv(demo / "captions.csv")
    captions = captions[captions["split"] == split]
    by_file = {f: list(zip(g["caption"], g["events"])) for f, g in captions.groupby("file", sort=False)}
    if len(clips) < recordings * max_clips:
        raise UserError(f"{demo}: {len(clips)} {split} clips; the long-recording demo needs recordings * max_clips "
                        f"= {recordings * max_clips}; lower moments.demo.recordings or max_clips")
    deal = [int(i) for i in np.random.default_rng([seed]).permutation(len(clips))]
    queries: list[MomentQuery] = []
    rows = []
    with atomic_dir(out_dir) as tmp:
        (tmp / "audio").mkdir()
        for r in range(recordings):
            rng = np.random.default_rng([seed, r])
            vid = f"long_{r:03d}"
            seconds = int(rng.integers(min_seconds, max_seconds + 1))
            kind = str(rng.choice(BACKGROUNDS))
            mix = _background(rng, kind, seconds)
            want = int(rng.integers(min_clips, max_clips + 1))
            chosen, total = [], 0.0
            while deal and len(chosen) < want:
                i = deal.pop(0)
                length = float(clips.at[i, "duration"])
                if kind in _kinds(clips.at[i, "events"]):
                    continue  # the background would make the clip's caption true everywhere
                if total + length > 0.8 * seconds:
                    deal.append(i)
                    break
                chosen.append(i)
                total += length
            if not chosen:
                raise UserError(f"recording {vid}: no {split} clip fits {seconds} s; raise moments.demo.min_seconds")
            placed = []
            for i, onset in zip(chosen, _placements(rng, [float(clips.at[i, "duration"]) for i in chosen], seconds)):
                wav, rate = sf.read(demo / clips.at[i, "file"], dtype="float64")
                if rate != SR:
                    raise UserError(f"{demo / clips.at[i, 'file']}: {rate} Hz; the demo clips are {SR} Hz")
                start = int(round(onset * SR))
                fg_db = float(rng.uniform(*FG_DB))
                under = mix[start:start + len(wav)]
                mix[start:start + len(wav)] += wav[: len(under)] * (_rms(under) / _rms(wav) * 10 ** (fg_db / 20))
                end = round(min(onset + len(wav) / SR, seconds), 1)
                placed.append({"source": clips.at[i, "file"], "start": onset, "end": end, "fg_dB": fg_db,
                               "kinds": _kinds(clips.at[i, "events"])})
            peak = float(np.abs(mix).max())
            if peak > 0.95:
                mix *= 0.9 / peak
            sf.write(tmp / "audio" / f"{vid}.flac", mix.astype(np.float32), SR, subtype="PCM_16")
            for k, p in enumerate(placed, 1):
                text, mentioned = by_file[p["source"]][int(rng.integers(len(by_file[p["source"]])))]
                need = set(str(mentioned).split(";"))
                windows = tuple((q["start"], q["end"]) for q in placed if need <= q["kinds"])
                queries.append(MomentQuery(f"{vid}_{k}", text, vid, seconds, windows,
                                           {"fg_dB": p["fg_dB"], "source": p["source"]}))
            rows.append({"vid": vid, "duration": seconds, "background": kind,
                         "clips": json.dumps([{k: v for k, v in p.items() if k != "kinds"} for p in placed])})
        write_moment_jsonl(tmp / "moments.jsonl", queries)
        pd.DataFrame(rows).to_csv(tmp / "recordings.csv", index=False)
