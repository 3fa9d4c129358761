"""Folder datasets -> tables (salsa2.data.datasets.folder): unreadable files reported, bad rows named."""

import pandas as pd
import pytest

from salsa2.data.datasets.folder import prepare_folder
from salsa2.data.tables import TableError, read_tables, write_tables
from helpers.file_server import folder_library


def test_folder_prepare_reports_unreadable_files(tmp_path):
    folder_library(tmp_path)
    prepared = prepare_folder(str(tmp_path), name="lib")
    reasons = dict(zip(prepared.rejects["path"].map(lambda p: p.rsplit("/", 1)[-1]), prepared.rejects["reason"]))
    assert reasons == {"corrupt.wav": "corrupt", "absent.wav": "missing"}
    assert set(prepared.audio["audio_id"]) == {"lib/good", "lib/silent", "lib/short"}
    good = prepared.captions[prepared.captions["audio_id"] == "lib/good"]
    assert good["caption_id"].tolist() == ["lib/good#0", "lib/good#1"]
    assert good["text"].iloc[0] == "Noise, loud!"  # whitespace cleaned, wording kept
    write_tables(tmp_path / "tables", prepared.audio, prepared.captions)
    audio, captions = read_tables(tmp_path / "tables")
    assert len(audio) == 3 and len(captions) == 4


def test_bad_split_names_the_row(tmp_path):
    folder_library(tmp_path)
    df = pd.read_csv(tmp_path / "captions.csv")
    df.loc[2, "split"] = "dev"
    df.to_csv(tmp_path / "captions.csv", index=False)
    with pytest.raises(TableError, match="row 4 has split 'dev'"):
        prepare_folder(str(tmp_path))


def test_orphan_caption_is_refused(tmp_path):
    folder_library(tmp_path)
    p = prepare_folder(str(tmp_path), name="lib")
    captions = pd.concat([p.captions, p.captions.iloc[:1].assign(caption_id="x#0", audio_id="x")])
    with pytest.raises(TableError, match="unknown audio_id 'x'"):
        write_tables(tmp_path / "t", p.audio, captions)
