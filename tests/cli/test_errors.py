"""One error style for the CLI and the stages: one line naming the file/value and the fix,
exit code 2, tracebacks only with --verbose; warnings for cut queries and demo-only models."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from helpers import REPO
from salsa2.cli.main import app

DEMO_ONLY = {"split": "train", "datasets": {"demo": {"clips": 4, "captions": 20, "synthetic": True}}, "clips": 4,
             "captions": 20, "data_hash": "0" * 16, "synthetic_only": True}


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def _flat(output: str) -> str:
    """Typer's boxed usage error as one string (the box may wrap words across lines)."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def _one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.output
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A random (untrained) demo-only checkpoint and an index of three clips made with it."""
    from salsa2.model.checkpoint import save_checkpoint
    from salsa2.audio.frontends import FrontendConfig
    from salsa2.search.index import build_index
    from salsa2.model.dual_encoder import DualEncoder, ModelConfig

    root = tmp_path_factory.mktemp("cli_errors")
    torch.manual_seed(0)
    model = DualEncoder(ModelConfig(audio_arch="small_mobilenet1d", frontend=FrontendConfig(), text_model="minilm"))
    save_checkpoint(root / "ckpt", model, {"text_normalize": True, "trained_on": DEMO_ONLY})
    rng = np.random.default_rng(0)
    (root / "lib").mkdir()
    for i in range(3):
        sf.write(root / "lib" / f"c{i}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    loud = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    loud[100:200] = 1e30  # finite samples whose log-mel is not
    sf.write(root / "lib" / "loud.wav", loud, 16000, subtype="FLOAT")
    build_index(root / "lib", root / "idx.parquet", [root / "ckpt"], progress=False)
    return root


def test_prepare_latin1_csv_names_the_file(tmp_path):
    sf.write(tmp_path / "a.wav", np.full(16000, 0.1, np.float32), 16000)
    (tmp_path / "captions.csv").write_bytes("file,caption\na.wav,caf\xe9\n".encode("latin-1"))
    _one_line_error(_run("prepare", str(tmp_path), str(tmp_path / "out")), "captions.csv", "UTF-8")
    assert not (tmp_path / "out").exists()


def test_missing_folder_and_bad_split_are_typer_errors(tmp_path):
    result = _run("prepare", str(tmp_path / "nope"), str(tmp_path / "out"))
    assert result.exit_code == 2 and "does not exist" in _flat(result.output)
    result = _run("evaluate", str(tmp_path), "--data", str(tmp_path), "--features", str(tmp_path),
                  "--split", "nosuch")
    assert result.exit_code == 2 and "nosuch" in _flat(result.output) and "train" in _flat(result.output)
    assert "Traceback" not in result.output and "ZeroDivision" not in result.output


def test_features_unknown_frontend_is_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text("frontends:\n  mel64: {}\n")
    _one_line_error(_run("features", str(tmp_path), str(tmp_path / "out"), "--params", str(tmp_path / "params.yaml"),
                         "--frontend", "nosuch"), "nosuch", "mel64")


def test_verbose_shows_the_traceback(tmp_path):
    (tmp_path / "captions.csv").write_bytes("file,caption\na.wav,caf\xe9\n".encode("latin-1"))
    result = _run("--verbose", "prepare", str(tmp_path), str(tmp_path / "out"))
    assert result.exit_code != 0 and result.exception is not None and "UTF-8" in str(result.exception)


def test_missing_and_zero_byte_audio_query(library, tmp_path):
    idx = str(library / "idx.parquet")
    _one_line_error(_run("search", idx, "--audio", str(tmp_path / "gone.wav")), "gone.wav", "not found")
    (tmp_path / "zero.wav").write_bytes(b"")
    _one_line_error(_run("search", idx, "--audio", str(tmp_path / "zero.wav")), "zero.wav", "empty")


def test_query_errors_and_warnings(library):
    idx = str(library / "idx.parquet")
    _one_line_error(_run("search", idx, "?!... ,"), "no words")
    result = _run("search", idx, "")
    assert result.exit_code == 2 and "query text is empty" in _flat(result.output)
    result = _run("search", idx, "-k", "3", "a dog barks " * 420)  # ~5000 characters
    assert result.exit_code == 0, result.output
    assert "reads only the first 32" in result.output
    assert len([ln for ln in result.output.splitlines() if ln.strip().startswith(("1 ", "2 ", "3 "))]) == 3


def test_non_finite_file_is_an_index_reject_and_k_hits_remain(library):
    from salsa2.search.index import read_index

    idx = read_index(library / "idx.parquet")
    assert dict(zip(idx.rejects["path"], idx.rejects["reason"])) == {"loud.wav": "non_finite"}
    assert len(idx) == 3 and np.isfinite(idx.embeddings["ckpt"]).all()
    result = _run("search", str(library / "idx.parquet"), "--json", "-k", "3", "rain")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output[result.output.index("{"):])["hits"]
    assert len(hits) == 3 and all(np.isfinite(h["score"]) for h in hits)


def test_demo_only_model_warns_in_index_and_search(library):
    result = _run("index", str(library / "lib"), "--model", str(library / "ckpt"), "--out",
                  str(library / "idx2.parquet"))
    assert result.exit_code == 0, result.output
    assert "trained only on the synthetic demo" in result.output
    result = _run("search", str(library / "idx.parquet"), "rain")
    assert result.exit_code == 0 and "trained only on the synthetic demo" in result.output


def test_broken_index_metadata_is_one_line(library, tmp_path):
    table = pq.read_table(library / "idx.parquet")
    meta = json.loads(table.schema.metadata[b"salsa2.index"])
    del meta["root"]
    pq.write_table(table.replace_schema_metadata({b"salsa2.index": json.dumps(meta)}), tmp_path / "broken.parquet")
    _one_line_error(_run("search", str(tmp_path / "broken.parquet"), "rain"), "broken.parquet", "re-create it")
    pq.write_table(table.replace_schema_metadata({b"salsa2.index": b"{not json"}), tmp_path / "bad.parquet")
    _one_line_error(_run("search", str(tmp_path / "bad.parquet"), "rain"), "bad.parquet", "broken")


def test_training_data_records_the_synthetic_demo(tmp_path):
    from salsa2.data.demo import generate
    from salsa2.data.prepare import prepare
    from salsa2.model.provenance import demo_only_warning, training_data

    generate(tmp_path / "demo", n_train=3, n_val=1, n_test=1, seed=0, workers=1)
    prepare([{"name": "folder", "args": {"root": str(tmp_path / "demo"), "name": "demo"}}], tmp_path / "prep")
    rec = training_data(tmp_path / "prep")
    assert rec["datasets"]["demo"]["clips"] == rec["clips"] == 3 and rec["synthetic_only"]
    assert rec["captions"] == 15 and len(rec["data_hash"]) == 16
    assert demo_only_warning({"trained_on": rec}, "m") and not demo_only_warning({}, "m")
    (tmp_path / "demo" / "relevance_test.csv").unlink()  # no longer the generator's folder: a user's folder
    assert not training_data(tmp_path / "prep")["synthetic_only"]


def test_stage_user_error_is_one_line_exit_2(tmp_path):
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())  # a whole params.yaml (stages check every section)
    params["data"]["datasets"] = [{"name": "folder", "args": {"root": "nowhere"}}]
    params["evaluate"]["relevance"] = None
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "SALSA2_PARAMS": str(tmp_path / "params.yaml"), "PYTHONPATH": str(REPO / "src")}
    env.pop("SALSA2_VERBOSE", None)
    paths = ["--raw", "data/raw", "--unpacked", "data/unpacked", "--prepared", "data/prepared", "--pretrain",
             "data/pretrain", "--judgements", "data/judgements.csv"]
    out = subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py"), *paths], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: nowhere/captions.csv: caption file not found")
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("k", ["0", "-3"])
def test_search_k_below_one_is_refused(library, k):
    result = _run("search", str(library / "idx.parquet"), "-k", k, "rain")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "1" in _flat(result.output) and "-k" in _flat(result.output), result.output


@pytest.mark.parametrize("query", ["\u00bf\u00a1\u2026\u2014\u00ab\u00bb", "\u3002\u3001\uff01",
                                   "\u2022 \u2013 \u201c\u201d"])
def test_unicode_punctuation_only_query_is_refused(library, query):
    _one_line_error(_run("search", str(library / "idx.parquet"), query), "has no words")


def test_moved_library_and_deleted_files_are_warned_of(library, tmp_path):
    import shutil

    from salsa2.search.index import build_index

    lib = tmp_path / "lib"
    shutil.copytree(library / "lib", lib)
    build_index(lib, tmp_path / "idx.parquet", [library / "ckpt"], progress=False)
    (lib / "c0.wav").unlink()
    result = _run("search", str(tmp_path / "idx.parquet"), "-k", "3", "rain")
    assert result.exit_code == 0 and "results no longer exist" in result.output, result.output
    lib.rename(tmp_path / "moved")
    result = _run("search", str(tmp_path / "idx.parquet"), "-k", "3", "rain")
    assert result.exit_code == 0 and f"the indexed folder {lib} no longer exists" in _flat(result.output)


def test_empty_library_is_one_line(library, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    result = _run("index", str(tmp_path / "empty"), "--model", str(library / "ckpt"), "--out",
                  str(tmp_path / "idx.parquet"))
    _one_line_error(result, str(tmp_path / "empty"), "no audio files")
    assert not (tmp_path / "idx.parquet").exists()


def test_features_on_a_folder_without_tables_says_what_it_is(tmp_path):
    (tmp_path / "sounds").mkdir()
    sf.write(tmp_path / "sounds" / "a.wav", np.full(16000, 0.1, np.float32), 16000)
    (tmp_path / "params.yaml").write_text("frontends:\n  mel64: {}\n")
    _one_line_error(_run("features", str(tmp_path / "sounds"), str(tmp_path / "out"), "--params",
                         str(tmp_path / "params.yaml")),
                    "sounds: holds no prepared tables (audio.parquet, captions.parquet missing)", "salsa2 prepare")


def test_deleted_checkpoint_of_an_index_says_how_to_point_at_it(library, tmp_path):
    import shutil

    from salsa2.search.index import build_index

    shutil.copytree(library / "ckpt", tmp_path / "mine")
    build_index(library / "lib", tmp_path / "idx.parquet", [tmp_path / "mine"], progress=False)
    shutil.rmtree(tmp_path / "mine")
    line = _one_line_error(_run("search", str(tmp_path / "idx.parquet"), "rain"), "no such checkpoint folder",
                           "--model mine=PATH")
    assert "dvc repro" not in line
