"""The NeuS rendering field of CLAP: SDF, colour and sharpness read from a 3D feature volume.

A query point p (world metres) gets f_p by trilinear interpolation of the volume, a geometry MLP gives
f_geo from [p, f_p], the SDF MLP gives s(p) from [p, f_geo] with f_geo injected into every layer
(Softplus(beta=100) activations), and the RGB MLP gives c(p, view dir, f_geo, grad s) in [0, 1].
SDF values are in normalised units (metres * ``coord_scale``).

The field owns the learnable sharpness h and turns SDF values at sorted samples into interval opacities
(NeuS, as in CLAP arXiv 2412.03059): alpha_n = max((Phi(s_n) - Phi(s_{n+1})) / Phi(s_n), 0), Phi(x) = sigmoid(h x).
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from .trilinear_interpolation import trilinear_from_table, volume_to_table

_EPS = 1e-5


def neus_alpha(sdf: Tensor, sharpness: Union[Tensor, float]) -> Tensor:
    """(R, M) SDF at sorted samples -> (R, M-1) interval opacities in [0, 1]."""
    phi = torch.sigmoid(sdf * sharpness)
    prev, nxt = phi[:, :-1], phi[:, 1:]
    return ((prev - nxt + _EPS) / (prev + _EPS)).clamp(0.0, 1.0)


class NeuSField(BaseModule):
    """The geometry, SDF and RGB MLPs and the learnable sharpness (shared by every sample of the batch).

    :meth:`bind` ties them to one sample's feature volume (a :class:`VolumeSDFField`).

    Args:
        in_channels: channels C of the feature volume.
        point_cloud_range: box spanned by the volume, [x0, y0, z0, x1, y1, z1] metres.
        coord_scale: world -> normalised scale of the MLP inputs and the SDF (CLAP and UniPAD: 1/54).
        init_sharpness: initial h.
        sharpness_scale: h = exp(sharpness_scale * v) with v the learnable ``sharpness_v`` (NeuS and UniPAD:
            exp(10 v)); AdamW moves v by about lr per step, so the scale sets how fast h can move.
        geo_channels: width of f_geo (output of the geometry MLP).
        geo_layers: linear layers of the geometry MLP.
        sdf_hidden: hidden width of the SDF MLP (UniPAD: 16).
        sdf_layers: linear layers of the SDF MLP (UniPAD: 6).
        rgb_hidden: hidden width of the RGB MLP (UniPAD: 16).
        rgb_layers: linear layers of the RGB MLP (UniPAD: 3).
        softplus_beta: beta of the Softplus activations of the geometry and SDF MLPs.
        init_cfg: mmengine init config.
    """

    def __init__(self, in_channels: int, point_cloud_range: Sequence[float] = (-54, -54, -5, 54, 54, 3),
                 coord_scale: float = 1.0 / 54, init_sharpness: float = 20.0, sharpness_scale: float = 10.0,
                 geo_channels: int = 16, geo_layers: int = 2, sdf_hidden: int = 16, sdf_layers: int = 6,
                 rgb_hidden: int = 16, rgb_layers: int = 3, softplus_beta: float = 100.0,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, val in dict(in_channels=in_channels, geo_channels=geo_channels, geo_layers=geo_layers,
                              sdf_hidden=sdf_hidden, sdf_layers=sdf_layers, rgb_hidden=rgb_hidden,
                              rgb_layers=rgb_layers).items():
            if int(val) < 1:
                raise ValueError(f'{name} must be >= 1, got {val}')
        if len(point_cloud_range) != 6:
            raise ValueError(f'point_cloud_range must have 6 values, got {point_cloud_range}')
        if init_sharpness <= 0:
            raise ValueError(f'init_sharpness must be > 0, got {init_sharpness}')
        if sharpness_scale <= 0:
            raise ValueError(f'sharpness_scale must be > 0, got {sharpness_scale}')
        self.point_cloud_range = [float(v) for v in point_cloud_range]
        self.coord_scale = float(coord_scale)
        self.act = nn.Softplus(beta=softplus_beta)
        self.geo = nn.ModuleList(self._chain(3 + in_channels, geo_channels, geo_channels, geo_layers))
        # SDF MLP: every layer sees [h, f_geo] (the first layer [p, f_geo])
        sdf = []
        for i in range(sdf_layers):
            d_in = (3 if i == 0 else sdf_hidden) + geo_channels
            d_out = 1 if i == sdf_layers - 1 else sdf_hidden
            sdf.append(nn.Linear(d_in, d_out))
        self.sdf = nn.ModuleList(sdf)
        self.rgb = nn.ModuleList(self._chain(3 + 3 + geo_channels + 3, rgb_hidden, 3, rgb_layers))
        self.sharpness_scale = float(sharpness_scale)
        self.sharpness_v = nn.Parameter(torch.tensor(math.log(init_sharpness) / self.sharpness_scale))

    @staticmethod
    def _chain(d_in: int, hidden: int, d_out: int, layers: int) -> List[nn.Linear]:
        dims = [d_in] + [hidden] * (layers - 1) + [d_out]
        return [nn.Linear(dims[i], dims[i + 1]) for i in range(layers)]

    @property
    def sharpness(self) -> Tensor:
        """Current sharpness h (scalar tensor)."""
        return (self.sharpness_v * self.sharpness_scale).exp()

    def alpha(self, sdf: Tensor) -> Tensor:
        """(R, M) SDF at sorted samples -> (R, M-1) interval opacities with the learnable sharpness."""
        return neus_alpha(sdf, self.sharpness)

    def geometry(self, p: Tensor, feats: Tensor) -> Tuple[Tensor, Tensor]:
        """(N, 3) normalised points + (N, C) volume features -> SDF (N,) and f_geo (N, G)."""
        h = torch.cat([p, feats], dim=-1)
        for i, layer in enumerate(self.geo):
            h = layer(h)
            if i < len(self.geo) - 1:
                h = self.act(h)
        f_geo = h
        x = p
        for i, layer in enumerate(self.sdf):
            x = layer(torch.cat([x, f_geo], dim=-1))
            if i < len(self.sdf) - 1:
                x = self.act(x)
        return x.squeeze(-1), f_geo

    def color(self, p: Tensor, view_dirs: Tensor, f_geo: Tensor, normals: Tensor) -> Tensor:
        """(N, 3) normalised points, (N, 3) unit view directions, (N, G) f_geo, (N, 3) SDF gradients w.r.t.
        normalised points -> RGB (N, 3)."""
        h = torch.cat([p, view_dirs, f_geo, normals], dim=-1)
        for i, layer in enumerate(self.rgb):
            h = layer(h)
            if i < len(self.rgb) - 1:
                h = torch.relu(h)
        return torch.sigmoid(h)

    def bind(self, volume: Tensor) -> 'VolumeSDFField':
        """The field of one sample: ``volume`` (C, Z, H, W) or (1, C, Z, H, W) spanning the box."""
        return VolumeSDFField(self, volume)


class VolumeSDFField:
    """One sample's field: the shared :class:`NeuSField` bound to that sample's feature volume.

    Implements the field protocol of :func:`render_rays`: ``query``, ``sdf``, ``color`` on world points and
    ``alpha`` of SDF values at sorted samples.

    Args:
        field: the shared :class:`NeuSField`.
        volume: (C, Z, H, W) or (1, C, Z, H, W) feature volume spanning ``field.point_cloud_range``.
    """

    def __init__(self, field: NeuSField, volume: Tensor) -> None:
        self.field = field
        self.volume = volume if volume.dim() == 5 else volume.unsqueeze(0)
        self.table = volume_to_table(self.volume)  # channels-last copy, made once per bound field
        pcr = field.point_cloud_range
        # world -> [-1, 1] grid coordinates as Python scalars per axis (no host -> device copy per field)
        self._grid_scale = [2.0 / (pcr[3 + i] - pcr[i]) for i in range(3)]
        self._grid_offset = [-1.0 - pcr[i] * self._grid_scale[i] for i in range(3)]
        self.coord_scale = field.coord_scale

    def query(self, points: Tensor) -> Tuple[Tensor, Tensor]:
        """(N, 3) world points -> SDF (N,) in normalised units and f_geo (N, G)."""
        grid = torch.stack([points[:, i] * self._grid_scale[i] + self._grid_offset[i] for i in range(3)], dim=-1)
        feats = trilinear_from_table(self.table, grid.unsqueeze(0))[0]
        return self.field.geometry(points * self.coord_scale, feats)

    def sdf(self, points: Tensor) -> Tensor:
        """(N, 3) world points -> SDF (N,) (for curvature estimation and along-ray sampling)."""
        return self.query(points)[0]

    def color(self, points: Tensor, view_dirs: Tensor, f_geo: Tensor, normals: Tensor) -> Tensor:
        """Colour (N, 3) in [0, 1]; ``normals`` are SDF gradients w.r.t. world points."""
        # d s / d p_normalised = (d s / d p_world) / coord_scale (unit length for a true SDF)
        return self.field.color(points * self.coord_scale, view_dirs, f_geo, normals / self.coord_scale)

    def alpha(self, sdf: Tensor) -> Tensor:
        """(R, M) SDF at sorted samples -> (R, M-1) opacities (the field's learnable sharpness)."""
        return self.field.alpha(sdf)
