"""Distributed launch for tools/train.py and tools/test.py: on a machine without CUDA a distributed run uses
the ``gloo`` backend, an unwrapped-device ``DistributedDataParallel`` and a process group started here."""
import argparse
import logging
import os
import subprocess
from datetime import timedelta
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and the ``--local-rank`` that ``torch.distributed.launch`` passes (mmdet3d's tools)."""
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def export_local_rank(args: argparse.Namespace) -> None:
    """Make ``--local-rank`` visible as ``LOCAL_RANK`` unless the launcher set it already."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))


def _default_master(launcher: str) -> str:
    if launcher == 'slurm' and 'SLURM_NODELIST' in os.environ:
        out = subprocess.getoutput(f'scontrol show hostname {os.environ["SLURM_NODELIST"]} | head -n1')
        if out.strip():
            return out.strip()
    return '127.0.0.1'


def init_cpu_distributed(launcher: str, backend: str = 'gloo', timeout: Optional[float] = None) -> None:
    """Start the process group without touching CUDA (mmengine's ``init_dist`` calls
    ``torch.cuda.set_device``, which a CPU build of torch lacks)."""
    env = os.environ
    if launcher == 'pytorch':
        missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if k not in env]
        if missing:
            raise SystemExit(f'error: --launcher pytorch needs the environment variables {missing} '
                             '(start with tools/dist_train.sh or torchrun)')
        rank, world = int(env['RANK']), int(env['WORLD_SIZE'])
    elif launcher == 'slurm':
        rank, world = int(env['SLURM_PROCID']), int(env['SLURM_NTASKS'])
        env.setdefault('LOCAL_RANK', env.get('SLURM_LOCALID', '0'))
    elif launcher == 'mpi':
        rank, world = int(env['OMPI_COMM_WORLD_RANK']), int(env['OMPI_COMM_WORLD_SIZE'])
        env.setdefault('LOCAL_RANK', env.get('OMPI_COMM_WORLD_LOCAL_RANK', '0'))
    else:
        raise ValueError(f'unknown launcher {launcher!r}')
    env.setdefault('MASTER_ADDR', _default_master(launcher))
    env.setdefault('MASTER_PORT', env.get('PORT', '29500'))
    env['RANK'], env['WORLD_SIZE'] = str(rank), str(world)
    kwargs = {} if timeout is None else dict(timeout=timedelta(seconds=timeout))
    torch.distributed.init_process_group(backend=backend, init_method='env://', rank=rank, world_size=world,
                                         **kwargs)


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher``; on a machine without CUDA make a distributed launch use gloo and a
    ``DistributedDataParallel`` without device ids, and start the process group here."""
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        print_log(f"no CUDA: distributed backend {dist_cfg.get('backend', 'nccl')!r} -> 'gloo'",
                  logger='current', level=logging.WARNING)
    dist_cfg['backend'] = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg', None) or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    if not torch.distributed.is_initialized():
        init_cpu_distributed(launcher, 'gloo', dist_cfg.get('timeout', None))


def close_process_group() -> None:
    """Leave the process group together: ranks that exit while another still tears gloo down can abort."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
