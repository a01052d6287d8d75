"""Make spconv 2.3.x's sparse-conv backward work with a CPU-only PyTorch build.

``spconv.pytorch.ops.indice_conv_backward`` asks for the current CUDA stream before it branches to its CPU
implementation (which does not use the stream). With a torch wheel compiled without CUDA,
``torch.cuda.current_stream()`` raises "Torch not compiled with CUDA enabled", so the backward of every
``SparseConv3d`` fails on CPU. :func:`patch_spconv_cuda_stream` replaces the stream getter spconv's ops use
by one that returns the null stream (0) when CUDA is not available and the real current stream otherwise,
so CUDA behaviour is unchanged.
"""
import torch


def _current_stream_or_null() -> int:
    """The current CUDA stream handle, or 0 when this torch has no usable CUDA."""
    if torch.cuda.is_available():
        return torch.cuda.current_stream().cuda_stream
    return 0


def patch_spconv_cuda_stream() -> bool:
    """Install the CPU-safe stream getter into ``spconv.pytorch.ops``; returns whether spconv was found."""
    try:
        from spconv.pytorch import ops
    except ImportError:  # spconv 1.x / no spconv: mmcv's ops are used and nothing needs patching
        return False
    if getattr(ops, 'get_current_stream', None) is not _current_stream_or_null:
        ops.get_current_stream = _current_stream_or_null
    return True
