"""The claims table and the machine-readable summary of the label-efficiency report, on hand-made records whose
differences and standard errors are known: contrasts paired by seed (or not), the verdict rules (supported,
contradicted, unresolved, missing; "about equal" within a margin), the JSON's schema and values, and the files
the report writes."""
import json
import math
import os.path as osp

import pytest

from clap_plugin.benchmarks.label_efficiency import Setting
from clap_plugin.benchmarks.label_efficiency.claims import CLAIMS, claim_rows, verdict
from clap_plugin.benchmarks.label_efficiency.plan import RunPaths
from clap_plugin.benchmarks.label_efficiency.report import collect, render_markdown, summary_json
from clap_plugin.benchmarks.label_efficiency.stats import contrast
from clap_plugin.utils.atomic_write import write_json_atomic

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
SEEDS = (0, 1, 2)
# mAP per seed, built so that each claim has a known contrast (paired by seed):
#   joint_uniform - scratch      = 0.05, 0.06, 0.07      -> +0.06 ± 0.01/sqrt(3): supported
#   joint_uniform - unipad       = -0.001, -0.002, -0.003 -> -0.002 ± 0.001/sqrt(3): about equal, supported
#   joint_curvature - unipad     = -0.05, -0.06, -0.07   -> -0.06: contradicted
#   clap - joint_curvature       = 0.01, -0.01, 0.0      -> 0 ± 0.01/sqrt(3): unresolved
#   clap - 2 unipad + scratch    = -0.091, -0.132, -0.143 -> -0.122: contradicted
MAPS = dict(scratch=[0.10, 0.20, 0.30], joint_uniform=[0.15, 0.26, 0.37], unipad=[0.151, 0.262, 0.373],
            joint_curvature=[0.101, 0.202, 0.303], clap=[0.111, 0.192, 0.303])
EXPECTED = ['supported', 'supported', 'contradicted', 'unresolved', 'contradicted']


def cells_of(maps, fraction=0.1, seeds=SEEDS):
    return {(arm, fraction): dict(mAP=list(v), NDS=[m / 2 + 0.1 for m in v], seeds=list(seeds))
            for arm, v in maps.items()}


def sd(values):
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m)**2 for v in values) / (len(values) - 1))


# ------------------------------------------------------------------------------------------- contrasts
def test_contrast_pairs_by_seed_when_the_arms_share_their_seeds():
    cells = cells_of(MAPS)
    est = contrast(cells, (('joint_uniform', 1.0), ('scratch', -1.0)), 0.1)
    assert est.paired and est.n == 3
    assert est.value == pytest.approx(0.06) and est.se == pytest.approx(0.01 / math.sqrt(3))
    # the same values under other seeds of one arm: unpaired, SE from both arms' spreads
    cells[('joint_uniform', 0.1)]['seeds'] = [0, 1, 3]
    est = contrast(cells, (('joint_uniform', 1.0), ('scratch', -1.0)), 0.1)
    assert not est.paired and est.value == pytest.approx(0.06)
    assert est.se == pytest.approx(math.sqrt(sd(MAPS['joint_uniform'])**2 / 3 + sd(MAPS['scratch'])**2 / 3))
    # a paired contrast is formed per seed, whatever the order of the records
    cells = cells_of(MAPS)
    cells[('clap', 0.1)] = dict(mAP=MAPS['clap'][::-1], NDS=[0, 0, 0], seeds=[2, 1, 0])
    est = contrast(cells, (('clap', 1.0), ('joint_curvature', -1.0)), 0.1)
    assert est.value == pytest.approx(0.0, abs=1e-12) and est.se == pytest.approx(0.01 / math.sqrt(3))
    assert contrast(cells, (('clap', 1.0), ('ppkt', -1.0)), 0.1) is None  # an arm without records
    one = contrast(cells_of(dict(clap=[0.2], scratch=[0.1]), seeds=(0, )), (('clap', 1.0), ('scratch', -1.0)), 0.1)
    assert one.value == pytest.approx(0.1) and one.se is None and one.n == 1  # a single seed has no SE


