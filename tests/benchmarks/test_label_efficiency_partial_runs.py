"""Running a label-efficiency plan in parts: ``--jobs`` selects jobs with the dependencies they still need, the
probes launch before the full fine-tunes, and scratch's fine-tune at the ladder's fraction and seed is read off the
ladder's run instead of being trained twice."""
import pytest

from clap_plugin.benchmarks.label_efficiency import PRESETS
from clap_plugin.benchmarks.label_efficiency.jobs import ladder_as_finetune
from clap_plugin.benchmarks.label_efficiency.plan import Job, build_plan
from clap_plugin.benchmarks.label_efficiency.scheduler import run_jobs, select_jobs


def run(plan, done, only=None, max_jobs=None):
    order = []

    def launch(job: Job):
        order.append(job.id)
        done.add(job.id)

    finished, failed = run_jobs(plan, done.__contains__, launch, workers=1, max_jobs=max_jobs, log=lambda s: None,
                                progress=False, only=only)
    assert not failed, failed
    return order


def test_select_jobs_adds_the_dependencies_not_done():
    plan = build_plan(PRESETS['default'])
    done = {'data', 'ladder'}
    chosen = select_jobs(plan, ['finetune-clap-*'], done.__contains__)
    assert chosen == {'finetune-clap-f0.25-s0', 'finetune-clap-f0.25-s1', 'finetune-clap-f0.25-s2', 'pretrain-clap'}
    # a dependency not done is pulled in transitively: the ladder, and the data under it
    chosen = select_jobs(plan, ['finetune-scratch-f0.25-s1'], {'x'}.__contains__)
    assert chosen == {'finetune-scratch-f0.25-s1', 'ladder', 'data'}
    with pytest.raises(ValueError, match="'finetune-nothing-\\*' matches no job"):
        select_jobs(plan, ['finetune-nothing-*'], done.__contains__)


def test_only_runs_the_selected_jobs_and_leaves_the_rest():
    plan = build_plan(PRESETS['default'])
    done = {'data', 'ladder', 'teacher'}
    order = run(plan, done, only=select_jobs(plan, ['finetune-clap-*'], done.__contains__))
    assert order == ['pretrain-clap', 'finetune-clap-f0.25-s0', 'finetune-clap-f0.25-s1', 'finetune-clap-f0.25-s2']
    assert 'ceiling' not in done and 'finetune-scratch-f0.25-s1' not in done
    # max_jobs counts among the selected ones
    order = run(plan, done, only=select_jobs(plan, ['pretrain-*'], done.__contains__), max_jobs=2)
    assert len(order) == 2 and all(j.startswith('pretrain-') for j in order)


def test_probes_launch_before_the_full_fine_tunes():
    plan = build_plan(PRESETS['default'])
    order = run(plan, set())
    probes = [i for i, j in enumerate(order) if j.startswith('probe-')]
    finetunes = [i for i, j in enumerate(order) if j.startswith('finetune-')]
    assert len(probes) == 8 and len(finetunes) == 12 and max(probes) < min(finetunes)
    assert order[probes[0]] == 'probe-scratch'


LADDER = dict(arm='scratch', fraction=0.25, seed=0, iterations=600, unit='iterations', sec_per_iter=1.5,
              data_sec=0.3, labelled_objects=dict(samples=20),
              curve=[dict(step=300, mAP=0.1, NDS=0.2), dict(step=600, mAP=0.5, NDS=0.55)])


def test_scratch_at_the_ladders_fraction_and_seed_is_the_ladders_run():
    rec = ladder_as_finetune(Job('finetune-scratch-f0.25-s0', 'finetune', arm='scratch', fraction=0.25, seed=0),
                             LADDER)
    assert (rec['mAP'], rec['NDS'], rec['iterations'], rec['from_ladder']) == (0.5, 0.55, 600, True)
    assert rec['labelled_objects'] == dict(samples=20) and rec['sec_per_iter'] == 1.5
    # the chosen rung, not the last validation
    rec = ladder_as_finetune(Job('f', 'finetune', arm='scratch', fraction=0.25, seed=0),
                             dict(LADDER, iterations=300))
    assert (rec['mAP'], rec['iterations']) == (0.1, 300)


@pytest.mark.parametrize('arm, fraction, seed', [('clap', 0.25, 0), ('scratch', 0.25, 1), ('scratch', 0.5, 0)])
def test_other_fine_tunes_are_trained(arm, fraction, seed):
    assert ladder_as_finetune(Job('f', 'finetune', arm=arm, fraction=fraction, seed=seed), LADDER) is None


def test_a_ladder_without_the_chosen_rung_is_not_reused():
    assert ladder_as_finetune(Job('f', 'finetune', arm='scratch', fraction=0.25, seed=0),
                              dict(LADDER, iterations=450)) is None


def test_time_section_counts_each_job_once():
    from clap_plugin.benchmarks.label_efficiency.report import timing_lines
    records = {
        'ladder': dict(LADDER, seconds=900.0),
        'finetune-scratch-f0.25-s0': dict(ladder_as_finetune(
            Job('f', 'finetune', arm='scratch', fraction=0.25, seed=0), LADDER)),
        'finetune-clap-f0.25-s0': dict(seconds=600.0, sec_per_iter=0.5, data_sec=0.1),
        'probe-clap': dict(seconds=300.0, feature_seconds=30.0),  # its job time covers its two runs below
        'probe-clap-f0.25-s0': dict(fraction=0.25, seconds=100.0, sec_per_iter=0.1),
        'probe-clap-f0.25-s1': dict(fraction=0.25, seconds=100.0, sec_per_iter=0.1),
    }
    text = '\n'.join(timing_lines(records, None))
    assert 'Sum of the job times: 30.0 min' in text  # 900 + 0 + 600 + 300 s
    # the ladder and the CLAP fine-tune: (1.5 + 0.5) / 2, not counting the ladder twice
    assert 'iteration (batch 2, images cached after the first read): 1.00 s' in text and 'over 2 runs' in text
