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
    windows: bool | None = typer.Option(None, "--windows/--no-windows",
                                        help="Also store sliding-window embeddings for `search --moments` "
                                             "[default: as the existing index]."),
    window: float | None = typer.Option(None, "--window", help="With --windows: window length in seconds "
                                                              "[default: 4.0]."),
    hop: float | None = typer.Option(None, "--hop", help="With --windows: hop between windows in seconds "
                                                        "[default: 1.0]."),
) -> None:
    """Embed every readable audio file under FOLDER with trained models into a Parquet index.

    Re-running it only embeds new or changed files (size or modification time) and drops deleted ones.
    """
    from salsa2.search.index import AUDIO_EXTENSIONS, build_index, read_index
    from salsa2.model.provenance import demo_only_warning

    from salsa2.moments.windows import DEFAULT_HOP, DEFAULT_WINDOW

    if windows is False and (window is not None or hop is not None):
        raise typer.BadParameter("--window/--hop set the windows of --windows; drop them or --no-windows")
    spec: tuple[float, float] | bool | None = windows
    if windows or window is not None or hop is not None:
        spec = (DEFAULT_WINDOW if window is None else window, DEFAULT_HOP if hop is None else hop)
    out = out or folder / "salsa2-index.parquet"
    with user_errors():
        report = build_index(folder, out, parse_model_specs(model) if model else None, min_duration=min_duration,
                             extensions=ext or AUDIO_EXTENSIONS, batch_size=batch_size, workers=workers, full=full,
                             windows=spec)
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
    moments: bool = typer.Option(False, "--moments", help="Find moments: file, start, end, score (an index "
                                                          "built with --windows)."),
    method: str = typer.Option("threshold", "--method", help="With --moments: threshold | nms."),
    param: list[str] = typer.Option([], "--param", help="With --moments: KEY=VALUE of the method (repeat), "
                                                        "e.g. --param z=1.5."),
    plot: Path | None = typer.Option(None, "--plot", help="With --moments: a PNG of each file's score over time "
                                                          "with its moments marked."),
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
    if not moments and (plot is not None or param or method != "threshold"):
        raise typer.BadParameter("--method, --param and --plot go with --moments")
    if moments:
        if audio is not None:
            raise typer.BadParameter("--moments searches by text; drop --audio")
        _moments(index, texts, k, as_json, overrides, use, method, _parse_params(param), plot)
        return
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


def _parse_params(specs: list[str]) -> dict[str, float | int | str]:
    """``KEY=VALUE`` strings -> {key: int, float or str}."""
    out: dict[str, float | int | str] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param {spec!r}: give KEY=VALUE, e.g. --param z=1.5")
        for cast in (int, float, str):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
    return out


def _moments(index: Path, texts: list[str], k: int, as_json: bool, overrides: dict[str, str], use: list[str],
             method: str, params: dict, plot: Path | None) -> None:
    """``salsa2 search --moments``: the table (or JSON) of moments, and the plot."""
    from salsa2.moments.moment_search import search_moments
    from salsa2.moments.plot import plot_moments
    from salsa2.search.index import read_index
    from salsa2.search.query import load_index_models, query_warnings

    from salsa2.moments.detect import method_params

    with user_errors():
        unknown = sorted(set(params) - set(method_params(method)))
        if unknown:
            raise ValueError(f"--param {', '.join(unknown)}: moment method {method!r} takes "
                             f"{', '.join(f'{p}={v}' for p, v in method_params(method).items())}")
        idx = read_index(index)
        models = load_index_models(idx, overrides, use or None)
        for line in query_warnings(models, texts):
            typer.echo(f"warning: {line}", err=True)
        result = search_moments(idx, texts, k=k, models=models, method=method, params=params)
        if plot is not None:
            plot_moments(result, plot)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        rows = [(str(h.rank), f"{h.score:.4f}", f"{h.start:.2f}", f"{h.end:.2f}", h.path) for h in result.hits]
        typer.echo(_format_hits(rows, ("rank", "score", "start", "end", "path")))
    if plot is not None:
        typer.echo(f"plot: {plot}", err=True)


def register(app: typer.Typer) -> None:
    """Add the top-level commands ``index`` and ``search`` to the salsa2 CLI."""
    app.command("index")(index_command)
    app.command("search")(search_command)
