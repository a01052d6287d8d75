"""The rendering-step benchmark runs both revisions and writes its ratios."""
import json
import os.path as osp
import subprocess
import sys

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def test_bench_rendering_step_compares_two_revisions(tmp_path):
    out = tmp_path / 'bench.json'
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'benchmarks', 'bench_rendering_step.py'),
                           '--before-ref', 'HEAD', '--repeats', '1', '--scale', '0.01', '--out', str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res['before']['seconds'] > 0 and res['after']['seconds'] > 0
    assert res['time_ratio_after_over_before'] > 0 and res['memory_ratio_after_over_before'] > 0
    # both runs rendered the same rays with the same seed at the same revision: the same losses
    assert res['runs']['before'][0]['losses'] == res['runs']['after'][0]['losses']
    bad = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'benchmarks', 'bench_rendering_step.py'),
                          '--before-ref', 'no-such-revision'], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and 'no-such-revision' in bad.stderr
