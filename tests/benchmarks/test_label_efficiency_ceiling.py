"""The ceiling job and the 5 % saturation rule: the rule on hand-made curves, the ceiling's and the ladder's
records (the training tool replaced by a fake that writes mmengine's scalars), the ceiling's place in the plan and
the scheduler, and the ceiling fields of the setting."""
import json
import os
import os.path as osp

import pytest

from clap_plugin.benchmarks.label_efficiency import PRESETS, Setting
from clap_plugin.benchmarks.label_efficiency import jobs as runners
from clap_plugin.benchmarks.label_efficiency.curves import (
    ceiling_summary,
    ladder_convergence,
    relative_gain,
    saturated_at,
    saturates,
)
from clap_plugin.benchmarks.label_efficiency.jobs import choose_iterations
from clap_plugin.benchmarks.label_efficiency.plan import Job, RunPaths, build_plan, by_id
from clap_plugin.benchmarks.label_efficiency.scheduler import run_jobs


def curve(maps, interval=100):
    return [dict(step=interval * (i + 1), mAP=m, NDS=m / 2 + 0.1) for i, m in enumerate(maps)]


# ------------------------------------------------------------------------------------------ the 5 % rule
def test_saturates_below_five_percent_relative_gain_and_never_from_zero():
    assert saturates(0.100, 0.1049) and not saturates(0.100, 0.1051)
    assert saturates(0.2, 0.1)  # a drop is no progress
    assert not saturates(0.0, 0.0) and not saturates(0.0, 0.3)  # from the floor: undefined, not saturated
    assert relative_gain(0.2, 0.25) == pytest.approx(0.25) and relative_gain(0.0, 0.1) is None


@pytest.mark.parametrize('maps, expected', [
    ([0.10, 0.20, 0.205, 0.30], 200),  # +2.5 % after 200 (later rise does not matter: the first one counts)
    ([0.01, 0.02, 0.04, 0.08], None),  # still doubling at the cap
    ([0.10, 0.10, 0.10], 100),  # flat above the floor: saturated at the first validation
    ([0.0, 0.0, 0.0], None),  # flat on the floor: a relative gain from 0 is undefined, never saturated
    ([0.0, 0.05, 0.0505, 0.06], 200),  # leaves the floor, then +1 % after 200
    ([0.10, 0.06, 0.20], 100),  # a drop saturates
])
def test_saturated_at_is_the_first_validation_followed_by_less_than_five_percent(maps, expected):
    assert saturated_at(curve(maps)) == expected
    assert saturated_at(list(reversed(curve(maps)))) == expected  # order of the input does not matter


def test_ceiling_summary_best_point_saturation_and_the_cap():
    s = ceiling_summary(curve([0.10, 0.20, 0.205, 0.30]), 100, 400)
    assert (s.best_map, s.best_iters, s.saturated, s.saturated_at, s.stopped_by) == (0.30, 400, True, 200, None)
    assert s.best_nds == pytest.approx(0.25) and [c['step'] for c in s.curve] == [100, 200, 300, 400]
    never = ceiling_summary(curve([0.01, 0.02, 0.04, 0.08]), 100, 400)
    assert (never.saturated, never.saturated_at, never.stopped_by) == (False, None, 'ceiling_max_iters = 400')
    ties = ceiling_summary(curve([0.3, 0.1, 0.3]), 100, 300)
    assert ties.best_iters == 100  # the first of equals
    with pytest.raises(ValueError, match='expected'):
        ceiling_summary(curve([0.1, 0.2]), 100, 400)  # a validation is missing


def test_ladder_converges_when_its_last_rung_gains_less_than_five_percent():
    # rungs 20, 40, 80; the validation at 60 is not a rung and is ignored
    c = [dict(step=20, mAP=0.01, NDS=0), dict(step=40, mAP=0.10, NDS=0), dict(step=60, mAP=0.5, NDS=0),
         dict(step=80, mAP=0.102, NDS=0)]
    conv = ladder_convergence(c, (20, 40, 80))
    assert conv.saturated and conv.last_gain == pytest.approx(0.02) and conv.stopped_by is None
    c[-1]['mAP'] = 0.15
    conv = ladder_convergence(c, (20, 40, 80))
    assert not conv.saturated and conv.last_gain == pytest.approx(0.5)
    assert conv.stopped_by == 'ladder cap 80 iterations'
    c[1]['mAP'] = 0.0  # from 0 the gain is undefined: not converged
    assert ladder_convergence(c, (20, 40, 80)).last_gain is None
    assert not ladder_convergence(c, (20, 40, 80)).saturated
    rising = [dict(step=20, mAP=0.01, NDS=0), dict(step=40, mAP=0.10, NDS=0)]
    with pytest.raises(ValueError, match='expected'):  # rung 80 is missing and nothing had saturated
        ladder_convergence(rising, (20, 40, 80))


