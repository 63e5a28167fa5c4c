"""Refuse to serve models or an index that differ from what the pipeline recorded in dvc.lock.

The check reads the bytes: each file's MD5 is compared with the one DVC recorded (a directory's
file list is DVC's own `.dir` manifest in its cache, itself checked against dvc.lock), so an edit
that keeps a file's size and modification time is caught too, and it costs milliseconds instead
of the ~0.7 s of opening the DVC project. Where the manifest is not in the project's default cache
(another cache folder, a cleared cache), DVC itself does the check.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import yaml


class IntegrityError(RuntimeError):
    """An artifact's content does not match its hash in dvc.lock."""


def verify_outputs(repo_root: str | os.PathLike, outputs: list[str | os.PathLike]) -> None:
    """Check DVC-tracked outputs (e.g. "data/index") against dvc.lock.

    Raises:
        IntegrityError: an output is missing from dvc.lock, or its files were changed since.
    """
    root = Path(repo_root).resolve()
    outside = [str(o) for o in outputs if not Path(o).resolve().is_relative_to(root)]
    if outside:
        raise IntegrityError(f"{', '.join(outside)} is outside the DVC project {root}, so dvc.lock cannot "
                             "vouch for it: run from the project that built it")
    wanted = {Path(o).resolve().relative_to(root).as_posix() for o in outputs}
    recorded = _locked_outputs(root / "dvc.lock")
    missing = wanted - set(recorded)
    if missing:
        raise IntegrityError(f"{', '.join(sorted(missing))} not produced by any stage of dvc.yaml")
    fallback = []
    for name in sorted(wanted):
        value = recorded[name]
        if not value:
            raise IntegrityError(f"{name} has no hash in dvc.lock: run `dvc repro`")
        problem = _check(root, name, value)
        if problem is None:
            fallback.append(name)
        elif problem:
            raise IntegrityError(f"{name} does not match the hash recorded in dvc.lock ({problem}): "
                                 "refusing to load it; rebuild it with `dvc repro`")
    if fallback:
        _verify_with_dvc(root, fallback)


def _locked_outputs(lock: Path) -> dict[str, str]:
    """path -> recorded md5 ("<hex>" for a file, "<hex>.dir" for a folder) of every stage output."""
    try:
        data = yaml.load(lock.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as exc:
        raise IntegrityError(f"cannot read {lock.name} ({type(exc).__name__}): run `dvc repro`") from None
    found = {}
    for stage in (data or {}).get("stages", {}).values():
        for out in stage.get("outs", []) or []:
            found[Path(out["path"]).as_posix()] = str(out.get("md5", ""))
    return found


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(root: Path, name: str, value: str) -> str | None:
    """"" when the output's bytes match, a reason when not, None when this cannot tell (no manifest)."""
    path = root / name
    if not value.endswith(".dir"):
        if not path.is_file():
            return "missing"
        return "" if _md5(path) == value else "modified"
    manifest = root / ".dvc" / "cache" / "files" / "md5" / value[:2] / value[2:]
    if not manifest.is_file():
        return None
    if _md5(manifest) != value.removesuffix(".dir"):
        return None  # the cache itself is damaged: let DVC judge
    listed = {entry["relpath"]: entry["md5"] for entry in json.loads(manifest.read_text(encoding="utf-8"))}
    if not path.is_dir():
        return "missing"
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() or p.is_symlink()}
    if present != set(listed):
        extra, gone = sorted(present - set(listed)), sorted(set(listed) - present)
        return "; ".join(filter(None, [extra and f"added: {', '.join(extra[:3])}",
                                       gone and f"deleted: {', '.join(gone[:3])}"]))
    changed = sorted(rel for rel, md5 in listed.items() if _md5(path / rel) != md5)
    return f"modified: {', '.join(changed[:3])}" if changed else ""


def _verify_with_dvc(root: Path, names: list[str]) -> None:
    from dvc.repo import Repo  # noqa: PLC0415 - slow to import and open: only when needed

    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            for out in stage.outs:
                name = Path(str(out.def_path)).as_posix()
                if name in names:
                    changed = out.status()
                    if changed:
                        raise IntegrityError(
                            f"{name} does not match the hash recorded in dvc.lock ({changed[name]}): "
                            "refusing to load it; rebuild it with `dvc repro`")
