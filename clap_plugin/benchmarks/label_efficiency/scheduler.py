"""Run the jobs of a plan with a fixed number of worker processes, dependencies first, resumably.

A job is done when its record exists; done jobs are never run again, so a run that was killed continues where
it stopped. A failed job blocks its dependants only; the others go on, and the failures are returned.
"""
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Dict, List, Optional, Set, Tuple

from mmengine.utils import ProgressBar

from .plan import Job

PRIORITY = dict(data=0, ladder=1, teacher=2, pretrain=3, merge=4, finetune=5, probe=6, pretext=7)


def run_jobs(jobs: List[Job], is_done: Callable[[str], bool], launch: Callable[[Job], None], workers: int,
             max_jobs: Optional[int] = None, log: Callable[[str], None] = print,
             progress: bool = True) -> Tuple[List[str], Dict[str, str]]:
    """Run every job that is not done. ``launch(job)`` runs one job to completion and raises on failure.

    Returns (the ids run to completion now, {failed or blocked id: why}). ``max_jobs`` stops launching after that
    many jobs (a way to interrupt a run at a known point).
    """
    if workers < 1:
        raise ValueError(f'workers must be >= 1, got {workers}')
    pending = sorted((j for j in jobs if not is_done(j.id)), key=lambda j: PRIORITY.get(j.kind, 9))
    known = {j.id for j in jobs}
    for j in pending:
        missing = [d for d in j.deps if d not in known]
        if missing:
            raise ValueError(f'job {j.id} depends on unknown jobs {missing}')
    log(f'{len(jobs) - len(pending)} of {len(jobs)} jobs already done; {len(pending)} to run on {workers} workers')
    bar = ProgressBar(len(pending)) if progress and pending else None
    finished: List[str] = []
    failed: Dict[str, str] = {}
    running: Dict[Future, Tuple[Job, float]] = {}
    launched = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            for job in list(pending):
                if len(running) >= workers or (max_jobs is not None and launched >= max_jobs):
                    break
                blocked = [d for d in job.deps if d in failed]
                if blocked:
                    failed[job.id] = f'blocked by {blocked}'
                    pending.remove(job)
                    if bar:
                        bar.update()
                    continue
                if all(is_done(d) for d in job.deps):
                    pending.remove(job)
                    running[pool.submit(launch, job)] = (job, time.time())
                    launched += 1
            if not running:
                if pending and max_jobs is not None and launched >= max_jobs:
                    log(f'stopped after {launched} jobs (--max-jobs); {len(pending)} left for the next run')
                    break
                if pending:  # nothing can start: every pending job waits on a job that will not finish
                    for job in pending:
                        failed[job.id] = f'waits on {[d for d in job.deps if not is_done(d)]}'
                    break
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                job, t0 = running.pop(fut)
                err: Optional[BaseException] = fut.exception()
                if err is None and is_done(job.id):
                    finished.append(job.id)
                    log(f'done   {job.id} ({time.time() - t0:.0f} s)')
                else:
                    failed[job.id] = str(err) if err is not None else 'finished without writing its record'
                    log(f'FAILED {job.id}: {failed[job.id]}')
                if bar:
                    bar.update()
    return finished, failed


def done_set(ids: List[str], is_done: Callable[[str], bool]) -> Set[str]:
    return {i for i in ids if is_done(i)}