def test_verdicts_of_inequalities_and_of_about_equal():
    assert verdict(0.03, 0.01) == 'supported' and verdict(-0.03, 0.01) == 'contradicted'
    assert verdict(0.015, 0.01) == 'unresolved' and verdict(-0.015, 0.01) == 'unresolved'
    assert verdict(0.5, None) == 'unresolved'
    # about equal within 0.01 mAP: the rule on 0.01 - |d|
    assert verdict(0.002, 0.001, equivalence=True) == 'supported'  # 2-SE interval inside +-0.01
    assert verdict(-0.002, 0.001, equivalence=True) == 'supported'
    assert verdict(0.004, 0.0005, equivalence=True) == 'supported'  # far from 0 in SE, but inside the margin
    assert verdict(0.05, 0.01, equivalence=True) == 'contradicted'  # wholly outside the margin
    assert verdict(-0.05, 0.01, equivalence=True) == 'contradicted'
    assert verdict(0.009, 0.003, equivalence=True) == 'unresolved'
    assert verdict(0.0, 0.01, equivalence=True) == 'unresolved'  # too noisy to say


def test_claim_rows_on_known_differences():
    rows = claim_rows(cells_of(MAPS), 'probe', 0.1)
    assert [r.claim for r in rows] == [c.name for c in CLAIMS]
    assert [r.verdict for r in rows] == EXPECTED
    assert all(r.paired and r.n == 3 and r.measure == 'probe' and r.fraction == 0.1 for r in rows)
    assert rows[0].diff == pytest.approx(0.06) and rows[1].diff == pytest.approx(-0.002)
    assert rows[1].se == pytest.approx(0.001 / math.sqrt(3))
    twice = [-0.091, -0.132, -0.143]
    assert rows[4].diff == pytest.approx(-0.122) and rows[4].se == pytest.approx(sd(twice) / math.sqrt(3))
    # a noisier "about equal": the same mean difference, but an SE that reaches past the margin
    noisy = dict(MAPS, unipad=[0.15 + 0.002 + d for d in (-0.02, 0.0, 0.02)])
    assert claim_rows(cells_of(noisy), 'probe', 0.1)[1].verdict == 'unresolved'


def test_claim_rows_say_missing_and_unresolved_instead_of_failing():
    rows = claim_rows(cells_of({k: v for k, v in MAPS.items() if k != 'joint_uniform'}), 'finetune', 0.1)
    assert [r.verdict for r in rows] == ['missing', 'missing', 'contradicted', 'unresolved', 'contradicted']
    assert rows[0].missing == ('joint_uniform', ) and rows[0].diff is None and rows[0].se is None
    assert [r.verdict for r in claim_rows({}, 'finetune', 0.1)] == ['missing'] * 5
    single = claim_rows(cells_of({k: v[:1] for k, v in MAPS.items()}, seeds=(0, )), 'probe', 0.1)
    assert [r.verdict for r in single] == ['unresolved'] * 5 and all(r.se is None for r in single)
    assert single[0].diff == pytest.approx(0.05)


# ------------------------------------------------------------------------------------------- the summary
SETTING = Setting(fractions=(0.1, 0.25), seeds=SEEDS,
                  probe_arms=('scratch', 'unipad', 'joint_uniform', 'joint_curvature', 'clap'),
                  finetune_arms=('scratch', 'clap'), ceiling_max_iters=300, ceiling_interval=100)
CEILING = dict(arm='scratch', fraction=1.0, seed=0, max_iters=300, interval=100,
               curve=[dict(step=100, mAP=0.1, NDS=0.2), dict(step=200, mAP=0.3, NDS=0.35),
                      dict(step=300, mAP=0.31, NDS=0.36)],
               best_map=0.31, best_nds=0.36, best_iters=300, saturated=True, saturated_at=200, stopped_by=None,
               sec_per_iter=2.0, data_sec=0.1, seconds=600.0)


