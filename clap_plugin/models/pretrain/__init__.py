"""CLAP pre-training model: masking, BEV -> volume lift, ray building, the pre-trainer."""
from .clap_pretrainer import CLAPPretrainer
from .volume_lifter import CLAPBEVVolumeLifter

__all__ = ['CLAPPretrainer', 'CLAPBEVVolumeLifter']
