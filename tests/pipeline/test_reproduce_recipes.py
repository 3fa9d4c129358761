"""Every command of docs/reproduce.md, run as printed on a tiny mirror of the real datasets, reaches ``evaluate``.

The commands (``salsa2 exp <preset> ...``) are read out of the document. Each runs in a fresh git + DVC project whose
presets are the repository's with two substitutions: a small transformer on the preset's PaSST frontend with the
frozen MiniLM (one epoch, fp32 on CPU) stands in for the paper's networks, and the downloads point at a loopback
HTTP server serving the published files in their exact names and layouts (tests/helpers/mirrors.py). The first
command of a preset runs the whole pipeline; the next ones re-run what their settings change. A released model's
preset (``presets/released-<name>.yaml``) has one row: its ``salsa2 exp`` command, which fetches the model and Clotho
without training, and the ``salsa2 evaluate`` command that scores it; the fixture release of
tests/helpers/released_model.py, served in parts, stands in for the authors' checkpoint.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import REPO, TESTS
from helpers.dvc_project import demo_params, make_project, run
from helpers.file_server import FileServer
from helpers.mirrors import publish_audiocaps, publish_clotho, publish_judgements, publish_wavcaps
from helpers.released_model import TINY_TEXT, split_file
from salsa2.config import presets
from salsa2.config.params import release_params

PAPER = presets.load(REPO / "params-paper.yaml")
_STAGE = {"epochs": 1, "batch_size": 4, "layout": "clips", "precision": "fp32", "validate_every": 1}
TINY = {
    "encoders": {"transformer": "kaldi128"},
    "frontends": {"kaldi128": PAPER["frontends"]["kaldi128"]},  # the cache the stand-in reads, no other
    "audio_encoders": {"transformer": {"arch": "small_transformer", "lr": 5.0e-4, "batch_size": 4, "kwargs": {
        "dim": 16, "depth": 1, "heads": 2, "stack": 8, "snippet_seconds": 10.0, "dropout": 0.0}}},
    "text": {"model": "minilm", "trainable_layers": 0, "dropout": None},
    "embed_dim": 16,
    "stage1": _STAGE,
    "stage2": _STAGE,
}


def documented_commands() -> dict[str, list[str]]:
    """docs/reproduce.md's ``salsa2 exp`` commands by preset, in document order."""
    found = re.findall(r"`(salsa2 exp [a-z][^`]*)`", (REPO / "docs/reproduce.md").read_text())
    by_preset: dict[str, list[str]] = {}
    for cmd in found:
        by_preset.setdefault(cmd.split()[2], [])
        if cmd not in by_preset[cmd.split()[2]]:
            by_preset[cmd.split()[2]].append(cmd)
    return by_preset


def documented_released() -> dict[str, tuple[str, str]]:
    """docs/reproduce.md's released-model rows: preset -> (its ``salsa2 exp`` command, the ``salsa2 evaluate``
    command on the same row)."""
    rows = {}
    for line in (REPO / "docs/reproduce.md").read_text().splitlines():
        found = re.search(r"`(salsa2 exp (released-[^\s`]+)[^`]*)`.*?`(salsa2 evaluate [^`]*)`", line)
        if found:
            rows[found[2]] = (found[1], found[3])
    return rows


def test_reproduce_md_has_a_command_per_preset():
    commands = documented_commands()
    assert set(commands) == {p.stem for p in (REPO / "presets").glob("*.yaml")}
    released = {name for name in commands if name.startswith("released-")}
    assert released == set(documented_released()) and len(released) >= 2
    assert all(len(commands[name]) == 1 for name in released)  # one row each, no variants
    assert all(len(c) >= 2 for name, c in commands.items() if name not in released)  # main rows and variants


