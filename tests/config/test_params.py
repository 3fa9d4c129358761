"""params.yaml parses, unknown keys are refused, and every param a stage declares exists."""

import pytest
import yaml

from helpers import REPO
from salsa2.config.params import (ConfigError, TrainParams, check_params, load_params, parse, release_params,
                                  training_params)


def test_params_yaml_parses():
    params = training_params(load_params(REPO / "params.yaml"))
    for name, frontend in params.encoders.items():
        enc = params.audio_encoder(name)
        assert enc.frontend == frontend
        params.frontend(enc.frontend)


@pytest.mark.parametrize("encoders, message", [
    (["cnn", "transformer"], "encoders must map each encoder to the frontend it reads"),
    ({"cnn": "mel64"}, None),
])
def test_encoders_map_to_frontends(encoders, message):
    raw = load_params(REPO / "params.yaml")
    raw["encoders"] = encoders
    if message is None:
        assert training_params(raw).audio_encoder("cnn").frontend == "mel64"
        return
    with pytest.raises(ConfigError, match=message):
        training_params(raw)


def test_a_frontend_under_audio_encoders_points_to_encoders():
    raw = load_params(REPO / "params.yaml")
    raw["audio_encoders"]["cnn"]["frontend"] = "mel64"
    with pytest.raises(ConfigError, match=r"audio_encoders.cnn.frontend is not read.*\{cnn: mel64\}"):
        training_params(raw).audio_encoder("cnn")


def test_unknown_key_names_its_path():
    with pytest.raises(ConfigError, match=r"stage1: unknown key\(s\) \['epoch'\]"):
        parse(TrainParams, {"epoch": 3}, "stage1")


def test_a_negative_training_crop_is_refused():
    assert parse(TrainParams, {"max_seconds": 30.0}, "stage1").max_seconds == 30.0
    with pytest.raises(ConfigError, match=r"max_seconds must be >= 0.*got -1"):
        parse(TrainParams, {"max_seconds": -1}, "stage1")


def test_dvc_params_exist_in_params_yaml():
    params = load_params(REPO / "params.yaml")
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        over = params[stage["foreach"][2:-1]] if "foreach" in stage else [None]
        pairs = list(over.items()) if isinstance(over, dict) else [(None, item) for item in over]
        body = stage.get("do", stage)
        for key, item in pairs:  # a mapping gives ${key} and ${item}, a list ${item}
            for entry in body.get("params", []):
                if isinstance(entry, dict):  # `- params.yaml:` (stage params: the whole file)
                    assert list(entry) == ["params.yaml"] and not entry["params.yaml"], entry
                    continue
                path = entry.replace("${key}", str(key)).replace("${item}", str(item))
                node = params
                for part in path.split("."):
                    assert part in node, f"dvc.yaml stage {name}: param {path} is not in params.yaml"
                    node = node[part]


def test_released_entries_are_validated() -> None:
    assert load_params(REPO / "params.yaml")["released"] == {}  # the demo fetches no released model
    spec = release_params({"released": {"m": {"parts": ["https://x/m.1.ckpt", "https://x/m.2.ckpt"]}}}, "m")
    assert (spec.kind, spec.sha256, spec.text_model) == ("salsa", [], "roberta-large")
    for bad, msg in [({"parts": ["u"], "url": "u"}, r"released\.m: unknown key\(s\) \['url'\]"),
                     ({"parts": []}, "non-empty list"), ({"parts": ["u"], "sha256": ["a", "b"]}, "one digest per"),
                     ({"parts": ["u"], "kind": "clap"}, "kind 'clap'")]:
        with pytest.raises(ConfigError, match=msg):
            release_params({"released": {"m": bad}}, "m")
    with pytest.raises(ConfigError, match="no entry 'n' under released"):
        release_params({"released": {}}, "n")


@pytest.mark.parametrize("edit, message", [
    ({"augmnet": {"mixco": True}}, r"^params\.yaml: unknown top-level key 'augmnet'; did you mean 'augment'\?"),
    ({"stage1": {"epochs": "three"}}, r"^params\.yaml: stage1\.epochs is 'three'; expected an integer$"),
    ({"stage1": {"batch_size": 0}}, r"^params\.yaml: stage1\.batch_size is 0; it must be >= 1$"),
    ({"stage2": {"lr": -1.0}}, r"^params\.yaml: stage2\.lr is -1\.0; it must be > 0$"),
    ({"stage2": {"sup_weight": 2}}, r"^params\.yaml: stage2\.sup_weight is 2; it must be in \[0, 1\]$"),
    ({"stage1": {"precision": "bf61"}}, r"stage1\.precision is 'bf61' \(did you mean 'bf16'\?\)"),
    ({"stage1": {"resume": "yes"}}, r"stage1\.resume is 'yes'; expected true or false"),
    ({"data": {"min_duration": "half"}}, r"^params\.yaml: data\.min_duration is 'half'; expected a number$"),
    ({"data": {"max_reject_share": 5}}, r"data\.max_reject_share is 5; it must be in \[0, 1\]"),
    ({"loss": "nosuch"}, r"^params\.yaml: loss is 'nosuch'; choose one of nt_xent, sigmoid, listnet$"),
    ({"text": {"max_length": 2.5}}, r"text\.max_length is 2\.5; expected an integer"),
    ({"frontends": {"mel64": {"n_mels": "x"}}}, r"frontends\.mel64\.n_mels is 'x'; expected an integer"),
    ({"audio_encoders": {"cnn": {"lr": "fast"}}}, r"audio_encoders\.cnn\.lr is 'fast'; expected a number"),
    ({"demo": {"n_train": 0}}, r"demo\.n_train is 0; it must be >= 1"),
    ({"embed_dim": "256"}, r"embed_dim is '256'; expected an integer"),
])
def test_bad_keys_types_and_ranges_name_the_key(edit, message):
    raw = load_params(REPO / "params.yaml")
    check_params(raw)  # the repository's own params pass
    for key, value in edit.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            for sub, inner in value.items():
                if isinstance(inner, dict):
                    raw[key][sub] = {**raw[key][sub], **inner}
                else:
                    raw[key][sub] = inner
        else:
            raw[key] = value
    with pytest.raises(ConfigError, match=message) as err:
        check_params(raw)
    assert "\n" not in str(err.value)


def test_supervised_losses_are_the_registered_ones():
    from salsa2.training.losses import LOSSES

    from salsa2.config.params import SUPERVISED_LOSSES

    assert set(SUPERVISED_LOSSES) == set(LOSSES.names()) - {"distill"}
