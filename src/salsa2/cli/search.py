"""``salsa2 index`` and ``salsa2 search``: a trained model as a sound search engine (see docs/search.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from salsa2.utils.errors import cli_command, user_errors


def parse_model_specs(specs: list[str]) -> dict[str, str]:
    """``[NAME=]PATH`` strings -> {name: path}; the name defaults to the checkpoint folder's name."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).resolve().name, spec
        if name in out:
            raise typer.BadParameter(f"two models are named {name!r}; give names: --model NAME=PATH")
        out[name] = path
    return out


def _format_hits(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i < len(r) - 1 else c for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([fmt(header), *(fmt(r) for r in rows)])


@cli_command
def index_command(
    folder: Path = typer.Argument(..., help="Folder of audio files (searched recursively)."),
    model: list[str] = typer.Option([], "--model", "-m",
                                    help="Checkpoint folder, as PATH or NAME=PATH; repeat for an ensemble. "
                                         "Default: the models of the existing index."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Index file [default: FOLDER/salsa2-index.parquet]."),
    min_duration: float = typer.Option(0.1, help="Files shorter than this (s) are listed as too_short."),
    ext: list[str] = typer.Option([], "--ext", help="Audio file extensions to index (default: common ones)."),
    batch_size: int = typer.Option(16, help="Clips per encoder call."),
    workers: int = typer.Option(2, help="Decoding threads."),
    full: bool = typer.Option(False, "--full", help="Re-embed every file (ignore the existing index)."),
) -> None:
    """Embed every readable audio file under FOLDER with trained models into a Parquet index.

    Re-running it only embeds new or changed files (size or modification time) and drops deleted ones.
    """
    from salsa2.search.index import AUDIO_EXTENSIONS, build_index, read_index
    from salsa2.model.provenance import demo_only_warning

    out = out or folder / "salsa2-index.parquet"
    with user_errors():
        report = build_index(folder, out, parse_model_specs(model) if model else None, min_duration=min_duration,
                             extensions=ext or AUDIO_EXTENSIONS, batch_size=batch_size, workers=workers, full=full)
    typer.echo(f"{out}: {report.summary()}")
    for name, m in read_index(out).models.items():
        warning = demo_only_warning(m.get("info", {}), name)
        if warning:
            typer.echo(f"warning: {warning}", err=True)
    if len(report.rejects):
        rows = [(r.reason, str(r.path), str(r.detail)) for r in report.rejects.itertuples()]
        typer.echo("unreadable files (not indexed):")
        typer.echo(_format_hits(rows, ("reason", "path", "detail")))


@cli_command
def search_command(
    index: Path = typer.Argument(..., help="Index file written by `salsa2 index`."),
    text: str | None = typer.Argument(None, help="What to find, e.g. 'a dog barks while cars pass'."),
    query: list[str] = typer.Option([], "--query", "-q", help="A paraphrase of the query; all are averaged."),
    audio: Path | None = typer.Option(None, "--audio", help="Find sounds similar to this audio file instead."),
    captions: Path | None = typer.Option(None, "--captions",
                                            help="With --audio: also rank these captions (.txt, or CSV/Parquet "
                                                 "with a caption or text column)."),
    k: int = typer.Option(10, "--top", "-k", min=1, help="Results to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    model: list[str] = typer.Option([], "--model", "-m",
                                    help="NAME=PATH: where an index model's checkpoint is now (if moved)."),
    use: list[str] = typer.Option([], "--use", help="Search with only these of the index's models."),
) -> None:
    """Search an index by text (paraphrases averaged; several models = mean of their similarities) or audio."""
    from salsa2.search.index import read_index
    from salsa2.search.query import load_index_models, missing_files_warning, query_warnings, search

    if any(t is not None and not t.strip() for t in [text, *query]):
        raise typer.BadParameter("the query text is empty; describe the sound, e.g. 'a dog barks while cars pass'")
    texts = ([text] if text else []) + list(query)
    if bool(texts) == (audio is not None):
        raise typer.BadParameter("give a text query (and/or --query) or --audio FILE, not both")
    if captions is not None and audio is None:
        raise typer.BadParameter("--captions ranks captions for an --audio query; add --audio FILE")
    overrides = dict(s.partition("=")[::2] for s in model)
    if any(not v for v in overrides.values()):
        raise typer.BadParameter("--model takes NAME=PATH here (NAME as listed in the index)")
    with user_errors():
        idx = read_index(index)
        models = load_index_models(idx, overrides, use or None)
        for line in query_warnings(models, texts):
            typer.echo(f"warning: {line}", err=True)
        result = search(idx, texts or None, audio, k=k, models=models, captions=captions)
    moved = missing_files_warning(idx, result)
    if moved:
        typer.echo(f"warning: {moved}", err=True)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    rows = [(str(h.rank), f"{h.score:.4f}", f"{h.duration:.1f}s", h.path) for h in result.hits]
    typer.echo(_format_hits(rows, ("rank", "score", "duration", "path")))
    if result.captions:
        typer.echo("\nmatching captions:")
        rows = [(str(c.rank), f"{c.score:.4f}", c.caption) for c in result.captions]
        typer.echo(_format_hits(rows, ("rank", "score", "caption")))


def register(app: typer.Typer) -> None:
    """Add the top-level commands ``index`` and ``search`` to the salsa2 CLI."""
    app.command("index")(index_command)
    app.command("search")(search_command)
