"""Two gloo processes (DistributedDataParallel + differentiable all-gather) train exactly like one process on the
same global batch (salsa2.training.distributed): NT-Xent, sigmoid (learnable t, b), TAP, Mixco, accumulation."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp

from salsa2.training.augment import AugmentParams
from salsa2.config.params import TrainParams
from salsa2.training.distributed import DistContext, check_batch_sizes, gather_rows, launch_command, shard, shard_counts
from salsa2.training.losses import LOSSES
from salsa2.model.dual_encoder import DualEncoder
from salsa2.training.loop import fit
from helpers.tiny import FakeTextEncoder, tiny_data, tiny_model

CFG = TrainParams(epochs=2, batch_size=8, lr=3e-3, lr_min=1e-4, warmup_epochs=0.5, device="cpu", resume=False)
# name -> (loss, pooling, mixco, accumulate); sigmoid has learnable t, b (every rank computes them in full)
CASES = {"nt_xent": ("nt_xent", "mean", False, 1), "sigmoid": ("sigmoid", "mean", False, 1),
         "tap": ("nt_xent", "tap", False, 1), "mixco": ("nt_xent", "mean", True, 2)}
LOSS_NAMES = tuple(CASES)


def _model(pooling: str) -> DualEncoder:
    model = tiny_model()
    if pooling == "mean":
        return model
    torch.manual_seed(1)
    cfg = dataclasses.replace(model.cfg, pooling="tap", pooling_kwargs={"proj_dim": 16, "dropout": 0.0})
    tap = DualEncoder(cfg, audio_encoder=model.audio_encoder, text_encoder=FakeTextEncoder())
    tap.load_state_dict(model.state_dict(), strict=False)
    return tap


def _train(case: str, ctx: DistContext) -> dict:
    loss_name, pooling, mixco, accumulate = CASES[case]
    train, store = tiny_data(26, seed=0)  # 26 clips: batches of 8, 8, 8, 2 (uneven shards)
    val, val_store = tiny_data(10, seed=1, prefix="v")
    store.row.update({c: len(store.features) + i for c, i in val_store.row.items()})
    store.features = np.concatenate([store.features, val_store.features])
    model, loss_fn = _model(pooling), LOSSES.build(loss_name)
    result = fit(model, loss_fn, train, val, dataclasses.replace(CFG, accumulate=accumulate), audio_lr=1e-3,
                 text_lr=0.0, text_features=store, seed=0, dist=ctx, augment=AugmentParams(mixco=mixco))
    return {"history": result.history, "model": {k: v.clone() for k, v in model.state_dict().items()},
            "loss": {k: v.clone() for k, v in loss_fn.state_dict().items()}}


def _worker(rank: int, world: int, rendezvous: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    try:
        ctx = DistContext(rank, world, torch.device("cpu"))
        torch.save({name: _train(name, ctx) for name in LOSS_NAMES}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        tdist.destroy_process_group()


def test_shard_covers_every_row_once():
    for n in (0, 1, 5, 8):
        parts = [shard(n, DistContext(r, 3)) for r in range(3)]
        assert [i for p in parts for i in range(n)[p]] == list(range(n))
        assert max(len(range(n)[p]) for p in parts) - min(len(range(n)[p]) for p in parts) <= 1


def test_gather_is_identity_for_one_process():
    x = torch.randn(3, 4, requires_grad=True)
    assert gather_rows(x, DistContext()) is x
    assert shard_counts(5, DistContext(0, 2)) == (3, 2)


def test_batches_too_small_for_the_processes_are_refused():
    check_batch_sizes(26, 8, DistContext(0, 2))  # smallest batch 2: one row each
    with pytest.raises(ValueError, match="batch of 1 items cannot be split over 2 processes"):
        check_batch_sizes(25, 8, DistContext(0, 2))


def test_launch_command_reexecs_under_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launch_command(1, ["stages/train.py", "1", "cnn"]) is None
    cmd = launch_command(2, ["stages/train.py", "1", "cnn"])
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "stages/train.py", "1",
                       "cnn"]
    monkeypatch.setenv("WORLD_SIZE", "2")  # already a torchrun worker: no second launch
    assert launch_command(2, ["stages/train.py"]) is None
    with pytest.raises(ValueError, match="nproc must be >= 1"):
        launch_command(0, [])


def test_two_gloo_processes_match_one_process(tmp_path):
    # fork: the workers inherit the imported modules (CPU only, nothing CUDA to break), which saves seconds
    mp.start_processes(_worker, args=(2, str(tmp_path / "rdv"), str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    for name in LOSS_NAMES:
        single = _train(name, DistContext())
        for got in (ranks[0][name], ranks[1][name]):
            assert len(got["history"]) == CFG.epochs
            for a, b in zip(single["history"], got["history"]):
                assert b["train/loss"] == pytest.approx(a["train/loss"], rel=1e-4, abs=1e-5)
                assert b["val/t2a/mAP@10"] == pytest.approx(a["val/t2a/mAP@10"], abs=1e-4)
            for key, value in single["model"].items():
                mine = got["model"][key]
                if key.endswith("in_proj_bias"):
                    # the key bias has an exactly-zero gradient (softmax is shift invariant), so Adam turns
                    # float noise into full steps there; compare the query and value biases only
                    third = len(value) // 3
                    keep = torch.cat([torch.arange(third), torch.arange(2 * third, 3 * third)])
                    mine, value = mine[keep], value[keep]
                torch.testing.assert_close(mine, value, atol=1e-6, rtol=1e-5, msg=key)
            for key, value in single["loss"].items():
                torch.testing.assert_close(got["loss"][key], value, atol=2e-5, rtol=1e-4, msg=key)
        # training moved the weights (the comparison is not between two untouched models)
        assert not torch.allclose(single["model"]["audio_proj.weight"], tiny_model().state_dict()["audio_proj.weight"])
        if name == "mixco":
            assert "train/mixco_loss" in single["history"][0]


def test_optimizer_holds_every_trained_parameter():
    from salsa2.training.loop import param_groups

    for pooling in ("mean", "tap"):
        model, loss_fn = _model(pooling), LOSSES.build("sigmoid")
        grouped = {id(p) for g in param_groups(model, loss_fn, 1e-3, 1e-3, 1e-3, 1e-1) for p in g["params"]}
        trained = {id(p) for m in (model, loss_fn) for p in m.parameters() if p.requires_grad}
        assert grouped == trained and len(trained) > 0
