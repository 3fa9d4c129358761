"""The embedded demo dataset: synthesised sound scenes with five human-like captions each.

Deterministic for a given seed (each clip has its own random stream, so the result does not depend on the
number of worker processes). A clip of 5-30 s mixes 1-3 sound events (20 kinds) over a noise floor; events
have loudness (loud / quiet) and, for pitched kinds, pitch (high / low) attributes and a temporal order;
some kinds are backgrounds that last the whole clip. Captions are paraphrased from templates with
synonyms; some omit the attributes or a quiet event, so many captions partly describe other clips too --
the ambiguity that estimated correspondences are meant to capture.

Output (the "own folder" format that ``salsa2.data.datasets.folder`` prepares)::

    audio/<split>/<clip>.flac
    captions.csv        file, caption, split, events (kinds the caption mentions, ';'-separated)
    clips.csv           file, split, duration, events (JSON list of kind/onset/offset/loud/pitch)
    relevance_test.csv  caption, file, relevant (a JSON list of files): every test clip holding all the events the
                        caption mentions (multi-relevance evaluation, DCASE 2025 style)
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from salsa2.utils.fsutil import atomic_dir

SR = 16000


# ----------------------------------------------------------------------------------------------- synthesis
def _env(n: int, attack: float, release: float) -> np.ndarray:
    """Linear attack / exponential release envelope over n samples."""
    t = np.arange(n) / SR
    a = np.clip(t / max(attack, 1e-4), 0, 1)
    return a * np.exp(-t / max(release, 1e-4))


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n: FFTs of such lengths are fast, of prime lengths very slow."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p235 = p35 * (1 << max(0, (-(-n // p35) - 1).bit_length()))
            best = min(best, p235)
            p35 *= 3
        p5 *= 5
    return best


def _bandpass(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Brick-wall band-pass by zeroing FFT bins (zero-padded to a fast length)."""
    size = _fast_len(len(x))
    spec = np.fft.rfft(x, size)
    f = np.fft.rfftfreq(size, 1 / SR)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, size)[: len(x)]


def _lowpass_noise(rng: np.random.Generator, n: int, cutoff: float) -> np.ndarray:
    return _bandpass(_noise(rng, n), 0, cutoff)


def _place(out: np.ndarray, sig: np.ndarray, start: int) -> None:
    end = min(len(out), start + len(sig))
    if end > start:
        out[start:end] += sig[: end - start]


def _harmonic(f0: np.ndarray | float, n: int, partials: int, decay: float = 0.6) -> np.ndarray:
    """sum_k decay^k sin((k + 1) phase), k < partials, with sin((k + 1) x) = 2 cos(x) sin(k x) - sin((k - 1) x)
    (one sine and one cosine instead of one sine per partial; equal to float precision)."""
    f0 = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    twice_cos = 2 * np.cos(phase)
    prev, cur = np.zeros(n), np.sin(phase)
    out = cur.copy()
    for k in range(1, partials):
        prev, cur = cur, twice_cos * cur - prev
        out += decay**k * cur
    return out


def _bursts(rng, n, rate, make, jitter=0.3) -> np.ndarray:
    """Repeat ``make()`` at about ``rate`` per second over n samples."""
    out = np.zeros(n)
    t = rng.uniform(0, 0.3) * SR
    while t < n:
        _place(out, make(), int(t))
        t += SR / rate * rng.uniform(1 - jitter, 1 + jitter)
    return out


def dog(rng, n, p):
    def bark():
        m = int(SR * rng.uniform(0.12, 0.2))
        f0 = 450 * p * np.linspace(1.15, 0.8, m)
        return (_harmonic(f0, m, 6, 0.7) + 0.3 * _noise(rng, m)) * _env(m, 0.01, 0.06)
    def double_bark():
        out = np.zeros(int(0.5 * SR))
        _place(out, bark(), 0)
        _place(out, bark(), int(0.22 * SR))
        return out
    return _bursts(rng, n, 1.6, double_bark, 0.4)


def bird(rng, n, p):
    def chirp():
        m = int(SR * rng.uniform(0.05, 0.12))
        f = 3500 * p * np.linspace(rng.uniform(0.8, 1.0), rng.uniform(1.2, 1.5), m)
        return _harmonic(f, m, 2, 0.3) * np.hanning(m)
    return _bursts(rng, n, 6.0, chirp, 0.6)


