"""Published encoder weights (salsa2.model.pretrained): the cache, offline errors, checksums, hand-copied files, and
saved models that reload without them."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import torch

from salsa2.audio.frontends import FrontendConfig
from salsa2.model import pretrained
from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.utils.digest import file_digest
from helpers.file_server import FileServer


def test_bad_hand_copied_weights_are_not_trusted_and_the_advice_works(tmp_path, monkeypatch):
    monkeypatch.setenv("SALSA2_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("SALSA2_OFFLINE", "1")
    target = tmp_path / pretrained.PUBLISHED_WEIGHTS["mn40_as_ext"].filename
    record = target.with_name(target.name + ".sha256")
    target.write_text("<!DOCTYPE html><html>Sign in to continue</html>")  # what a browser "download" saved
    with pytest.raises(pretrained.WeightsUnavailable) as err:
        pretrained.fetch_weights("mn40_as_ext")
    msg = str(err.value)
    assert "\n" not in msg and str(target) in msg and "is not a PyTorch checkpoint (UnpicklingError" in msg
    assert f"copy it to {target}" in msg  # the advice
    assert not record.exists()  # nothing recorded for a file that does not load
    torch.save({"w": torch.arange(3.0)}, target)  # the user follows the advice: the right file, copied in
    assert pretrained.fetch_weights("mn40_as_ext") == target
    assert record.read_text().split() == [file_digest(target), target.name, pretrained.LOADED]


def test_unverified_record_of_older_versions_is_rechecked(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SALSA2_WEIGHTS", str(tmp_path))
    target = tmp_path / pretrained.PUBLISHED_WEIGHTS["mn40_as_ext"].filename
    record = target.with_name(target.name + ".sha256")
    record.write_text(f"{'ab' * 32}  {target.name}\n")  # recorded for a bad file before the load check existed
    torch.save({"w": torch.ones(2)}, target)
    assert pretrained.fetch_weights("mn40_as_ext") == target
    assert record.read_text().split()[0] == file_digest(target)
    torch.save({"w": torch.zeros(2)}, target)  # a verified record is kept: a changed file is refused
    with pytest.raises(pretrained.WeightsUnavailable, match="was recorded for it .* when it first loaded"):
        pretrained.fetch_weights("mn40_as_ext")


def test_weights_path_that_is_no_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(pretrained.WeightsUnavailable,
                       match=r"model\.pt is not a PyTorch checkpoint .*; give the checkpoint"):
        pretrained.load_state_dict(pretrained.resolve(str(bad), "mn40_as_ext"))


def test_weights_offline_error_names_file_url_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("SALSA2_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("SALSA2_OFFLINE", "1")
    with pytest.raises(pretrained.WeightsUnavailable) as err:
        pretrained.fetch_weights("mn40_as_ext")
    msg = str(err.value)
    url = pretrained.PUBLISHED_WEIGHTS["mn40_as_ext"].url
    assert "mn40_as_ext_mAP_487.pt" in msg and url in msg and str(tmp_path) in msg
    with pytest.raises(pretrained.WeightsUnavailable, match="does not exist"):
        pretrained.resolve(str(tmp_path / "nope.pt"), "mn40_as_ext")
    assert pretrained.resolve("none", "mn40_as_ext") is None


def test_weights_checksum_recorded_then_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("SALSA2_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("SALSA2_OFFLINE", "1")
    src = tmp_path / "hand.pt"
    torch.save({"w": torch.arange(3.0)}, src)
    path = pretrained.copy_into_cache(src, "atst_as2M")
    assert pretrained.fetch_weights("atst_as2M") == path
    record = path.with_name(path.name + ".sha256").read_text().split()[0]
    assert record == file_digest(src)
    assert torch.equal(pretrained.load_state_dict(path)["w"], torch.arange(3.0))
    torch.save({"w": torch.zeros(3)}, path)  # the file changes behind the cache's back
    with pytest.raises(pretrained.WeightsUnavailable, match="sha256"):
        pretrained.fetch_weights("atst_as2M")


def test_saved_model_reloads_without_fetching_pretrained_weights(tmp_path):
    """``load_checkpoint`` rebuilds an encoder that has ``weights`` with ``weights: none`` (the saved state replaces
    it)."""
    from salsa2.model.checkpoint import load_checkpoint, save_checkpoint
    from salsa2.model.dual_encoder import DualEncoder, ModelConfig

    calls = []

    if "_test_pretrained_cnn" not in AUDIO_ENCODERS:
        @AUDIO_ENCODERS.register("_test_pretrained_cnn")
        def _build(frontend, weights="pretrained"):
            calls.append(weights)
            if weights != "none":
                raise pretrained.WeightsUnavailable("would download")
            return AUDIO_ENCODERS.build("small_mobilenet1d", frontend=frontend, out_dim=16)

    torch.manual_seed(0)
    cfg = ModelConfig("_test_pretrained_cnn", FrontendConfig(), embed_dim=8, audio_kwargs={"weights": "none"})
    model = DualEncoder(cfg)
    model.cfg = ModelConfig(**{**cfg.__dict__, "audio_kwargs": {"weights": "pretrained"}})  # as trained
    save_checkpoint(tmp_path / "m", model)
    loaded, _ = load_checkpoint(tmp_path / "m")
    assert calls == ["none", "none"] and loaded.cfg.audio_kwargs == {"weights": "pretrained"}
    for k, v in model.audio_encoder.state_dict().items():
        assert torch.equal(loaded.audio_encoder.state_dict()[k], v)


@pytest.fixture
def served_weights(tmp_path, monkeypatch):
    """mn40_as_ext published on a loopback server (a small stand-in checkpoint), downloads enabled, empty cache."""
    pub = tmp_path / "pub"
    pub.mkdir()
    torch.save({"w": torch.arange(20_000.0)}, pub / "mn40.pt")
    monkeypatch.setenv("SALSA2_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.delenv("SALSA2_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FileServer(pub) as srv:
        published = pretrained.PUBLISHED_WEIGHTS["mn40_as_ext"]
        monkeypatch.setitem(pretrained.PUBLISHED_WEIGHTS, "mn40_as_ext",
                            dataclasses.replace(published, url=f"{srv.url}/mn40.pt"))
        yield srv, pub / "mn40.pt", tmp_path / "cache" / published.filename


def test_interrupted_weights_download_resumes(served_weights):
    srv, published, target = served_weights
    half = published.stat().st_size // 2
    srv.cut["/mn40.pt"] = half
    with pytest.raises(pretrained.WeightsUnavailable, match="resume") as err:
        pretrained.fetch_weights("mn40_as_ext")
    assert str(target) in str(err.value)  # the manual-download hint
    assert not target.exists() and target.with_name(target.name + ".part").stat().st_size == half
    assert pretrained.fetch_weights("mn40_as_ext") == target
    assert srv.requests == [("/mn40.pt", None), ("/mn40.pt", f"bytes={half}-")]
    assert target.read_bytes() == published.read_bytes()
    assert not target.with_name(target.name + ".part").exists()
    record = target.with_name(target.name + ".sha256")
    assert record.read_text().split() == [file_digest(target), target.name, pretrained.LOADED]
    assert pretrained.fetch_weights("mn40_as_ext") == target and len(srv.requests) == 2  # cached: no request


def test_downloaded_weights_are_checked_against_a_pinned_sha256(served_weights, monkeypatch):
    srv, published, target = served_weights
    served = pretrained.PUBLISHED_WEIGHTS["mn40_as_ext"]
    monkeypatch.setitem(pretrained.PUBLISHED_WEIGHTS, "mn40_as_ext", dataclasses.replace(served, sha256="0" * 64))
    with pytest.raises(pretrained.WeightsUnavailable, match="sha256 is .* the publisher lists 0+"):
        pretrained.fetch_weights("mn40_as_ext")
    assert not target.exists() and not target.with_name(target.name + ".part").exists()
    pinned = dataclasses.replace(served, sha256=file_digest(published))
    monkeypatch.setitem(pretrained.PUBLISHED_WEIGHTS, "mn40_as_ext", pinned)
    assert pretrained.fetch_weights("mn40_as_ext") == target
    assert not target.with_name(target.name + ".sha256").exists()  # a pinned file needs no record


def test_weights_url_answering_with_a_web_page_is_refused(served_weights, monkeypatch):
    srv, published, target = served_weights
    (published.parent / "signin.html").write_text("<html>Sign in to continue</html>")
    served = pretrained.PUBLISHED_WEIGHTS["mn40_as_ext"]
    monkeypatch.setitem(pretrained.PUBLISHED_WEIGHTS, "mn40_as_ext",
                        dataclasses.replace(served, url=f"{srv.url}/signin.html"))
    with pytest.raises(pretrained.WeightsUnavailable, match="web page") as err:
        pretrained.fetch_weights("mn40_as_ext")
    assert f"copy it to {target}" in str(err.value) and not target.exists()


class _Payload:
    """Unpickles as a call of ``os.system`` (what a malicious checkpoint holds)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def _lightning_file(path, extra: dict | None = None):
    """A PyTorch Lightning 1.x-style checkpoint, as ATST's ``atst_as2M.ckpt`` is one: its hyper-parameters an
    ``AttributeDict`` of a module that is not installed here, holding an ``argparse.Namespace``, a path and a numpy
    scalar; callback and scheduler states beside the weights. Returns the state dict saved."""
    import argparse
    import contextlib
    import pathlib
    import sys
    import types
    from collections import OrderedDict

    import numpy as np

    name = "pytorch_lightning.utilities.parsing"

    class AttributeDict(dict):
        pass

    AttributeDict.__module__, AttributeDict.__qualname__ = name, "AttributeDict"
    mods = {n: types.ModuleType(n) for n in ("pytorch_lightning", "pytorch_lightning.utilities", name)}
    mods[name].AttributeDict = AttributeDict
    state = OrderedDict((f"encoder.blocks.{i}.attn.qkv.weight", torch.randn(6, 2)) for i in range(3))
    state["encoder.norm.num_batches_tracked"] = torch.tensor(7)
    hyper = AttributeDict(arch="frame", lr=np.float64(5e-4), args=argparse.Namespace(nproc=8, data=pathlib.Path("/x")))
    ckpt = {**(extra or {}), "epoch": 3, "global_step": 10, "pytorch-lightning_version": "1.9.5", "state_dict": state,
            "callbacks": {"ModelCheckpoint": {"best_model_score": np.float32(0.4), "dirpath": "/ckpt"}},
            "lr_schedulers": [{"last_epoch": 3, "_step_count": 4}], "hyper_parameters": hyper}
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: [sys.modules.pop(n, None) for n in mods])
        sys.modules.update(mods)
        torch.save(ckpt, path)
    with pytest.raises(pickle.UnpicklingError):  # torch.load's own safe mode refuses the file
        torch.load(path, weights_only=True)
    return state


def test_a_lightning_checkpoint_loads_its_weights_without_its_classes(tmp_path):
    path = tmp_path / "atst_as2M.ckpt"
    state = _lightning_file(path)
    loaded = pretrained.load_state_dict(path)
    assert list(loaded) == list(state)
    assert all(torch.equal(loaded[k], v) and loaded[k].dtype == v.dtype for k, v in state.items())


def test_a_lightning_checkpoint_that_would_run_a_command_loads_its_weights_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "atst_as2M.ckpt"
    state = _lightning_file(path, {"loops": {"fit_loop": _Payload(f"touch {marker}")}})
    loaded = pretrained.load_state_dict(path)
    assert not marker.exists()
    assert list(loaded) == list(state)


def test_a_state_dict_entry_that_is_no_tensor_is_refused(tmp_path):
    path = tmp_path / "odd.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2), "cmd": _Payload("true")}, "hyper_parameters": {}}, path)
    with pytest.raises(pretrained.WeightsUnavailable, match=r"odd.ckpt: state_dict entry 'cmd' is a system, not a "
                                                            "tensor"):
        pretrained.load_state_dict(path)
