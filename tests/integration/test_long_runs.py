"""Runs that survive: a CPU-tiny pre-training killed with SIGKILL in its second epoch, and an iteration-based
fine-tune killed between two checkpoints, resume with ``--resume`` and end bit-identical to the uninterrupted
runs; a kill halfway through writing a checkpoint or ``last_checkpoint`` leaves the previous checkpoint
loadable and chosen by ``--resume``.

Each run is ``tools/train.py`` in its own process (``tests.helpers.self_kill_hook`` kills it for real).
"""
import glob
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch

from tests.helpers.paths import REPO

PRETRAIN = osp.join(REPO, 'configs', 'clap_pretrain_nus_cpu-tiny.py')
FINETUNE = osp.join(REPO, 'configs', 'bevfusion_lidar-cam_finetune_nus_cpu-tiny.py')
SEEDED = ['randomness.seed=3', 'randomness.deterministic=True']


def _config(folder, base: str, body: str, kill: str = '') -> str:
    """A config file deriving ``base`` with ``body``, plus a SelfKillHook(``kill``) when given."""
    hooks = f"custom_hooks = custom_hooks + [dict(type='SelfKillHook', {kill})]\n" if kill else ''
    path = osp.join(str(folder), f'cfg_{abs(hash((base, body, kill)))}.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = ['{base}']\n"
                "custom_imports = dict(imports=['clap_plugin', 'tests.helpers.self_kill_hook'], "
                "allow_failed_imports=False)\n" + body + hooks)
    return path


def _train(cfg: str, work_dir, options, resume: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), cfg, '--work-dir', str(work_dir)]
    cmd += ['--resume'] if resume else []
    return subprocess.run(cmd + ['--cfg-options'] + list(options), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _killed(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-3000:])


def _differing(a: str, b: str):
    """Names of the state-dict tensors (and the optimizer state) that differ between two checkpoints."""
    ca, cb = (torch.load(p, map_location='cpu') for p in (a, b))
    assert ca['state_dict'].keys() == cb['state_dict'].keys()
    diff = [k for k in ca['state_dict'] if not torch.equal(ca['state_dict'][k], cb['state_dict'][k])]
    sa, sb = ca['optimizer']['state'], cb['optimizer']['state']
    assert sa.keys() == sb.keys()
    diff += [f'optimizer.{i}.{n}' for i in sa for n in sa[i] if not torch.equal(torch.as_tensor(sa[i][n]),
                                                                               torch.as_tensor(sb[i][n]))]
    return diff, len(ca['state_dict']) + sum(len(v) for v in sa.values())


def _last_checkpoint(work_dir) -> str:
    with open(osp.join(str(work_dir), 'last_checkpoint')) as f:
        return f.read().strip()


# ---------------------------------------------------------------------------------------------- pre-training
# 3 training samples: 3 iterations per epoch; 2 epochs. One persistent loader worker, so that the per-epoch
# worker seeding is exercised too; no pictures (they draw nothing, but cost time).
PRETRAIN_BODY = (
    "train_cfg = dict(max_epochs=2)\n"
    "train_dataloader = dict(num_workers=1, persistent_workers=True)\n"
    "custom_hooks = [h for h in _base_.custom_hooks if h['type'] != 'CLAPVisualizationHook']\n"
    "default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))\n")


@pytest.fixture(scope='module')
def pretrain_cfgs(tmp_path_factory):
    folder = tmp_path_factory.mktemp('pretrain_cfgs')
    return dict(plain=_config(folder, PRETRAIN, PRETRAIN_BODY),
                kill_iter4=_config(folder, PRETRAIN, PRETRAIN_BODY, 'at_iter=4'),
                kill_ckpt2=_config(folder, PRETRAIN, PRETRAIN_BODY, "during_write_of='epoch_2.pth'"),
                kill_last2=_config(folder, PRETRAIN, PRETRAIN_BODY, "during_write_of='last_checkpoint', nth=2"))


@pytest.fixture(scope='module')
def uninterrupted_pretrain(synthetic_nus, pretrain_cfgs, tmp_path_factory):
    work = tmp_path_factory.mktemp('pretrain_uninterrupted')
    _ok(_train(pretrain_cfgs['plain'], work, [f'data_root={synthetic_nus}/'] + SEEDED))
    return work