def horn(rng, n, p):
    def honk():
        m = int(SR * rng.uniform(0.4, 0.9))
        return (_harmonic(420 * p, m, 8, 0.8) + _harmonic(530 * p, m, 8, 0.8)) * _env(m, 0.02, 3.0)
    return _bursts(rng, n, 0.8, honk, 0.5)


def engine(rng, n, p):
    t = np.arange(n) / SR
    f0 = 55 * p * (1 + 0.15 * np.tanh((t - t[-1] / 2) * -1.5))  # pitch falls as it passes
    amp = np.exp(-(((t - t[-1] / 2) / (0.35 * t[-1] + 0.5)) ** 2))
    return (_harmonic(f0, n, 12, 0.85) + 0.4 * _lowpass_noise(rng, n, 400)) * (0.3 + amp)


def rain(rng, n, p):
    drops = (rng.random(n) < 0.004) * rng.standard_normal(n) * 4
    return _bandpass(_noise(rng, n), 800, 7000) * 0.6 + _bandpass(drops, 2000, 7900)


def wind(rng, n, p):
    t = np.arange(n) / SR
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 6))
    return _lowpass_noise(rng, n, 500) * swell * 2


def stream(rng, n, p):
    t = np.arange(n) / SR
    gurgle = 1 + 0.5 * np.sin(2 * np.pi * 7 * t) * np.sin(2 * np.pi * 0.7 * t)
    return _bandpass(_noise(rng, n), 300, 2500) * gurgle


def knock(rng, n, p):
    def group():
        out = np.zeros(int(SR * 1.0))
        for k in range(rng.integers(2, 5)):
            m = int(0.12 * SR)
            s = (np.sin(2 * np.pi * 160 * p * np.arange(m) / SR) + 0.5 * _noise(rng, m)) * _env(m, 0.002, 0.02)
            _place(out, s, int(k * 0.2 * SR))
        return out
    return _bursts(rng, n, 0.7, group, 0.3)


def footsteps(rng, n, p):
    def step():
        m = int(0.15 * SR)
        return _bandpass(_noise(rng, m), 60, 900) * _env(m, 0.005, 0.03) * 2
    return _bursts(rng, n, 1.9, step, 0.08)


def clock(rng, n, p):
    def tick():
        m = int(0.02 * SR)
        return _bandpass(_noise(rng, m), 2500 * p, 6000) * _env(m, 0.0005, 0.004) * 4
    return _bursts(rng, n, 1.0, tick, 0.01)


def phone(rng, n, p):
    def ring():
        m = int(SR * 1.2)
        t = np.arange(m) / SR
        f = np.where(np.sin(2 * np.pi * 20 * t) > 0, 1000 * p, 1250 * p)
        return _harmonic(f, m, 3, 0.4) * _env(m, 0.01, 5.0)
    return _bursts(rng, n, 0.45, ring, 0.05)


def siren(rng, n, p):
    t = np.arange(n) / SR
    f = 900 * p + 300 * p * np.sin(2 * np.pi * 0.4 * t)
    return _harmonic(f, n, 4, 0.5)


def bell(rng, n, p):
    def strike():
        m = int(SR * 2.5)
        t = np.arange(m) / SR
        ratios = (0.5, 1.0, 1.19, 1.5, 2.0, 2.74)
        return sum(np.sin(2 * np.pi * 520 * p * r * t) * np.exp(-t * (1 + k)) for k, r in enumerate(ratios))
    return _bursts(rng, n, 0.6, strike, 0.2)


def whistle(rng, n, p):
    t = np.arange(n) / SR
    f = 2000 * p * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
    gate = (np.sin(2 * np.pi * 0.5 * t + rng.uniform(0, 6)) > -0.3).astype(float)
    gate = np.convolve(gate, np.ones(400) / 400, mode="same")
    return _harmonic(f, n, 2, 0.2) * gate


def applause(rng, n, p):
    claps = (rng.random(n) < 0.02) * rng.standard_normal(n) * 6
    claps = np.convolve(claps, np.exp(-np.arange(80) / 15), mode="same")
    return _bandpass(claps, 500, 6000)


def typing(rng, n, p):
    def key():
        m = int(0.03 * SR)
        return _bandpass(_noise(rng, m), 1500, 5000) * _env(m, 0.001, 0.006) * 3
    return _bursts(rng, n, 7.0, key, 0.7)


