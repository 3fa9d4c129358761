"""File digests: the bytes alone decide them (not the chunk size they are read in), in hashlib's own values."""

from __future__ import annotations

import hashlib

from salsa2.utils.digest import file_digest, files_digest, tree_digest


def test_file_digest_is_hashlibs_whatever_the_chunk(tmp_path):
    data = bytes(range(256)) * 5000
    (tmp_path / "a.bin").write_bytes(data)
    for algorithm in ("sha256", "md5", "sha1"):
        want = hashlib.new(algorithm, data).hexdigest()
        assert file_digest(tmp_path / "a.bin", algorithm) == want
        assert file_digest(tmp_path / "a.bin", algorithm, chunk=7) == want


def test_files_digest_is_the_concatenation_in_order(tmp_path):
    (tmp_path / "config.json").write_bytes(b'{"a": 1}')
    (tmp_path / "model.safetensors").write_bytes(b"\x00weights" * 1000)
    paths = [tmp_path / "config.json", tmp_path / "model.safetensors"]
    joined = b'{"a": 1}' + b"\x00weights" * 1000
    assert files_digest(paths, "sha1") == hashlib.sha1(joined).hexdigest()
    assert files_digest(paths[::-1], "sha1") != files_digest(paths, "sha1")


def test_tree_digest_sees_renames_and_edits(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    before = tree_digest(tmp_path, "*.py")
    (tmp_path / "pkg" / "a.py").rename(tmp_path / "pkg" / "b.py")
    renamed = tree_digest(tmp_path, "*.py")
    (tmp_path / "pkg" / "b.py").write_text("x = 2\n")
    assert len({before, renamed, tree_digest(tmp_path, "*.py")}) == 3