def test_pretrain_killed_in_second_epoch_resumes_bit_identical(synthetic_nus, pretrain_cfgs,
                                                               uninterrupted_pretrain, tmp_path):
    options = [f'data_root={synthetic_nus}/'] + SEEDED
    _killed(_train(pretrain_cfgs['kill_iter4'], tmp_path, options))  # iteration 4: the second of epoch 2
    assert sorted(osp.basename(p) for p in glob.glob(str(tmp_path / '*.pth'))) == ['epoch_1.pth']
    proc = _train(pretrain_cfgs['plain'], tmp_path, options, resume=True)
    _ok(proc)
    diff, total = _differing(str(uninterrupted_pretrain / 'epoch_2.pth'), str(tmp_path / 'epoch_2.pth'))
    assert diff == [], f'{len(diff)} of {total} tensors (weights, buffers, optimizer state) differ: {diff[:8]}'


def test_interrupted_checkpoint_write_leaves_previous_checkpoint(synthetic_nus, pretrain_cfgs, tmp_path):
    options = [f'data_root={synthetic_nus}/'] + SEEDED
    _killed(_train(pretrain_cfgs['kill_ckpt2'], tmp_path, options))  # halfway through writing epoch_2.pth
    for path in glob.glob(str(tmp_path / '*.pth')):  # nothing half-written under a checkpoint's name
        torch.load(path, map_location='cpu')
    assert not osp.exists(tmp_path / 'epoch_2.pth')
    assert osp.basename(_last_checkpoint(tmp_path)) == 'epoch_1.pth'
    assert glob.glob(str(tmp_path / '.epoch_2.pth.*.tmp'))  # the interrupted write went to a temporary file
    # --resume picks epoch_1.pth (max_epochs=1: it loads it, cleans up, and has nothing left to train)
    proc = _train(pretrain_cfgs['plain'], tmp_path, options + ['train_cfg.max_epochs=1'], resume=True)
    _ok(proc)
    assert 'epoch_1.pth' in proc.stdout + proc.stderr and 'resumed epoch: 1' in proc.stdout + proc.stderr
    assert not glob.glob(str(tmp_path / '.*.tmp'))  # the interrupted save's temporary file was removed


def test_interrupted_last_checkpoint_write_keeps_the_previous_one(synthetic_nus, pretrain_cfgs, tmp_path):
    options = [f'data_root={synthetic_nus}/'] + SEEDED
    _killed(_train(pretrain_cfgs['kill_last2'], tmp_path, options))  # epoch_2.pth written, then killed
    assert osp.basename(_last_checkpoint(tmp_path)) == 'epoch_1.pth'  # written at epoch 1, intact
    for name in ('epoch_1.pth', 'epoch_2.pth'):
        torch.load(str(tmp_path / name), map_location='cpu')


# ---------------------------------------------------------------------------------------------- fine-tuning
# iteration-based, batch 2 over 3 samples (the data iterator restarts inside the run), no loader workers
# (augmentation draws from the main process, during mmengine's re-reading of the trained batches as well),
# a checkpoint every 2 iterations, killed before iteration 4 (between iter_2 and iter_4).
FINETUNE_OPTIONS = ['train_cfg.max_iters=4', 'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
                    'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.max_keep_ckpts=3'] + SEEDED


def test_iteration_based_finetune_killed_between_checkpoints_resumes_bit_identical(synthetic_nus, tmp_path):
    folder = tmp_path / 'cfgs'
    folder.mkdir()
    plain = _config(folder, FINETUNE, 'custom_hooks = []\n')
    kill = _config(folder, FINETUNE, 'custom_hooks = []\n', 'at_iter=3')
    options = [f'data_root={synthetic_nus}/'] + FINETUNE_OPTIONS
    _ok(_train(plain, tmp_path / 'uninterrupted', options))
    _killed(_train(kill, tmp_path / 'killed', options))
    assert osp.basename(_last_checkpoint(tmp_path / 'killed')) == 'iter_2.pth'
    _ok(_train(plain, tmp_path / 'killed', options, resume=True))
    diff, total = _differing(str(tmp_path / 'uninterrupted' / 'iter_4.pth'),
                             str(tmp_path / 'killed' / 'iter_4.pth'))
    assert diff == [], f'{len(diff)} of {total} tensors (weights, buffers, optimizer state) differ: {diff[:8]}'
