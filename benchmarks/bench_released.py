"""CPU (or GPU) time per clip and per caption of the released PaSST + RoBERTa-large model's inference path (not a
test): random weights of the real size, so no download is needed.

    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/bench_released.py            # 30 s clips, batch 1 and 8
    PYTHONPATH=src python benchmarks/bench_released.py --device cuda --clips 32     # on a GPU

Audio: a 30 s clip at 32 kHz -> the ``kaldi128`` log-mel (salsa2.audio.frontends) -> PaSST over three 10 s
snippets (the mean of the class and distillation tokens of each, averaged) -> the 768 x 1024 projection
(salsa2.model.release_import.paper_model_config without its text encoder). Text: RoBERTa-large
(hidden 1024, 24 layers, 16 heads, feed-forward 4096, randomly initialised offline), captions padded to 32
tokens, first-token output -> the 1024 x 1024 projection. Tokenising is left out (microseconds a caption).
Reports the best of ``--repeat`` timed runs after one warm-up, per clip and per caption, and the projected
time for Clotho's evaluation split (1045 clips, 5225 captions).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

CLOTHO_EVAL = (1045, 5225)  # clips, captions of Clotho v2.1's evaluation split


def best_seconds(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> dict:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--seconds", type=float, default=30.0, help="clip length")
    cli.add_argument("--clips", type=int, default=8, help="clips per batch of the batched run")
    cli.add_argument("--captions", type=int, default=64, help="captions per batch")
    cli.add_argument("--repeat", type=int, default=2)
    cli.add_argument("--device", default="cpu")
    cli.add_argument("--text-layers", type=int, default=24, help="RoBERTa layers (24: roberta-large)")
    args = cli.parse_args(argv)

    import transformers

    from salsa2.audio.frontends import FrontendConfig, LogMel, compute_logmel
    from salsa2.model.encoders import AUDIO_ENCODERS
    from salsa2.model.release_import import AUDIO_KWARGS, KALDI128, SHARED_DIM

    device = torch.device(args.device)
    torch.manual_seed(0)
    frontend = FrontendConfig(**KALDI128)
    audio = AUDIO_ENCODERS.build("passt", frontend=frontend, **AUDIO_KWARGS).to(device).eval()
    audio_proj = torch.nn.Linear(audio.out_dim, SHARED_DIM).to(device)
    cfg = transformers.RobertaConfig(hidden_size=1024, num_hidden_layers=args.text_layers, num_attention_heads=16,
                                     intermediate_size=4096, max_position_embeddings=514, type_vocab_size=1,
                                     vocab_size=50265)
    roberta = transformers.RobertaModel(cfg, add_pooling_layer=False).to(device).eval()
    text_proj = torch.nn.Linear(1024, SHARED_DIM).to(device)

    wav = (0.1 * np.random.default_rng(0).standard_normal(int(args.seconds * frontend.sample_rate))).astype(
        np.float32)
    module = LogMel(frontend)
    mel = compute_logmel(wav, frontend, module)
    frames = mel.shape[1]

    def logmel() -> None:
        compute_logmel(wav, frontend, module)

    def encode(batch: int):
        x = torch.from_numpy(np.repeat(mel[None], batch, 0)).to(device)
        lengths = torch.full((batch,), frames, device=device)

        def run() -> None:
            with torch.no_grad():
                tokens, weights = audio(x, lengths)
                pooled = (tokens * weights[..., None]).sum(1) / weights.sum(1, keepdim=True)
                torch.nn.functional.normalize(audio_proj(pooled), dim=-1)
            sync(device)
        return run

    ids = torch.randint(3, cfg.vocab_size, (args.captions, 32), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = 0
    mask = torch.ones_like(ids)
    mask[:, 14:] = 0  # a typical caption: 12-14 tokens, padded to 32 as the authors
    ids, mask = ids.to(device), mask.to(device)

    def text() -> None:
        with torch.no_grad():
            out = roberta(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
            torch.nn.functional.normalize(text_proj(out), dim=-1)
        sync(device)

    result = {
        "device": str(device), "threads": torch.get_num_threads(), "clip_seconds": args.seconds,
        "mel_frames": frames,
        "logmel_s_per_clip": best_seconds(logmel, args.repeat),
        "audio_s_per_clip_batch1": best_seconds(encode(1), args.repeat),
        f"audio_s_per_clip_batch{args.clips}": best_seconds(encode(args.clips), args.repeat) / args.clips,
        f"text_s_per_caption_batch{args.captions}": best_seconds(text, args.repeat) / args.captions,
    }
    per_clip = result["logmel_s_per_clip"] + min(result["audio_s_per_clip_batch1"],
                                                 result[f"audio_s_per_clip_batch{args.clips}"])
    per_caption = result[f"text_s_per_caption_batch{args.captions}"]
    result["clotho_eval_minutes"] = (CLOTHO_EVAL[0] * per_clip + CLOTHO_EVAL[1] * per_caption) / 60
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, indent=2))
    return result


if __name__ == "__main__":
    main()
