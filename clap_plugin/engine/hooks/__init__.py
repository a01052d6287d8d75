"""Hooks: prototype EM schedule."""
from .prototype_em_hook import PrototypeEMHook

__all__ = ['PrototypeEMHook']