def hammer(rng, n, p):
    def hit():
        m = int(0.4 * SR)
        t = np.arange(m) / SR
        ring_ = sum(np.sin(2 * np.pi * 1800 * p * r * t) for r in (1.0, 1.53, 2.4))
        return (ring_ * 0.5 + _noise(rng, m)) * _env(m, 0.001, 0.05)
    return _bursts(rng, n, 1.4, hit, 0.1)


def speech(rng, n, p):
    t = np.arange(n) / SR
    syll = np.clip(np.sin(2 * np.pi * 4 * t + 2 * np.sin(2 * np.pi * 0.5 * t)), 0, 1)
    f0 = 140 * p * (1 + 0.1 * np.sin(2 * np.pi * 1.3 * t))
    voice = _harmonic(f0, n, 15, 0.8)
    return (_bandpass(voice, 200, 3500) + 0.2 * _bandpass(_noise(rng, n), 2000, 5000)) * syll


def thunder(rng, n, p):
    out = np.zeros(n)
    m = min(n, int(SR * rng.uniform(2.5, 4.0)))
    _place(out, _lowpass_noise(rng, m, 150) * _env(m, 0.05, 0.8) * 5, int(rng.uniform(0, max(1, n - m))))
    return out


def guitar(rng, n, p):
    def pluck():
        f0 = 196 * p * 2 ** (rng.integers(0, 8) / 12)
        period = int(SR / f0)
        m = int(SR * 0.8)
        buf = rng.uniform(-1, 1, period)
        out = np.empty(m)
        for i in range(0, m, period):  # Karplus-Strong, one period at a time: buf + buf delayed by one sample
            summed = buf.copy()
            summed[1:] += buf[:-1]
            summed[0] += buf[-1]
            buf = 0.996 * 0.5 * summed
            seg = buf[: min(period, m - i)]
            out[i : i + len(seg)] = seg
        return out
    return _bursts(rng, n, 2.5, pluck, 0.2)


# -------------------------------------------------------------------------------------- event vocabulary
@dataclass(frozen=True)
class Kind:
    """A sound-event kind: synthesiser, whether it is a background, whether pitch is audible, caption parts.

    ``clauses`` are full sentences and ``phrases`` noun phrases; ``{a}`` takes an adjective (pitch or
    loudness), ``{v}`` an adverb (loudness).
    """

    synth: object
    background: bool
    pitched: bool
    clauses: tuple[str, ...]
    phrases: tuple[str, ...]
    seconds: tuple[float, float] = (2.0, 6.0)


