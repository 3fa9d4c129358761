"""`salsa2 index --model <released name>` after one download: the name resolves to models/released/<name>, the
index embeds with the released model's own frontend, search and the API load it the same way, and the demo-only
warning stays off (it was trained on real data)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("transformers")
pytestmark = pytest.mark.slow


def test_index_and_search_with_a_released_model_by_name(imported_release, sound_library, tmp_path, monkeypatch):
    from salsa2 import api
    from salsa2.cli.main import app
    from salsa2.search.query import query_warnings

    (tmp_path / "models/released").mkdir(parents=True)
    os.symlink(imported_release["folder"], tmp_path / "models/released/salsa")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    index = tmp_path / "sounds.parquet"
    result = runner.invoke(app, ["index", str(sound_library.root), "--model", "salsa", "-o", str(index)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output  # not a demo-only model
    idx = api.read_index(index)
    assert list(idx.models) == ["salsa"]
    assert Path(idx.models["salsa"]["path"]) == imported_release["folder"].resolve()
    model = api.load_model("salsa")  # the API resolves the name the same way
    assert model.path == imported_release["folder"].resolve() and model.model_id == idx.models["salsa"]["id"]
    clip = idx.position(sound_library.root / "rain.wav")
    want = api.embed_audio(model, sound_library.root / "rain.wav")[0]
    got = np.asarray(idx.embeddings["salsa"][clip], np.float32)
    assert float(got @ want) >= 1 - 1e-5
    assert query_warnings({"salsa": model}, ["rain on a roof"]) == []  # `salsa2 search`'s warnings: none
