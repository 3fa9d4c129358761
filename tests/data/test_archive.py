"""salsa2.data.archive: safe extraction of zip / 7z / tar; malicious members are refused before any write."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import zipfile

import py7zr
import pytest
from helpers.file_server import write_clip

from salsa2.data.archive import (ArchiveError, UnsafeArchiveError, check_member, extract, extract_to, join_split_zip,
                                 list_members)


def make_zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def make_tar(path, members: list[tarfile.TarInfo | tuple[str, bytes]]):
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "name,target,reason",
    [("../evil.wav", None, "'..' in path"), ("a/../../evil.wav", None, "'..' in path"),
     ("/etc/evil", None, "absolute path"), ("C:\\evil.wav", None, "absolute path"),
     ("a/l", "../../etc/passwd", "points outside"), ("a/l", "/etc/passwd", "absolute path")],
)
def test_check_member_refuses_escapes(name, target, reason):
    with pytest.raises(UnsafeArchiveError, match=reason) as err:
        check_member("x.zip", name, target)
    assert err.value.member == name


def test_check_member_accepts_inside_paths():
    assert check_member("x.zip", "dev/./a.wav") == "dev/a.wav"
    assert check_member("x.tar", "dev/l", "../dev/a.wav") == "dev/l"


def test_zip_extract_with_filter_and_atomic_dest(tmp_path):
    arc = make_zip(tmp_path / "a.zip", {"development/a.wav": b"A", "development/notes.txt": b"N", "development/": b""})
    out = extract(arc, tmp_path / "out", keep=lambda m: m.endswith(".wav"), progress=False)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["development/a.wav"]
    assert (out / "development/a.wav").read_bytes() == b"A"
    assert list_members(arc) == ["development/a.wav", "development/notes.txt"]


def test_malicious_zip_member_is_refused_and_nothing_written(tmp_path):
    arc = make_zip(tmp_path / "evil.zip", {"ok/a.wav": b"A", "../escaped.wav": b"X"})
    with pytest.raises(UnsafeArchiveError, match=r"evil\.zip: member '\.\./escaped\.wav' refused"):
        extract(arc, tmp_path / "dest" / "out", progress=False)
    assert not (tmp_path / "dest" / "escaped.wav").exists()
    assert not (tmp_path / "dest" / "out").exists()
    assert list((tmp_path / "dest").iterdir()) == []  # the staging dir was removed too


def test_tar_links_outside_are_refused(tmp_path):
    arc = make_tar(tmp_path / "evil.tar.gz", [("d/a.wav", b"A"), link("d/passwd", "../../etc/passwd")])
    with pytest.raises(UnsafeArchiveError, match="points outside"):
        extract(arc, tmp_path / "out", progress=False)
    hard = make_tar(tmp_path / "hard.tar.gz", [link("d/h", "/etc/passwd", tarfile.LNKTYPE)])
    with pytest.raises(UnsafeArchiveError, match="absolute path"):
        extract(hard, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_tar_with_inside_link_extracts(tmp_path):
    arc = make_tar(tmp_path / "ok.tar.gz", [("d/a.wav", b"A"), link("d/b.wav", "a.wav")])
    out = extract(arc, tmp_path / "out", progress=False)
    assert (out / "d/b.wav").read_bytes() == b"A"


def test_7z_extract_and_refusal(tmp_path, monkeypatch):
    good = tmp_path / "good.7z"
    with py7zr.SevenZipFile(good, "w") as sz:
        sz.writestr(b"W", "evaluation/w.wav")
        sz.writestr(b"T", "evaluation/readme.txt")
    out = extract_to(good, tmp_path / "audio" / "evaluation", inner="evaluation", keep=lambda m: m.endswith(".wav"))
    assert [p.name for p in out.iterdir()] == ["w.wav"]
    assert not (tmp_path / "audio" / ".evaluation.extract").exists()
    evil = tmp_path / "evil.7z"
    with monkeypatch.context() as m:  # py7zr refuses to *write* such a member; a hostile archive would have it
        m.setattr(py7zr.py7zr, "check_archive_path", lambda _: True)
        with py7zr.SevenZipFile(evil, "w") as sz:
            sz.writestr(b"X", "../evil.wav")
    names = py7zr.SevenZipFile(evil).getnames()
    if names != ["../evil.wav"]:
        pytest.fail(f"py7zr rewrote the member name to {names}; the fixture no longer tests refusal")
    with pytest.raises(UnsafeArchiveError, match="'..' in path"):
        extract(evil, tmp_path / "out7", progress=False)
    assert not (tmp_path / "evil.wav").exists() and not (tmp_path / "out7").exists()


def test_corrupt_and_unknown_archives(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ArchiveError, match="cannot read archive"):
        extract(bad, tmp_path / "out", progress=False)
    with pytest.raises(ArchiveError, match="unknown archive format"):
        extract(tmp_path / "x.rar", tmp_path / "out", progress=False)


# ---------------------------------------------------------- extraction targets, expanded size, chained links
def test_extract_to_checks_the_target_before_extracting(tmp_path, monkeypatch):
    arc = make_zip(tmp_path / "a.zip", {"x.wav": b"X"})
    (tmp_path / "audio").mkdir()
    calls = []
    monkeypatch.setattr("salsa2.data.archive.extract", lambda *a, **k: calls.append(a))
    with pytest.raises(ArchiveError, match=r"audio already exists; remove it to extract"):
        extract_to(arc, tmp_path / "audio")
    assert calls == []  # nothing was extracted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "audio"]


def test_extract_to_leaves_no_staging_folder_on_failure(tmp_path):
    arc = make_tar(tmp_path / "evil.tar.gz", [("d/a.wav", b"A"), link("d/passwd", "../../etc/passwd")])
    with pytest.raises(UnsafeArchiveError):
        extract_to(arc, tmp_path / "audio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz"]
    good = make_zip(tmp_path / "good.zip", {"x.wav": b"X"})
    (tmp_path / "audio").mkdir()
    with pytest.raises(ArchiveError, match="already exists"):
        extract_to(good, tmp_path / "audio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio", "evil.tar.gz", "good.zip"]  # no .audio.extract


def test_expanded_size_is_capped(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("silence.wav", bytes(8 << 20))  # 8 MiB of zeros -> a few KB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ArchiveError, match=r"bomb\.zip: expands to 8388608 bytes, \d+ times its size \(limit 100x\)"):
        extract_to(bomb, tmp_path / "audio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.zip"]
    out = extract_to(bomb, tmp_path / "audio", max_ratio=None)  # trusted by the caller
    assert (out / "silence.wav").stat().st_size == 8 << 20


def test_expanded_size_over_free_space_is_refused(tmp_path, monkeypatch):
    import collections

    arc = make_zip(tmp_path / "a.zip", {"x.wav": b"X" * 1000})
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr("salsa2.data.archive.shutil.disk_usage", lambda _: usage(10_000, 9_900, 100))
    with pytest.raises(ArchiveError, match=r"expands to 1000 bytes but only 100 are free"):
        extract(arc, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_chained_symlink_escape_is_reported_as_such(tmp_path):
    # each link alone stays inside (b/c -> .. is the root; a -> b/c/.. is "b"), but a follows b/c out of the root
    arc = make_tar(tmp_path / "chain.tar.gz", [("b/x.wav", b"X"), link("b/c", ".."), link("a", "b/c/.."),
                                                ("a/evil.wav", b"E")])
    with pytest.raises(UnsafeArchiveError, match=r"member 'a' refused \(chained symlink"):
        extract_to(arc, tmp_path / "audio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.tar.gz"]
    via_dir = make_tar(tmp_path / "via.tar.gz", [("a/evil.wav", b"E"), link("b/c", ".."), link("a", "b/c/..")])
    with pytest.raises(UnsafeArchiveError, match=r"member 'a/evil.wav' refused \(chained symlink: its folder"):
        extract(via_dir, tmp_path / "out", progress=False)
    assert not (tmp_path / "evil.wav").exists()


needs_zip = pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP zip makes and joins split zips")


def _split_zip(folder, source: str = "FreeSound", n: int = 4):
    """``<source>.z01 ... <source>.zip`` made by Info-ZIP ``zip -s 64k`` from ``n`` one-second FLAC clips."""
    work = folder / "work"
    for i in range(n):
        write_clip(work / f"{source}_flac" / f"{i}.flac", seconds=1.0, sr=16000, seed=i, fmt="FLAC")
    out = folder / "Zip_files" / source
    out.mkdir(parents=True)
    subprocess.run(["zip", "-q", "-s", "64k", "-r", str(out / f"{source}.zip"), f"{source}_flac"], cwd=work,
                   check=True)
    assert (out / f"{source}.z01").exists()  # really split
    return out / f"{source}.zip"


def _flacs(path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return sorted(n for n in zf.namelist() if n.endswith(".flac"))


@needs_zip
def test_split_zip_join(tmp_path):
    first = _split_zip(tmp_path)
    merged = join_split_zip(first, tmp_path / "merged.zip")
    assert _flacs(merged) == [f"FreeSound_flac/{i}.flac" for i in range(4)]
    with zipfile.ZipFile(merged) as zf:
        assert zf.testzip() is None


@needs_zip
def test_split_zip_join_falls_back_to_repair_mode(tmp_path):
    """A central directory `zip -s 0` refuses is rebuilt by zip's repair mode (-FF), as the references join."""
    first = _split_zip(tmp_path)
    data = bytearray(first.read_bytes())
    at = data.find(b"PK\x01\x02")  # the first central-directory header sits in the last part
    data[at + 3] = 0x09
    first.write_bytes(bytes(data))
    assert subprocess.run(["zip", "-s", "0", str(first), "--out", str(tmp_path / "probe.zip")],
                          capture_output=True, input=b"q\n" * 20).returncode != 0
    merged = join_split_zip(first, tmp_path / "merged.zip")
    assert _flacs(merged) == [f"FreeSound_flac/{i}.flac" for i in range(4)]
    with zipfile.ZipFile(merged) as zf:
        assert zf.testzip() is None


@needs_zip
def test_split_zip_with_a_missing_part_fails_in_one_line(tmp_path):
    first = _split_zip(tmp_path)
    (first.parent / "FreeSound.z01").unlink()
    with pytest.raises(ArchiveError) as err:
        join_split_zip(first, tmp_path / "merged.zip")
    message = str(err.value)
    assert str(first) in message and "-FF" in message and "audio_dir" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Zip_files", "work"]  # nothing half-written


def test_split_zip_entry_count_from_a_zip64_end_record(tmp_path):
    """WavCaps' FreeSound archive holds over 65535 entries: its count sits in the ZIP64 end record, which the
    check of zip's repair mode reads."""
    from salsa2.data.archive import _listed_entries

    with zipfile.ZipFile(tmp_path / "big.zip", "w") as zf:
        for i in range(65536):
            zf.writestr(f"FreeSound_flac/{i}.flac", b"")
    assert _listed_entries(tmp_path / "big.zip") == 65536
    assert _listed_entries(make_zip(tmp_path / "small.zip", {"a.flac": b"x", "b.flac": b"y"})) == 2
