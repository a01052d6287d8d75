"""Helpers to run a function on 2 CPU processes with the gloo backend (for the DDP tests)."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _entry(rank, world, port, fn, args):
    torch.set_num_threads(1)  # as DataLoader workers do after a fork
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        fn(rank, world, *args)
    finally:
        dist.destroy_process_group()


def run_gloo(fn, world: int, *args) -> None:
    """Run ``fn(rank, world, *args)`` on ``world`` processes joined by a gloo process group.

    Forks where possible (the children inherit the imported packages instead of importing them again).
    """
    method = 'fork' if 'fork' in mp.get_all_start_methods() else 'spawn'
    mp.start_processes(_entry, args=(world, _free_port(), fn, args), nprocs=world, join=True, start_method=method)
