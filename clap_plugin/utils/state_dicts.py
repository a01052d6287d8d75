"""Reading, slicing, combining and writing model state dicts without losing their ``_metadata``, and checking
what a load really put into a model.

``nn.Module.state_dict()`` returns an ``OrderedDict`` whose ``_metadata`` attribute maps every submodule
prefix to ``{'version': module._version}``. mmdet3d 1.4 registers spconv 2's sparse convolutions with
``_version = 2`` and, in their ``_load_from_state_dict``, permutes any kernel whose module entry does not say
version 2 (it takes such a kernel for spconv 1's ``(*kernel, in, out)`` layout). A state dict rebuilt as a
plain dict (``{k: v for ...}``) has no ``_metadata``, so every sparse-conv kernel gets permuted on load: the
model then starts from scrambled LiDAR weights with no error. Every function here carries ``_metadata`` along
with the tensors it keeps, and :func:`compare_loaded` finds such silent changes after a load.
"""
import os
import os.path as osp
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch

# DataParallel / DDP / EMA wrappers prefix the names
WRAPPER_PREFIXES = ('module.', )


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (missing, unreadable, no state dict, nothing selected)."""


def strip_wrapper(name: str) -> str:
    for prefix in WRAPPER_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def top_module(name: str) -> str:
    return name.split('.', 1)[0]


def _allow_mmengine_pickles() -> None:
    from .checkpoint import allow_mmengine_checkpoints
    allow_mmengine_checkpoints()


def load_state_dict(path: str) -> Tuple['OrderedDict[str, torch.Tensor]', dict]:
    """The model state dict (with its ``_metadata``) and ``meta`` of a checkpoint file.

    Accepts mmengine checkpoints (``{'state_dict': ..., 'meta': ...}``) and bare state dicts; strips the
    ``module.`` prefix of wrapped models. Raises :class:`CheckpointError` naming the file otherwise.
    """
    if not osp.exists(path):
        raise CheckpointError(f'checkpoint {path!r} does not exist')
    if not osp.isfile(path):
        raise CheckpointError(f'checkpoint {path!r} is not a file')
    _allow_mmengine_pickles()
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ''
        raise CheckpointError(f'{path!r} is not a loadable PyTorch checkpoint: {type(exc).__name__}: {first}') \
            from exc
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{path!r} holds a {type(ckpt).__name__}, not a checkpoint dict')
    if 'state_dict' in ckpt:
        state, meta = ckpt['state_dict'], ckpt.get('meta', {}) or {}
    else:
        state, meta = ckpt, {}
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path!r} has no model state dict ('state_dict' mapping names to tensors)")
    out = OrderedDict((strip_wrapper(name), value) for name, value in state.items())
    metadata = getattr(state, '_metadata', None)
    if metadata is not None:
        out._metadata = OrderedDict((strip_wrapper(name), value) for name, value in metadata.items())
    return out, meta


def has_metadata(state: Mapping) -> bool:
    return getattr(state, '_metadata', None) is not None


def select(state: Mapping[str, torch.Tensor], prefixes: Iterable[str]) -> 'OrderedDict[str, torch.Tensor]':
    """Entries whose top-level module is one of ``prefixes`` (in order), with their ``_metadata`` entries."""
    keep = {p.rstrip('.') for p in prefixes}
    out = OrderedDict((k, v) for k, v in state.items() if top_module(k) in keep)
    metadata = getattr(state, '_metadata', None)
    if metadata is not None:
        out._metadata = OrderedDict((k, v) for k, v in metadata.items() if k == '' or top_module(k) in keep)
    return out


def combine(parts: Sequence[Mapping[str, torch.Tensor]]) -> 'OrderedDict[str, torch.Tensor]':
    """One state dict from several; a top-level module present in a later part replaces it wholly.

    ``_metadata`` is combined the same way. If a part that contributes tensors has no ``_metadata``, the result
    has none either, and :class:`CheckpointError` is raised when that part holds sparse-conv-like 5-d kernels
    (they would be permuted on load): combining never silently drops the versions of part of the tensors.
    """
    owner: Dict[str, int] = {}
    for i, part in enumerate(parts):
        for k in part:
            owner[top_module(k)] = i
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for i, part in enumerate(parts):
        for k, v in part.items():
            if owner[top_module(k)] == i:
                out[k] = v
    contributing = [i for i, part in enumerate(parts) if any(owner[top_module(k)] == i for k in part)]
    if all(has_metadata(parts[i]) for i in contributing):
        meta: 'OrderedDict[str, dict]' = OrderedDict()
        for i in contributing:
            for k, v in parts[i]._metadata.items():
                if k == '':
                    meta.setdefault('', v)
                elif owner.get(top_module(k)) == i:
                    meta[k] = v
        out._metadata = meta
    elif any(has_metadata(parts[i]) for i in contributing):
        bare = [i for i in contributing if not has_metadata(parts[i])]
        kernels = [k for i in bare for k, v in parts[i].items() if owner[top_module(k)] == i and v.dim() == 5]
        if kernels:
            raise CheckpointError(
                f'part {bare[0]} has no _metadata (module versions) but holds 5-d sparse-conv kernels such as '
                f'{kernels[0]!r}: mmdet3d would permute them on load; re-export it with tools/export_pretrained.py')
    return out


def save_checkpoint(path: str, state: Mapping[str, torch.Tensor], meta: Optional[dict] = None) -> None:
    """``torch.save({'meta', 'state_dict'})`` to a temporary name beside ``path``, then rename."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(path) + '.', suffix='.tmp', dir=folder)
    os.close(fd)
    try:
        torch.save(dict(meta=dict(meta or {}), state_dict=state), tmp)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def count_by_module(state: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, Tuple[int, int]]':
    """(tensors, elements) per top-level module, in first-seen order."""
    out: 'OrderedDict[str, Tuple[int, int]]' = OrderedDict()
    for k, v in state.items():
        n, e = out.get(top_module(k), (0, 0))
        out[top_module(k)] = (n + 1, e + v.numel())
    return out


