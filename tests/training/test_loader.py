"""The prefetch loader yields the same batches (indices, crops) and trains the same weights as in-line loading."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from salsa2.config.params import TrainParams
from salsa2.training.distributed import DistContext
from salsa2.training.loader import Prefetcher, epoch_batches, to_device
from salsa2.training.losses import LOSSES
from salsa2.training.loop import fit
from helpers.tiny import FRONTEND, tiny_data, tiny_model

FRONTEND_SECOND = FRONTEND.num_frames(FRONTEND.sample_rate)  # frames of a 1 s clip as the cache holds it


def _sequence(depth: int) -> list:
    train, _ = tiny_data(30, seed=0)
    rng = np.random.default_rng(7)
    out = []
    for _epoch in range(2):
        for item in Prefetcher(epoch_batches(train, 8, "pairs", rng, max_frames=100), depth):
            out.append((item.batch.audio.copy(), item.batch.captions.copy(), item.mel.clone(), item.lengths.clone()))
    return out + [rng.bit_generator.state["state"]["state"]]  # the generator ends where it would in line


def test_prefetch_yields_the_same_batches_and_crops():
    inline, ahead = _sequence(0), _sequence(3)
    assert len(inline) == len(ahead) == 2 * 8 + 1  # 60 pairs / 8 = 8 batches an epoch
    for a, b in zip(inline[:-1], ahead[:-1]):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])
    assert inline[-1] == ahead[-1]
    assert any(int(x[3].max()) == 100 for x in inline[:-1])  # long clips were cropped (the rng mattered)


def test_prefetch_trains_bit_identical_weights():
    train, store = tiny_data(20, seed=0)
    val, _ = tiny_data(6, seed=0)
    cfg = TrainParams(epochs=2, batch_size=6, device="cpu", resume=False, max_seconds=1.0)
    weights = []
    for depth in (0, 2):
        model = tiny_model()
        fit(model, LOSSES.build("nt_xent"), train, val, dataclasses.replace(cfg, prefetch=depth), audio_lr=1e-3,
            text_lr=0.0, text_features=store, dist=DistContext())
        weights.append(model.state_dict())
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    assert not torch.equal(weights[0]["audio_proj.weight"], tiny_model().state_dict()["audio_proj.weight"])


def test_prefetch_errors_reach_the_consumer_and_early_exit_stops_the_thread():
    def failing():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(Prefetcher(failing(), depth=2))
    produced = []

    def counting():
        for i in range(1000):
            produced.append(i)
            yield i

    for item in Prefetcher(counting(), depth=2):
        if item == 3:
            break
    assert len(produced) < 10  # the thread stopped a few items ahead, not at the end
    with pytest.raises(ValueError, match="prefetch depth must be >= 0"):
        Prefetcher(iter([]), depth=-1)


def test_to_device_on_cpu_is_a_plain_copy():
    x = torch.arange(4.0)
    assert torch.equal(to_device(x, torch.device("cpu")), x)


@pytest.mark.parametrize("n_clips, batch_size", [(30, 8), (37, 4), (130, 4), (200, 7)])
def test_batch_count_and_smallest_batch_match_the_epoch(n_clips, batch_size):
    """``num_batches`` (the schedule's steps) and ``check_batch_sizes`` (the smallest batch) agree with the
    batches an epoch really yields, whatever the length-sorting chunk (``data.SORT_CHUNK``)."""
    from salsa2.features.splits import iterate_batches, num_batches
    from salsa2.training.distributed import check_batch_sizes
    from helpers.tiny import tiny_data

    train, _ = tiny_data(n_clips, seed=1)
    for layout in ("clips", "pairs"):
        sizes = [len(b.audio) for b in iterate_batches(train, batch_size, layout, np.random.default_rng(0))]
        assert num_batches(train, batch_size, layout) == len(sizes)
        n_items = len(train.audio_ids) if layout == "clips" else len(train.caption_ids)
        check_batch_sizes(n_items, batch_size, DistContext(0, min(sizes)))
        with pytest.raises(ValueError, match=f"batch of {min(sizes)} items"):
            check_batch_sizes(n_items, batch_size, DistContext(0, min(sizes) + 1))


def _crop_windows(seed: int, epochs: int = 4) -> tuple[int, list[dict[str, tuple[int, int]]]]:
    """The training run's crop length and, per epoch, each clip's (frames, start in the clip) as its batches hold
    it: clips of 0.6 s, exactly 1 s, 1.8 s and 2.6 s under ``max_seconds: 1.0``."""
    from salsa2.features.logmel_cache import MemoryCache
    from salsa2.features.splits import RetrievalData
    from salsa2.training.loop import start_run

    g = np.random.default_rng(5)
    sizes = {"short": 60, "exact": FRONTEND_SECOND, "long": 180, "longer": 260}
    mels = {a: g.normal(size=(FRONTEND.n_mels, t)).astype(np.float16) for a, t in sizes.items()}
    ids = list(mels)
    data = RetrievalData(ids, [f"{a}#0" for a in ids], ids, np.arange(len(ids)), MemoryCache(mels))
    cfg = TrainParams(epochs=epochs, batch_size=2, device="cpu", resume=False, max_seconds=1.0, prefetch=0)
    run = start_run(tiny_model(), LOSSES.build("nt_xent"), data, cfg, audio_lr=1e-3, text_lr=0.0, seed=seed,
                    dist=DistContext())
    views = []
    for _ in range(epochs):
        seen = {}
        for loaded in run.batches():
            for row, i in enumerate(loaded.batch.audio):
                n, clip = int(loaded.lengths[row]), mels[ids[i]].astype(np.float32)
                window = loaded.mel[row, :, :n].numpy()
                starts = [s for s in range(clip.shape[1] - n + 1) if np.array_equal(clip[:, s : s + n], window)]
                assert len(starts) == 1, ids[i]  # a contiguous window of the clip
                seen[ids[i]] = (n, starts[0])
        views.append(seen)
    return run.max_frames, views


def test_training_crop_keeps_clips_of_max_seconds_whole_and_draws_seeded_windows_of_longer_ones():
    """``max_seconds`` (the paper preset: 30 s, the authors' random crop): a clip of exactly that length keeps every
    frame (tail frames included), a longer one gets a window of as many frames at a seeded random offset, drawn
    afresh every epoch; the same seed draws the same windows (resume restores the generator:
    training/test_resume.py trains with crops)."""
    frames, views = _crop_windows(seed=0)
    assert frames == FRONTEND_SECOND
    for epoch in views:
        assert epoch["short"] == (60, 0) and epoch["exact"] == (FRONTEND_SECOND, 0)
        assert epoch["long"][0] == epoch["longer"][0] == FRONTEND_SECOND
    starts = {(e["long"][1], e["longer"][1]) for e in views}
    assert len(starts) > 1  # a new window each epoch
    assert _crop_windows(seed=0)[1] == views
    assert _crop_windows(seed=1)[1] != views
