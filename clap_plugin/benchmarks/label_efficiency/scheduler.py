"""Run the jobs of a plan with a fixed number of worker processes, dependencies first, resumably.

A job is done when its record exists; done jobs are never run again, so a run that was killed continues where
it stopped. A failed job blocks its dependants only; the others go on, and the failures are returned.
"""
import fnmatch
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from mmengine.utils import ProgressBar

from .plan import Job

# launch order among the jobs that can start (a job's dependencies always come earlier in it): the probes, cheap and
# covering every arm, before the full fine-tunes, so that a run stopped part-way has the whole probe table
PRIORITY = dict(data=0, ceiling=1, ladder=2, teacher=3, pretrain=4, merge=5, probe=6, finetune=7, pretext=8)


def select_jobs(jobs: List[Job], patterns: Sequence[str], is_done: Callable[[str], bool]) -> Set[str]:
    """The ids of the jobs whose id matches one of the shell-style ``patterns`` (``finetune-clap-*``), with every
    dependency they need that is not done yet (transitively). Raises ValueError naming a pattern that matches
    no job."""
    ids = [j.id for j in jobs]
    deps = {j.id: j.deps for j in jobs}
    chosen: Set[str] = set()
    for pat in patterns:
        hit = fnmatch.filter(ids, pat)
        if not hit:
            raise ValueError(f'--jobs {pat!r} matches no job of the plan (its jobs: {", ".join(ids)})')
        chosen.update(hit)
    todo = list(chosen)
    while todo:
        for d in deps.get(todo.pop(), ()):
            if d not in chosen and not is_done(d):
                chosen.add(d)
                todo.append(d)
    return chosen


def run_jobs(jobs: List[Job], is_done: Callable[[str], bool], launch: Callable[[Job], None], workers: int,
             max_jobs: Optional[int] = None, log: Callable[[str], None] = print,
             progress: bool = True, only: Optional[Set[str]] = None) -> Tuple[List[str], Dict[str, str]]:
    """Run every job that is not done. ``launch(job)`` runs one job to completion and raises on failure.

    Returns (the ids run to completion now, {failed or blocked id: why}). ``max_jobs`` runs only the first that
    many jobs that are not done, in launch order (:data:`PRIORITY`, then plan order), and leaves the rest for
    the next run: a way to interrupt a run at a known point (``--max-jobs 2`` runs the data and the ceiling).
    ``only`` (:func:`select_jobs`) runs just those jobs, the others staying for a later run (``max_jobs`` then
    counts among them).
    """
    if workers < 1:
        raise ValueError(f'workers must be >= 1, got {workers}')
    pending = sorted((j for j in jobs if not is_done(j.id)), key=lambda j: PRIORITY.get(j.kind, 9))
    eligible = pending if only is None else [j for j in pending if j.id in only]
    quota = None if max_jobs is None and only is None else {
        j.id for j in (eligible if max_jobs is None else eligible[:max(max_jobs, 0)])}
    known = {j.id for j in jobs}
    for j in pending:
        missing = [d for d in j.deps if d not in known]
        if missing:
            raise ValueError(f'job {j.id} depends on unknown jobs {missing}')
    log(f'{len(jobs) - len(pending)} of {len(jobs)} jobs already done; '
        + (f'{len(pending)} to run' if quota is None else f'{len(quota)} of the {len(pending)} left to run now')
        + f' on {workers} workers')
    bar = ProgressBar(len(pending)) if progress and pending else None
    finished: List[str] = []
    failed: Dict[str, str] = {}
    running: Dict[Future, Tuple[Job, float]] = {}
    launched = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            for job in list(pending):
                if len(running) >= workers:
                    break
                if quota is not None and job.id not in quota:
                    continue
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
                if pending and quota is not None:  # the quota's jobs have run (or were blocked)
                    log(f'stopped after {launched} jobs (--max-jobs / --jobs); {len(pending)} left for the next run')
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