def _is_permutation_of(loaded: torch.Tensor, source: torch.Tensor) -> bool:
    """Whether ``loaded`` is ``source`` with its last dim moved first or its first dim moved last (the
    spconv 1 <-> 2 kernel layouts mmdet3d converts between)."""
    if source.dim() < 2 or loaded.numel() != source.numel():
        return False
    n = source.dim()
    for dims in ([n - 1] + list(range(n - 1)), list(range(1, n)) + [0]):
        moved = source.permute(*dims)
        if moved.shape == loaded.shape and torch.equal(moved.to(loaded.dtype), loaded):
            return True
    return False


@dataclass
class LoadReport:
    """What a load of ``source`` (a file's state dict) put into a model."""
    source: str
    unchanged: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: List[str] = field(default_factory=list)  # in the file, not in the model
    shape_mismatch: List[Tuple[str, tuple, tuple]] = field(default_factory=list)  # (key, file, model)
    permuted: List[str] = field(default_factory=list)  # arrived as a permutation of the file's tensor
    changed: List[str] = field(default_factory=list)  # arrived with other values
    metadata: bool = True

    @property
    def ok(self) -> bool:
        """Every tensor of the file arrived unchanged (missing model keys are allowed: e.g. a new head)."""
        return not (self.unexpected or self.shape_mismatch or self.permuted or self.changed)

    def summary(self, ignore_missing_prefixes: Sequence[str] = ('bbox_head', )) -> str:
        total = len(self.unchanged) + len(self.shape_mismatch) + len(self.permuted) + len(self.changed) + len(
            self.unexpected)
        outside = [k for k in self.missing if top_module(k) not in ignore_missing_prefixes]
        return (f'checkpoint {self.source}: {len(self.unchanged)} of {total} tensors loaded unchanged; '
                f'{len(self.shape_mismatch)} shape mismatches, {len(self.permuted)} permuted, '
                f'{len(self.changed)} changed, {len(self.unexpected)} unexpected; {len(self.missing)} model '
                f'tensors missing from the file ({len(outside)} outside {"/".join(ignore_missing_prefixes)})')

    def details(self, limit: int = 10) -> List[str]:
        lines = []

        def names(items):
            items = list(items)
            more = f' ... (+{len(items) - limit})' if len(items) > limit else ''
            return ', '.join(items[:limit]) + more

        if self.shape_mismatch:
            lines.append('shape mismatch (file vs model): ' + names(
                f'{k} {tuple(a)} vs {tuple(b)}' for k, a, b in self.shape_mismatch))
        if self.permuted:
            why = (' (the file has no _metadata module versions, so mmdet3d took these sparse-conv kernels for '
                   'the spconv 1 layout; write it with tools/export_pretrained.py, tools/merge_pretrained.py or '
                   'tools/compose_checkpoint.py, which keep _metadata)') if not self.metadata else ''
            lines.append('permuted on load' + why + ': ' + names(self.permuted))
        if self.changed:
            lines.append('changed on load: ' + names(self.changed))
        if self.unexpected:
            lines.append('unexpected (not in the model, ignored): ' + names(self.unexpected))
        if self.missing:
            lines.append('missing from the file (kept at their initialisation): ' + names(self.missing))
        return lines


def _read_as_spconv1(key: str, src: torch.Tensor, source: Mapping) -> bool:
    """Whether mmdet3d's spconv 2 loader takes ``key`` for a spconv 1 kernel: a 5-d kernel whose module has no
    ``version: 2`` in the source's ``_metadata``."""
    if src.dim() != 5:
        return False
    metadata = getattr(source, '_metadata', None) or {}
    module = strip_wrapper(key).rsplit('.', 1)[0]
    return (metadata.get(module) or {}).get('version') != 2


def compare_loaded(model_state: Mapping[str, torch.Tensor], source: Mapping[str, torch.Tensor],
                   name: str = '<state dict>') -> LoadReport:
    """Compare a model's state dict after a load with the state dict that was loaded.

    ``permuted`` collects the tensors that arrived as a permutation of the file's, and the 5-d sparse-conv
    kernels that the spconv 1 layout conversion permuted into a shape mismatch (the model kept its
    initialisation); ``changed`` any other tensor whose values differ.
    """
    report = LoadReport(source=name, metadata=has_metadata(source))
    model_state = {strip_wrapper(k): v for k, v in model_state.items()}
    for k, src in source.items():
        k = strip_wrapper(k)
        if k not in model_state:
            report.unexpected.append(k)
            continue
        dst = model_state[k].detach().cpu()
        if dst.shape == src.shape and dst.dtype == src.dtype and torch.equal(dst, src):
            report.unchanged.append(k)
        elif _is_permutation_of(dst, src) or (dst.shape == src.shape and _read_as_spconv1(k, src, source)):
            report.permuted.append(k)
        elif dst.shape != src.shape:
            report.shape_mismatch.append((k, tuple(src.shape), tuple(dst.shape)))
        else:
            report.changed.append(k)
    source_keys = {strip_wrapper(k) for k in source}
    report.missing = [k for k in model_state if k not in source_keys]
    return report
