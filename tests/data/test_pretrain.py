"""data.pretrain: stage-1 data next to the fine-tuning data; caches and tables cover both."""

from __future__ import annotations


import yaml
from helpers import REPO
from helpers.file_server import write_clip

from salsa2.features.logmel_cache import union_audio
from salsa2.data.prepare import prepare, prepare_pretrain
from salsa2.data.tables import read_tables



def folder(root, files: dict[str, str]):
    root.mkdir(parents=True)
    lines = ["file,caption,split"]
    for i, (name, split) in enumerate(files.items()):
        write_clip(root / name, seed=i)
        lines.append(f"{name},sound number {i},{split}")
    (root / "captions.csv").write_text("\n".join(lines) + "\n")
    return {"name": "folder", "args": {"root": str(root), "name": root.name}}


def test_empty_pretrain_copies_the_fine_tuning_tables(tmp_path):
    ft = [folder(tmp_path / "clotho", {"a.wav": "train", "b.wav": "val", "c.wav": "test"})]
    prepare(ft, tmp_path / "prepared")
    prepare_pretrain(ft, [], tmp_path / "prepared", tmp_path / "pretrain")
    for a, b in zip(read_tables(tmp_path / "prepared"), read_tables(tmp_path / "pretrain")):
        assert a.equals(b)


def test_pretrain_mix_is_prepared_and_cached_with_the_fine_tuning_data(tmp_path):
    clotho = folder(tmp_path / "clotho", {"a.wav": "train", "b.wav": "val", "c.wav": "test"})
    extra = folder(tmp_path / "wavcaps", {"x.wav": "train", "y.wav": "train"})
    prepare([clotho], tmp_path / "prepared")
    prepare_pretrain([clotho], [extra, clotho], tmp_path / "prepared", tmp_path / "pretrain")
    audio, _ = read_tables(tmp_path / "pretrain")
    assert sorted(audio["audio_id"]) == ["clotho/a", "clotho/b", "clotho/c", "wavcaps/x", "wavcaps/y"]
    both = union_audio([tmp_path / "prepared", tmp_path / "pretrain"])
    assert both["audio_id"].tolist() == ["clotho/a", "clotho/b", "clotho/c", "wavcaps/x", "wavcaps/y"]


def test_params_and_dvc_yaml_declare_data_pretrain():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert params["data"]["pretrain"] == []  # the demo: stage 1 trains on data.datasets
    assert "data.pretrain" in dvc["stages"]["prepare"]["params"]
    assert "data/pretrain" in dvc["stages"]["prepare"]["outs"]
    assert "data/pretrain" in dvc["stages"]["stage1"]["do"]["deps"]
    assert "data/prepared" not in dvc["stages"]["stage1"]["do"]["deps"]
    assert "data/pretrain" in dvc["stages"]["features"]["do"]["deps"]
    assert "data/pretrain" in dvc["stages"]["text_features"]["deps"]
