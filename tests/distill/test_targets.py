"""Correspondence estimates C-hat (salsa2.distill.targets): members aligned by id, C-hat from stored embeddings equals
the dense matrix, dumps never need N x N, unknown clips are refused."""

from __future__ import annotations

import numpy as np
import pytest

from salsa2.distill import targets
from salsa2.distill.ensemble import ensemble_similarities
from salsa2.distill.members import load_embeddings, save_similarities
from salsa2.distill.targets import TeacherTargets, build_targets, resolve_mode, save_targets
from salsa2.utils.npz import open_npz


def _normed(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def members(tmp_path):
    """Three demo-like members (60 clips x 5 captions, D = 16); the last two order rows differently."""
    rng = np.random.default_rng(0)
    audio_ids = [f"clip{i:02d}" for i in range(60)]
    caption_ids = [f"{a}#{k}" for a in audio_ids for k in range(5)]
    paths = []
    for m in range(3):
        a, t = _normed(rng, 60, 16), _normed(rng, 300, 16)
        ra = np.arange(60) if m == 0 else rng.permutation(60)
        rc = np.arange(300) if m == 0 else rng.permutation(300)
        path = tmp_path / f"m{m}.npz"
        save_similarities(path, [audio_ids[i] for i in ra], [caption_ids[j] for j in rc], a[ra], t[rc])
        paths.append(path)
    return paths, audio_ids, caption_ids


def test_dumps_hold_embeddings_not_a_matrix(members):
    paths, _, _ = members
    z = open_npz(paths[0])
    assert set(z) == {"audio_ids", "caption_ids", "audio_emb", "text_emb"}
    assert isinstance(z["audio_emb"], np.memmap) and z["audio_emb"].shape == (60, 16)
    with np.load(paths[0]) as plain:  # still a normal npz for numpy
        np.testing.assert_array_equal(plain["audio_emb"], z["audio_emb"])


def test_dense_ensemble_matches_hand_computed_mean(members):
    paths, audio_ids, caption_ids = members
    matrix, a_ids, c_ids = ensemble_similarities(paths, block=7)  # uneven blocks
    assert a_ids == audio_ids and c_ids == caption_ids
    expected = np.zeros((60, 300))
    for p in paths:
        m = load_embeddings(p)
        sim = np.asarray(m.audio_emb, np.float64) @ np.asarray(m.text_emb, np.float64).T
        ra = [m.audio_ids.index(a) for a in audio_ids]
        rc = [m.caption_ids.index(c) for c in caption_ids]
        expected += sim[np.ix_(ra, rc)] / 3
    np.testing.assert_allclose(matrix, expected, atol=1e-6)


def test_embedding_targets_equal_dense_targets(members, tmp_path):
    paths, audio_ids, caption_ids = members
    assert build_targets(paths, tmp_path / "dense.npz", ["a", "b", "c"], "dense") == "dense"
    assert build_targets(paths, tmp_path / "emb.npz", ["a", "b", "c"], "embeddings") == "embeddings"
    # the training data orders its ids differently again
    rng = np.random.default_rng(1)
    train_audio = [audio_ids[i] for i in rng.permutation(60)]
    train_caps = [caption_ids[j] for j in rng.permutation(300)]
    dense = TeacherTargets(tmp_path / "dense.npz", train_audio, train_caps)
    emb = TeacherTargets(tmp_path / "emb.npz", train_audio, train_caps)
    assert (dense.kind, emb.kind) == ("dense", "embeddings")
    for _ in range(5):
        rows, cols = rng.choice(60, 16, replace=False), rng.choice(300, 40, replace=False)
        a, b = dense.block(rows, cols).numpy(), emb.block(rows, cols).numpy()
        assert a.shape == (16, 40)
        np.testing.assert_allclose(a, b, atol=2e-6)
    assert not np.allclose(a, 0)


def test_embedding_targets_stream_in_chunks(members, tmp_path, monkeypatch):
    paths, _, _ = members
    monkeypatch.setattr(targets, "CHUNK_ROWS", 7)  # many uneven chunks per member
    build_targets(paths, tmp_path / "emb.npz", ["a", "b", "c"], "embeddings")
    z = open_npz(tmp_path / "emb.npz")
    m1 = load_embeddings(paths[1])
    order = [m1.audio_ids.index(a) for a in z["audio_ids"].tolist()]
    np.testing.assert_array_equal(z["audio_emb_1"], np.asarray(m1.audio_emb)[order])


def test_auto_mode_picks_by_size(monkeypatch):
    monkeypatch.setattr(targets, "DENSE_MAX_ENTRIES", 1000)
    assert resolve_mode("auto", 10, 100) == "dense"
    assert resolve_mode("auto", 10, 101) == "embeddings"
    assert resolve_mode("dense", 10**6, 10**6) == "dense"
    with pytest.raises(ValueError, match="stage2.targets"):
        resolve_mode("sparse", 1, 1)


def test_missing_ids_name_the_file(members, tmp_path):
    paths, audio_ids, caption_ids = members
    build_targets(paths, tmp_path / "t.npz", ["a", "b", "c"], "embeddings")
    with pytest.raises(KeyError, match="t.npz.*nope"):
        TeacherTargets(tmp_path / "t.npz", audio_ids + ["nope"], caption_ids)


def test_ensemble_aligns_members_by_id(tmp_path):
    rng = np.random.default_rng(0)
    a, t = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    b, u = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    audio_ids, caption_ids = [f"a{i}" for i in range(4)], [f"c{j}" for j in range(6)]
    save_similarities(tmp_path / "m1.npz", audio_ids, caption_ids, a, t)
    perm_a, perm_c = [2, 0, 3, 1], [5, 4, 3, 2, 1, 0]
    save_similarities(tmp_path / "m2.npz", [audio_ids[i] for i in perm_a], [caption_ids[j] for j in perm_c],
                      b[perm_a], u[perm_c])
    mean, rows, cols = ensemble_similarities([tmp_path / "m1.npz", tmp_path / "m2.npz"])
    assert rows == audio_ids and cols == caption_ids
    np.testing.assert_allclose(mean, (a @ t.T + b @ u.T) / 2, rtol=1e-5)
    save_targets(tmp_path / "t.npz", mean, rows, cols, ["m1", "m2"])
    teacher = TeacherTargets(tmp_path / "t.npz", ["a3", "a1"], ["c0", "c5", "c2"])
    block = teacher.block(np.array([0, 1]), np.array([2, 0]))
    np.testing.assert_allclose(block.numpy(), mean[np.ix_([3, 1], [2, 0])])


def test_targets_refuse_unknown_clips(tmp_path):
    save_targets(tmp_path / "t.npz", np.zeros((1, 1), np.float32), ["a"], ["c"], ["m"])
    with pytest.raises(KeyError, match="no estimates"):
        TeacherTargets(tmp_path / "t.npz", ["a", "b"], ["c"])
