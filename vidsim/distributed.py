"""The Ray engine of the featurize stage (`featurize.engine: ray`), for libraries one machine
cannot featurize in time.

Each Ray worker is an actor holding one single-threaded encoder session (loaded once, like a local
worker thread's) and runs the same `featurization.featurize_one` on the files it is handed, so
the features are identical to the local engine's and land in the same per-file cache,
content-addressed and written atomically: a killed run resumes from it, and a worker that dies
costs only the files it had in hand (retried once on a restarted actor, then reported failed).

`ray.init()` starts a local Ray on a laptop; with RAY_ADDRESS set it joins that cluster, whose
nodes must see the library, the extract cache and the feature cache at the same paths (shared
storage). Ray is an optional dependency: `pip install -e .[ray]`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from vidsim import media
from vidsim.clip import ClipFeatures
from vidsim.config import AudioConfig, ExtractConfig
from vidsim.encoder import EncoderInfo
from vidsim.featurization import Job

log = logging.getLogger(__name__)
RETRIES = 1  # a file whose worker died is tried once more on a restarted worker


def _ray():
    try:
        import ray  # noqa: PLC0415
    except ImportError:
        raise RuntimeError("featurize.engine is ray but Ray is not installed: pip install -e .[ray] "
                           "(or set featurize.engine: local)") from None
    return ray


class _Worker:
    """One encoder per worker process, loaded when the actor starts."""

    def __init__(self, info: EncoderInfo, audio_cfg: AudioConfig, extract_cfg: ExtractConfig, cache: str, fp: str):
        from threadpoolctl import threadpool_limits  # noqa: PLC0415

        from vidsim import encoder as encoders  # noqa: PLC0415

        logging.basicConfig(level=logging.WARNING)
        threadpool_limits(1)  # as the local engine does: features independent of the core count
        self.encoder = encoders.load_info(info).with_threads(1)
        self.args = (audio_cfg, extract_cfg, Path(cache).absolute(), fp)

    def run(self, job: Job) -> ClipFeatures | media.MediaError:
        from vidsim.featurization import featurize_one  # noqa: PLC0415

        return featurize_one(job, self.encoder, *self.args)


def _absolute(job: Job) -> Job:
    info = dataclasses.replace(job.info, path=str(Path(job.info.path).absolute()))
    return dataclasses.replace(job, info=info, wav=None if job.wav is None else job.wav.absolute())


def workers_for(jobs: int, cpus: float) -> int:
    """One actor per CPU Ray offers (a whole cluster's), no more than there are files."""
    return max(1, min(jobs, int(cpus)))


def run_ray(jobs: list[Job], info: EncoderInfo, audio_cfg: AudioConfig, extract_cfg: ExtractConfig,
            cache: Path, fp: str) -> Iterator[ClipFeatures | media.MediaError]:
    """Featurize the jobs on Ray workers; results in the jobs' order (a MediaError for a bad file,
    or for one whose worker died twice)."""
    if not jobs:
        return
    jobs = [_absolute(j) for j in jobs]  # a worker's working folder is not the driver's
    ray = _ray()
    started = not ray.is_initialized()
    if started:  # RAY_ADDRESS, when set, joins that cluster; else a local Ray on this machine's cores
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False,
                 runtime_env={"env_vars": {k: v for k, v in os.environ.items() if k.startswith("VIDSIM_")}})
    try:
        cpus = ray.cluster_resources().get("CPU", 1)
        actor = ray.remote(num_cpus=1, max_restarts=RETRIES, max_task_retries=RETRIES)(_Worker)
        n = workers_for(len(jobs), cpus)
        pool = ray.util.ActorPool([actor.remote(info, audio_cfg, extract_cfg, str(cache), fp) for _ in range(n)])
        log.info("featurize on Ray: %d workers for %d files (%g CPUs)", n, len(jobs), cpus)
        for job in jobs:
            pool.submit(lambda a, j: a.run.remote(j), job)
        for job in jobs:
            try:
                yield pool.get_next()
            except ray.exceptions.RayError as exc:
                log.warning("%s: its Ray worker failed: %s", job.clip, type(exc).__name__)
                yield media.MediaError(job.info.path, f"its Ray worker failed ({type(exc).__name__})")
    finally:
        if started:
            ray.shutdown()
