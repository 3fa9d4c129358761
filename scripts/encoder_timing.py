"""CPU forward time of each paper encoder on 10 s of audio (random weights, eval mode, batch 1, warm).

Usage: ``OMP_NUM_THREADS=2 PYTHONPATH=src python scripts/encoder_timing.py`` (frontends from params-paper.yaml).
"""

from __future__ import annotations

import time

import torch
import yaml

from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.audio.frontends import FrontendConfig

ENCODERS = (("passt", "kaldi128"), ("atst_frame", "mel64_atst"), ("mn40_as_ext", "kaldi128"))


def main(repeats: int = 3) -> None:
    torch.manual_seed(0)
    with open("params-paper.yaml") as f:
        fronts = yaml.safe_load(f)["frontends"]
    for arch, name in ENCODERS:
        cfg = FrontendConfig(**fronts[name])
        model = AUDIO_ENCODERS.build(arch, frontend=cfg, weights="none").eval()
        n_params = sum(p.numel() for p in model.parameters())
        frames = cfg.num_frames(10 * cfg.sample_rate)
        mel, lengths = torch.randn(1, cfg.n_mels, frames) - 4.0, torch.tensor([frames])
        times = []
        with torch.no_grad():
            model(mel, lengths)  # warm-up
            for _ in range(repeats):
                start = time.perf_counter()
                model(mel, lengths)
                times.append(time.perf_counter() - start)
        print(f"{arch}: frames={frames} params={n_params / 1e6:.1f}M forward10s={min(times):.2f}s "
              f"(best of {repeats}, threads={torch.get_num_threads()})")


if __name__ == "__main__":
    main()