def test_ladder_stopped_at_saturation_counts_its_validated_rungs():
    """A ladder that the stop hook ended at the first saturating rung has validated only the rungs up to it."""
    stopped = [dict(step=100, mAP=0.1, NDS=0), dict(step=200, mAP=0.3, NDS=0), dict(step=300, mAP=0.31, NDS=0)]
    ladder = (100, 200, 300, 400, 500)
    conv = ladder_convergence(stopped, ladder)
    assert conv.saturated and conv.last_gain == pytest.approx(0.01 / 0.3) and conv.stopped_by is None
    assert choose_iterations(stopped, ladder) == dict(iterations=300, at_cap=False)
    stopped[-1]['mAP'] = 0.29  # a drop saturates too; the best validated rung is then the one before
    assert choose_iterations(stopped, ladder) == dict(iterations=200, at_cap=False)
    from clap_plugin.benchmarks.label_efficiency.report import ladder_sentence
    sentence = ladder_sentence(dict(curve=stopped, ladder=list(ladder)))
    assert sentence.startswith('Converged by the 5% rule') and 'at 300 of up to 500 iterations' in sentence
    with pytest.raises(ValueError, match='expected'):  # a gap: rung 200 missing
        ladder_convergence([stopped[0], stopped[2]], ladder)
    # a ladder that had saturated earlier would have stopped there: rungs after it mean another ladder
    with pytest.raises(ValueError, match='expected'):
        ladder_convergence([dict(step=100, mAP=0.3, NDS=0), dict(step=200, mAP=0.3, NDS=0),
                            dict(step=300, mAP=0.3, NDS=0)], ladder)


def test_saturation_stop_hook_ends_training_at_the_first_saturating_rung():
    from types import SimpleNamespace

    from clap_plugin.engine.hooks import SaturationStopHook
    from clap_plugin.engine.hooks.saturation_stop_hook import NUSCENES_MAP
    hook = SaturationStopHook(rungs=[100, 200, 300, 400])
    runner = SimpleNamespace(iter=0, train_loop=SimpleNamespace(stop_training=False))
    for it, value, stop in ((50, 0.9, False),  # not a rung: ignored
                            (100, 0.0, False), (200, 0.2, False),  # from 0 nothing saturates
                            (300, 0.3, False), (400, 0.31, True)):
        runner.iter = it
        hook.after_val_epoch(runner, {NUSCENES_MAP: value})
        assert runner.train_loop.stop_training is stop, it
    with pytest.raises(KeyError, match='mAP'):
        hook.after_val_epoch(SimpleNamespace(iter=100), {'other': 1.0})
    for bad in (dict(rungs=[200, 100]), dict(rungs=[100], gain=0)):
        with pytest.raises(ValueError, match='SaturationStopHook'):
            SaturationStopHook(**bad)


# ----------------------------------------------------------------------------- records of the training jobs
@pytest.fixture
def fake_train(monkeypatch):
    """``run_tool`` replaced: it records the command and writes the scalars a run with these validations writes."""
    calls = []
    maps = {}

    def run_tool(args, log):
        args = [str(a) for a in args]
        calls.append(args)
        opts = dict(o.split('=', 1) for o in args[args.index('--cfg-options') + 1:])
        iters, interval = int(opts['train_cfg.max_iters']), int(opts['train_cfg.val_interval'])
        rows = [dict(step=i, loss=1.0, time=2.0, data_time=0.1) for i in range(1, iters + 1)]
        for step in range(interval, iters + 1, interval):
            rows.append({'step': step, runners.METRIC_PREFIX + 'mAP': maps[step],
                         runners.METRIC_PREFIX + 'NDS': maps[step] / 2})
        folder = osp.join(args[args.index('--work-dir') + 1], '20260101_000000', 'vis_data')
        os.makedirs(folder)
        with open(osp.join(folder, 'scalars.json'), 'w') as f:
            f.write('\n'.join(json.dumps(r) for r in rows) + '\n')

    monkeypatch.setattr(runners, 'run_tool', run_tool)
    monkeypatch.setattr(runners, 'labelled_objects', lambda data, f, s: dict(fraction=f, seed=s))
    return calls, maps


