"""The ``salsa2`` command line: the pipeline's building blocks for use outside DVC, and model inspection.

`dvc repro` runs the whole pipeline (see dvc.yaml); these commands run one piece with explicit paths.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from enum import Enum

import typer

from salsa2.cli import search as cli_search
from salsa2.utils.errors import VERBOSE, cli_command
from salsa2.utils.errors import UserError
from salsa2.data.tables import SPLITS



class Split(str, Enum):
    """The table splits (tables.SPLITS); typer validates --split against them."""

    train = "train"
    val = "val"
    test = "test"


assert tuple(s.value for s in Split) == SPLITS
EXISTING_DIR = {"exists": True, "file_okay": False, "dir_okay": True, "readable": True}
EXISTING_FILE = {"exists": True, "file_okay": True, "dir_okay": False, "readable": True}

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v",
                                      help="Log progress at INFO level; show tracebacks of errors.")) -> None:
    VERBOSE["on"] = verbose
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


@app.command()
@cli_command
def demo(
    out: Path = typer.Argument(Path("data/demo"), help="Output folder (replaced atomically)."),
    n_train: int = typer.Option(600, help="Training clips."),
    n_val: int = typer.Option(150, help="Validation clips."),
    n_test: int = typer.Option(300, help="Test clips."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same clips."),
    workers: int = typer.Option(2, help="Worker processes."),
) -> None:
    """Synthesise the embedded demo dataset (sound scenes with five captions each)."""
    from salsa2.data.demo import generate

    generate(out, n_train=n_train, n_val=n_val, n_test=n_test, seed=seed, workers=workers)
    typer.echo(f"wrote {n_train + n_val + n_test} clips to {out}")


@app.command()
@cli_command
def prepare(
    folder: Path = typer.Argument(..., help="Folder of audio files.", **EXISTING_DIR),
    out: Path = typer.Argument(..., help="Output folder for audio.parquet, captions.parquet, rejects.csv."),
    captions: str = typer.Option("captions.csv", help="Caption file (file, caption[, split]) in FOLDER."),
    name: str = typer.Option("", help="Dataset name used in clip ids (default: the folder's name)."),
    default_split: Split = typer.Option(Split.train, help="Split of clips when the caption file has no split "
                                                          "column."),
) -> None:
    """Prepare your own folder of sounds + captions into salsa2's tables."""
    from salsa2.data.prepare import prepare as run_prepare

    rejects = run_prepare(
        [{"name": "folder", "args": {"root": str(folder), "captions": captions, "name": name,
                                     "default_split": default_split.value}}], out)
    from salsa2.data.tables import rejects_summary

    typer.echo(f"tables in {out}; {rejects_summary(rejects)} (see {out / 'rejects.csv'})")


@app.command()
@cli_command
def features(
    data: Path = typer.Argument(..., help="Prepared tables folder.", **EXISTING_DIR),
    out: Path = typer.Argument(..., help="Output cache folder."),
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml that defines the frontend.", **EXISTING_FILE),
    frontend: str = typer.Option("mel64", help="Frontend name under `frontends` in params."),
    min_duration: float = typer.Option(0.5, help="Clips shorter than this (s) are rejected."),
) -> None:
    """Compute the log-mel cache of prepared clips for one frontend."""
    from salsa2.config.params import load_params
    from salsa2.features.logmel_cache import frontend_from_params
    from salsa2.features.logmel_cache import build_features

    frontends = load_params(params).get("frontends") or {}
    if frontend not in frontends:
        raise UserError(f"{params}: no frontend {frontend!r} under `frontends` (has {sorted(frontends)}); "
                        "pass --frontend NAME")
    cfg = frontend_from_params(frontends[frontend])
    rejects = build_features(data, cfg, out, min_duration)
    typer.echo(f"features in {out}; {len(rejects)} rejected")


