"""Caption files of a bring-your-own folder: empty/null/duplicate captions, bad encodings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from salsa2.data.datasets.folder import prepare_folder
from salsa2.data.tables import TableError


def _folder(tmp_path, n=3):
    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        sf.write(tmp_path / f"c{i}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    return tmp_path


def test_empty_missing_and_duplicate_captions_are_dropped_and_reported(tmp_path):
    root = _folder(tmp_path)
    (root / "captions.csv").write_text("file,caption\nc0.wav,a dog barks\nc0.wav,  \nc1.wav,rain falls\n"
                                       "c1.wav,rain  falls\nc2.wav,\n")
    prepared = prepare_folder(str(root))
    assert prepared.captions["text"].tolist() == ["a dog barks", "rain falls"]
    assert prepared.audio["audio_id"].tolist() == [f"{root.name}/c0", f"{root.name}/c1"]
    rej = prepared.rejects.set_index("detail")["reason"].to_dict()
    src = str(root / "captions.csv")
    assert rej == {f"{src} row 3: empty caption dropped": "empty_caption",
                   f"{src} row 5: repeats row 4, dropped": "duplicate_caption",
                   f"{src} row 6: empty caption dropped": "empty_caption",
                   f"every caption row of 'c2.wav' in {src} was dropped": "no_caption"}


def test_null_parquet_caption_is_not_the_text_nan(tmp_path):
    root = _folder(tmp_path, 2)
    pd.DataFrame({"file": ["c0.wav", "c0.wav", "c1.wav"], "caption": ["wind", None, np.nan]}).to_parquet(
        root / "caps.parquet")
    prepared = prepare_folder(str(root), captions="caps.parquet")
    assert prepared.captions["text"].tolist() == ["wind"]
    assert "nan" not in prepared.captions["raw_text"].tolist()
    assert sorted(prepared.rejects["reason"]) == ["empty_caption", "empty_caption", "no_caption"]


def test_latin1_caption_file_names_the_file(tmp_path):
    root = _folder(tmp_path, 1)
    (root / "captions.csv").write_bytes("file,caption\nc0.wav,caf\xe9 noise\n".encode("latin-1"))
    with pytest.raises(TableError, match=r"captions.csv: row 2 \(byte .*\) is not UTF-8 text; save .* as UTF-8"):
        prepare_folder(str(root))


def test_same_name_with_two_extensions_are_two_clips(tmp_path):
    from salsa2.data.prepare import prepare
    from salsa2.data.tables import read_tables

    root = _folder(tmp_path / "lib", 1)
    sf.write(root / "same.wav", np.full(16000, 0.1, np.float32), 16000)
    sf.write(root / "same.flac", np.full(16000, 0.2, np.float32), 16000)
    (root / "captions.csv").write_text("file,caption\nsame.wav,a dog barks\nsame.flac,rain falls\nc0.wav,a bell\n")
    prepare([{"name": "folder", "args": {"root": str(root), "name": "lib"}}], tmp_path / "out")
    audio, captions = read_tables(tmp_path / "out")
    assert sorted(audio["audio_id"]) == ["lib/c0", "lib/same.flac", "lib/same.wav"]
    assert dict(zip(captions["audio_id"], captions["text"]))["lib/same.flac"] == "rain falls"


def test_header_only_caption_file_names_the_file(tmp_path):
    root = _folder(tmp_path, 1)
    (root / "captions.csv").write_text("file,caption\n")
    with pytest.raises(TableError, match=r"captions\.csv: no rows, only the header; add one row per caption"):
        prepare_folder(str(root))


def test_rejected_clips_are_counted_once_not_per_caption_row(tmp_path):
    from typer.testing import CliRunner

    from salsa2.cli.main import app

    root = _folder(tmp_path / "lib", 2)
    (root / "captions.csv").write_text("file,caption\nc0.wav,a dog\nc0.wav,a dog\ngone.wav,x\ngone.wav,y\n"
                                       "gone.wav,z\nc1.wav,rain\n")
    result = CliRunner().invoke(app, ["prepare", str(root), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "1 clips and 1 caption rows rejected" in result.output, result.output
