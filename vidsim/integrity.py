"""Refuse to serve models or an index that differ from what the pipeline recorded in dvc.lock."""

from __future__ import annotations

import os
from pathlib import Path


class IntegrityError(RuntimeError):
    """An artifact's content does not match its hash in dvc.lock."""


def verify_outputs(repo_root: str | os.PathLike, outputs: list[str | os.PathLike]) -> None:
    """Check DVC-tracked outputs (e.g. "data/index") against dvc.lock.

    Raises:
        IntegrityError: an output is missing from dvc.lock, or its files were changed since.
    """
    from dvc.repo import Repo  # imported here: the CLI's other commands do not need it

    root = Path(repo_root).resolve()
    wanted = {Path(o).resolve().relative_to(root).as_posix() for o in outputs}
    found = set()
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            for out in stage.outs:
                name = Path(str(out.def_path)).as_posix()
                if name not in wanted:
                    continue
                found.add(name)
                if out.hash_info is None or not out.hash_info.value:
                    raise IntegrityError(f"{name} has no hash in dvc.lock: run `dvc repro`")
                changed = out.status()
                if changed:
                    raise IntegrityError(
                        f"{name} does not match the hash recorded in dvc.lock ({changed[name]}): "
                        "refusing to load it; rebuild it with `dvc repro`")
    missing = wanted - found
    if missing:
        raise IntegrityError(f"{', '.join(sorted(missing))} not produced by any stage of dvc.yaml")
