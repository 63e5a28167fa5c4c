"""Point a vidsim project at a library: the `library` and `evaluation` sections of its params.yaml,
edited in place with their comments kept, for `vidsim index DIR` (the same edit a DVC user makes by hand)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from vidsim.config import ExtractConfig
from vidsim.extraction import list_videos
from vidsim.io import atomic_path

SHELL_QUOTED = '"$`\\'  # what a shell still interprets between double quotes


@dataclass(frozen=True)
class LibraryChange:
    """What `use_library` changed in params.yaml (old -> new), for the user to read."""

    library: tuple[str, str]
    evaluation: tuple[dict[str, str], dict[str, str]]


def _as_param(folder: Path, root: Path) -> str:
    """The folder as params.yaml names it: relative to the project when inside it, else absolute."""
    folder = folder.resolve()
    try:
        return folder.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(folder)


def use_library(root: Path, folder: Path, labels: str | None = None,
                evaluation: dict[str, Path] | None = None) -> LibraryChange:
    """Make `folder` the project's library in its params.yaml.

    The held-out sets in `evaluation` belong to a library: when the library changes they are
    replaced by the sets given (none by default), so that nothing of another library (the demo's)
    is built or scored; for the same library they stay unless others are given.

    Raises:
        ValueError: the folder does not exist or holds no video file, a held-out set's folder
            does not exist, or the project has no params.yaml.
    """
    params_path = root / "params.yaml"
    if not params_path.is_file():
        raise ValueError(f"{root} has no params.yaml: not a vidsim project")
    if not folder.is_dir():
        raise ValueError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    extensions = ExtractConfig().extensions
    if not list_videos(folder, extensions):
        raise ValueError(f"{folder} holds no video file ({', '.join(extensions)})")
    for name, path in (evaluation or {}).items():
        if not path.is_dir():
            raise ValueError(f"{path} (held-out {name}): no such folder")
    for path in (folder, *(evaluation or {}).values()):
        if odd := sorted(set(SHELL_QUOTED) & set(str(path.resolve()))):
            raise ValueError(f"{path}: dvc.yaml passes the folder to its stages in double quotes, where "
                             f"{' '.join(odd)} mean something to the shell: rename it, or index a link to it")
    yaml = YAML()  # round trip: comments and order stay
    yaml.preserve_quotes = True
    params = yaml.load(params_path.read_text(encoding="utf-8"))
    section = params.setdefault("library", {})
    old_dir, old_sets = str(section.get("dir", "")), dict(params.get("evaluation") or {})
    new_dir = _as_param(folder, root)
    section["dir"] = new_dir
    if labels is not None:
        section["labels"] = labels
    if evaluation is not None or new_dir != old_dir:
        sets = {name: _as_param(path, root) for name, path in (evaluation or {}).items()}
        if "evaluation" in params:
            params["evaluation"].clear()
            params["evaluation"].update(sets)
        else:
            params["evaluation"] = sets
    new_sets = dict(params.get("evaluation") or {})
    with atomic_path(params_path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        yaml.dump(params, fh)
    return LibraryChange((old_dir, new_dir), ({k: str(v) for k, v in old_sets.items()},
                                              {k: str(v) for k, v in new_sets.items()}))