@app.command()
@cli_command
def info(checkpoint: str = typer.Argument(..., help="A model directory (model.safetensors + config.json), or the "
                                                   "name of a released model in models/released."),
         as_json: bool = typer.Option(False, "--json", help="Print only config.json (and the provenance) as JSON.")
         ) -> None:
    """Show where a checkpoint came from (training data, or a released model's source, file, sha256 and
    published figures), how it was trained and what it scored on validation."""
    from salsa2.model.locate import find_checkpoint
    from salsa2.model.provenance import provenance_lines, released_provenance
    from salsa2.utils.fsutil import read_json

    path = find_checkpoint(checkpoint)
    config = read_json(path / "config.json")
    assert isinstance(config, dict)
    released = released_provenance(config)
    shown = {"provenance": released, **config} if released is not None else config
    if not as_json:
        for line in provenance_lines(config, str(path)):
            typer.echo(line)
    typer.echo(json.dumps(shown, indent=2))


@app.command()
@cli_command
def evaluate(
    checkpoint: list[str] = typer.Argument(..., help="One or more model directories or names of released models "
                                                     "(models/released/<name>); several = an ensemble."),
    data: Path = typer.Option(Path("data/prepared"), help="Prepared tables folder.", **EXISTING_DIR),
    features_dir: Path = typer.Option(Path("data/features"), "--features",
                                      help="A log-mel cache folder, or a folder of caches (data/features): each "
                                           "model reads the cache its own frontend made.", **EXISTING_DIR),
    split: Split = typer.Option(Split.test, help="Split to score."),
    text_features: Path | None = typer.Option(None, help="Cached frozen-text features (npz), if any.",
                                              **EXISTING_FILE),
    normalize_text: str | None = typer.Option(None, help="Caption normalisation authors | spaces | none; default: "
                                              "the text.normalize each checkpoint was trained with."),
    judgements: Path | None = typer.Option(None, help="Multi-relevance judgements (caption, file, relevant; e.g. "
                                                      "data/judgements.csv, the DCASE 2025 task 6 ones for Clotho): "
                                                      "adds t2a_multi/mAP@K.", **EXISTING_FILE),
    relevance_dataset: str | None = typer.Option(None, help="The dataset the judgements' files belong to (default: "
                                                            "the one dataset of the scored clips)."),
    relevance_k: int = typer.Option(16, help="K of the judgements' mAP@K."),
    every: bool = typer.Option(False, "--every", help="Print every model's metrics (and the ensemble's), keyed by "
                                                      "name, instead of the ensemble's alone."),
) -> None:
    """Score checkpoints (and their similarity-averaged ensemble) on a split: mAP@10, R@1/5/10 both ways (and
    mAP@16 with --judgements). Needs no training: `salsa2 evaluate passt_roberta` scores a released model."""
    from salsa2.evaluation.evaluate import evaluate_models
    from salsa2.features.caches import feature_caches
    from salsa2.features.text_cache import TextFeatureStore
    from salsa2.model.locate import find_checkpoint

    paths = [find_checkpoint(c) for c in checkpoint]
    names = list(dict.fromkeys(str(c) for c in checkpoint))
    if len(names) != len(paths):
        raise UserError(f"a checkpoint is named twice: {checkpoint}; give each once")
    caches = feature_caches(features_dir)
    if not caches:
        raise UserError(f"{features_dir}: no log-mel cache here (no frontend.json in it or its subfolders); run "
                        "`salsa2 features` or `dvc repro features@<frontend>` first")
    store = TextFeatureStore(text_features) if text_features else None
    ensembles = {"ensemble": names} if len(names) > 1 else {}
    relevance = None
    if judgements is not None:
        relevance = (judgements, relevance_dataset or _single_dataset(data, split.value))
    results = evaluate_models(dict(zip(names, paths)), data, caches, store, split.value, ensembles, relevance,
                              relevance_k, normalize_text=normalize_text)
    if every:
        shown = {name: {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}
                 for name, m in results.items()}
    else:
        shown = {k: round(v, 4) for k, v in results["ensemble" if ensembles else names[0]].items()
                 if k != "best_epoch"}
    typer.echo(json.dumps(shown, indent=2))