@pytest.mark.parametrize("name", ["released-passt_roberta", "released-dcase2025_baseline"])
def test_released_commands_fetch_import_and_cache_only(name):
    """The documented command is one ``dvc exp run`` of paper-clotho plus the model's valid ``released`` entry,
    with the release and kaldi128 cache as its only targets (no training stage runs)."""
    exp, evaluate = documented_released()[name]
    model = name.removeprefix("released-")
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    cmd, params, dry = presets.experiment(REPO / "presets" / f"{name}.yaml", exp.split()[3:], base)
    clotho, _, _ = presets.experiment(REPO / "presets/paper-clotho.yaml", [], base)
    assert not dry and cmd[-2:] == [f"release@{model}", "features@kaldi128"]
    assert cmd[:len(clotho)] == clotho  # paper-clotho's overrides, then the released entry's
    assert cmd[len(clotho):-2] == ["-S", "~released", "-S", f"+released={presets._flow(params['released'])}"]
    assert list(params["released"]) == [model]
    entry = release_params(params, model)
    assert entry.kind == {"passt_roberta": "salsa", "dcase2025_baseline": "dcase2025_baseline"}[model]
    assert len(entry.parts) == {"passt_roberta": 5, "dcase2025_baseline": 1}[model]
    assert all(url.startswith("https://") for url in entry.parts)
    assert params["data"]["datasets"][0]["name"] == "clotho" and "kaldi128" in params["frontends"]
    assert evaluate.split()[:3] == ["salsa2", "evaluate", model]
    assert "--judgements data/judgements.csv" in evaluate and "--relevance-dataset clotho" in evaluate


def tiny_preset(name: str, url: str, judgements_sha256: str) -> dict:
    """The repository's preset ``name``, resolved, with the tiny networks and the mirror's URLs."""
    preset = presets.apply(TINY, presets.load(REPO / "presets" / f"{name}.yaml"))
    mirror = {"clotho": {"base_url": f"{url}/zenodo", "verify": False},
              "audiocaps": {"base_url": f"{url}/audiocaps"},
              "wavcaps": {"base_url": f"{url}/hf", "blacklist_url": f"{url}/github",
                          "sources": ["SoundBible", "FreeSound"]}}
    for entry in preset["downloads"].values():
        entry["args"] = {**entry["args"], **mirror[entry["dataset"]]}
    for entry in preset["data"]["pretrain"]:
        if entry["name"] == "wavcaps":
            entry["args"] = {**entry["args"], "sources": ["SoundBible", "FreeSound"]}
    if preset["evaluate"].get("relevance"):
        preset["evaluate"].update(relevance_url=f"{url}/dcase/metadata_eval.csv",
                                  relevance_sha256=judgements_sha256)
    return preset


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    publish_clotho(root / "www/zenodo", root / "work")
    (root / "www/dcase").mkdir(parents=True)
    sha = publish_judgements(root / "www/dcase/metadata_eval.csv")
    publish_audiocaps(root / "www/audiocaps", root / "clips")
    if shutil.which("zip"):
        publish_wavcaps(root / "www/hf", root / "www/github", root / "work")
    with FileServer(root / "www") as srv:
        yield srv, root / "clips", sha


@pytest.mark.slow
@pytest.mark.parametrize("name", ["paper-clotho", "paper-audiocaps", "paper-pretrain"])
def test_documented_recipe_reaches_evaluate(name, mirror, tmp_path):
    if name == "paper-pretrain" and not shutil.which("zip"):
        pytest.skip("Info-ZIP zip builds WavCaps' split-zip fixture")
    srv, clips, sha = mirror
    files = {f"presets/{p.stem}.yaml": yaml.safe_dump(tiny_preset(p.stem, srv.url, sha), sort_keys=False)
             for p in (REPO / "presets").glob("*.yaml")}
    root = make_project(tmp_path / "project", demo_params(n_train=4, n_val=3, n_test=3), files)
    shutil.copytree(clips, root / "data/audiocaps-audio")  # the preset's place for the user's AudioCaps copy
    env = {"PYTHONPATH": str(REPO / "src")}
    for cmd in documented_commands()[name]:
        out = run(["bash", "-c", cmd], root, env=env)
        # evaluate ran, or found its inputs byte-identical (M = 1 of a single tiny encoder: the same targets)
        assert re.search(r"Running stage 'evaluate'|Stage 'evaluate' didn't change", out), out[-2000:]
        assert "Running stage 'evaluate'" in out or "teachers=self" in cmd
        metrics = json.loads((root / "reports/metrics.json").read_text())
        assert {"stage1-transformer", "stage2-transformer"} <= set(metrics)
        assert 0 <= metrics["stage2-transformer"]["t2a"]["mAP@10"] <= 1
        ran = yaml.safe_load((root / "params.yaml").read_text())
        prepared = Path(root / "data/prepared")
        judged = (root / "data/judgements.csv").read_text()
        if name == "paper-audiocaps":
            assert ran["data"]["datasets"][0]["name"] == "audiocaps" and judged == ""
            rejects = (prepared / "rejects.csv").read_text()
            assert "audiocaps/trn07_30,trn07_30,missing" in rejects  # within the AudioCaps allowance
        else:
            assert ran["data"]["datasets"][0]["name"] == "clotho"
            assert "t2a_multi" in json.dumps(metrics)  # the DCASE 2025 judgements, converted by prepare
            assert "Pensol - le Moulin cours d&#39;eau.wav" in judged
        if name == "paper-pretrain":
            pretrain = (root / "data/pretrain/rejects.csv").read_text()
            assert "wavcaps/FreeSound/1000,".lower() in pretrain.lower() and "excluded" in pretrain
        if "teachers=self" in cmd:
            assert ran["stage2"]["teachers"] == "self"
        if "sup_weight=1.0" in cmd:
            assert ran["stage2"]["sup_weight"] == 1.0



