"""Released Lightning checkpoints (salsa2.model.released): the sacred config without sacred, CUDA-saved tensors on
the CPU, torch.compile keys, refused pickles, parts joined (and refused) like the release's ``cat``, memory.

The fixtures are built here in the released format: a Lightning checkpoint dict saved with torch.save (zip),
whose nested hyper-parameters are instances of classes named ``sacred.config.custom_containers.ReadOnlyDict`` /
``ReadOnlyList`` that reduce like sacred's (IDSIA/sacred sacred/config/custom_containers.py). The fake module
exists only while saving."""

from __future__ import annotations

import contextlib
import io
import os
import pickletools
import random
import subprocess
import sys
import textwrap
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from salsa2.model import released
from salsa2.model.released import ReleasedCheckpointError, check_container, join_parts, read_released

SACRED = released.SACRED_CONTAINERS


@contextlib.contextmanager
def fake_sacred():
    """``sacred``, ``sacred.config`` and its ``custom_containers`` (ReadOnlyDict, ReadOnlyList) in sys.modules while
    the block runs; afterwards the names are gone again (so a load cannot import them)."""
    names = ["sacred", "sacred.config", SACRED]
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    mod = types.ModuleType(SACRED)

    class ReadOnlyDict(dict):
        def __reduce__(self):
            return type(self), ({**self},)

    class ReadOnlyList(list):
        def __reduce__(self):
            return type(self), ([*self],)

    for cls in (ReadOnlyDict, ReadOnlyList):
        cls.__module__, cls.__qualname__ = SACRED, cls.__name__
        setattr(mod, cls.__name__, cls)
    sys.modules.update({"sacred": types.ModuleType("sacred"), "sacred.config": types.ModuleType("sacred.config")})
    sys.modules[SACRED] = mod
    try:
        yield mod
    finally:
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


def read_only(obj, mod):
    """sacred's ``make_read_only``: every nested dict/list becomes its read-only twin."""
    if type(obj) is dict:
        return mod.ReadOnlyDict({k: read_only(v, mod) for k, v in obj.items()})
    if type(obj) is list:
        return mod.ReadOnlyList([read_only(v, mod) for v in obj])
    if type(obj) is tuple:
        return tuple(read_only(v, mod) for v in obj)
    return obj


@contextlib.contextmanager
def saved_on_cuda():
    """torch.save tags every storage ``cuda:0`` (as on the authors' GPU) while the block runs."""
    entry = (-1000, lambda storage: "cuda:0", lambda storage, location: None)
    torch.serialization.register_package(*entry)
    try:
        yield
    finally:
        torch.serialization._package_registry.remove(entry)


HPARAMS = {  # the outer dict is plain (Lightning's ``dict(model.hparams)``), the nested ones read-only
    "audio_features": {"model": "passt", "segment_length": 10, "layers": [12, {"adapt": True}]},
    "sentence_features": {"model": "roberta-large", "max_length": 32},
    "initial_tau": 0.05,
    "freeze_tau": True,
    "seed": 13,
    "betas": (0.9, 0.999),
    "note": None,
}


def salsa_state_dict(seed: int = 0, width: int = 8, compiled: bool = False) -> OrderedDict:
    """Key layout of the released PaSST + RoBERTa model (OptimusPrimus/salsa experiments/ex_dcase24.py), tiny;
    ``compiled``: the dcase2025 baseline's names with torch.compile's ``_orig_mod.``."""
    g = torch.Generator().manual_seed(seed)
    if compiled:  # CPJKU/dcase2025_task6_baseline d25_t6/retrieval_module.py
        names = {
            "audio_embedding_model.model.model._orig_mod.blocks.0.attn.qkv.weight": (3 * width, width),
            "text_embedding_model._orig_mod.encoder.layer.0.attention.self.query.weight": (width, width),
            "audio_projection.weight": (width, width),
            "text_projection.weight": (width, width),
            "tau": (1,),
        }
    else:
        names = {
            "audio_embedding_model.model.model.blocks.0.attn.qkv.weight": (3 * width, width),
            "audio_embedding_model.model.model.norm.bias": (width,),
            "sentence_embedding_model.encoder.layer.0.attention.self.query.weight": (width, width),
            "project_audio.0.weight": (width, width),
            "project_audio.0.bias": (width,),
            "project_sentence.0.weight": (width, width),
            "project_sentence.0.bias": (width,),
            "tau": (1,),
            "audio_token": (1, 1, width),
            "timing_tau": (1,),
            "posencode.w": (1,),
        }
    sd = OrderedDict((k, torch.randn(shape, generator=g)) for k, shape in names.items())
    sd["sentence_embedding_model.embeddings.position_ids"] = torch.arange(4).view(1, -1)  # an int64 buffer
    sd._metadata = OrderedDict({"": {"version": 1}})  # what Module.state_dict() carries
    return sd


