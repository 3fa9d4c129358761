"""salsa2.utils.download against a local HTTP server: resume, checksum, errors, no half-written files."""

from __future__ import annotations

import hashlib
import socket

import pytest
from helpers.file_server import FileServer

from salsa2.utils.download import ChecksumError, DownloadError, Remote, download, fetch

PAYLOAD = bytes((i * 7 + 3) % 251 for i in range(50_000))
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def served(tmp_path):
    pub = tmp_path / "pub"
    pub.mkdir()
    (pub / "blob.bin").write_bytes(PAYLOAD)
    return pub


def test_download_verifies_and_renames(served, tmp_path):
    with FileServer(served) as srv:
        out = download(f"{srv.url}/blob.bin?download=1", tmp_path / "dl" / "blob.bin", md5=MD5, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "dl" / "blob.bin.part").exists()


def test_interrupted_download_resumes_with_range(served, tmp_path):
    dest = tmp_path / "dl" / "blob.bin"
    with FileServer(served) as srv:
        srv.cut["/blob.bin"] = 12_345
        with pytest.raises(DownloadError, match="resume"):
            download(f"{srv.url}/blob.bin", dest, sha256=SHA256, progress=False)
        assert not dest.exists()  # nothing in place of the good file
        assert (dest.parent / "blob.bin.part").stat().st_size == 12_345
        download(f"{srv.url}/blob.bin", dest, sha256=SHA256, progress=False)
        assert srv.requests == [("/blob.bin", None), ("/blob.bin", "bytes=12345-")]
    assert dest.read_bytes() == PAYLOAD
    assert not (dest.parent / "blob.bin.part").exists()


def test_resume_when_server_ignores_range_starts_over(served, tmp_path):
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(b"garbage-prefix")
    with FileServer(served, honour_range=False) as srv:
        download(f"{srv.url}/blob.bin", dest, md5=MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_removes_the_bad_file(served, tmp_path):
    dest = tmp_path / "blob.bin"
    with FileServer(served) as srv, pytest.raises(ChecksumError, match="md5 is .* the publisher lists 0+"):
        download(f"{srv.url}/blob.bin", dest, md5="0" * 32, progress=False)
    assert not dest.exists()
    assert not (tmp_path / "blob.bin.part").exists()


def test_verified_existing_file_is_not_fetched_again(served, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(PAYLOAD)
    with FileServer(served) as srv:
        fetch(Remote("blob.bin", f"{srv.url}/blob.bin", md5=MD5), tmp_path, progress=False)
        assert srv.requests == []
        dest.write_bytes(b"stale")  # a damaged copy is replaced
        fetch(Remote("blob.bin", f"{srv.url}/blob.bin", md5=MD5), tmp_path, progress=False)
        assert len(srv.requests) == 1
    assert dest.read_bytes() == PAYLOAD


def test_http_error_and_offline_name_the_url(served, tmp_path):
    with FileServer(served) as srv, pytest.raises(DownloadError, match=r"missing\.bin: HTTP 404"):
        download(f"{srv.url}/missing.bin", tmp_path / "x", progress=False)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="cannot connect"):
        download(f"http://127.0.0.1:{port}/blob.bin", tmp_path / "y", progress=False, timeout=5)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_web_page_is_refused_when_a_file_is_expected(served, tmp_path):
    (served / "signin.html").write_text("<html>Sign in to continue</html>")
    with FileServer(served) as srv:
        with pytest.raises(DownloadError, match="answered with a web page"):
            download(f"{srv.url}/signin.html", tmp_path / "model.pt", progress=False, refuse_html=True)
        download(f"{srv.url}/signin.html", tmp_path / "page.html", progress=False)  # not refused unless asked
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "model.pt.part").exists()
    assert (tmp_path / "page.html").exists()


# --------------------------------------------------------------------------- replies that do not continue the .part
def test_stale_part_longer_than_the_file_is_not_renamed_into_place_on_416(served, tmp_path):
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD + b"stale tail of another version")
    with FileServer(served) as srv:
        download(f"{srv.url}/blob.bin", dest, progress=False)  # no checksum: only the lengths can tell
        assert srv.requests == [("/blob.bin", f"bytes={len(PAYLOAD) + 29}-"), ("/blob.bin", None)]
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "blob.bin.part").exists()


