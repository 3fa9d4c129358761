"""A released model fetched from a loopback server in parts, joined and imported (salsa2.model.release_fetch,
``salsa2 release``, stage release@<name>).

The served model is the released-format checkpoint of tests/helpers/released_model.py cut into three parts, as
OptimusPrimus/salsa publishes ``passt_roberta.{1..5}.ckpt`` (scripts/download_checkpoint.sh there).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from helpers import TESTS
from helpers.dvc_project import demo_params, make_project, run
from helpers.file_server import FileServer
from helpers.released_model import TINY_TEXT, build_released, split_file, tiny_roberta
from salsa2.config.params import ReleaseParams
from salsa2.model.checkpoint import load_checkpoint
from salsa2.model.release_fetch import fetch_parts, fetch_release
from salsa2.model.release_import import RELEASE_FILE, import_salsa_release
from salsa2.model.released import join_parts
from salsa2.utils.download import ChecksumError, DownloadError, record_path
from salsa2.utils.digest import file_digest

pytest.importorskip("transformers")

CAPTIONS = ["A dog's bark, then RAIN!", "birds chirp in the distance"]
NAMES = [f"passt_roberta.{i}.ckpt" for i in (1, 2, 3)]


@pytest.fixture(scope="module")
def roberta(tmp_path_factory) -> str:
    return tiny_roberta(tmp_path_factory.mktemp("tiny_roberta"))


@pytest.fixture(scope="module")
def release(roberta, tmp_path_factory) -> dict:
    """The whole checkpoint, its three parts in a served folder (plus a web page), and the direct import."""
    root = tmp_path_factory.mktemp("release")
    whole = build_released(root / RELEASE_FILE, roberta)["path"]
    served = root / "served"
    split_file(whole, served, 3)
    (served / "quota.html").write_text("<html><body>Download quota exceeded</body></html>")
    direct = import_salsa_release(whole, root / "direct", text_model=TINY_TEXT)
    return {"whole": whole, "served": served, "direct": direct}


@pytest.fixture()
def server(release):
    with FileServer(release["served"]) as srv:
        yield srv


def _urls(server: FileServer, names: list[str] = NAMES) -> list[str]:
    return [f"{server.url}/{name}" for name in names]


def _embeddings(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    model, _ = load_checkpoint(folder)
    model.eval()
    gen = torch.Generator().manual_seed(0)
    frames = 1200
    mel = torch.randn(1, model.frontend.n_mels, frames, generator=gen) + math.log(model.frontend.log_offset) / 4
    with torch.no_grad():
        return model.encode_audio(mel, torch.tensor([frames])), model.encode_text(CAPTIONS)


def test_fetch_release_equals_importing_the_joined_file(release, server, tmp_path):
    parts, out = tmp_path / "parts", tmp_path / "released" / "salsa"
    spec = ReleaseParams(parts=_urls(server), text_model=TINY_TEXT)
    assert fetch_release(spec, parts, out, progress=False) == out
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "text"]
    assert sorted(p.name for p in parts.iterdir() if not p.name.startswith(".")) == NAMES  # joined file removed
    assert all(record_path(parts / name).is_file() for name in NAMES)  # no sha256 given: first download recorded
    _, info = load_checkpoint(out)
    assert info["trained_on"]["file"] == RELEASE_FILE
    assert info["trained_on"]["sha256"] == file_digest(release["whole"], "sha256")
    got, want = _embeddings(out), _embeddings(release["direct"])
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    requests = len(server.requests)
    fetch_parts(spec.parts, parts, progress=False)  # cached parts: nothing fetched again
    assert len(server.requests) == requests


def test_an_interrupted_part_resumes(release, server, tmp_path):
    server.cut["/" + NAMES[1]] = 1000
    with pytest.raises(DownloadError, match="resume"):
        fetch_parts(_urls(server), tmp_path, progress=False)
    assert (tmp_path / (NAMES[1] + ".part")).stat().st_size == 1000
    paths = fetch_parts(_urls(server), tmp_path, progress=False)
    assert ("/" + NAMES[1], "bytes=1000-") in server.requests
    join_parts(paths, tmp_path / "joined.ckpt")
    assert (tmp_path / "joined.ckpt").read_bytes() == release["whole"].read_bytes()


def test_a_web_page_instead_of_a_part_is_refused(server, tmp_path):
    spec = ReleaseParams(parts=_urls(server, [NAMES[0], "quota.html", NAMES[2]]), text_model=TINY_TEXT)
    with pytest.raises(DownloadError, match="web page") as err:
        fetch_release(spec, tmp_path / "parts", tmp_path / "out", progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "parts" / "quota.html").exists()


def test_a_wrong_sha256_is_refused_and_nothing_is_written(release, server, tmp_path):
    digests = [file_digest(release["served"] / name, "sha256") for name in NAMES]
    digests[2] = "0" * 64
    spec = ReleaseParams(parts=_urls(server), sha256=digests, text_model=TINY_TEXT)
    with pytest.raises(ChecksumError, match=NAMES[2]) as err:
        fetch_release(spec, tmp_path / "parts", tmp_path / "out", progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()
    assert not list((tmp_path / "parts").glob(NAMES[2] + "*"))  # the bad part is removed, no .part left


def test_cli_release_imports_urls_and_refuses_a_missing_file_in_one_line(release, server, tmp_path):
    from salsa2.cli.main import app

    runner = CliRunner()
    out = tmp_path / "salsa"
    result = runner.invoke(app, ["release", *_urls(server), "--out", str(out), "--text-model", TINY_TEXT])
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").is_file() and (tmp_path / "salsa.parts" / NAMES[0]).is_file()
    assert not (tmp_path / "salsa.parts" / RELEASE_FILE).exists()
    missing = runner.invoke(app, ["release", str(tmp_path / "absent.ckpt"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "absent.ckpt" in missing.output
    assert len(missing.output.strip().splitlines()) == 1


def test_dvc_stage_release_fetches_from_params(release, server, roberta, tmp_path):
    """``dvc repro release@salsa`` with the parts listed in params; the tiny text encoder is registered in the
    stage's process by a sitecustomize module (the stage itself knows only the encoders salsa2 ships)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
        f"from helpers.released_model import register_tiny_text\nregister_tiny_text({roberta!r})\n")
    params = {**demo_params(), "released": {"salsa": {"parts": _urls(server), "text_model": TINY_TEXT}}}
    project = make_project(tmp_path / "project", params)
    env = {"PYTHONPATH": f"{hook}:{project / 'src'}", "TOKENIZERS_PARALLELISM": "false"}
    log = run(["dvc", "repro", "release@salsa"], project, env)
    assert "Running stage 'release@salsa'" in log
    out = project / "models/released/salsa"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "text"]
    assert sorted(p.name for p in (project / "data/downloads/released/salsa").iterdir()
                  if not p.name.startswith(".")) == NAMES
    got, want = _embeddings(out), _embeddings(release["direct"])
    assert torch.equal(got[1], want[1])
    status = run(["dvc", "status", "release@salsa"], project, env)
    assert "changed" not in status