KINDS: dict[str, Kind] = {
    "dog": Kind(dog, False, True,
                ("a {a}dog barks{v}", "a {a}dog is barking{v}", "a {a}puppy yaps{v}", "a {a}hound barks{v}"),
                ("a {a}dog barking{v}", "the barking of a {a}dog", "a {a}puppy yapping{v}")),
    "bird": Kind(bird, False, True,
                 ("a {a}bird chirps{v}", "a {a}bird is singing{v}", "{a}birds tweet{v}", "a {a}songbird calls{v}"),
                 ("a {a}bird chirping{v}", "{a}birdsong", "{a}birds tweeting{v}")),
    "horn": Kind(horn, False, True,
                 ("a {a}car horn honks{v}", "a {a}horn is honking{v}", "a driver honks a {a}horn{v}"),
                 ("a {a}car horn honking{v}", "the honking of a {a}horn", "a {a}horn beeping{v}")),
    "engine": Kind(engine, True, True,
                   ("a {a}car drives by{v}", "a {a}vehicle passes{v}", "an {a}engine is running{v}"),
                   ("a {a}car driving past{v}", "the rumble of an {a}engine", "a {a}passing vehicle")),
    "rain": Kind(rain, True, False,
                 ("{a}rain is falling{v}", "it is raining {v2}", "{a}rain patters on the ground{v}"),
                 ("{a}falling rain", "the patter of {a}rain", "{a}rain falling{v}")),
    "wind": Kind(wind, True, False,
                 ("{a}wind is blowing{v}", "the {a}wind howls{v}", "a {a}gust of wind blows{v}"),
                 ("{a}wind blowing{v}", "the howl of {a}wind", "{a}gusts of wind")),
    "stream": Kind(stream, True, False,
                   ("{a}water is flowing{v}", "a {a}stream is running{v}", "{a}water trickles{v}"),
                   ("{a}running water", "a {a}stream flowing{v}", "the trickle of {a}water")),
    "knock": Kind(knock, False, False,
                  ("someone knocks on a door{v}", "a person is knocking on a door{v}",
                   "there is a {a}knock at the door"),
                  ("{a}knocking on a door", "someone knocking{v}", "a {a}knock on the door")),
    "footsteps": Kind(footsteps, False, False,
                      ("someone walks{v}", "a person is walking{v}", "{a}footsteps approach{v}"),
                      ("{a}footsteps", "someone walking{v}", "the sound of {a}steps")),
    "clock": Kind(clock, False, True,
                  ("a {a}clock ticks{v}", "a {a}clock is ticking{v}", "a {a}watch ticks{v}"),
                  ("a {a}clock ticking{v}", "the ticking of a {a}clock", "a {a}ticking watch")),
    "phone": Kind(phone, False, True,
                  ("a {a}phone rings{v}", "a {a}telephone is ringing{v}", "a {a}cellphone rings{v}"),
                  ("a {a}phone ringing{v}", "the ring of a {a}telephone", "a {a}ringing phone")),
    "siren": Kind(siren, True, True,
                  ("a {a}siren wails{v}", "an {a}alarm is sounding{v}", "an {a}emergency siren blares{v}"),
                  ("a {a}siren wailing{v}", "the wail of a {a}siren", "an {a}alarm going off{v}")),
    "bell": Kind(bell, False, True,
                 ("a {a}bell rings{v}", "a {a}church bell tolls{v}", "a {a}bell is chiming{v}"),
                 ("a {a}bell ringing{v}", "the chime of a {a}bell", "a {a}tolling bell")),
    "whistle": Kind(whistle, False, True,
                    ("someone whistles{v}", "a person is whistling{v}", "a {a}whistle blows{v}"),
                    ("{a}whistling", "someone whistling{v}", "a {a}whistle")),
    "applause": Kind(applause, False, False,
                     ("people clap{v}", "an audience applauds{v}", "a {a}crowd is clapping{v}"),
                     ("{a}applause", "people clapping{v}", "a {a}round of applause")),
    "typing": Kind(typing, False, False,
                   ("someone types on a keyboard{v}", "a person is typing{v}", "keys are being pressed{v}"),
                   ("{a}typing on a keyboard", "someone typing{v}", "the clatter of {a}keys")),
    "hammer": Kind(hammer, False, True,
                   ("someone hammers a nail{v}", "a {a}hammer strikes metal{v}", "a person is hammering{v}"),
                   ("{a}hammering", "a {a}hammer hitting metal{v}", "someone hammering{v}")),
    "speech": Kind(speech, True, True,
                   ("a {a}man is talking{v}", "a {a}voice speaks{v}", "someone is speaking{v}"),
                   ("a {a}man talking{v}", "a {a}voice speaking{v}", "{a}speech")),
    "thunder": Kind(thunder, False, False,
                    ("{a}thunder rumbles{v}", "thunder roars{v}", "a {a}thunderclap booms{v}"),
                    ("{a}thunder rumbling{v}", "a {a}rumble of thunder", "a {a}thunderclap"),
                    seconds=(3.0, 5.0)),
    "guitar": Kind(guitar, False, True,
                   ("someone plays a {a}guitar{v}", "a {a}guitar is strummed{v}", "a {a}guitar plays{v}"),
                   ("a {a}guitar playing{v}", "{a}guitar music", "someone strumming a {a}guitar{v}")),
}

PITCH_ADJ = {"high": ("high-pitched ", "shrill "), "low": ("low-pitched ", "deep ")}
LOUD_ADJ = {"loud": ("loud ",), "quiet": ("quiet ", "faint ", "soft ")}
LOUD_ADV = {"loud": (" loudly",), "quiet": (" quietly", " softly", " in the distance", " faintly")}

ONE = ("{c}", "{c}", "the sound of {p}", "{p} can be heard", "you can hear {p}")
TWO_SEQ = ("{c1} and then {c2}", "{c1}, followed by {p2}", "first {c1}, then {c2}", "{c2} after {p1}",
           "{p1} followed by {p2}")
