"""A 127.0.0.1 HTTP file server with Range support, tiny generated audio clips and a small folder dataset."""

from __future__ import annotations

import hashlib
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf


class FileServer:
    """Serves ``directory`` on 127.0.0.1; honours ``Range: bytes=N-``; can cut the first response of a path
    after ``cut[path]`` bytes (an interrupted download); records (path, Range header) of every GET.
    ``range_from_zero``: a faulty server that answers every Range with 206 and the whole file from byte 0."""

    def __init__(self, directory: str | Path, *, honour_range: bool = True, range_from_zero: bool = False) -> None:
        self.directory = Path(directory)
        self.requests: list[tuple[str, str | None]] = []
        self.cut: dict[str, int] = {}
        self.honour_range = honour_range
        self.range_from_zero = range_from_zero
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                file = server.directory / path.lstrip("/")
                if not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and server.range_from_zero:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes 0-{len(data) - 1}/{len(data)}")
                elif m and server.honour_range:
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", self.guess_type(path))
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if path in server.cut:
                    body = body[: server.cut.pop(path)]  # then close: the client sees a short read
                    self.close_connection = True
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(directory)))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self):  # -> FileServer
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def md5(path: str | Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def write_clip(path: str | Path, seconds: float = 0.6, sr: int = 8000, kind: str = "noise", seed: int = 0,
               fmt: str | None = None) -> Path:
    """A tiny clip: ``noise`` (audible), ``silent`` (zeros), ``empty`` (no samples) or ``corrupt`` (bytes that
    are no audio file); ``fmt`` (e.g. FLAC, OGG, MP3) defaults to the file extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(64)))
        return path
    n = 0 if kind == "empty" else int(seconds * sr)
    wav = np.zeros(n, np.float32) if kind in ("silent", "empty") else (
        0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)
    sf.write(str(path), wav, sr, format=fmt)
    return path


def folder_library(root: Path) -> None:
    """A bring-your-own folder: a stereo 32 kHz clip with two captions, a silent, a too short, a corrupt and a
    missing file, listed in captions.csv (split train)."""
    rng = np.random.default_rng(0)
    sf.write(root / "good.wav", rng.normal(0, 0.1, (32000, 2)).astype(np.float32), 32000)
    sf.write(root / "silent.flac", np.zeros(16000 * 2, np.float32), 16000)
    sf.write(root / "short.wav", rng.normal(0, 0.1, 1600).astype(np.float32), 16000)
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    pd.DataFrame({
        "file": ["good.wav", "good.wav", "silent.flac", "short.wav", "corrupt.wav", "absent.wav"],
        "caption": ["Noise,  loud!", "static hiss", "nothing", "a blip", "broken", "gone"],
        "split": ["train"] * 6,
    }).to_csv(root / "captions.csv", index=False)
