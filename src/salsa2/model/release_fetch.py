"""Fetch a released model's parts, join them and import the result as an ordinary salsa2 checkpoint folder.

OptimusPrimus/salsa publishes ``passt_roberta.ckpt`` as parts fetched with ``wget`` and joined with ``cat``
(scripts/download_checkpoint.sh there). Here every part goes through :func:`salsa2.utils.download.download`
(``.part`` + HTTP Range resume, a web page refused, sha256 checked when listed, else recorded on first download),
the parts are joined in the listed order (:func:`salsa2.model.released.join_parts`), imported by the importer of
the release's kind (``salsa``: salsa2.model.release_import, ``dcase2025_baseline``:
salsa2.model.release_dcase2025) and the joined file removed; the parts stay in ``parts_dir`` as a cache, so a second
run downloads nothing.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from salsa2.config.params import RELEASE_KINDS, ReleaseParams
from salsa2.model.released import ReleasedCheckpointError
from salsa2.utils.download import download, verify

log = logging.getLogger(__name__)


def is_url(source: str) -> bool:
    return urllib.parse.urlparse(str(source)).scheme in ("http", "https")


def part_name(url: str) -> str:
    """The file name a part is cached under: the last component of the URL's path."""
    name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    if not name or name in (".", ".."):
        raise ReleasedCheckpointError(f"{url}: names no file; give each part's URL up to its file name")
    return name


def fetch_parts(sources: Sequence[str | Path], parts_dir: str | Path, sha256: Sequence[str] = (),
                progress: bool = True) -> list[Path]:
    """The local paths of ``sources`` in order: URLs downloaded into ``parts_dir`` under their file names
    (resumable, web pages refused, ``sha256[i]`` checked when given, else the first download recorded), local
    files used where they are (checked against ``sha256[i]`` when given)."""
    if sha256 and len(sha256) != len(sources):
        raise ReleasedCheckpointError(f"{len(sha256)} sha256 digests for {len(sources)} parts; give one per part")
    urls = [str(s) for s in sources if is_url(str(s))]
    names = [part_name(u) for u in urls]
    if len(set(names)) != len(names):
        raise ReleasedCheckpointError(f"parts share a file name ({sorted(n for n in names if names.count(n) > 1)}); "
                                      "each part's URL must end in its own file name")
    paths = []
    for i, source in enumerate(sources):
        digest = sha256[i] if sha256 else None
        if is_url(str(source)):
            dest = Path(parts_dir) / part_name(str(source))
            log.info("part %d/%d: %s -> %s", i + 1, len(sources), source, dest)
            paths.append(download(str(source), dest, sha256=digest, record=not digest, progress=progress,
                                  refuse_html=True))
        else:
            path = Path(source)
            if not path.is_file():
                raise ReleasedCheckpointError(f"{path}: no such file and not an http(s) URL; give the parts in "
                                              "order as URLs or local files")
            verify(path, sha256=digest)
            paths.append(path)
    return paths


def import_parts(parts: Sequence[str | Path], out_dir: str | Path, work_dir: str | Path, kind: str = "salsa",
                 text_model: str = "roberta-large") -> Path:
    """Join ``parts`` into ``work_dir``/<the release's file name> (``passt_roberta.ckpt`` for ``salsa``, which the
    import records), import it with the importer of release ``kind`` into ``out_dir`` and remove the joined file,
    also on error. A single part is the whole checkpoint and is imported where it is."""
    from salsa2.model.release_import import import_release, release_layout
    from salsa2.model.released import join_parts

    if kind not in RELEASE_KINDS:
        raise ReleasedCheckpointError(f"release kind {kind!r} is not known; known: {sorted(RELEASE_KINDS)}")
    layout = release_layout(kind)
    if len(parts) == 1:
        return import_release(layout, parts[0], out_dir, text_model=text_model)
    joined = Path(work_dir) / layout.release_file
    try:
        join_parts(parts, joined)
        return import_release(layout, joined, out_dir, text_model=text_model)
    finally:
        joined.unlink(missing_ok=True)


def fetch_release(spec: ReleaseParams, parts_dir: str | Path, out_dir: str | Path, progress: bool = True) -> Path:
    """Download ``spec.parts`` into ``parts_dir`` (kept as a cache), join them in order, import them into
    ``out_dir`` (model.safetensors + config.json, :func:`salsa2.model.checkpoint.load_checkpoint`) and remove
    the joined file; returns ``out_dir``. A part that fails its check raises before ``out_dir`` is touched."""
    parts = fetch_parts(spec.parts, parts_dir, spec.sha256, progress=progress)
    return import_parts(parts, out_dir, parts_dir, kind=spec.kind, text_model=spec.text_model)