TWO_BG = ("{c1} while {c2}", "{p1} with {p2} in the background", "{c2} as {c1}", "{c1} and {c2}",
          "{p1} over {p2}")
THREE = ("{c1}, then {c2} and finally {c3}", "{p1}, {p2} and {p3}", "first {c1}, then {c2}, then {c3}",
         "{c1} before {c2}, followed by {p3}")


# ------------------------------------------------------------------------------------------------ scenes
@dataclass
class Event:
    kind: str
    onset: float
    offset: float
    loud: str  # "loud" | "quiet"
    pitch: str  # "high" | "low" | "" (unpitched kinds)


def _draw_scene(rng: np.random.Generator) -> tuple[float, list[Event]]:
    duration = float(np.clip(5 + rng.gamma(2.0, 3.5), 5, 30))
    n_events = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
    names = list(KINDS)
    kinds = [names[i] for i in rng.choice(len(names), size=n_events, replace=False)]
    backgrounds = [k for k in kinds if KINDS[k].background][:1]  # at most one background
    foreground = [k for k in kinds if k not in backgrounds]
    events: list[Event] = []
    slot = duration / max(1, len(foreground))
    for i, k in enumerate(foreground):  # foreground events in consecutive slots: order is audible
        lo, hi = KINDS[k].seconds
        length = min(slot * 0.9, rng.uniform(lo, hi))
        onset = i * slot + rng.uniform(0, max(0.0, slot - length))
        events.append(Event(k, onset, onset + length, "", ""))
    for k in backgrounds:
        events.append(Event(k, 0.0, duration, "", ""))
    for e in events:
        e.loud = "loud" if rng.random() < 0.5 else "quiet"
        e.pitch = ("high" if rng.random() < 0.5 else "low") if KINDS[e.kind].pitched else ""
    events.sort(key=lambda e: (e.onset, e.kind))
    return duration, events


