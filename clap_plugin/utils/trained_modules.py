"""Which BEVFusion encoder submodules a pre-training method trains, so that an export carries only those.

A pre-trainer declares them with a classmethod ``trained_encoder_modules(model_cfg) -> tuple of names``. A model
type without that method (CLAP's pre-trainer, which renders from the fused BEV, and any BEVFusion detector)
trains every encoder submodule it has. The declaration is read from the config that mmengine stores in every
checkpoint's ``meta['cfg']``; nothing is guessed from the weights.
"""
from typing import Optional, Sequence, Tuple

ENCODER_PREFIXES = ('img_backbone', 'img_neck', 'view_transform', 'pts_voxel_encoder', 'pts_middle_encoder',
                    'fusion_layer', 'pts_backbone', 'pts_neck')
# the LiDAR encoders with the BEV backbone / neck, and the camera encoders (UniPAD-style merge, two-stage recipe)
LIDAR_PREFIXES = ('pts_voxel_encoder', 'pts_middle_encoder', 'pts_backbone', 'pts_neck')
CAMERA_PREFIXES = ('img_backbone', 'img_neck', 'view_transform')


class TrainedModulesError(ValueError):
    """The trained modules cannot be decided (unreadable config, unknown model type, bad declaration)."""


def model_class(model_type: str):
    """The registered class of ``model_type`` (mmdet3d's MODELS registry, clap_plugin imported)."""
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    import clap_plugin  # noqa: F401
    cls = MODELS.get(model_type)
    if cls is None:
        raise TrainedModulesError(f'model type {model_type!r} is not registered (is its project in the '
                                  f"config's custom_imports?)")
    return cls


def declared_trained_modules(model_cfg: dict) -> Tuple[Tuple[str, ...], str]:
    """(trained encoder submodules, where that came from) for the model config ``model_cfg``."""
    model_type = model_cfg.get('type')
    if not isinstance(model_type, str):
        raise TrainedModulesError(f'model config has no string type: {model_type!r}')
    cls = model_class(model_type)
    declare = getattr(cls, 'trained_encoder_modules', None)
    if declare is None:
        return ENCODER_PREFIXES, f'{model_type} declares no trained_encoder_modules: all encoders are trained'
    names = tuple(declare(model_cfg))
    bad = [n for n in names if n not in ENCODER_PREFIXES]
    if bad:
        raise TrainedModulesError(f'{model_type}.trained_encoder_modules returned {bad}, not among the '
                                  f'encoder submodules {list(ENCODER_PREFIXES)}')
    return names, f'{model_type}.trained_encoder_modules'


def trained_modules_from_meta(meta: dict) -> Tuple[Optional[Tuple[str, ...]], str]:
    """Trained encoder submodules from a checkpoint's ``meta['cfg']`` (the config text mmengine saves);
    (None, reason) when the checkpoint carries no config."""
    text = meta.get('cfg') if isinstance(meta, dict) else None
    if not isinstance(text, str) or not text.strip():
        return None, 'the checkpoint meta has no config'
    from mmengine.config import Config
    from mmengine.utils import import_modules_from_strings
    try:
        cfg = Config.fromstring(text, file_format='.py')
    except Exception as err:  # a config text that no longer parses: say so, do not guess
        raise TrainedModulesError(f"cannot parse the config stored in the checkpoint meta['cfg']: {err}") from err
    imports = cfg.get('custom_imports', None)
    if imports:
        import_modules_from_strings(**imports)
    if 'model' not in cfg:
        raise TrainedModulesError("the config stored in the checkpoint meta['cfg'] has no 'model'")
    return declared_trained_modules(cfg.model)


def parse_module_list(text: str, valid: Sequence[str] = ENCODER_PREFIXES) -> Tuple[str, ...]:
    """'a,b' -> ('a', 'b'), each checked against ``valid``."""
    names = tuple(n.strip() for n in text.split(',') if n.strip())
    bad = [n for n in names if n not in valid]
    if not names or bad:
        raise TrainedModulesError(f'--trained-modules {text!r}: expected a comma-separated subset of '
                                  f'{list(valid)}')
    return names