def fake_records():
    rec = dict(data=dict(data_root='/tmp/nus/', version='v1.0-trainval'), ceiling=CEILING,
               ladder=dict(arm='scratch', fraction=0.25, seed=0, ladder=[20, 40, 80], iterations=80, at_cap=True,
                           curve=[dict(step=s, mAP=m, NDS=m) for s, m in ((20, 0.01), (40, 0.02), (80, 0.05))],
                           sec_per_iter=2.0, data_sec=0.1))
    for f, shift in ((0.1, 0.0), (0.25, 0.1)):
        for arm, maps in MAPS.items():
            for s, m in zip(SEEDS, maps):
                rec[f'probe-{arm}-f{f:g}-s{s}'] = dict(arm=arm, fraction=f, seed=s, mAP=m + shift,
                                                       NDS=(m + shift) / 2 + 0.1, sec_per_iter=0.2)
    for arm in ('scratch', 'clap'):
        for s, m in zip(SEEDS, MAPS[arm]):
            rec[f'finetune-{arm}-f0.1-s{s}'] = dict(arm=arm, fraction=0.1, seed=s, iterations=80, mAP=m,
                                                    NDS=m / 2 + 0.1, sec_per_iter=2.0, data_sec=0.1)
    return rec


def test_summary_json_schema_and_values():
    summary = summary_json(SETTING, fake_records())
    json.dumps(summary, allow_nan=False)  # valid JSON (no NaN)
    assert {'ceiling', 'probe', 'finetune', 'differences', 'claims'} <= set(summary)
    c = summary['ceiling']
    assert (c['best_map'], c['best_iters'], c['saturated'], c['saturated_at']) == (0.31, 300, True, 200)
    assert c['curve'] == CEILING['curve']
    assert summary['ladder']['saturated'] is False and summary['ladder']['last_gain'] == pytest.approx(1.5)
    assert summary['ladder']['stopped_by'] == 'ladder cap 80 iterations'
    # per arm and fraction (a string key): mean, sample std, n
    assert list(summary['probe']) == ['scratch', 'unipad', 'joint_uniform', 'joint_curvature', 'clap']
    assert set(summary['probe']['clap']) == {'0.1', '0.25'}
    cell = summary['probe']['clap']['0.1']
    assert cell['n'] == 3 and cell['map_mean'] == pytest.approx(0.202)
    assert cell['map_std'] == pytest.approx(sd(MAPS['clap']))
    assert cell['nds_mean'] == pytest.approx(0.202 / 2 + 0.1) and cell['nds_std'] == pytest.approx(sd(MAPS['clap']) / 2)
    assert summary['probe']['clap']['0.25']['map_mean'] == pytest.approx(0.302)
    assert list(summary['finetune']) == ['scratch', 'clap']
    assert summary['finetune']['clap']['0.25'] == dict(map_mean=None, map_std=None, nds_mean=None, nds_std=None, n=0)
    # differences: clap - scratch and clap - unipad at every measure and fraction
    diffs = {(d['a'], d['b'], d['measure'], d['fraction']): d for d in summary['differences']}
    for m in ('probe', 'finetune'):
        for f in (0.1, 0.25):
            assert ('clap', 'scratch', m, f) in diffs and ('clap', 'unipad', m, f) in diffs
    d = diffs[('clap', 'scratch', 'probe', 0.1)]
    per_seed = [0.011, -0.008, 0.003]
    assert d['diff'] == pytest.approx(0.002) and d['se'] == pytest.approx(sd(per_seed) / math.sqrt(3))
    assert d['paired'] and d['n'] == 3
    assert diffs[('clap', 'scratch', 'finetune', 0.1)]['diff'] == pytest.approx(0.002)
    assert diffs[('clap', 'unipad', 'finetune', 0.1)]['diff'] is None  # UniPAD-style was not fine-tuned
    assert diffs[('clap', 'scratch', 'finetune', 0.25)]['se'] is None
    # claims: every claim at every measure and fraction
    assert len(summary['claims']) == 5 * 2 * 2
    assert {'claim', 'measure', 'fraction', 'diff', 'se', 'verdict'} <= set(summary['claims'][0])
    by = {}
    for r in summary['claims']:
        by.setdefault((r['measure'], r['fraction']), []).append(r['verdict'])
    assert by[('probe', 0.1)] == EXPECTED and by[('probe', 0.25)] == EXPECTED
    assert by[('finetune', 0.1)] == ['missing'] * 5


