"""The DCASE 2025 task 6 baseline's checkpoint (release kind ``dcase2025_baseline``, salsa2.model.release_dcase2025)
fetched, joined and imported like OptimusPrimus/salsa's, and refused in one line when it is not that model.

The served checkpoint holds the weights of tests/helpers/released_model.py's salsa-format file under the names
CPJKU/dcase2025_task6_baseline saves (d25_t6/retrieval_module.py, compiled: ``_orig_mod.``), so both imports must
hold the same weights. (Equivalence with the baseline's own code: tests/model/test_release_equivalence.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from helpers.file_server import FileServer
from helpers.released_model import TINY_TEXT, build_released, split_file, tiny_roberta
from salsa2.config.params import ReleaseParams
from salsa2.model.checkpoint import load_checkpoint
from salsa2.model.release_dcase2025 import RELEASE_FILE, import_dcase2025_release
from salsa2.model.release_fetch import fetch_release, import_parts
from salsa2.model.release_import import OPTIONAL_BUFFERS, ReleaseImportError, import_salsa_release, map_state_dict
from salsa2.model.released import ReleasedCheckpointError
from salsa2.utils.errors import UserError

pytest.importorskip("transformers")

RENAME = {  # OptimusPrimus/salsa name -> CPJKU/dcase2025_task6_baseline name (as saved after torch.compile)
    "audio_embedding_model.model.model.": "audio_embedding_model.model.model._orig_mod.",
    "sentence_embedding_model.": "text_embedding_model._orig_mod.",
    "project_audio.0.": "audio_projection.",
    "project_sentence.0.": "text_projection.",
}
STEM = Path(RELEASE_FILE).stem


def baseline_state(salsa_state: dict) -> dict:
    """The salsa-format state under the baseline's names (its model has no sequence-model entries)."""
    out = {}
    for key, value in salsa_state.items():
        prefix = next((p for p in RENAME if key.startswith(p)), None)
        if prefix is not None:
            out[RENAME[prefix] + key[len(prefix):]] = value
        elif key == "tau":
            out[key] = value
    return out


def save(path: Path, state: dict) -> Path:
    hyper = {"compile": True, "audiocaps": True, "wavcaps": True, "roberta_base": False, "initial_tau": 0.05}
    torch.save({"epoch": 12, "state_dict": state, "optimizer_states": [], "hyper_parameters": hyper}, path)
    return path


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("d25")
    roberta = tiny_roberta(root / "tiny_roberta")
    salsa = build_released(root / "passt_roberta.ckpt", roberta)
    whole = save(root / RELEASE_FILE, baseline_state(salsa["state"]))
    served = root / "served"
    split_file(whole, served, 2, stem=STEM)
    return {"salsa": salsa, "whole": whole, "served": served}


@pytest.fixture()
def server(release):
    with FileServer(release["served"]) as srv:
        yield srv


@pytest.mark.slow  # an import of a real-size PaSST: ~1 min on two busy cores
def test_fetched_baseline_holds_the_weights_the_salsa_names_map_to(release, server, tmp_path):
    urls = [f"{server.url}/{STEM}.{i}.ckpt" for i in (1, 2)]
    spec = ReleaseParams(parts=urls, kind="dcase2025_baseline", text_model=TINY_TEXT)
    out = fetch_release(spec, tmp_path / "parts", tmp_path / "d25", progress=False)
    assert not (tmp_path / "parts" / RELEASE_FILE).exists()  # the joined file is removed
    model, info = load_checkpoint(out)
    trained = info["trained_on"]
    assert trained["source"] == "https://github.com/CPJKU/dcase2025_task6_baseline"
    assert (trained["kind"], trained["file"]) == ("dcase2025_baseline", RELEASE_FILE)
    assert trained["train_on"] == "clothov2+audiocaps+wavcaps" and "mAP@16 40.59" in trained["note"]
    assert info["released"]["tau"] == pytest.approx(0.05) and info["text_normalize"] == "authors"
    # the same salsa2 weights as the salsa-format file gives (whose import test_release_import checks)
    want = map_state_dict(release["salsa"]["state"], "passt_roberta.ckpt")
    got = model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in want.items())
    assert want.keys() >= got.keys() - set(OPTIONAL_BUFFERS)


@pytest.mark.parametrize("case,match", [
    ("missing", r"missing 1 weights .*\(text_projection.bias\)"),
    ("unexpected", "unexpected key 'audio_sequence.0.linear1.weight': not the DCASE 2025 task 6 baseline"),
    ("salsa_file", r"unexpected key 'sentence_embedding_model\..*give kind salsa"),
    ("shape", r"audio_projection.weight has shape \(512, 768\), .* expects \(1024, 768\)"),
    ("extra_passt", r"another architecture \(audio_embedding_model.model.model.blocks.12.norm1.weight\)"),
])
def test_refusals_name_the_file_and_write_nothing(release, tmp_path, case, match):
    state = baseline_state(release["salsa"]["state"])
    if case == "missing":
        del state["text_projection.bias"]
    elif case == "unexpected":
        state["audio_sequence.0.linear1.weight"] = torch.zeros(2, 2)
    elif case == "salsa_file":
        state = release["salsa"]["state"]
    elif case == "shape":
        state["audio_projection.weight"] = torch.zeros(512, 768)
    else:
        state["audio_embedding_model.model.model._orig_mod.blocks.12.norm1.weight"] = torch.zeros(768)
    path = save(tmp_path / "broken.ckpt", state)
    out = tmp_path / "out"
    with pytest.raises(ReleaseImportError, match=match) as err:
        import_dcase2025_release(path, out, text_model=TINY_TEXT, sha256=False)
    assert isinstance(err.value, UserError) and str(path) in str(err.value) and "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.ckpt"]


def test_the_baseline_given_as_salsa_names_its_kind(release, tmp_path):
    with pytest.raises(ReleaseImportError, match="give kind dcase2025_baseline") as err:
        import_salsa_release(release["whole"], tmp_path / "out", text_model=TINY_TEXT, sha256=False)
    assert str(release["whole"]) in str(err.value) and not (tmp_path / "out").exists()


def test_parts_in_the_wrong_order_are_refused_and_nothing_is_written(release, tmp_path):
    parts = split_file(release["whole"], tmp_path / "parts", 3, stem=STEM)
    out = tmp_path / "out"
    with pytest.raises(ReleasedCheckpointError, match=f"{RELEASE_FILE} is not a readable PyTorch zip checkpoint"):
        import_parts([parts[1], parts[0], parts[2]], out, tmp_path / "parts", kind="dcase2025_baseline",
                     text_model=TINY_TEXT)
    assert not out.exists() and not (tmp_path / "parts" / RELEASE_FILE).exists()


@pytest.mark.slow  # an import of a real-size PaSST
def test_cli_release_kind(release, server, tmp_path):
    from salsa2.cli.main import app

    runner = CliRunner()
    urls = [f"{server.url}/{STEM}.{i}.ckpt" for i in (1, 2)]
    bad = runner.invoke(app, ["release", *urls, "--out", str(tmp_path / "x"), "--kind", "dcase2024"])
    assert bad.exit_code == 2 and "release kind 'dcase2024' is not known" in bad.output
    assert len(bad.output.strip().splitlines()) == 1 and not server.requests  # refused before any download
    out = tmp_path / "d25"
    ok = runner.invoke(app, ["release", *urls, "--out", str(out), "--kind", "dcase2025_baseline",
                             "--text-model", TINY_TEXT])
    assert ok.exit_code == 0, ok.output
    assert load_checkpoint(out)[1]["trained_on"]["kind"] == "dcase2025_baseline"
