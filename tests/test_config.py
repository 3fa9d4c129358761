"""params.yaml parses, unknown keys are refused, and every param a stage declares exists."""

import re

import pytest
import yaml

from conftest import REPO
from salsa2.config import ConfigError, TrainParams, load_params, parse, training_params


def test_params_yaml_parses():
    params = training_params(load_params(REPO / "params.yaml"))
    for name in params.encoders:
        enc = params.audio_encoder(name)
        params.frontend(enc.frontend)


def test_unknown_key_names_its_path():
    with pytest.raises(ConfigError, match=r"stage1: unknown key\(s\) \['epoch'\]"):
        parse(TrainParams, {"epoch": 3}, "stage1")


def test_dvc_params_exist_in_params_yaml():
    params = load_params(REPO / "params.yaml")
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        items = params[stage["foreach"][2:-1]] if "foreach" in stage else [None]
        body = stage.get("do", stage)
        for item in items:
            key = item if not isinstance(items, dict) else item
            for entry in body.get("params", []):
                path = re.sub(r"\$\{(item|key)\}", str(key), entry)
                node = params
                for part in path.split("."):
                    assert part in node, f"dvc.yaml stage {name}: param {path} is not in params.yaml"
                    node = node[part]
