"""`vidsim` command line: index a folder of videos, query the library with a clip, list its near
duplicates, or report its status."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from vidsim import media
from vidsim.methods import METHODS
from vidsim.methods import check as check_method
from vidsim.modalities import MODALITIES, parse_weights
from vidsim.modalities import check as check_modality

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Find the clips of your library that look and sound like a query clip.")

IndexOpt = Annotated[Path | None, typer.Option(help="the encode stage's output folder [default: PROJECT/data/index]")]
ModelsOpt = Annotated[Path | None, typer.Option(help="the train stage's output folder [default: PROJECT/data/models]")]
ProjectOpt = Annotated[Path | None, typer.Option(
    envvar="VIDSIM_PROJECT", help="the vidsim project (its dvc.yaml and dvc.lock) [default: the current folder "
    "or the nearest one above it with a dvc.yaml]")]
UnverifiedOpt = Annotated[bool, typer.Option(
    help="load the index and models without checking them against dvc.lock (e.g. outside the project)")]


def find_project(start: Path) -> Path | None:
    """The nearest folder from `start` upwards that holds a dvc.yaml, so that the CLI works from
    any folder inside the project; None outside every project."""
    for folder in (start, *start.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    return None


def _project_root(project: Path | None, required: bool, alternative: str = "") -> Path | None:
    """The project given (refused without a dvc.yaml), else the one found from the current folder;
    None outside every project unless `required` (then a message saying how to name one)."""
    if project is not None and not (project / "dvc.yaml").is_file():
        raise typer.BadParameter(f"{project} is not a vidsim project: it has no dvc.yaml", param_hint="--project")
    root = project or find_project(Path.cwd())
    if root is None and required:
        raise typer.BadParameter(f"no vidsim project in {Path.cwd()} or above it (no dvc.yaml): run inside the "
                                 f"project, or pass --project DIR{alternative}", param_hint="--project")
    return root


def _load(index: Path | None, models: Path | None, project: Path | None, unverified: bool = False):
    """The library of the project given, or found from the current folder (its data/index and
    data/models unless told otherwise), checked against that project's dvc.lock."""
    from vidsim.integrity import IntegrityError
    from vidsim.search import Library, NotBuilt

    root = _project_root(project, required=index is None and not Path("data/index").exists(),
                         alternative=" (or --index and --models)")
    root = root or Path(".")
    index = index if index is not None else root / "data/index"
    models = models if models is not None else root / "data/models"
    try:
        return Library.open(index, models, project=root, unverified=unverified)
    except NotBuilt as exc:
        raise typer.BadParameter(str(exc), param_hint="--index") from None
    except IntegrityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from None


@app.command()
def query(
    clip: Annotated[Path | None, typer.Argument(
        help="a video file (or a library clip name with --library-clip); optional with --text")] = None,
    text: Annotated[str | None, typer.Option(
        help="describe what to find (needs a CLIP text tower); with CLIP it joins audio_visual fusion")] = None,
    modality: Annotated[str, typer.Option(help="|".join(MODALITIES))] = "audio_visual",
    k: Annotated[int | None, typer.Option("-k", help="number of hits (default: params search.k)")] = None,
    method: Annotated[str | None, typer.Option(
        help="|".join(METHODS) + " (default: params search.method)")] = None,
    weights: Annotated[str | None, typer.Option(
        help="late-fusion weights for audio_visual, e.g. audio=0.6,visual=0.4 (default: params)")] = None,
    score: Annotated[str | None, typer.Option(help="calibrated | softmax2 (the original's)")] = None,
    library_clip: Annotated[bool, typer.Option(help="CLIP names a clip of the library (more like this)")] = False,
    exclude_self: Annotated[bool, typer.Option(
        help="leave out the query clip itself and exact duplicates (same bytes)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    original_format: Annotated[bool, typer.Option(
        help="print hits as the original study did: trackN: clip, probability: ...")] = False,
    index: IndexOpt = None,
    models: ModelsOpt = None,
    project: ProjectOpt = None,
    unverified: UnverifiedOpt = False,
) -> None:
    """Rank the library's clips by similarity to CLIP."""
    logging.basicConfig(level=logging.WARNING)
    try:  # arguments are checked before anything slow is loaded
        check_modality(modality)
        if method is not None:
            check_method(method)
        if weights is not None:
            parse_weights(weights, {})
        if k is not None and k < 1:
            raise ValueError(f"-k must be at least 1, got {k}")
        if clip is None and not text:
            raise ValueError("give a query clip, or --text")
        if clip is not None and not library_clip and not clip.is_file():
            raise ValueError(f"{clip}: {'not a file' if clip.exists() else 'no such file'}")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    lib = _load(index, models, project, unverified)
    try:
        if clip is None:
            result = lib.query_text(text, k)
        elif library_clip:
            result = lib.query_clip(str(clip), modality, k, score, method, weights, exclude_self=exclude_self,
                                    text=text)
        else:
            result = lib.query(clip, modality, k, score, method, weights, exclude_duplicates=exclude_self,
                               text=text)
    except (media.MediaError, ValueError, KeyError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({"query": str(clip) if clip is not None else text, "text": text,
                               "encoder": lib.encoder_info.model, **result.to_dict()}, indent=2))
        return
    fusion = (" weights: " + ",".join(f"{m}={w:.2f}" for m, w in result.weights.items())
              if result.weights else "")
    typer.echo(f"query: {clip.name if clip is not None else repr(text)}  modality: {result.modality}  "
               f"method: {result.method}{fusion}  "
               f"encoder: {lib.encoder_info.model}")
    for h in result.hits:
        if original_format:
            detail = (f"distance: {h.distance:.3f}" if h.distance is not None
                      else ", ".join(f"{m}: {100 * p:.1f}" for m, p in h.scores.items()))
            typer.echo(f"track{h.rank}: {h.clip}, probability: {100 * h.probability:.1f}, {detail}")
            continue
        detail = f"distance {h.distance:.3f}" if h.distance is not None else h.score_text("  ")
        typer.echo(f"{h.rank:>3}. {h.clip}  {100 * h.probability:.1f}% similar  ({detail})")
        if h.match is not None and h.match.seconds > 0:
            typer.echo(f"     {h.match.describe()}" + ("  [same footage]" if h.same_footage else ""))


