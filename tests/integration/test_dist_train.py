"""tools/dist_train.sh: two CPU processes (torchrun, gloo) fine-tune the tiny config for one iteration."""
import glob
import os
import os.path as osp
import socket
import subprocess
import sys

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = 'configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_cpu_processes(synthetic_nus, tmp_path):
    work_dir = str(tmp_path / 'dist')
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    env.pop('CUDA_VISIBLE_DEVICES', None)
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', TINY, '2', '--work-dir', work_dir, '--cfg-options',
         f'data_root={synthetic_nus}', 'train_cfg.max_iters=1', 'default_hooks.logger.interval=1',
         'randomness.seed=0'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=420)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    logs = glob.glob(osp.join(work_dir, '*', '*.log'))
    assert len(logs) == 1
    log = open(logs[0]).read()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    if not torch.cuda.is_available():
        assert "'backend': 'gloo'" in log
    assert 'Iter(train) [1/1]' in log
    ckpt = torch.load(osp.join(work_dir, 'iter_1.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 1
    # rank 0 saved the unwrapped model's names (no DDP 'module.' prefix)
    assert all(not k.startswith('module.') for k in ckpt['state_dict'])


def test_dist_scripts_reject_bad_arguments(tmp_path):
    proc = subprocess.run(['bash', 'tools/dist_train.sh', TINY], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and 'usage' in proc.stderr
    proc = subprocess.run(['bash', 'tools/dist_train.sh', str(tmp_path / 'none.py'), '2'], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and 'does not exist' in proc.stderr
    proc = subprocess.run(['bash', 'tools/dist_test.sh', TINY, str(tmp_path / 'none.pth'), '2'], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and 'does not exist' in proc.stderr
