"""A released model is found by its name after one download (salsa2.model.locate: models/released/<name>), and
`salsa2 info` shows where it came from (salsa2.model.provenance: source, file, sha256, train_on, published figures).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers.released_use import released_project, released_stand_in, trained_checkpoint
from salsa2.model.locate import CheckpointNotFound, checkpoint_frontend, find_checkpoint, released_path
from salsa2.model.provenance import PUBLISHED, provenance_lines, released_provenance
from salsa2.model.release_import import KALDI128
from salsa2.utils.digest import file_digest

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory) -> Path:
    return released_stand_in(tmp_path_factory.mktemp("stand_in") / "salsa")


@pytest.fixture()
def project(stand_in, tmp_path, monkeypatch) -> Path:
    """A working directory whose models/released/salsa is a released model (as stage release@salsa leaves it)."""
    monkeypatch.chdir(released_project(stand_in, tmp_path))
    return tmp_path


def test_find_checkpoint_by_folder_by_name_and_by_released_name(project, stand_in):
    folder = Path("models/released/salsa")
    assert find_checkpoint(stand_in) == stand_in
    assert find_checkpoint("salsa") == folder
    assert find_checkpoint("released-salsa") == folder
    assert released_path("released-salsa") == folder
    frontend = checkpoint_frontend(folder)
    assert frontend.key() == type(frontend)(**KALDI128).key()


def test_a_name_not_imported_is_one_line_with_the_command_that_imports_it(project):
    with pytest.raises(CheckpointNotFound, match=r"release@passt_roberta") as err:
        find_checkpoint("passt_roberta")
    assert "\n" not in str(err.value)
    (project / "empty").mkdir()
    with pytest.raises(CheckpointNotFound, match="no config.json"):
        find_checkpoint(project / "empty")


@pytest.mark.slow
def test_provenance_of_a_released_model_has_source_file_sha256_and_published_figures(imported_release):
    info = json.loads((imported_release["folder"] / "config.json").read_text())
    record = released_provenance(info)
    assert record["source"] == "https://github.com/OptimusPrimus/salsa"
    assert record["file"] == "passt_roberta.ckpt" and record["train_on"] == "clothov2"
    assert record["sha256"] == file_digest(imported_release["whole"], "sha256")
    assert record["published"] == PUBLISHED["https://github.com/OptimusPrimus/salsa"]
    lines = "\n".join(provenance_lines(info, "salsa"))
    assert "mAP@10 40.11" in lines and "R@1 27.69" in lines and record["sha256"] in lines
    assert "warning" not in lines


def test_provenance_of_a_trained_model(tmp_path):
    info = json.loads((trained_checkpoint(tmp_path / "cnn") / "config.json").read_text())
    assert released_provenance(info) is None
    assert provenance_lines(info, "cnn")[0].startswith("cnn: trained by salsa2 on lib (4 clips)")


def test_cli_info_by_name_shows_the_provenance(project, stand_in):
    from salsa2.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["info", "salsa"])
    assert result.exit_code == 0, result.output
    assert "released model from https://github.com/OptimusPrimus/salsa" in result.stdout
    assert "published: mAP@10 40.11, R@1 27.69, R@5 57.05, R@10 70.5" in result.stdout
    shown = json.loads(runner.invoke(app, ["info", "released-salsa", "--json"]).stdout)
    assert shown["provenance"]["published"]["R@10"] == 70.50
    assert shown["trained_on"]["sha256"] == shown["provenance"]["sha256"]
    missing = runner.invoke(app, ["info", "nosuch"])
    assert missing.exit_code == 2 and "release@nosuch" in missing.output
