"""Stage download@<name> under DVC: hermetic (a new base_url downloads anew, nothing kept from an earlier run),
its params reach no other stage, and a checkout of the shards leaves nothing stale. A tiny WavCaps mirror (the
Hugging Face layout: json_files/ + Zip_files/) is served from 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers.dvc_project import demo_params, make_project, run
from helpers.file_server import FileServer, write_clip

pytestmark = pytest.mark.slow

IDS = ("2218", "2219", "2220")


def _mirror(root: Path, words: str) -> None:
    """SoundBible as published (sb_final.json + SoundBible.zip), captions ending in ``words``."""
    meta = root / "json_files/SoundBible"
    meta.mkdir(parents=True)
    items = [{"id": i, "caption": f"A bell rings {words}.", "duration": 1.0} for i in IDS]
    meta.joinpath("sb_final.json").write_text(json.dumps({"num_captions_per_audio": 1, "data": items}))
    (root / "Zip_files/SoundBible").mkdir(parents=True)
    with zipfile.ZipFile(root / "Zip_files/SoundBible/SoundBible.zip", "w") as zf:
        for n, i in enumerate(IDS):
            clip = write_clip(root / "work" / f"{i}.flac", seconds=1.0, sr=16000, seed=n, fmt="FLAC")
            zf.write(clip, f"mnt/SoundBible_flac/{i}.flac")
    shutil.rmtree(root / "work")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    www = tmp_path_factory.mktemp("www")
    _mirror(www / "a", "once")
    shutil.copytree(www / "a", www / "b")  # the same bytes at another address
    shutil.copytree(www / "a", www / "b2")
    _mirror(www / "c", "twice")  # other captions
    with FileServer(www) as server:
        params = demo_params(n_train=12, n_val=4, n_test=4)
        params["downloads"] = {"wc": {"dataset": "wavcaps", "args": {
            "sources": ["SoundBible"], "exclude": "none", "base_url": f"{server.url}/a"}}}
        params["data"]["datasets"] = [{"name": "wavcaps", "raw": "wc",
                                       "args": {"download": False, "sources": ["SoundBible"], "exclude": "none"}}]
        params["evaluate"]["relevance"] = None
        project = make_project(tmp_path_factory.mktemp("project"), params)
        yield project, server


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def _repro_with_base_url(project: Path, server: FileServer, folder: str) -> tuple[str, list[str]]:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["downloads"]["wc"]["args"]["base_url"] = f"{server.url}/{folder}"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    server.requests.clear()
    out = run(["dvc", "repro", "features@mel64"], project)
    return out, [path for path, _ in server.requests]


def test_first_repro_downloads_and_packs(setup):
    project, server = setup
    out = run(["dvc", "repro", "features@mel64"], project)
    assert {"download@wc", "prepare", "features@mel64"} <= _ran(out)
    assert any(path.startswith("/a/Zip_files/") for path, _ in server.requests)
    assert (project / "data/raw/wc/manifest.json").is_file()
    captions = pd.read_parquet(project / "data/prepared/captions.parquet")
    assert set(captions["text"]) == {"A bell rings once."}


def test_a_new_base_url_downloads_again(setup):
    """Nothing of the earlier download is reused: every file comes from the new address."""
    project, server = setup
    out, requested = _repro_with_base_url(project, server, "b")
    assert "download@wc" in _ran(out)
    assert "/b/Zip_files/SoundBible/SoundBible.zip" in requested
    assert "/b/json_files/SoundBible/sb_final.json" in requested


def test_features_do_not_depend_on_the_download_params(setup):
    """The same bytes from another address: download@wc runs, the shards are identical, prepare and features skip."""
    project, server = setup
    out, requested = _repro_with_base_url(project, server, "b2")
    assert _ran(out) == {"params", "download@wc"}  # params: the check, which re-runs nothing
    assert requested


def test_changed_mirror_content_reaches_the_tables(setup):
    project, server = setup
    out, _ = _repro_with_base_url(project, server, "c")
    assert {"download@wc", "prepare"} <= _ran(out)
    captions = pd.read_parquet(project / "data/prepared/captions.parquet")
    assert set(captions["text"]) == {"A bell rings twice."}


def test_checkout_of_the_shards_leaves_nothing_stale(setup):
    project, _ = setup
    shutil.rmtree(project / "data/raw")
    run(["dvc", "checkout", "download@wc"], project)  # the stages run here; the others have no outputs to check out
    assert (project / "data/raw/wc/manifest.json").is_file()
    assert "Data and pipelines are up to date" in run(["dvc", "status", "--with-deps", "features@mel64"], project)
