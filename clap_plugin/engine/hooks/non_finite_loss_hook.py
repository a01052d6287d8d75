"""Non-finite losses caught before they reach the weights.

A NaN or Inf in one loss term becomes a NaN gradient, the optimizer writes it into every weight, and the run
goes on logging ``nan`` and saving useless checkpoints. This hook checks every loss term (each key of the
model's ``log_vars`` with ``loss`` in its name, as mmengine sums them) after the forward pass and before the
backward pass and the optimizer step:

* ``policy='raise'`` (default): stop with :class:`NonFiniteLossError`, whose message names the terms, the
  iteration and the last checkpoint written. Nothing after the forward pass runs, so neither the weights nor
  any later checkpoint see the non-finite values.
* ``policy='skip'``: skip the step (no backward, no optimizer step, on every rank alike), log a warning
  naming the terms, and count the skipped steps in the log (``nonfinite_skipped``). ``max_skips`` bounds the
  count (then it raises as above).

It wraps ``parse_losses`` of the (unwrapped) model and ``update_params`` of the optimizer wrapper when training
starts (after a resume has rebuilt the optimizer wrapper), so it works with any mmengine model, and with DDP:
mmengine's ``MMDistributedDataParallel.train_step`` calls the same two.
"""
import logging
from typing import List, Optional

import torch
from mmdet3d.registry import HOOKS
from mmengine.dist import all_reduce, is_distributed
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper


class NonFiniteLossError(FloatingPointError):
    """A loss term was NaN or Inf; the message names the terms, the iteration and the last checkpoint."""


def non_finite_terms(log_vars: dict) -> List[str]:
    """Names of the loss entries of ``log_vars`` that hold a NaN or an Inf, the summed ``loss`` last."""
    bad = [k for k, v in log_vars.items()
           if 'loss' in k and not bool(torch.isfinite(torch.as_tensor(v)).all())]
    return sorted(bad, key=lambda k: (k == 'loss', k))


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop (or skip the step) when a loss term is NaN or Inf.

    Args:
        policy: ``'raise'`` stops the run; ``'skip'`` skips the step and counts it.
        max_skips: with ``'skip'``, raise once more than this many steps were skipped (None: no bound).
    """

    priority = 'VERY_HIGH'

    def __init__(self, policy: str = 'raise', max_skips: Optional[int] = None) -> None:
        if policy not in ('raise', 'skip'):
            raise ValueError(f"NonFiniteLossHook policy must be 'raise' or 'skip', got {policy!r}")
        if max_skips is not None and max_skips < 0:
            raise ValueError(f'max_skips must be >= 0 or None, got {max_skips}')
        self.policy = policy
        self.max_skips = max_skips
        self.skipped = 0
        self._skip_next_update = False
        self._runner = None

    def before_train(self, runner) -> None:
        self._runner = runner
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not getattr(model.parse_losses, '_nonfinite_checked', False):
            model.parse_losses = self._checked_parse_losses(model.parse_losses)
        wrapper = runner.optim_wrapper
        if not getattr(wrapper.update_params, '_nonfinite_checked', False):
            wrapper.update_params = self._guarded_update_params(wrapper.update_params)

    # ------------------------------------------------------------------ wrappers
    def _checked_parse_losses(self, parse_losses):
        def checked(losses):
            loss, log_vars = parse_losses(losses)
            bad = non_finite_terms(log_vars)
            any_bad = bool(bad)
            if is_distributed():  # every rank takes the same decision, or DDP's backward would hang
                flag = torch.tensor([float(any_bad)], device=loss.device)
                all_reduce(flag)
                any_bad = bool(flag.item() > 0)
            if any_bad:
                self._on_non_finite(bad, log_vars)
                for k in bad:
                    log_vars.pop(k)
            if self.policy == 'skip':
                log_vars['nonfinite_skipped'] = torch.tensor(float(self.skipped))
            return loss, log_vars
        checked._nonfinite_checked = True
        return checked

    def _guarded_update_params(self, update_params):
        def guarded(loss, *args, **kwargs):
            if self._skip_next_update:
                self._skip_next_update = False
                return None
            return update_params(loss, *args, **kwargs)
        guarded._nonfinite_checked = True
        return guarded

    # ------------------------------------------------------------------ decisions
    def _describe(self, bad: List[str], log_vars: dict) -> str:
        runner = self._runner
        iteration = runner.iter + 1 if runner is not None else '?'
        values = ', '.join(f'{k}={float(torch.as_tensor(log_vars[k]).detach().float().mean()):g}' for k in bad) \
            or 'a loss term on another rank'
        last = runner.message_hub.get_info('last_ckpt') if runner is not None else None
        return (f'non-finite loss at iteration {iteration}: {values}; last checkpoint written: '
                f'{last or "none yet"}')

    def _on_non_finite(self, bad: List[str], log_vars: dict) -> None:
        what = self._describe(bad, log_vars)
        if self.policy == 'raise' or (self.max_skips is not None and self.skipped >= self.max_skips):
            extra = (f'; {self.skipped} steps were already skipped (max_skips={self.max_skips})'
                     if self.policy == 'skip' else
                     "; no checkpoint is written after it (default_hooks.nonfinite_loss.policy='skip' "
                     'skips such steps instead)')
            raise NonFiniteLossError(what + extra)
        self.skipped += 1
        self._skip_next_update = True
        print_log(f'{what}; step skipped ({self.skipped} skipped so far)', logger='current',
                  level=logging.WARNING)
