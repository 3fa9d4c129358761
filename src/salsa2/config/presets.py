"""Params presets: a YAML file of overrides -> ``dvc exp run -S`` arguments (``+`` for keys params.yaml lacks).

``python -m salsa2.config.presets params-paper.yaml [params.yaml]`` prints the arguments shell-quoted, so
``eval "dvc exp run $(python -m salsa2.config.presets params-paper.yaml)"`` switches to the preset (without ``eval``
the quotes would reach DVC literally: a command substitution's output is split into words, not re-parsed).
``apply`` merges a preset into a params mapping (what the run will see).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import yaml


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
# entry, so the demo's would be computed over the paper's data for nothing).
REPLACED = ("encoders", "frontends")


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


def main(argv: list[str]) -> None:
    preset = yaml.safe_load(Path(argv[0]).read_text())
    base = yaml.safe_load(Path(argv[1] if len(argv) > 1 else "params.yaml").read_text())
    print(" ".join(shlex.quote(a) for a in override_args(preset, base)))


if __name__ == "__main__":
    main(sys.argv[1:])