@app.command()
def duplicates(
    modality: Annotated[str, typer.Option(help="|".join(MODALITIES))] = "audio_visual",
    k: Annotated[int, typer.Option("-k", help="hits of each clip checked")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    index: IndexOpt = None,
    models: ModelsOpt = None,
    project: ProjectOpt = None,
    unverified: UnverifiedOpt = False,
) -> None:
    """List the library's near duplicates: pairs of clips that share footage (a re-upload, a cut)."""
    logging.basicConfig(level=logging.WARNING)
    try:
        check_modality(modality)
        if k < 1:
            raise ValueError(f"-k must be at least 1, got {k}")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    lib = _load(index, models, project, unverified)
    pairs = lib.duplicates(modality, k)
    if as_json:
        typer.echo(json.dumps([{"clip": a, "duplicate": b, "match": m.to_dict()} for a, b, m in pairs], indent=2))
        return
    scope = "in sound and picture" if modality == "audio_visual" else f"in {modality}"
    typer.echo(f"{len(pairs)} near-duplicate pair{'s' * (len(pairs) != 1)} (the same footage {scope})")
    for a, b, m in pairs:
        typer.echo(f"  {a}  ~  {b}  ({m.describe().replace('the query', a)}, score {m.score:.2f})")


@app.command("index")
def index_folder(
    folder: Annotated[Path, typer.Argument(help="your folder of videos (searched recursively)")],
    labels: Annotated[str | None, typer.Option(
        help="an optional CSV in FOLDER: file, audio_label, visual_label [default: params library.labels]")] = None,
    queries: Annotated[Path | None, typer.Option(
        help="a folder of held-out query clips (with labels.csv) to score the library with")] = None,
    excerpts: Annotated[Path | None, typer.Option(
        help="a folder of excerpt queries (labels.csv: file, source, source_start) to score with")] = None,
    project: ProjectOpt = None,
) -> None:
    """Index FOLDER as the project's library: sets `library.dir` in params.yaml and runs `dvc repro`.

    The pipeline is the one `dvc repro` runs (extract, featurize, train, encode, evaluate), with
    its caches: indexing the same folder again after adding clips only processes the new ones.
    Nothing of the demo is built for a folder of your own.
    """
    from vidsim.project import use_library

    root = _project_root(project, required=True)
    sets = {name: path for name, path in (("queries", queries), ("excerpts", excerpts)) if path is not None}
    try:
        change = use_library(root, folder, labels, sets or None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="FOLDER") from None
    (old_dir, new_dir), (old_sets, new_sets) = change.library, change.evaluation
    typer.echo(f"params.yaml: library.dir: {new_dir}" + (f" (was {old_dir})" if old_dir != new_dir else ""))
    if old_sets != new_sets:
        typer.echo(f"params.yaml: evaluation: {new_sets or '{} (leave-one-out over the library only)'}"
                   f" (was {old_sets or '{}'})")
    typer.echo("running dvc repro ...")
    # this environment's dvc, and its python for the stages, even where it is not activated
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    done = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=root, env=env, check=False)
    if done.returncode != 0:
        typer.echo(f"error: dvc repro failed (exit {done.returncode}); its log is above", err=True)
        raise typer.Exit(done.returncode)
    typer.echo("indexed. Query it: vidsim query CLIP.mp4, or open the app: streamlit run streamlit_app/main.py")


@app.command()
def status(index: IndexOpt = None, models: ModelsOpt = None, project: ProjectOpt = None,
           as_json: Annotated[bool, typer.Option("--json")] = False, unverified: UnverifiedOpt = False) -> None:
    """Report the library: clips per modality, failed files, and the encoder in use."""
    lib = _load(index, models, project, unverified)
    table = lib.status()
    failed = table[table["status"] == "error"] if len(table) else table
    enc = lib.encoder_info
    report = {
        "clips": len(lib.index.clips),
        "per_modality": {m: len(lib.index.spaces[f"raw.{m}"].rows) for m in ("audio", "visual")
                         if f"raw.{m}" in lib.index.spaces},
        "failed": failed[["clip", "reason"]].to_dict("records") if len(failed) else [],
        "encoder": {"model": enc.model, "weights": enc.weights, "dim": enc.dim,
                    "text_queries": enc.has_text},
        "method": lib.default_method,
        "weights": lib.default_weights,
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"clips indexed: {report['clips']}  "
               + "  ".join(f"{m}: {n}" for m, n in report["per_modality"].items()))
    typer.echo(f"encoder: {enc.model} ({enc.weights}), {enc.dim}-d, {enc.precision}, "
               f"text queries: {'yes' if enc.has_text else 'no (image-only weights)'}")
    typer.echo(f"failed files: {len(report['failed'])}")
    for row in report["failed"]:
        typer.echo(f"  {row['clip']}: {row['reason']}")


if __name__ == "__main__":
    app()
