"""The label-efficiency benchmark: its statistics, plan and scheduler, and the smoke setting end to end with an
interruption (the killed run resumes without redoing finished jobs)."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

from clap_plugin.benchmarks.label_efficiency import ARMS, PRESETS, Setting
from clap_plugin.benchmarks.label_efficiency.jobs import JobError, choose_iterations
from clap_plugin.benchmarks.label_efficiency.plan import build_plan, by_id, encoder_job
from clap_plugin.benchmarks.label_efficiency.report import diff_of_means, mean_std
from clap_plugin.benchmarks.label_efficiency.scheduler import run_jobs

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TOOL = osp.join(ROOT, 'tools', 'benchmarks', 'label_efficiency.py')


def test_mean_std_and_difference_of_means_match_hand_computed_values():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0)
    d, se = diff_of_means([1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0])
    assert d == pytest.approx(2.0) and se == pytest.approx((1.0 / 3) ** 0.5)


def test_ladder_takes_the_first_best_rung_and_flags_the_cap():
    curve = [dict(step=20, mAP=0.01, NDS=0), dict(step=40, mAP=0.03, NDS=0), dict(step=60, mAP=0.02, NDS=0),
             dict(step=80, mAP=0.03, NDS=0)]
    assert choose_iterations(curve, (20, 40, 80)) == dict(iterations=40, at_cap=False)  # 60 is not a rung
    curve[-1]['mAP'] = 0.05
    assert choose_iterations(curve, (20, 40, 80)) == dict(iterations=80, at_cap=True)
    with pytest.raises(JobError, match='expected'):
        choose_iterations(curve[:2], (20, 40, 80))


def test_plan_dependencies_follow_the_protocol():
    plan = by_id(build_plan(PRESETS['tiny']))
    assert set(plan['merge-unipad'].deps) == {'pretrain-unipad_lidar', 'pretrain-unipad_camera'}
    assert 'teacher' in plan['pretrain-ppkt'].deps and 'teacher' in plan['pretrain-cmcr'].deps
    assert 'teacher' not in plan['pretrain-simipu'].deps
    # every fine-tune waits for scratch's ladder (the iteration count) and for its arm's encoders
    fine = [j for j in plan.values() if j.kind == 'finetune']
    assert len(fine) == 4 * 2 * 3 and all('ladder' in j.deps for j in fine)
    assert set(plan['finetune-clap-f0.1-s2'].deps) == {'ladder', 'pretrain-clap'}
    assert plan['finetune-scratch-f0.25-s0'].deps == ('ladder', )
    assert {j.arm for j in plan.values() if j.kind == 'probe'} == set(ARMS)
    assert encoder_job('unipad') == 'merge-unipad' and encoder_job('scratch') is None
    # the rendering stages, and only those, get pretext figures
    assert {j.stage for j in plan.values() if j.kind == 'pretext'} == {
        'unipad_lidar', 'unipad_camera', 'joint_uniform', 'joint_curvature', 'clap'}


def test_setting_rejects_bad_values_and_changed_identity():
    with pytest.raises(ValueError, match='ladder'):
        Setting(ladder=(40, 20)).validate()
    with pytest.raises(ValueError, match='unknown arms'):
        Setting(probe_arms=('scratch', 'mae')).validate()
    with pytest.raises(ValueError, match='fractions'):
        Setting(fractions=(0.0, )).validate()
    a, b = Setting(), Setting(seeds=(0, 1, 2, 3), pretrain_epochs=12)
    assert a.identity_diff(b) == ['pretrain_epochs: 4 -> 12']  # more seeds is not a new experiment
    assert Setting.from_json(json.loads(json.dumps(b.to_json()))) == b


def test_setting_data_fields_presets_and_legacy_settings():
    diverse = PRESETS['diverse']
    diverse.validate()
    assert (diverse.train_scenes, diverse.val_scene_count) == (40, 20)
    assert diverse.val_scene_count * diverse.samples_per_scene >= 40  # a val split of at least 40 samples
    assert (diverse.samples_per_scene, diverse.sweeps, diverse.objects_per_class) == (2, 1, (1, 3))
    assert (PRESETS['tiny'].train_scenes, PRESETS['tiny'].val_scene_count) == (5, 5)
    for bad, key in ((dict(objects_per_class=(3, 1)), 'objects_per_class'), (dict(val_scenes=10), 'val_scenes'),
                     (dict(probe_version=3), 'probe_version'), (dict(heatmap_prior_prob=1.0), 'heatmap_prior_prob'),
                     (dict(samples_per_scene=1), 'samples_per_scene')):
        with pytest.raises(ValueError, match=key):
            Setting(**bad).validate()
    # a setting saved before these fields existed ran the raw probe, no heatmap prior and the old data: a run
    # directory made so refuses today's setting instead of mixing records of two protocols
    old = {k: v for k, v in Setting().to_json().items() if k not in Setting.LEGACY}
    legacy = Setting.from_json(old)
    assert (legacy.probe_version, legacy.heatmap_prior_prob, legacy.val_scenes) == (1, None, None)
    assert legacy.identity_diff(Setting()) == ['probe_version: 1 -> 2', 'heatmap_prior_prob: None -> 0.1']
    assert Setting.from_json(json.loads(json.dumps(diverse.to_json()))) == diverse


def test_finetune_options_carry_the_heatmap_prior():
    from clap_plugin.benchmarks.label_efficiency.jobs import finetune_options
    data = dict(data_root='/tmp/x/', version='v1.0-trainval')
    for prior in (0.1, None):
        opts = finetune_options(Setting(heatmap_prior_prob=prior), data, 0.1, 0, 40, 40, None)
        assert f'model.bbox_head.heatmap_prior_prob={prior}' in opts


def test_scheduler_runs_dependencies_first_skips_done_jobs_and_blocks_only_dependants():
    from clap_plugin.benchmarks.label_efficiency.plan import Job
    jobs = [Job('a', 'data'), Job('b', 'pretrain', ('a', )), Job('c', 'pretrain', ('a', )),
            Job('d', 'finetune', ('b', )), Job('e', 'finetune', ('c', )), Job('old', 'data')]
    done = {'old'}
    order = []

    def launch(job):
        order.append(job.id)
        if job.id == 'b':
            raise RuntimeError('boom')
        done.add(job.id)

    finished, failed = run_jobs(jobs, done.__contains__, launch, workers=2, log=lambda s: None, progress=False)
    assert 'old' not in order and order.index('a') < order.index('c') < order.index('e')
    assert sorted(finished) == ['a', 'c', 'e']
    assert 'boom' in failed['b'] and failed['d'] == "blocked by ['b']"
    # max_jobs: stop launching after that many, the rest stays for the next run
    done2, order2 = set(), []
    finished, failed = run_jobs(jobs[:3], done2.__contains__, lambda j: (order2.append(j.id), done2.add(j.id)),
                                workers=1, max_jobs=2, log=lambda s: None, progress=False)
    assert len(order2) == 2 and not failed


def _records(out):
    folder = osp.join(out, 'records')
    return {f: os.stat(osp.join(folder, f)).st_mtime_ns for f in os.listdir(folder) if f.endswith('.json')}


def _processes_mentioning(text: str) -> list:
    """Command lines of the live processes that contain ``text``."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                line = f.read().replace(b'\0', b' ').decode(errors='replace')
            with open(f'/proc/{pid}/stat') as f:
                zombie = f.read().rsplit(')', 1)[1].split()[0] == 'Z'
        except OSError:
            continue
        if text in line and not zombie:
            found.append(line)
    return found