def test_ceiling_job_runs_scratch_on_every_label_and_records_the_curve(fake_train, tmp_path):
    calls, maps = fake_train
    setting = Setting(ceiling_max_iters=6, ceiling_interval=2)
    maps.update({2: 0.05, 4: 0.20, 6: 0.202})
    job = by_id(build_plan(setting))['ceiling']
    data = dict(data_root='/tmp/nus/', version='v1.0-trainval')
    rec = runners.run_ceiling(job, setting, RunPaths(str(tmp_path)), str(tmp_path / 'log'), data)
    (args, ) = calls
    assert args[:2] == ['tools/train.py', runners.FINETUNE_CONFIG] and not any('load_from' in a for a in args)
    for opt in ('label_fraction=1.0', 'label_fraction_seed=0', 'randomness.seed=0', 'train_cfg.max_iters=6',
                'train_cfg.val_interval=2', 'model.bbox_head.heatmap_prior_prob=0.1'):
        assert opt in args, opt
    assert [c['step'] for c in rec['curve']] == [2, 4, 6] and rec['curve'][1]['NDS'] == pytest.approx(0.1)
    assert (rec['best_map'], rec['best_iters'], rec['saturated'], rec['saturated_at']) == (0.202, 6, True, 4)
    assert rec['stopped_by'] is None and (rec['max_iters'], rec['interval']) == (6, 2)
    assert rec['sec_per_iter'] == 2.0 and rec['labelled_objects'] == dict(fraction=1.0, seed=0)
    assert not osp.exists(RunPaths(str(tmp_path)).work('ceiling'))  # checkpoints removed
    json.dumps(rec, allow_nan=False)


def test_ladder_record_says_whether_it_converged(fake_train, tmp_path):
    calls, maps = fake_train
    setting = Setting(ladder=(20, 40, 80))
    maps.update({20: 0.01, 40: 0.02, 60: 0.03, 80: 0.05})
    job = by_id(build_plan(setting))['ladder']
    rec = runners.run_ladder(job, setting, RunPaths(str(tmp_path)), str(tmp_path / 'log'),
                             dict(data_root='/tmp/nus/', version='v1.0-trainval'))
    assert (rec['iterations'], rec['at_cap']) == (80, True)  # choose_iterations keeps its rule
    assert not rec['saturated'] and rec['last_gain'] == pytest.approx(1.5)
    assert rec['stopped_by'] == 'ladder cap 80 iterations'


# ----------------------------------------------------------------------------- plan, scheduler, setting
@pytest.mark.parametrize('preset', ['default', 'smoke', 'diverse'])
def test_ceiling_comes_right_after_the_data_and_depends_on_it_only(preset):
    plan = build_plan(PRESETS[preset])
    assert [j.id for j in plan[:2]] == ['data', 'ceiling']
    ceiling = plan[1]
    assert (ceiling.kind, ceiling.deps, ceiling.arm, ceiling.fraction, ceiling.seed) == (
        'ceiling', ('data', ), 'scratch', 1.0, 0)
    assert sum(j.kind == 'ceiling' for j in plan) == 1
    assert all('ceiling' not in j.deps for j in plan)  # nothing waits on it


@pytest.mark.parametrize('preset', ['default', 'smoke'])
def test_max_jobs_two_runs_the_data_and_the_ceiling(preset):
    """Also with a 2D teacher in the plan (default), which has no dependencies and could start at once."""
    done, order = set(), []

    def launch(job: Job):
        order.append(job.id)
        done.add(job.id)

    finished, failed = run_jobs(build_plan(PRESETS[preset]), done.__contains__, launch, workers=2, max_jobs=2,
                                log=lambda s: None, progress=False)
    assert order == ['data', 'ceiling'] and sorted(finished) == ['ceiling', 'data'] and not failed
    # the next run with --max-jobs 1 takes the ladder
    order.clear()
    run_jobs(build_plan(PRESETS[preset]), done.__contains__, launch, workers=2, max_jobs=1, log=lambda s: None,
             progress=False)
    assert order == ['ladder']


def test_ceiling_fields_of_the_setting():
    assert (PRESETS['smoke'].ceiling_max_iters, PRESETS['smoke'].ceiling_interval) == (4, 2)
    assert (PRESETS['diverse'].ceiling_max_iters, PRESETS['diverse'].ceiling_interval) == (1200, 100)
    for bad, key in ((dict(ceiling_interval=0), 'ceiling_interval'), (dict(ceiling_max_iters=0), 'ceiling_max_iters'),
                     (dict(ceiling_max_iters=250, ceiling_interval=100), 'multiple')):
        with pytest.raises(ValueError, match=key):
            Setting(**bad).validate()
    # they fix the experiment: a run directory refuses a changed ceiling
    assert Setting().identity_diff(Setting(ceiling_max_iters=2400)) == ['ceiling_max_iters: 1200 -> 2400']
    assert Setting().identity_diff(Setting(ceiling_interval=200)) == ['ceiling_interval: 100 -> 200']
    # a setting saved before the fields existed has no ceiling record yet: it reads today's defaults and accepts them
    old = {k: v for k, v in Setting().to_json().items() if not k.startswith('ceiling_')}
    assert Setting.from_json(old) == Setting() and not Setting.from_json(old).identity_diff(Setting())
