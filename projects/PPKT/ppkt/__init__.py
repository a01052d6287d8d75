"""PPKT modules, registered into mmdet3d's MODELS registry on import. The point-pixel pairs, InfoNCE and the
upsampling projection it uses are shared with SimIPU and CMCR: :mod:`clap_plugin.models.contrastive`."""
from .ppkt_pretrainer import PPKTPretrainer

__all__ = ['PPKTPretrainer']
