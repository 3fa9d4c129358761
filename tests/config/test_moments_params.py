"""params.yaml `moments`: parsed and validated, every knob present (so `dvc exp run -S moments.<key>=...` works),
its method parameters real, and the moment stages declare exactly the keys they read."""

import dataclasses

import pytest
import yaml

from helpers import REPO
from salsa2.config.params import ConfigError, MomentsDemoParams, MomentsParams, load_params, moments_params
from salsa2.moments.detect import MOMENT_METHODS, method_params


def test_moments_section_parses_with_every_knob():
    raw = load_params(REPO / "params.yaml")
    p = moments_params(raw)
    assert {f.name for f in dataclasses.fields(MomentsParams)} == set(raw["moments"])
    assert {f.name for f in dataclasses.fields(MomentsDemoParams)} == set(raw["moments"]["demo"])
    assert p.method in p.methods and p.window > 0 and p.hop > 0


def test_listed_method_parameters_are_the_methods_own():
    p = moments_params(load_params(REPO / "params.yaml"))
    assert set(p.methods) == set(MOMENT_METHODS.names())  # -S moments.method=<any method> finds its parameters
    for name, params in p.methods.items():
        assert set(params) == set(method_params(name)), name


@pytest.mark.parametrize("section, message", [
    ({"windw": 4.0}, r"moments: unknown key\(s\) \['windw'\]"),
    ({"window": 0}, "moments.window must be positive seconds"),
    ({"hop": "1s"}, "moments.hop is '1s'; expected a number"),
    ({"methods": {"nms": 0.3}}, "moments.methods must map a method to its parameters"),
    ({"demo": {"clips": 3}}, r"moments.demo: unknown key\(s\) \['clips'\]"),
])
def test_bad_moments_section_is_one_line(section, message):
    with pytest.raises(ConfigError, match=message):
        moments_params({"moments": section})


def test_absent_section_gives_defaults():
    assert moments_params({}) == MomentsParams()
    assert moments_params({"moments": {"method": "nms"}}).method_params() == {}


def test_moment_stages_declare_what_they_read():
    """-S moments.window / hop / method / methods re-run moments_evaluate only; moments.demo re-runs both."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    readers = {name: [p for p in stage.get("params", []) if isinstance(p, str) and p.startswith("moments")]
               for name, stage in stages.items() if "do" not in stage}
    assert {k: v for k, v in readers.items() if v} == {
        "moments_demo": ["moments.demo"],
        "moments_evaluate": ["moments.window", "moments.hop", "moments.method", "moments.methods",
                             "moments.batch_size"],
    }
    assert "data/moments" in stages["moments_evaluate"]["deps"] and "data/demo" in stages["moments_demo"]["deps"]