def test_smoke_run_survives_a_kill_and_resumes_without_redoing_jobs(synthetic_nus, tmp_path):
    out = str(tmp_path / 'le')
    cmd = [sys.executable, TOOL, '--smoke', '--out', out, '--data-root', synthetic_nus, '--no-progress']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 600
    rec = osp.join(out, 'records')
    # interrupt once the first training job has its record (data's comes first, at once)
    while time.time() < deadline and proc.poll() is None:
        if osp.isdir(rec) and len([f for f in os.listdir(rec) if f != 'data.json' and f.endswith('.json')]) >= 1:
            break
        time.sleep(1)
    assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
    os.kill(proc.pid, signal.SIGTERM)  # the benchmark stops its running jobs too
    proc.wait(timeout=120)
    time.sleep(1)
    # ... with the training processes they started (nothing of the run goes on behind the resumed run)
    assert not _processes_mentioning(out), _processes_mentioning(out)
    before = _records(out)
    assert 'data.json' in before and len(before) >= 2
    assert 'ladder.json' not in before or 'pretrain-clap.json' not in before  # really interrupted early
    # the interrupted invocation still counts: its wall time and the jobs it finished
    (killed, ) = json.load(open(osp.join(out, 'invocations.json')))
    job_ids = {j.id for j in build_plan(PRESETS['smoke'])}
    assert killed['interrupted'] and killed['seconds'] > 0
    assert killed['jobs_run'] == len([f for f in before if f[:-len('.json')] in job_ids])
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f'{len(before)} of ' in done.stdout  # the resumed run counted the finished jobs as done
    invocations = json.load(open(osp.join(out, 'invocations.json')))
    assert len(invocations) == 2 and 'interrupted' not in invocations[1]
    after = _records(out)
    assert all(after[f] == t for f, t in before.items())  # finished jobs were not run again
    setting = PRESETS['smoke']
    plan = build_plan(setting)
    assert {f'{j.id}.json' for j in plan} <= set(after)
    for j in plan:
        if j.kind == 'finetune':
            r = json.load(open(osp.join(rec, f'{j.id}.json')))
            assert 0.0 <= r['mAP'] <= 1.0 and 0.0 <= r['NDS'] <= 1.0
            assert r['iterations'] in setting.ladder
    probes = [f for f in after if f.startswith('probe-') and '-f' in f]
    assert len(probes) == len(setting.probe_arms) * len(setting.fractions) * len(setting.seeds)
    md = open(osp.join(out, 'label_efficiency.md')).read()
    assert '| CLAP |' in md and '| scratch |' in md and 'CLAP − scratch' in md
    assert '## Pretext' in md and osp.getsize(osp.join(out, 'label_efficiency.png')) > 10_000
    # a third run finds everything done and only rewrites the report
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f'{len(plan)} of {len(plan)} jobs already done' in again.stdout
    # another setting in the same directory is refused, naming what differs
    bad = subprocess.run([sys.executable, TOOL, '--out', out, '--data-root', synthetic_nus], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and 'pretrain_epochs' in bad.stderr