def test_summary_without_ceiling_or_records_is_null_and_empty():
    summary = summary_json(SETTING, {})
    assert summary['ceiling'] is None and summary['ladder'] is None
    assert all(d['diff'] is None for d in summary['differences'])
    assert all(r['verdict'] == 'missing' for r in summary['claims'])
    assert summary['probe']['clap']['0.1']['n'] == 0


def test_markdown_has_the_ceiling_and_the_claims():
    records = fake_records()
    md = render_markdown(SETTING, records, 'python tools/benchmarks/label_efficiency.py', None)
    assert '## Ceiling: scratch with every train sample labelled' in md
    assert '| 300 | **0.3100** | **0.3600** |' in md and '| 100 | 0.1000 | 0.2000 |' in md
    assert 'Saturated at 200 iterations' in md
    assert 'Not converged by the 5% rule' in md and 'stopped by the ladder cap 80 iterations' in md
    assert "## The paper's claims, at 0.1 of the labels" in md
    assert '| scratch < joint + uniform | frozen probe | +0.0600 ± 0.0058 | 3 | supported |' in md
    assert '| joint + curvature < CLAP | full fine-tuning | — (no joint + curvature sampling) | — | missing |' in md
    assert '| joint + curvature < CLAP | frozen probe | +0.0000 ± 0.0058 | 3 | unresolved |' in md  # no -0.0000
    # the existing tables are still there, with paired SEs
    assert '## Frozen-encoder probe' in md and '## Full fine-tuning' in md
    assert '| CLAP − scratch | +0.0020 ± 0.0055 |' in md
    never = dict(CEILING, saturated=False, saturated_at=None, stopped_by='ceiling_max_iters = 300')
    md = render_markdown(SETTING, dict(records, ceiling=never), 'cmd', None)
    assert 'Not saturated' in md and 'ceiling_max_iters = 300' in md
    assert collect(records, 'finetune')[('clap', 0.1)]['seeds'] == [0, 1, 2]


def test_report_writes_the_json_beside_each_markdown(tmp_path):
    from clap_plugin.benchmarks.label_efficiency import cli as tool
    paths = RunPaths(str(tmp_path / 'run'))
    for rid, r in fake_records().items():
        write_json_atomic(paths.record(rid), r)
    md = str(tmp_path / 'docs' / 'label_efficiency.md')
    tool.write_report(paths, SETTING, 'cmd', md)
    expected = json.loads(json.dumps(summary_json(SETTING, fake_records())))
    for path in (tmp_path / 'docs' / 'label_efficiency.json', tmp_path / 'run' / 'label_efficiency.json'):
        with open(path) as f:
            assert json.load(f) == expected
    assert tool.summary_path('tools/benchmarks/label_efficiency.md') == 'tools/benchmarks/label_efficiency.json'
    # a report under another name gets its plot under that name; another report's plot beside it stays
    other = tmp_path / 'docs' / 'label_efficiency_default.md'
    before = (tmp_path / 'docs' / 'label_efficiency.png').read_bytes()
    (tmp_path / 'docs' / 'label_efficiency.png').write_bytes(b'another report')
    tool.write_report(paths, SETTING, 'cmd', str(other))
    assert (tmp_path / 'docs' / 'label_efficiency.png').read_bytes() == b'another report'
    assert (tmp_path / 'docs' / 'label_efficiency_default.png').read_bytes() == before
    assert '](label_efficiency_default.png)' in other.read_text()


def test_noise_verdict_says_within_or_outside_noise():
    from clap_plugin.benchmarks.label_efficiency.stats import noise_verdict
    assert 'within noise' in noise_verdict([0.10, 0.30], [0.12, 0.20])  # +0.04 +- 0.06
    assert 'outside noise' in noise_verdict([0.30, 0.31, 0.29], [0.10, 0.12, 0.09])
    assert 'cannot be told apart from noise' in noise_verdict([0.3], [0.1])
    with pytest.raises(ValueError, match='paired'):
        noise_verdict([0.1, 0.2], [0.1])
