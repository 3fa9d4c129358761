"""Shared by the stage scripts: their argument parser, params loading, logging set-up and the dvclive logger."""

from __future__ import annotations

import argparse
import atexit
import gc
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without installing

from salsa2.config.params import Params, check_params, load_params, training_params  # noqa: E402

PARAMS = "params.yaml"  # the file dvc.yaml declares; no override (dvc.lock must record what was read)

# At exit CPython's last garbage collection walks every object the imports made (torch and torch._dynamo, which
# torch.optim loads): about a second per training stage. Outputs are written and closed by then, so the stages freeze
# those objects out of it (registered first, so it runs after every other exit handler).
atexit.register(gc.freeze)


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The parser of a stage script. Every path a stage reads or writes is a required argument that dvc.yaml's
    ``cmd`` names next to the stage's deps and outs; none has a default, so the script cannot diverge from it."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def fail(message: str) -> NoReturn:
    """Bad input: one line on stderr naming what to fix, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _user_error_hook(kind, err, tb) -> None:
    """A user error ends a stage with one line on stderr and exit code 2 (``SALSA2_VERBOSE=1``: the traceback)."""
    from salsa2.utils.errors import EXIT_USER_ERROR, one_line, user_error_types

    if os.environ.get("SALSA2_VERBOSE") or not isinstance(err, user_error_types()):
        sys.__excepthook__(kind, err, tb)
        return
    print(one_line(err), file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(EXIT_USER_ERROR)


def setup() -> dict:
    """Configure logging and error reporting; return the raw params.yaml mapping, validated whole
    (``check_params``: unknown keys, types, ranges and choices, one line naming the key)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.excepthook = _user_error_hook
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    raw = load_params(PARAMS)
    check_params(raw, PARAMS)
    return raw


def setup_training() -> Params:
    return training_params(setup())


def repeated_terms(record: dict) -> set[str]:
    """The loss terms of a training record that repeat ``train/loss``: the only term of a one-term loss
    (``train/nt_xent_loss``) and a term at weight 1 with its unweighted value (``train/dist_loss`` and ``train/dist``
    with ``stage2.sup_weight: 0``). Decided on a run's first record, so every epoch logs the same keys."""
    loss = record.get("train/loss")
    return {k for k, v in record.items() if k.startswith("train/") and k != "train/loss" and v == loss}


def live_logger(directory: str):
    """A dvclive logger that leaves dvc.yaml alone (metrics and plots are declared there by hand); loss terms
    that repeat ``train/loss`` (``repeated_terms``) are not logged."""
    from dvclive import Live

    live = Live(directory, dvcyaml=False, save_dvc_exp=False, report=None)
    repeated: set[str] | None = None

    def on_epoch(epoch: int, record: dict) -> None:
        nonlocal repeated
        if repeated is None:  # the run's first record (a resumed run replays its history first)
            repeated = repeated_terms(record)
        live.step = epoch
        for key, value in record.items():
            if key not in ("epoch", "seconds") and key not in repeated and isinstance(value, float):
                live.log_metric(key, value)
        live.next_step()

    return live, on_epoch


def best_epoch_summary(history: list[dict], best_epoch: int) -> dict:
    """dvclive's summary (metrics.json) as the best epoch's record, the one whose weights are saved, nested by
    "/" as dvclive nests it; ``step`` and ``best_epoch`` name that epoch; terms that repeat ``train/loss`` left
    out (``repeated_terms``)."""
    summary: dict = {"step": best_epoch, "best_epoch": best_epoch}
    repeated = repeated_terms(history[0]) if history else set()
    for record in history:
        if record["epoch"] != best_epoch:
            continue
        for key, value in record.items():
            if key in ("epoch", "seconds") or key in repeated or not isinstance(value, float):
                continue
            *heads, leaf = key.split("/")
            node = summary
            for head in heads:
                node = node.setdefault(head, {})
            node[leaf] = value
    return summary