def served_release(model: str, imported_release: dict, folder: Path) -> tuple[list[Path], str, str]:
    """A fixture checkpoint of ``model``'s format cut into as many parts as the preset's URLs, in ``folder``:
    (the parts, the tiny text model's folder, its text encoder name). passt_roberta: the salsa-format file of
    tests/helpers/released_model.py; dcase2025_baseline: a seeded one in the baseline's format
    (tests/helpers/released_reference.py)."""
    if model == "passt_roberta":
        return split_file(imported_release["whole"], folder, 5), imported_release["roberta"], TINY_TEXT
    from helpers.released_reference import TEXT_ENCODER, save_lightning, seeded_release, tiny_text_folder
    from salsa2.model.release_dcase2025 import RELEASE_FILE

    text = tiny_text_folder(folder.parent / "text", model)
    folder.mkdir(parents=True)
    return [save_lightning(folder / RELEASE_FILE, *seeded_release(model, text))], text, TEXT_ENCODER[model]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["released-passt_roberta", "released-dcase2025_baseline"])
def test_documented_released_recipe_scores_the_model(name, mirror, imported_release, tmp_path):
    """A released model's two documented commands: the release (its parts over HTTP), Clotho and its cache, no
    training; then `salsa2 evaluate` with the judgements."""
    pytest.importorskip("transformers")
    srv, _, sha = mirror
    exp, evaluate = documented_released()[name]
    model = name.removeprefix("released-")
    parts, text, text_model = served_release(model, imported_release, tmp_path / "served")
    assert len(parts) == len(presets.load(REPO / "presets" / f"{name}.yaml")["released"][model]["parts"])
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(  # the stages know only the text encoders salsa2 ships
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom helpers.released_model import register_tiny_text\n"
        f"register_tiny_text({text!r}, {text_model!r})\n")
    with FileServer(tmp_path / "served") as release_srv:
        preset = tiny_preset(name, srv.url, sha)
        entry = preset["released"][model]
        preset["released"] = {model: {**entry, "parts": [f"{release_srv.url}/{p.name}" for p in parts],
                                      "text_model": text_model}}
        files = {f"presets/{name}.yaml": yaml.safe_dump(preset, sort_keys=False)}
        root = make_project(tmp_path / "project", demo_params(n_train=4, n_val=3, n_test=3), files)
        env = {"PYTHONPATH": f"{hook}:{REPO / 'src'}", "TOKENIZERS_PARALLELISM": "false"}
        out = run(["bash", "-c", exp], root, env=env)
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert {f"release@{model}", "download@clotho", "prepare", "features@kaldi128"} <= ran, out[-2000:]
    assert not {s for s in ran if s.split("@")[0] in ("stage1", "ensemble", "stage2", "evaluate")}
    assert "Pensol - le Moulin cours d&#39;eau.wav" in (root / "data/judgements.csv").read_text()

    out = run(["bash", "-c", evaluate], root, env=env)
    figures = json.loads(out[out.index("{"):out.rindex("}") + 1])
    assert "t2a/mAP@10" in figures and "t2a_multi/mAP@16" in figures, figures
    assert all(0.0 <= v <= 1.0 for v in figures.values()), figures