def _render(rng: np.random.Generator, duration: float, events: list[Event]) -> np.ndarray:
    n = int(duration * SR)
    mix = 0.003 * _lowpass_noise(rng, n, 3000)  # noise floor
    for e in events:
        start, m = int(e.onset * SR), max(1, int((e.offset - e.onset) * SR))
        factor = {"high": 1.5, "low": 0.67, "": 1.0}[e.pitch]
        sig = KINDS[e.kind].synth(rng, m, factor)
        sig = sig / (np.sqrt(np.mean(sig**2)) + 1e-9)
        fade = min(m // 4, int(0.02 * SR))
        if fade:
            ramp = np.linspace(0, 1, fade)
            sig[:fade] *= ramp
            sig[-fade:] *= ramp[::-1]
        gain_db = rng.uniform(-14, -8) if e.loud == "loud" else rng.uniform(-32, -24)
        if KINDS[e.kind].background:
            gain_db -= 4
        _place(mix, sig * 10 ** (gain_db / 20), start)
    peak = np.abs(mix).max()
    return (mix / peak * 0.9 if peak > 0.95 else mix).astype(np.float32)


def _describe(rng: np.random.Generator, e: Event, form: str) -> str:
    kind = KINDS[e.kind]
    template = str(rng.choice(kind.clauses if form == "c" else kind.phrases))
    adj, adv = "", ""
    r = rng.random()
    if e.pitch and r < 0.45:
        adj = str(rng.choice(PITCH_ADJ[e.pitch]))
    elif r < 0.75:
        if "{v}" in template and rng.random() < 0.6:
            adv = str(rng.choice(LOUD_ADV[e.loud]))
        else:
            adj = str(rng.choice(LOUD_ADJ[e.loud]))
    v2 = {"loud": "heavily", "quiet": "lightly"}[e.loud] if r < 0.75 else ""
    text = template.replace("{a}", adj).replace("{v2}", v2).replace("{v}", adv)
    text = text.replace("an high", "a high").replace("an low", "a low").replace("an loud", "a loud")
    text = text.replace("an quiet", "a quiet").replace("an faint", "a faint").replace("an soft", "a soft")
    text = text.replace("an deep", "a deep").replace("an shrill", "a shrill")
    text = text.replace("a emergency", "an emergency").replace("a alarm", "an alarm")
    text = text.replace("a engine", "an engine")
    return " ".join(text.split())


def _caption(rng: np.random.Generator, events: list[Event]) -> tuple[str, list[str]]:
    mentioned = list(events)
    quiet = [e for e in mentioned if e.loud == "quiet"]
    if len(mentioned) > 1 and quiet and rng.random() < 0.25:  # omit a quiet event now and then
        mentioned.remove(quiet[int(rng.integers(len(quiet)))])
    fg = [e for e in mentioned if not KINDS[e.kind].background]
    bg = [e for e in mentioned if KINDS[e.kind].background]
    slots = {}
    if len(mentioned) == 1:
        pattern, order = str(rng.choice(ONE)), mentioned
        slots = {"c": _describe(rng, order[0], "c"), "p": _describe(rng, order[0], "p")}
    elif len(mentioned) == 2:
        if bg:
            order = fg + bg
            pattern = str(rng.choice(TWO_BG))
        else:
            order = fg
            pattern = str(rng.choice(TWO_SEQ))
        for i, e in enumerate(order, 1):
            slots[f"c{i}"], slots[f"p{i}"] = _describe(rng, e, "c"), _describe(rng, e, "p")
    else:
        order = fg + bg
        pattern = str(rng.choice(THREE)) if not bg else "{c1} and then {c2} while {c3}"
        for i, e in enumerate(order, 1):
            slots[f"c{i}"], slots[f"p{i}"] = _describe(rng, e, "c"), _describe(rng, e, "p")
    text = pattern.format(**slots)
    text = text[0].upper() + text[1:]
    if rng.random() < 0.7:
        text += "."
    return text, sorted(e.kind for e in mentioned)


def _make_clip(args: tuple[int, int, str, str]) -> dict:
    seed, index, split, out_dir = args
    rng = np.random.default_rng([seed, index])
    duration, events = _draw_scene(rng)
    wav = _render(rng, duration, events)
    rel = f"audio/{split}/{split}_{index:05d}.flac"
    sf.write(Path(out_dir) / rel, wav, SR, subtype="PCM_16")
    captions = [_caption(rng, events) for _ in range(5)]
    return {
        "file": rel,
        "split": split,
        "duration": round(len(wav) / SR, 4),
        "events": json.dumps([e.__dict__ for e in events]),
        "captions": captions,
    }


def generate(out_dir: str | Path, n_train: int, n_val: int, n_test: int, seed: int = 0, workers: int = 2) -> None:
    """Write the demo dataset to ``out_dir`` (atomically). Clip i of a split is the same for every run."""
    jobs: list[tuple[int, int, str]] = []
    offset = 0
    for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        jobs += [(seed, offset + i, split) for i in range(count)]
        offset += count
    with atomic_dir(out_dir) as tmp:
        for split in ("train", "val", "test"):
            (tmp / "audio" / split).mkdir(parents=True)
        args = [(s, i, split, str(tmp)) for s, i, split in jobs]
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                rows = list(tqdm(pool.map(_make_clip, args, chunksize=8), total=len(args), desc="demo clips"))
        else:
            rows = [_make_clip(a) for a in tqdm(args, desc="demo clips")]
        clips = pd.DataFrame([{k: v for k, v in r.items() if k != "captions"} for r in rows])
        clips.to_csv(tmp / "clips.csv", index=False)
        caps = pd.DataFrame(
            [{"file": r["file"], "caption": text, "split": r["split"], "events": ";".join(ev)}
             for r in rows for text, ev in r["captions"]]
        )
        caps.to_csv(tmp / "captions.csv", index=False)
        relevance_table(clips, caps, "test").to_csv(tmp / "relevance_test.csv", index=False)


def relevance_table(clips: pd.DataFrame, captions: pd.DataFrame, split: str) -> pd.DataFrame:
    """Multi-relevance judgements: a clip is relevant to a caption when it holds every event it mentions."""
    clips = clips[clips["split"] == split]
    kinds = {f: {e["kind"] for e in json.loads(ev)} for f, ev in zip(clips["file"], clips["events"])}
    rows = []
    for text, mentioned, own in captions.loc[captions["split"] == split, ["caption", "events", "file"]].itertuples(
        index=False
    ):
        need = set(mentioned.split(";"))
        relevant = sorted(f for f, have in kinds.items() if need <= have)
        assert own in relevant
        rows.append({"caption": text, "file": own, "relevant": json.dumps(relevant)})
    return pd.DataFrame(rows)