def _single_dataset(data: Path, split: str) -> str:
    """The one dataset the clips of ``split`` come from (the judgements' default ``--relevance-dataset``)."""
    from salsa2.data.tables import read_tables

    audio, _ = read_tables(data)
    names = sorted(set(audio.loc[audio["split"] == split, "dataset"].astype(str)))
    if len(names) != 1:
        raise UserError(f"{data}: the {split} clips come from {names or 'no dataset'}; pass --relevance-dataset "
                        "NAME (the dataset the judgements' files belong to)")
    return names[0]


@app.command()
@cli_command
def release(
    sources: list[str] = typer.Argument(..., metavar="URL_OR_FILE...",
                                        help="The released model's parts in join order: http(s) URLs or local "
                                             "files (one file: the whole checkpoint)."),
    out: Path = typer.Option(..., help="The checkpoint folder to write (model.safetensors + config.json)."),
    parts: Path | None = typer.Option(None, help="Download cache of the parts (kept; a broken-off part resumes "
                                                 "there); default: OUT.parts beside OUT."),
    sha256: list[str] = typer.Option([], help="The sha256 of each part, in order (repeat the option); without it "
                                              "the first download's digests are recorded and later copies checked."),
    text_model: str = typer.Option("roberta-large", help="The salsa2 text encoder the text weights go into."),
    kind: str = typer.Option("salsa", help="The release: salsa (OptimusPrimus/salsa's PaSST + RoBERTa-large) or "
                                           "dcase2025_baseline (CPJKU/dcase2025_task6_baseline)."),
) -> None:
    """Fetch and import a released model (OptimusPrimus/salsa's PaSST + RoBERTa-large, the DCASE 2025 baseline)
    as a checkpoint folder."""
    from salsa2.model.release_fetch import fetch_parts, import_parts
    from salsa2.model.release_import import release_layout

    release_layout(kind)  # an unknown kind is refused before anything is downloaded
    cache = parts if parts is not None else out.with_name(out.name + ".parts")
    paths = fetch_parts(sources, cache, sha256)
    import_parts(paths, out, cache, kind=kind, text_model=text_model)
    typer.echo(f"imported {len(paths)} part(s) into {out}; search with: salsa2 index FOLDER --model {out}")


@app.command()
@cli_command
def judgements(
    source: Path = typer.Argument(..., **EXISTING_FILE, help="The DCASE 2025 task 6 metadata_eval.csv (query, "
                                                             "audio_filenames) or a salsa2 judgements CSV."),
    data: Path = typer.Option(..., **EXISTING_DIR, help="Prepared tables holding the judged captions and clips "
                                                       "(data/prepared)."),
    out: Path = typer.Option(..., help="The salsa2 judgements CSV to write (caption, file, relevant as a JSON list)."),
    dataset: str = typer.Option("clotho", help="The dataset the judgements belong to (its name in the tables)."),
) -> None:
    """Convert multi-relevance judgements to salsa2's CSV (stage prepare does this for evaluate.relevance)."""
    from salsa2.evaluation.judgements import write_judgements

    typer.echo(f"wrote {write_judgements(source, dataset, data, out)} judged queries to {out}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@cli_command
def exp(
    ctx: typer.Context,
    preset: str = typer.Argument(..., help="A preset: presets/<PRESET>.yaml (paper-clotho, paper-audiocaps, "
                                           "paper-pretrain) or a YAML file of params.yaml overrides."),
) -> None:
    """Run a preset as one DVC experiment: `dvc exp run` with its -S overrides. Further words go to DVC
    (-S key=value adds or changes a setting, --queue, -n NAME, ...); --dry prints what would run and download, the
    disk and GPU time it needs, before anything is downloaded (docs/reproduce.md)."""
    from salsa2.config.presets import run_experiment

    raise typer.Exit(run_experiment(preset, list(ctx.args)))


# Commands that live in their own modules register themselves on the app.
cli_search.register(app)

if __name__ == "__main__":
    app()