def lightning_checkpoint(state_dict: OrderedDict, hparams: dict, extra=None) -> dict:
    """A PyTorch Lightning 2.x checkpoint dict around ``state_dict``, with Adam states and a LambdaLR."""
    params = [torch.nn.Parameter(v.clone().float()) for v in state_dict.values()]
    opt = torch.optim.Adam(params, lr=2e-5)
    sum((p**2).sum() for p in params).backward()
    opt.step()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0)
    ckpt = {
        "epoch": 15,
        "global_step": 12345,
        "pytorch-lightning_version": "2.2.5",
        "state_dict": state_dict,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 16, "completed": 15}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val/map@10', 'mode': 'max'}": {
            "monitor": "val/map@10", "best_model_score": torch.tensor(0.4011), "kth_value": torch.tensor(float("inf")),
            "best_k_models": {"/models/x/epoch_15-0.4011.ckpt": torch.tensor(0.4011)}, "dirpath": "/models/x"}},
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [sched.state_dict()],
        "hparams_name": "kwargs",
        "hyper_parameters": hparams,
    }
    ckpt.update(extra or {})
    return ckpt


def save_released(path: Path, state_dict: OrderedDict | None = None, extra=None) -> Path:
    """The released format: sacred containers in the hyper-parameters, every tensor saved on cuda:0."""
    with fake_sacred() as mod, saved_on_cuda():
        hparams = {k: read_only(v, mod) for k, v in HPARAMS.items()}
        assert isinstance(hparams["audio_features"], mod.ReadOnlyDict)
        torch.save(lightning_checkpoint(state_dict or salsa_state_dict(), hparams, extra), path)
    assert SACRED not in sys.modules and "sacred" not in sys.modules
    return path


def data_pkl(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))


def assert_plain(obj) -> None:
    """Only builtin containers remain (no stand-in for sacred's classes)."""
    assert type(obj) in (dict, list, tuple, str, int, float, bool, type(None)), type(obj)
    for v in obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ():
        assert_plain(v)


def test_released_checkpoint_reads_without_sacred_and_on_the_cpu(tmp_path):
    path = save_released(tmp_path / "passt_roberta.ckpt")
    pkl = data_pkl(path)
    assert f"{SACRED}\nReadOnlyDict".encode() in pkl and f"{SACRED}\nReadOnlyList".encode() in pkl  # real format
    assert b"cuda:0" in pkl and b"X\x03\x00\x00\x00cpu" not in pkl  # every storage tagged cuda:0, none cpu
    with pytest.raises(Exception, match="ReadOnlyDict"):  # torch's own safe loader refuses it
        torch.load(path, map_location="cpu", weights_only=True)

    state_dict, hparams = read_released(path)
    expected = salsa_state_dict()
    assert list(state_dict) == list(expected)
    for k, v in expected.items():
        assert state_dict[k].device.type == "cpu" and state_dict[k].dtype == v.dtype
        assert torch.equal(state_dict[k], v), k
    assert hparams == {**HPARAMS}
    assert_plain(hparams)
    assert type(hparams["audio_features"]["layers"]) is list and hparams["betas"] == (0.9, 0.999)
    assert "sacred" not in sys.modules


def test_only_state_dict_and_hyper_parameters_come_back(tmp_path):
    path = save_released(tmp_path / "x.ckpt")
    result = read_released(path)
    assert isinstance(result, tuple) and len(result) == 2
    state_dict, hparams = result
    assert not any(k in ("optimizer_states", "lr_schedulers", "callbacks", "loops") for k in hparams)
    n_weights = sum(v.numel() for v in salsa_state_dict().values())
    assert sum(v.numel() for v in state_dict.values()) == n_weights  # no Adam moments among the tensors


def test_torch_compile_prefix_is_stripped(tmp_path):
    path = save_released(tmp_path / "dcase2025.ckpt", salsa_state_dict(seed=1, compiled=True))
    state_dict, _ = read_released(path)
    assert list(state_dict) == [
        "audio_embedding_model.model.model.blocks.0.attn.qkv.weight",
        "text_embedding_model.encoder.layer.0.attention.self.query.weight",
        "audio_projection.weight",
        "text_projection.weight",
        "tau",
        "sentence_embedding_model.embeddings.position_ids",
    ]
    compiled = salsa_state_dict(seed=1, compiled=True)
    assert torch.equal(state_dict["text_embedding_model.encoder.layer.0.attention.self.query.weight"],
                       compiled["text_embedding_model._orig_mod.encoder.layer.0.attention.self.query.weight"])
    with pytest.raises(ReleasedCheckpointError, match="both become 'a.w'"):
        released.strip_compile_prefix({"a._orig_mod.w": torch.ones(1), "a.w": torch.ones(1)})


