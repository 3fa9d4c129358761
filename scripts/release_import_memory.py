"""Peak memory of importing a released checkpoint of the real size (salsa2.model.release_import).

Usage: ``PYTHONPATH=src python scripts/release_import_memory.py WORKDIR`` (needs ~7 GB of disk in WORKDIR and
~6 GB of free memory while the checkpoint is built; offline).

OptimusPrimus/salsa's ``passt_roberta.ckpt`` is 5.3 GB: PaSST + RoBERTa-large + projections (about 1.77 GB of
float32 weights) and Adam's two moments per weight. The file built here has that layout and about that size:
PaSST at its real size, a RoBERTa of roberta-large's geometry (24 layers of width 1024; MiniLM's 30522-token
vocabulary, the offline tokenizer, instead of 50265 tokens), the projections, and ``optimizer_states`` with two
moments per weight; the values are random. The text model's folder holds pretrained-style weights too, as the hub's
roberta-large does, because the import first builds the text encoder from it (and then overwrites its weights).

Each measurement runs in a fresh process and reports the growth of its peak resident memory (VmHWM) over what it
held before: ``import_release`` of the file into a checkpoint folder, and as the control ``torch.load`` of the same
file without mapping (what an unmapped load holds: the whole file, optimizer states included).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

TEXT = "roberta-large-geometry-memory-probe"
LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
             max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)


def kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def register_text(folder: Path) -> None:
    from salsa2.model.encoders import TEXT_ENCODERS
    from salsa2.model.encoders.text import HFTextEncoder

    @TEXT_ENCODERS.register(TEXT)
    def _build(max_length: int = 32, trainable_layers: int = -1, pooling: str = "cls",
               dropout: float | None = 0.2) -> HFTextEncoder:
        return HFTextEncoder(str(folder), pooling=pooling, max_length=max_length, trainable_layers=trainable_layers,
                             dropout=dropout, pooler=False)


def build(work: Path) -> Path:
    """The text model's folder and the checkpoint (``passt_roberta.ckpt``) in ``work``; returns the checkpoint."""
    import transformers

    from salsa2.audio.frontends import FrontendConfig
    from salsa2.model.encoders import AUDIO_ENCODERS
    from salsa2.model.encoders.text import minilm_path
    from salsa2.model.release_import import KALDI128

    ckpt, folder = work / "passt_roberta.ckpt", work / "text"
    if ckpt.is_file() and (folder / "config.json").is_file():
        return ckpt
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tok = transformers.AutoTokenizer.from_pretrained(minilm_path())
    cfg = transformers.RobertaConfig(vocab_size=tok.vocab_size, pad_token_id=tok.pad_token_id, **LARGE)
    roberta = transformers.RobertaModel(cfg, add_pooling_layer=False)
    roberta.save_pretrained(folder)
    tok.save_pretrained(folder)
    passt = AUDIO_ENCODERS.build("passt", frontend=FrontendConfig(**KALDI128), weights="none").backbone.net
    state = {f"audio_embedding_model.model.model.{k}": v for k, v in passt.state_dict().items()}
    state.update({f"sentence_embedding_model.{k}": v for k, v in roberta.state_dict().items()})
    state.update({"project_audio.0.weight": torch.randn(1024, 768), "project_audio.0.bias": torch.zeros(1024),
                  "project_sentence.0.weight": torch.randn(1024, 1024), "project_sentence.0.bias": torch.zeros(1024),
                  "tau": torch.tensor([0.05])})
    del passt, roberta
    floats = [v for v in state.values() if v.is_floating_point()]
    moments = {i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(v), "exp_avg_sq": torch.zeros_like(v)}
               for i, v in enumerate(floats)}
    torch.save({"epoch": 15, "state_dict": state, "hyper_parameters": {"train_on": "clothov2"},
                "optimizer_states": [{"state": moments, "param_groups": [{"params": list(moments)}]}]}, ckpt)
    return ckpt


def probe(mode: str, work: Path) -> dict:
    """In this (fresh) process: the growth of the peak resident memory while doing ``mode``."""
    ckpt = work / "passt_roberta.ckpt"
    import transformers  # noqa: F401 - imported before the baseline is taken, as the import needs it anyway

    from salsa2.model.release_import import import_salsa_release

    register_text(work / "text")
    before = kib("VmRSS")
    if mode == "import":
        import shutil

        out = work / "imported"
        shutil.rmtree(out, ignore_errors=True)
        import_salsa_release(ckpt, out, text_model=TEXT, sha256=False)
    else:
        obj = torch.load(ckpt, map_location="cpu", weights_only=False)
        assert "optimizer_states" in obj
    return {"mode": mode, "peak_added_mib": (kib("VmHWM") - before) / 1024, "file_mib": ckpt.stat().st_size / 2**20}


def main(work: Path) -> None:
    ckpt = build(work)
    weights = sum(v.numel() * v.element_size() for v in torch.load(ckpt, mmap=True, weights_only=False)
                  ["state_dict"].values())
    print(f"{ckpt}: {ckpt.stat().st_size / 2**30:.2f} GiB, of which weights {weights / 2**30:.2f} GiB")
    for mode in ("import", "torch.load"):
        run = subprocess.run([sys.executable, __file__, "--probe", mode, str(work)], capture_output=True, text=True,
                             check=True)
        got = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"{mode}: peak resident memory added {got['peak_added_mib'] / 1024:.2f} GiB "
              f"({got['peak_added_mib'] / got['file_mib']:.2f} x the file)")


if __name__ == "__main__":
    if sys.argv[1] == "--probe":
        print(json.dumps(probe(sys.argv[2], Path(sys.argv[3]))))
    else:
        main(Path(sys.argv[1]))
