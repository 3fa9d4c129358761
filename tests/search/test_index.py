"""Indexing a folder: unreadable files reported with reasons, change detection, embeddings as in training."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import salsa2.search.index as index_mod
from salsa2.evaluation.embed import embed_split_audio
from salsa2.search.index import IndexFileError, build_index, read_index, scan
from salsa2.search.inference import SearchModel, chunk_frames, embed_audio, embed_mels, split_frames
from salsa2.model.dual_encoder import DualEncoder, ModelConfig


@pytest.fixture(scope="session")
def demo(search_demo):
    return search_demo


def _library(demo, dest: Path, n: int) -> list[Path]:
    """Copy n demo test clips into dest (one in a subfolder)."""
    src = sorted(demo.audio_dir.rglob("*.flac"))[:n]
    out = []
    for i, f in enumerate(src):
        target = dest / ("sub" if i == 0 else "") / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
        out.append(target)
    return out


def test_embeddings_match_the_training_path(demo, tmp_path):
    """The index embeds files as evaluation does (cached float16 log-mels, one clip per batch)."""
    out = tmp_path / "idx.parquet"
    build_index(demo.audio_dir, out, [demo.model], progress=False)
    index = read_index(out)
    reference = embed_split_audio(demo.model.model, demo.clips, batch_size=1)
    row = {Path(p).stem: i for i, p in enumerate(index.files["path"])}
    ours = index.embeddings["model"][[row[a.split("/")[-1]] for a in demo.clips.audio_ids]]
    cos = np.sum(ours * reference, axis=1)
    assert len(index) == len(demo.clips.audio_ids)
    assert cos.min() > 0.999, cos.min()
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    durations = index.files.set_index("path")["duration"]
    assert durations.between(5.0, 30.5).all()


def test_unreadable_files_are_reported_not_fatal(demo, tmp_path):
    lib = tmp_path / "lib"
    _library(demo, lib, 2)
    rng = np.random.default_rng(0)
    (lib / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + rng.bytes(200))
    (lib / "notes.flac").write_text("this is a text file, not audio\n")
    sf.write(lib / "empty.wav", np.zeros(0, np.float32), 16000)
    sf.write(lib / "silent.wav", np.zeros(16000, np.float32), 16000)
    sf.write(lib / "short.wav", 0.1 * rng.standard_normal(400).astype(np.float32), 16000)  # 25 ms
    (lib / "readme.txt").write_text("not an audio extension: ignored\n")
    sf.write(lib / ".hidden.wav", 0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
    report = build_index(lib, tmp_path / "idx.parquet", [demo.model], progress=False)
    reasons = dict(zip(report.rejects["path"], report.rejects["reason"]))
    assert reasons == {"corrupt.wav": "corrupt", "notes.flac": "corrupt", "empty.wav": "empty",
                       "silent.wav": "silent", "short.wav": "too_short"}
    assert (report.rejects["detail"].str.len() > 0).all()
    index = read_index(tmp_path / "idx.parquet")
    assert sorted(index.files["path"]) == sorted(p.relative_to(lib).as_posix() for p in lib.rglob("*_0*.flac"))
    assert list(index.rejects["path"]) == sorted(reasons)  # stored in the index, sorted by path


def test_reindex_processes_only_new_changed_and_deleted(demo, tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    clips = _library(demo, lib, 5)
    (lib / "bad.flac").write_text("not audio")
    out = tmp_path / "idx.parquet"
    first = build_index(lib, out, [demo.model], progress=False)
    assert (first.new, first.unchanged, first.embedded, len(first.rejects)) == (5, 0, {"model": 5}, 1)
    before = read_index(out)

    decoded: list[str] = []
    real = index_mod.load_logmel
    monkeypatch.setattr(index_mod, "load_logmel", lambda p, *a, **kw: decoded.append(Path(p).name) or real(p, *a, **kw))
    again = build_index(lib, out, [demo.model], progress=False)
    assert decoded == [] and again.embedded == {"model": 0} and again.unchanged == 5 and len(again.rejects) == 1
    np.testing.assert_array_equal(read_index(out).embeddings["model"], before.embeddings["model"])

    # Modify one clip (the content of another, a new mtime), delete one, add one.
    modified, deleted = clips[1], clips[2]
    data, sr = sf.read(clips[3])
    sf.write(modified, data, sr)
    stat = modified.stat()


    os.utime(modified, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    deleted.unlink()
    added = lib / "new" / "added.flac"
    added.parent.mkdir()
    shutil.copy2(clips[4], added)
    third = build_index(lib, out, progress=False)  # models taken from the index
    assert sorted(decoded) == sorted([modified.name, "added.flac"])
    assert (third.new, third.changed, third.unchanged, third.removed) == (1, 1, 3, 1)
    after = read_index(out)
    emb = dict(zip(after.files["path"], after.embeddings["model"]))
    old = dict(zip(before.files["path"], before.embeddings["model"]))

    def rel(p):
        return p.relative_to(lib).as_posix()

    assert rel(deleted) not in emb
    np.testing.assert_allclose(emb[rel(modified)], old[rel(clips[3])], atol=1e-5)  # re-embedded: now clip 3
    np.testing.assert_allclose(emb["new/added.flac"], old[rel(clips[4])], atol=1e-5)
    for c in (clips[0], clips[3], clips[4]):
        np.testing.assert_array_equal(emb[rel(c)], old[rel(c)])


def test_new_or_retrained_model_embeds_everything_once(demo, tmp_path):
    lib = tmp_path / "lib"
    _library(demo, lib, 3)
    out = tmp_path / "idx.parquet"
    build_index(lib, out, [demo.model], progress=False)
    both = build_index(lib, out, [demo.model, demo.other_model], progress=False)
    assert both.embedded == {"model": 0, "other": 3}
    retrained = dataclasses.replace(demo.model, model_id="0123456789abcdef")
    again = build_index(lib, out, [retrained, demo.other_model], progress=False)
    assert again.embedded == {"model": 3, "other": 0}
    only = build_index(lib, out, [demo.other_model], progress=False)
    assert list(read_index(out).embeddings) == ["other"] and only.embedded == {"other": 0}


def test_embedding_does_not_depend_on_batch_company(demo):
    rng = np.random.default_rng(1)
    mels = [rng.normal(-4, 2, (64, n)).astype(np.float32) for n in (130, 700, 256, 701)]
    together = embed_mels(demo.model, mels, batch_size=4)
    alone = np.concatenate([embed_mels(demo.model, [m]) for m in mels])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_split_frames_and_chunk_sizes(demo):
    assert split_frames(2500, 1000, 100) == [(0, 1000), (1000, 2000), (2000, 2500)]
    assert split_frames(2050, 1000, 100) == [(0, 1000), (1000, 2050)]  # a short tail joins the last chunk
    assert split_frames(999, 1000, 100) == [(0, 999)]
    assert chunk_frames(demo.model, 600.0) == 60032  # 60000 frames rounded up to a multiple of 128


def test_long_files_chunked_exactly_for_snippet_encoders(demo):
    """A SnippetEncoder averages 10 s snippets; chunks aligned to snippets give the whole-file embedding."""
    torch.manual_seed(0)
    cfg = ModelConfig(audio_arch="small_transformer", frontend=demo.model.frontend, text_model="minilm",
                      embed_dim=32, audio_kwargs={"dim": 32, "depth": 1, "heads": 2, "stack": 8,
                                                  "snippet_seconds": 10.0},
                      text_kwargs={"max_length": 32, "trainable_layers": 0})
    model = DualEncoder(cfg, text_encoder=demo.model.model.text_encoder).eval()
    sm = SearchModel("t", demo.model_dir, model, {}, "x", True)
    assert chunk_frames(sm, 100.0) == 16000  # lcm(128, 1000 frames a snippet)
    mel = np.random.default_rng(2).normal(-4, 2, (64, 40050)).astype(np.float32)  # 400.5 s: 41 snippets
    chunked = embed_mels(sm, [mel], chunk_seconds=100.0)
    whole = embed_mels(sm, [mel], chunk_seconds=1000.0)
    with torch.no_grad():
        direct = model.encode_audio(torch.from_numpy(mel)[None], torch.tensor([mel.shape[1]])).numpy()
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    np.testing.assert_allclose(whole, direct, atol=1e-5)


def test_waveforms_and_files_embed_alike(demo):
    path = sorted(demo.audio_dir.rglob("*.flac"))[0]
    wav, sr = sf.read(path, dtype="float32")
    from_file = embed_audio(demo.model, path)
    from_array = embed_audio(demo.model, wav)
    np.testing.assert_allclose(from_file, from_array, atol=1e-6)
    import soxr

    at_32k = soxr.resample(wav, sr, 32000).astype(np.float32)
    assert float((embed_audio(demo.model, at_32k, sample_rate=32000) @ from_file.T)[0, 0]) > 0.99
    with pytest.raises(ValueError, match="mono"):
        embed_audio(demo.model, [np.zeros((2, 100), np.float32)])


def test_bad_index_files_name_the_file(tmp_path):
    (tmp_path / "x.parquet").write_text("hello")
    with pytest.raises(IndexFileError, match="x.parquet"):
        read_index(tmp_path / "x.parquet")
    import pandas as pd

    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "y.parquet")
    with pytest.raises(IndexFileError, match="without salsa2 index metadata"):
        read_index(tmp_path / "y.parquet")
    with pytest.raises(FileNotFoundError, match="salsa2 index DIR"):
        read_index(tmp_path / "missing.parquet")


def test_scan_filters_extensions_and_hidden(tmp_path):
    for name in ("a.WAV", "b.flac", "c.txt", ".d.wav", "sub/e.ogg", ".git/f.wav"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * 3)
    assert scan(tmp_path)["path"].tolist() == ["a.WAV", "b.flac", "sub/e.ogg"]
    assert scan(tmp_path, [".flac"])["path"].tolist() == ["b.flac"]


@pytest.mark.parametrize("damage", [b"PAR1 truncated by a full disk", b""])
def test_corrupt_index_is_rebuilt_with_full(demo, tmp_path, damage):
    lib = tmp_path / "lib"
    lib.mkdir()
    for f in sorted(demo.audio_dir.rglob("*.flac"))[:2]:
        shutil.copy2(f, lib / f.name)
    out = tmp_path / "idx.parquet"
    out.write_bytes(damage)
    with pytest.raises(IndexFileError, match=r"idx\.parquet: the existing index cannot be read .*--full`$"):
        build_index(lib, out, progress=False)  # no models given: nothing to rebuild with
    build_index(lib, out, [demo.model], full=True, progress=False)
    assert sorted(read_index(out).files["path"]) == sorted(p.name for p in lib.iterdir())
    out.write_bytes(damage)
    build_index(lib, out, [demo.model], progress=False)  # also without --full when the models are given
    assert len(read_index(out).files) == 2


def test_unwritable_index_output_is_refused_before_anything_is_embedded(demo, tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    _library(demo, lib, 2)
    (tmp_path / "file").write_text("a file where the index folder should be")
    embedded = []
    monkeypatch.setattr(index_mod, "_embed", lambda *a, **k: embedded.append(1) or {})
    with pytest.raises(IndexFileError, match=r"file/idx\.parquet: cannot write the index there: .*file is a file"):
        build_index(lib, tmp_path / "file" / "idx.parquet", [demo.model_dir], progress=False)
    assert embedded == []
    with pytest.raises(IndexFileError, match=r"is a folder; give the index file's name"):
        build_index(lib, tmp_path, [demo.model_dir], progress=False)
    assert embedded == []