class _Payload:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("where", ["hyper_parameters", "optimizer_states"])
def test_a_pickle_that_would_run_a_command_is_refused_and_nothing_runs(tmp_path, where):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    payload = _Payload(f"touch {marker}")
    extra = {"hyper_parameters": {"seed": 1, "x": payload}} if where == "hyper_parameters" else {
        "optimizer_states": [{"state": {}, "param_groups": [], "x": payload}]}
    torch.save(lightning_checkpoint(salsa_state_dict(), {}, extra), path)
    globals_ = [arg for op, arg, _ in pickletools.genops(data_pkl(path)) if op.name == "GLOBAL"]
    assert f"{os.system.__module__} system" in globals_  # the payload is live: a plain unpickle would run it

    with pytest.raises(ReleasedCheckpointError) as err:
        read_released(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and f"{os.system.__module__}.system" in msg
    assert not marker.exists()


def test_other_classes_are_refused_by_name(tmp_path):
    path = tmp_path / "odd.ckpt"
    torch.save(lightning_checkpoint(salsa_state_dict(), {"p": Path("/data")}), path)
    with pytest.raises(ReleasedCheckpointError, match=r"refused to unpickle pathlib\.PosixPath"):
        read_released(path)


def split_at(data: bytes, cuts: list[int], folder: Path) -> list[Path]:
    bounds = [0, *sorted(cuts), len(data)]
    parts = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:]), start=1):
        parts.append(folder / f"passt_roberta.{i}.ckpt")
        parts[-1].write_bytes(data[a:b])
    return parts


def test_parts_split_at_any_offsets_join_back_to_the_same_checkpoint(tmp_path):
    whole = save_released(tmp_path / "whole.ckpt")
    data = whole.read_bytes()
    rng = random.Random(5)
    for trial, cuts in enumerate([[1], [len(data) - 1], rng.sample(range(1, len(data)), 4), [2, 3, 4, 5]]):
        folder = tmp_path / f"t{trial}"
        folder.mkdir()
        out = join_parts(split_at(data, cuts, folder), folder / "passt_roberta.ckpt")
        assert out.read_bytes() == data
        state_dict, hparams = read_released(out)
        assert torch.equal(state_dict["project_audio.0.weight"], salsa_state_dict()["project_audio.0.weight"])
        assert hparams == HPARAMS
        assert sorted(p.name for p in folder.iterdir())[-1] == "passt_roberta.ckpt"  # no temporary left


