"""A real training run for tests/training/test_resume.py: tiny data, checkpoints every epoch under argv[1].

Usage: python resume_run.py RESUME_ROOT OUT_DIR. Writes OUT_DIR/trained.log (one line per epoch trained in
this process), OUT_DIR/logged.log (the epochs the logger saw) and OUT_DIR/model.pt at the end.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import torch

import salsa2.training.loop as train_mod
from salsa2.config.params import TrainParams
from salsa2.training.losses import LOSSES
from salsa2.training.resume import ResumeState
from helpers.tiny import tiny_data, tiny_model

EPOCHS = 4


def main(root: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    iterate = train_mod.epoch_batches

    def counting_iterate(*args, **kwargs):  # called once per epoch actually trained here
        with open(out / "trained.log", "a") as f:
            f.write("epoch\n")
        return iterate(*args, **kwargs)

    train_mod.epoch_batches = counting_iterate

    def on_epoch(epoch: int, record: dict) -> None:
        with open(out / "logged.log", "a") as f:
            f.write(f"{epoch}\n")
        time.sleep(0.4)  # leaves the test time to kill the run between checkpoints

    train, store = tiny_data(20, seed=0)
    val, _ = tiny_data(8, seed=0)  # same clip ids as train's first 8 (features found in the store)
    cfg = TrainParams(epochs=EPOCHS, batch_size=6, lr=3e-3, warmup_epochs=0.5, max_seconds=1.0, device="cpu")
    model = tiny_model(dropout=0.1)  # dropout and random crops: the RNG states must be restored too
    ckpt = ResumeState("tiny", "key0", root)
    train_mod.fit(model, LOSSES.build("nt_xent"), train, val, cfg, audio_lr=1e-3, text_lr=0.0, text_features=store,
                  seed=0, on_epoch=on_epoch, checkpointer=ckpt)
    torch.save(model.state_dict(), out / "model.pt")
    ckpt.clear()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