def test_complete_part_is_accepted_on_416(served, tmp_path):
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD)
    with FileServer(served) as srv:
        download(f"{srv.url}/blob.bin", dest, sha256=SHA256, progress=False)
        assert len(srv.requests) == 1
    assert dest.read_bytes() == PAYLOAD


def test_206_from_another_offset_restarts_from_zero(served, tmp_path):
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD[:10_000])
    with FileServer(served, range_from_zero=True) as srv:
        download(f"{srv.url}/blob.bin", dest, progress=False)  # no checksum: Content-Range must be checked
        assert srv.requests == [("/blob.bin", "bytes=10000-"), ("/blob.bin", None)]
    assert dest.stat().st_size == len(PAYLOAD) and dest.read_bytes() == PAYLOAD


def test_stated_size_is_checked(served, tmp_path):
    dest = tmp_path / "blob.bin"
    with FileServer(served) as srv, pytest.raises(DownloadError,
                                                  match=r"offers 50000 bytes, the publisher lists 49999"):
        fetch(Remote("blob.bin", f"{srv.url}/blob.bin", size=len(PAYLOAD) - 1), tmp_path, progress=False)
    assert not dest.exists()


def test_first_download_is_recorded_and_later_copies_checked(served, tmp_path):
    from salsa2.utils.download import read_record, record_path

    dest = tmp_path / "dl" / "blob.bin"
    with FileServer(served) as srv:
        fetch(Remote("blob.bin", f"{srv.url}/blob.bin"), dest.parent, progress=False)
        assert read_record(dest) == (SHA256, len(PAYLOAD))
        dest.write_bytes(PAYLOAD[:-1] + b"X")  # damaged on disk: fetched again
        fetch(Remote("blob.bin", f"{srv.url}/blob.bin"), dest.parent, progress=False)
        assert dest.read_bytes() == PAYLOAD and len(srv.requests) == 2
        (served / "blob.bin").write_bytes(PAYLOAD[::-1])  # changed upstream: refused, the record names the way out
        dest.unlink()
        with pytest.raises(ChecksumError, match=r"differs from the first download recorded in .*\.blob\.bin\.sha256"):
            fetch(Remote("blob.bin", f"{srv.url}/blob.bin"), dest.parent, progress=False)
        assert not dest.exists() and not (dest.parent / "blob.bin.part").exists()
        record_path(dest).unlink()
        fetch(Remote("blob.bin", f"{srv.url}/blob.bin"), dest.parent, progress=False)
    assert dest.read_bytes() == PAYLOAD[::-1]


def test_a_file_its_check_refuses_is_neither_kept_nor_recorded(served, tmp_path):
    from salsa2.utils.download import record_path

    def whole(path):
        if path.stat().st_size < len(PAYLOAD):
            raise ValueError(f"{path}: cut short; delete it")

    dest = tmp_path / "dl" / "blob.bin"
    (served / "blob.bin").write_bytes(PAYLOAD[:1000])  # the server states and sends a truncated file
    with FileServer(served) as srv:
        with pytest.raises(DownloadError, match=r"blob\.bin \(from .*\) is not whole: cut short; .*run again"):
            fetch(Remote("blob.bin", f"{srv.url}/blob.bin"), dest.parent, progress=False, check=whole)
        assert not dest.exists() and not record_path(dest).exists()
        (served / "blob.bin").write_bytes(PAYLOAD)
        fetch(Remote("blob.bin", f"{srv.url}/blob.bin"), dest.parent, progress=False, check=whole)
    assert dest.read_bytes() == PAYLOAD and record_path(dest).exists()


def test_a_size_from_the_record_is_not_called_the_publishers(served, tmp_path):
    from salsa2.utils.download import record_path

    dest = tmp_path / "dl" / "blob.bin"
    with FileServer(served) as srv:
        fetch(Remote("blob.bin", f"{srv.url}/blob.bin"), dest.parent, progress=False)
        dest.unlink()
        (served / "blob.bin").write_bytes(PAYLOAD + b"more")
        with pytest.raises(ChecksumError, match=r"offers 50004 bytes, the first download recorded in .*\.blob\.bin"
                                                r"\.sha256 had 50000 .*delete that record"):
            fetch(Remote("blob.bin", f"{srv.url}/blob.bin"), dest.parent, progress=False)
        record_path(dest).unlink()
        fetch(Remote("blob.bin", f"{srv.url}/blob.bin"), dest.parent, progress=False)
    assert dest.read_bytes() == PAYLOAD + b"more"