def assert_refused(parts: list[Path], out: Path, *fragments: str) -> None:
    with pytest.raises(ReleasedCheckpointError) as err:
        join_parts(parts, out)
    msg = str(err.value)
    assert "\n" not in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_parts_in_the_wrong_order_or_truncated_are_refused_and_nothing_is_written(tmp_path):
    data = save_released(tmp_path / "whole.ckpt", salsa_state_dict(width=64)).read_bytes()
    size = len(data)
    parts = split_at(data, [size // 5, 2 * size // 5, 3 * size // 5, 4 * size // 5], tmp_path)
    out = tmp_path / "out" / "passt_roberta.ckpt"
    out.parent.mkdir()
    advice = "join them in order 1..N"
    for order in ([1, 0, 2, 3, 4], [0, 2, 1, 3, 4], [0, 1, 2, 4, 3], [4, 3, 2, 1, 0], [0, 1, 3, 2, 4]):
        assert_refused([parts[i] for i in order], out, str(out), advice)
    assert_refused(parts[:4], out, str(out), advice)  # the last part left out
    for i, keep in ((4, 0.5), (2, 0.9), (0, 0.99)):  # a truncated part (last, middle, first)
        cut = tmp_path / f"cut{i}.ckpt"
        cut.write_bytes(parts[i].read_bytes()[: int(parts[i].stat().st_size * keep)])
        assert_refused([cut if j == i else p for j, p in enumerate(parts)], out, str(out), advice)
    assert join_parts(parts, out).read_bytes() == data  # the same parts, in order, are fine


def test_missing_or_empty_parts_are_named(tmp_path):
    whole = save_released(tmp_path / "whole.ckpt")
    parts = split_at(whole.read_bytes(), [100], tmp_path)
    out = tmp_path / "joined.ckpt"
    assert_refused([parts[0], tmp_path / "passt_roberta.9.ckpt"], out, "passt_roberta.9.ckpt: checkpoint part missing")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    assert_refused([parts[0], tmp_path / "empty.ckpt", parts[1]], out, "empty.ckpt: checkpoint part is empty")
    assert_refused([], out, "no parts given")
    before = parts[1].read_bytes()
    with pytest.raises(ReleasedCheckpointError, match="would overwrite part"):
        join_parts(parts, parts[1])
    assert parts[1].read_bytes() == before


def test_a_forced_weights_only_load_is_explained(tmp_path, monkeypatch):
    path = save_released(tmp_path / "x.ckpt")
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(ReleasedCheckpointError, match="TORCH_FORCE_WEIGHTS_ONLY_LOAD is set"):
        read_released(path)


def test_files_that_are_not_released_checkpoints(tmp_path):
    legacy = tmp_path / "legacy.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(ReleasedCheckpointError, match="is not a readable PyTorch zip checkpoint"):
        read_released(legacy)
    plain = tmp_path / "weights.pt"
    torch.save({"w": torch.ones(2)}, plain)  # a bare state dict, not a Lightning checkpoint
    with pytest.raises(ReleasedCheckpointError, match="no state_dict"):
        read_released(plain)
    html = tmp_path / "download.ckpt"
    html.write_text("<html>Sign in</html>")
    with pytest.raises(ReleasedCheckpointError, match="does not start with a zip local header"):
        check_container(html)
    with pytest.raises(ReleasedCheckpointError, match="checkpoint not found"):
        read_released(tmp_path / "nope.ckpt")


MEMORY_PROBE = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    def kib(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])

    import torch
    from salsa2.model.released import read_released
    before = kib("VmRSS")
    if sys.argv[2] == "read_released":
        state_dict, hparams = read_released(sys.argv[1])
        read_kib = kib("VmHWM") - before
        total = sum(float(v.sum()) for v in state_dict.values())  # every weight byte is read
    else:  # the control: the whole file in memory, which the probe must see
        total = len(Path(sys.argv[1]).read_bytes())
        read_kib = None
    print(json.dumps({"read_kib": read_kib, "peak_kib": kib("VmHWM") - before, "total": total}))
""")


@pytest.mark.slow
def test_peak_memory_reading_a_large_checkpoint_stays_below_the_file_size(tmp_path):
    """Bounds on the peak resident memory added (VmHWM, in a fresh process; a copying load would add twice the file):
    read_released alone under 5% of the file, and after reading every weight once under half the file. Why: the file
    is mapped, not read, so a tensor's pages become resident only when it is used, and once (the page cache's copy,
    not a second one); the weights are a third of the file (Adam keeps two moments per weight) and the optimizer
    states are never touched. The control, the file read into memory, must show about the whole file."""
    sd = OrderedDict((f"sentence_embedding_model.encoder.layer.{i}.weight", torch.full((1024, 1024), float(i)))
                     for i in range(16))  # 64 MiB of weights -> 192 MiB with the Adam moments
    path = save_released(tmp_path / "large.ckpt", sd)
    size_kib = path.stat().st_size // 1024
    assert size_kib > 190 * 1024

    def probe(mode: str) -> dict:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        run = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path), mode], capture_output=True, text=True,
                             env=env, timeout=300)
        assert run.returncode == 0, run.stderr
        import json

        return json.loads(run.stdout.strip().splitlines()[-1])

    control = probe("read_bytes")
    assert control["peak_kib"] > 0.9 * size_kib  # the probe sees memory the size of the file
    measured = probe("read_released")
    assert measured["total"] == sum(float(v.sum()) for v in sd.values())
    print(f"file {size_kib / 1024:.0f} MiB; peak added: read_released {measured['read_kib'] / 1024:.1f} MiB, "
          f"then reading every weight {measured['peak_kib'] / 1024:.0f} MiB; reading the file "
          f"{control['peak_kib'] / 1024:.0f} MiB")
    assert measured["read_kib"] < 0.05 * size_kib  # mapped, not read: no tensor byte is resident yet
    assert measured["peak_kib"] < 0.5 * size_kib


def test_check_container_accepts_what_torch_save_writes(tmp_path):
    for obj in ({"w": torch.ones(3)}, {"w": torch.ones(0)}, [1, 2]):
        buf = io.BytesIO()
        torch.save(obj, buf)
        path = tmp_path / "c.pt"
        path.write_bytes(buf.getvalue())
        check_container(path)
