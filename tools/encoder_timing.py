"""CPU forward time of each paper encoder on 10 s of audio (random weights, eval mode, batch 1)."""
import time, torch, yaml
from salsa2.encoders import AUDIO_ENCODERS
from salsa2.frontends import FrontendConfig
torch.manual_seed(0)
fronts = yaml.safe_load(open("params-paper.yaml"))["frontends"]
for arch, fe, kw in [("passt", "kaldi128", {}), ("atst_frame", "mel64_atst", {}), ("mn40_as_ext", "kaldi128", {})]:
    cfg = FrontendConfig(**fronts[fe])
    m = AUDIO_ENCODERS.build(arch, frontend=cfg, weights="none", **kw).eval()
    n = sum(p.numel() for p in m.parameters())
    t = cfg.num_frames(10 * cfg.sample_rate)
    mel = torch.randn(1, cfg.n_mels, t) - 4
    with torch.no_grad():
        m(mel, torch.tensor([t]))
        best = []
        for _ in range(3):
            s = time.perf_counter(); m(mel, torch.tensor([t])); best.append(time.perf_counter() - s)
    print(f"{arch}: frames={t} params={n/1e6:.1f}M forward10s={min(best):.2f}s (min of 3, warm)")
