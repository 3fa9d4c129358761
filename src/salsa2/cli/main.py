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
def info(checkpoint: Path = typer.Argument(..., help="A model directory (model.safetensors + config.json).")) -> None:
    """Show how a checkpoint was trained and what it scored on validation."""
    from salsa2.utils.fsutil import read_json

    if not (checkpoint / "config.json").exists():
        raise typer.BadParameter(f"{checkpoint} holds no config.json; pass a folder such as models/stage2/cnn")
    typer.echo(json.dumps(read_json(checkpoint / "config.json"), indent=2))


@app.command()
@cli_command
def evaluate(
    checkpoint: list[Path] = typer.Argument(..., help="One or more model directories; several = an ensemble.",
                                            **EXISTING_DIR),
    data: Path = typer.Option(Path("data/prepared"), help="Prepared tables folder.", **EXISTING_DIR),
    features_dir: Path = typer.Option(Path("data/features/mel64"), "--features", help="Log-mel cache folder.",
                                      **EXISTING_DIR),
    split: Split = typer.Option(Split.test, help="Split to score."),
    text_features: Path | None = typer.Option(None, help="Cached frozen-text features (npz), if any.",
                                              **EXISTING_FILE),
    normalize_text: str | None = typer.Option(None, help="Caption normalisation authors | spaces | none; default: "
                                              "the text.normalize each checkpoint was trained with."),
) -> None:
    """Score checkpoints (and their similarity-averaged ensemble) on a split: mAP@10, R@1/5/10 both ways."""
    from salsa2.model.checkpoint import load_checkpoint
    from salsa2.features.splits import load_split
    from salsa2.evaluation.metrics import bidirectional_metrics, mean_scores
    from salsa2.evaluation.embed import model_scores
    from salsa2.features.text_cache import TextFeatureStore

    store = TextFeatureStore(text_features) if text_features else None
    scores = []  # per model, blocks of similarities on demand (never the whole clips x captions matrix)
    for path in checkpoint:
        model, info = load_checkpoint(path)
        mode = normalize_text if normalize_text is not None else info.get("text_normalize", True)
        split_data = load_split(data, split.value, features_dir, model.frontend, mode)
        if not split_data.audio_ids:
            raise UserError(f"{data}: no {split.value} clips with features in {features_dir}; pick another --split "
                            f"({', '.join(SPLITS)}) or run `salsa2 features` first")
        scores.append(model_scores(model, split_data, store))
    result = bidirectional_metrics(mean_scores(scores), split_data.audio_ids, split_data.caption_audio_ids)
    typer.echo(json.dumps({k: round(v, 4) for k, v in result.items()}, indent=2))


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
