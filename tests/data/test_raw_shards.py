"""Raw data as tar shards (stage download@<name>): round trip, reproducible bytes, unpack only when needed,
and prepare reading a download through ``raw: <name>``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from salsa2.data.prepare import prepare
from salsa2.data.raw_shards import MARKER, downloads_of, hand_over, pack, scratch_for, unpack, unpack_referenced


def _library(root: Path, n: int = 5) -> Path:
    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True)
    rows = ["file,caption,split"]
    for i in range(n):
        sf.write(root / "audio" / f"c{i}.wav", rng.uniform(-0.5, 0.5, 8000).astype(np.float32), 16000)
        rows.append(f"audio/c{i}.wav,a sound number {i},{'train' if i < 3 else 'test'}")
    (root / "captions.csv").write_text("\n".join(rows) + "\n")
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != MARKER}


def test_pack_unpack_round_trip_is_reproducible(tmp_path: Path) -> None:
    src = _library(tmp_path / "src")
    manifest = pack(src, tmp_path / "raw" / "lib", shard_bytes=20_000)  # ~16 KB per clip: several shards
    assert manifest["files"] == 6 and len(manifest["shards"]) >= 3
    again = pack(src, tmp_path / "raw2" / "lib", shard_bytes=20_000)
    assert again == manifest
    for entry in manifest["shards"]:  # bit-identical shards: DVC stores them once
        assert (tmp_path / "raw" / "lib" / entry["file"]).read_bytes() == \
            (tmp_path / "raw2" / "lib" / entry["file"]).read_bytes()
    dest = unpack(tmp_path / "raw" / "lib", tmp_path / "unpacked" / "lib")
    assert _tree(dest) == _tree(src)


def test_unpack_is_a_no_op_until_the_shards_change(tmp_path: Path) -> None:
    src = _library(tmp_path / "src")
    pack(src, tmp_path / "raw" / "lib", shard_bytes=20_000)
    dest = unpack(tmp_path / "raw" / "lib", tmp_path / "u")
    probe = dest / "captions.csv"
    os.utime(probe, (1, 1))
    unpack(tmp_path / "raw" / "lib", tmp_path / "u")
    assert probe.stat().st_mtime == 1  # not re-extracted
    (src / "captions.csv").write_text("file,caption,split\naudio/c0.wav,changed,train\n")
    pack(src, tmp_path / "raw" / "lib", shard_bytes=20_000)
    unpack(tmp_path / "raw" / "lib", tmp_path / "u")
    assert "changed" in probe.read_text()


def test_unpack_without_download_names_the_stage(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"download@clotho"):
        unpack(tmp_path / "raw" / "clotho", tmp_path / "u")


def test_prepare_reads_a_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pack(_library(tmp_path / "fetched"), "data/raw/lib", shard_bytes=20_000)
    rejects = prepare([{"name": "folder", "raw": "lib", "args": {"captions": "captions.csv", "name": "lib"}}],
                      "data/prepared", raw_root="data/raw", unpacked_root="data/unpacked")
    assert len(rejects) == 0
    import pandas as pd

    audio = pd.read_parquet("data/prepared/audio.parquet")
    assert len(audio) == 5 and all(Path(p).is_file() for p in audio["path"])
    assert all(str(p).startswith("data/unpacked/lib/") for p in audio["path"])


def test_features_unpack_only_the_downloads_the_tables_point_into(tmp_path: Path) -> None:
    pack(_library(tmp_path / "a"), tmp_path / "raw" / "a", shard_bytes=20_000)
    pack(_library(tmp_path / "b"), tmp_path / "raw" / "b", shard_bytes=20_000)
    paths = [str(tmp_path / "unpacked/a/audio/c0.wav"), "elsewhere/x.wav", str(tmp_path / "unpacked/a/audio/c1.wav")]
    assert downloads_of(paths, tmp_path / "unpacked") == ["a"]
    assert unpack_referenced(paths, tmp_path / "raw", tmp_path / "unpacked") == {"a": tmp_path / "unpacked" / "a"}
    assert sorted(p.name for p in (tmp_path / "unpacked").iterdir()) == ["a"]


def test_scratch_folder_is_per_params(tmp_path: Path) -> None:
    entry = {"dataset": "wavcaps", "args": {"base_url": "http://one"}}
    first = scratch_for(entry, tmp_path / "scratch")
    first.mkdir(parents=True)
    (first / "f.zip.part").write_bytes(b"partial")
    assert scratch_for(dict(entry), tmp_path / "scratch") == first  # the same params resume there
    other = scratch_for({"dataset": "wavcaps", "args": {"base_url": "http://two"}}, tmp_path / "scratch")
    assert other != first and not first.exists()  # other params: a new folder, the old one removed


def test_hand_over_replaces_the_unpacked_copy(tmp_path: Path) -> None:
    work = _library(tmp_path / "scratch" / "key")
    pack(work, tmp_path / "raw" / "lib", shard_bytes=20_000)
    old = tmp_path / "unpacked" / "lib"
    old.mkdir(parents=True)
    (old / "stale.wav").write_bytes(b"old")
    hand_over(work, old)
    assert not (old / "stale.wav").exists() and (old / "captions.csv").is_file()
    assert not (tmp_path / "scratch").exists()
    probe = old / "captions.csv"
    os.utime(probe, (1, 1))
    unpack(tmp_path / "raw" / "lib", old)
    assert probe.stat().st_mtime == 1  # the handed-over copy is the unpacked copy of these shards
