"""CLAP pre-training model: masking, BEV -> volume lift, ray building, the pre-trainer and its thin data
preprocessor (raw images for the RGB targets)."""
from .clap_pretrainer import CLAPPretrainer
from .data_preprocessor import CLAPPretrainDataPreprocessor
from .visuals import CameraVisuals, PretrainVisuals, PrototypeVisuals
from .volume_lifter import CLAPBEVVolumeLifter

__all__ = ['CLAPPretrainer', 'CLAPPretrainDataPreprocessor', 'CLAPBEVVolumeLifter', 'CameraVisuals',
           'PretrainVisuals', 'PrototypeVisuals']
