"""Params presets: a YAML file of overrides of params.yaml -> one ``dvc exp run`` with ``-S`` arguments.

A preset names only the keys it changes; ``extends: <file>`` (relative to the preset) starts from another preset,
so ``presets/paper-clotho.yaml`` is the paper's encoders (``params-paper.yaml``) plus Clotho's download, data and
judgements. ``salsa2 exp paper-clotho [-S key=value ...] [dvc exp run options]`` runs it
(``run_experiment``: the arguments go to DVC as a list, no shell re-parsing); ``--dry`` prints the preview instead
(``salsa2.config.preview``; DVC's own ``dvc exp run --dry`` fails on any pipeline whose stages read an earlier
stage's outputs: its temporary copy has none to hash). ``python -m salsa2.config.presets <preset> [params.yaml]``
prints the ``-S`` arguments shell-quoted.

DVC's Hydra composition (``dvc config hydra.enabled true``, ``dvc exp run -S +experiment=...``) is not used: with it
enabled every ``dvc exp run`` rewrites params.yaml from ``conf/`` (params.yaml would stop being the file one edits),
and a Hydra config merges mappings, so an experiment could not replace the demo's ``encoders`` by the paper's.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from salsa2.utils.errors import UserError

PRESET_DIR = Path("presets")


def _flow(value: Any) -> str:
    """A value in Hydra's override grammar (flow YAML without spaces after separators)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exp = text.partition("e")
        return f"{mantissa}.0e{exp}" if e and "." not in mantissa else text  # 1e-05 would read back as a string
    return str(value)


# Top-level keys whose mapping is a selection, not settings: the preset's replaces params.yaml's whole
# (``encoders``: the paper's three models, not the demo's two plus three; ``frontends``: one log-mel cache per
# entry, so the demo's would be computed over the paper's data for nothing; ``downloads`` / ``released``: one stage
# per entry, so another preset's datasets would be downloaded too).
REPLACED = ("encoders", "frontends", "downloads", "released")


def override_args(preset: dict, base: dict, prefix: str = "") -> list[str]:
    """``-S`` arguments turning ``base`` into ``base`` merged with ``preset`` (mappings merge key by key, except
    the ``REPLACED`` ones: deleted with ``~key``, then added whole with ``+key``, as DVC's Hydra overrides need)."""
    args: list[str] = []
    for key, value in preset.items():
        path = f"{prefix}{key}"
        if not prefix and key in REPLACED and key in base:
            args += ["-S", f"~{path}", "-S", f"+{path}={_flow(value)}"]
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            args += override_args(value, base[key], path + ".")
        else:
            args += ["-S", f"{'' if key in base else '+'}{path}={_flow(value)}"]
    return args


def apply(preset: dict, base: dict, top: bool = True) -> dict:
    """Deep merge: ``preset`` values replace ``base``'s, mappings merge recursively (``REPLACED`` ones do not)."""
    out = dict(base)
    for key, value in preset.items():
        merge = isinstance(value, dict) and isinstance(base.get(key), dict) and not (top and key in REPLACED)
        out[key] = apply(value, base[key], top=False) if merge else value
    return out


def preset_path(name: str | Path) -> Path:
    """A preset file: ``name`` itself when it is a file, else ``presets/<name>.yaml``."""
    path = Path(name)
    if path.is_file():
        return path
    candidate = PRESET_DIR / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml")) if PRESET_DIR.is_dir() else []
    raise UserError(f"preset {name!r}: no file {path} or {candidate}; presets here: {', '.join(known) or 'none'}")


def load(name: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """The overrides of a preset with its ``extends`` chain resolved (the extending file's values win)."""
    path = preset_path(name).resolve()
    if path in _seen:
        raise UserError(f"{path}: extends itself (through {' -> '.join(map(str, _seen))})")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a preset is a YAML mapping of params.yaml keys")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    return apply(data, load(path.parent / parent, (*_seen, path)))


def set_dotted(preset: dict, dotted: str, value: Any) -> dict:
    """``preset`` with ``dotted`` (``stage2.teachers``) set to ``value`` (a copy; mappings on the way copied)."""
    head, _, rest = dotted.partition(".")
    out = dict(preset)
    out[head] = set_dotted(dict(out.get(head) or {}), rest, value) if rest else value
    return out


def split_args(args: list[str]) -> tuple[dict[str, Any], list[str], list[str], bool]:
    """Command-line words after the preset name -> (``-S key=value`` settings, ``-S`` with ``~``/``+`` kept as
    DVC overrides, the other ``dvc exp run`` options, whether ``--dry`` was given)."""
    sets: dict[str, Any] = {}
    raw: list[str] = []
    rest: list[str] = []
    dry = False
    words = iter(args)
    for word in words:
        if word in ("-S", "--set-param"):
            override = next(words, None)
            if override is None:
                raise UserError(f"{word} needs a key=value argument")
        elif word.startswith("--set-param="):
            override = word.split("=", 1)[1]
        elif word == "--dry":
            dry = True
            continue
        else:
            rest.append(word)
            continue
        if override[:1] in "~+":
            raw += ["-S", override]
            continue
        key, eq, value = override.partition("=")
        if not eq or not key:
            raise UserError(f"-S {override!r}: expected key=value, e.g. -S stage2.teachers=self")
        sets[key] = yaml.safe_load(value) if value else None
    return sets, raw, rest, dry


def with_settings(preset: dict, sets: dict[str, Any]) -> dict:
    """``preset`` with the command line's ``-S key=value`` settings applied."""
    for key, value in sets.items():
        preset = set_dotted(preset, key, value)
    return preset


def apply_raw(params: dict, raw: list[str]) -> dict:
    """``params`` with ``~key`` / ``+key=value`` DVC overrides applied (what DVC will write)."""
    for override in raw[1::2]:
        if override.startswith("~"):
            *parents, last = override[1:].partition("=")[0].split(".")
            node = params
            for p in parents:
                node = node.get(p) or {}
            node.pop(last, None)
        else:
            key, _, value = override[1:].partition("=")
            params = apply(set_dotted({}, key, yaml.safe_load(value)), params)
    return params


def experiment(name: str | Path, args: list[str], base: dict) -> tuple[list[str], dict, bool]:
    """(the ``dvc exp run`` command, the params it will run with, whether ``--dry`` asked for a preview)."""
    sets, raw, rest, dry = split_args(args)
    preset = with_settings(load(name), sets)
    cmd = ["dvc", "exp", "run", *override_args(preset, base), *raw, *rest]
    return cmd, apply_raw(apply(preset, base), raw), dry


def run_experiment(name: str | Path, args: list[str], params_file: str | Path = "params.yaml") -> int:
    """Run the preset as one DVC experiment (or print the preview with ``--dry``); DVC's exit status."""
    from salsa2.config import preview

    base = yaml.safe_load(Path(params_file).read_text())
    cmd, params, dry = experiment(name, args, base)
    if dry:
        print(preview.render(preview.preview(params)))
        return 0
    print(" ".join(shlex.quote(w) for w in cmd), flush=True)
    return subprocess.call(cmd)


def main(argv: list[str]) -> None:
    preset = load(argv[0])
    base = yaml.safe_load(Path(argv[1] if len(argv) > 1 else "params.yaml").read_text())
    print(" ".join(shlex.quote(a) for a in override_args(preset, base)))


if __name__ == "__main__":
    main(sys.argv[1:])
