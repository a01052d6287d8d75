"""Neural SDF + colour field read from a 3D feature volume (the rendering field of CLAP).

A query point p (world metres) gets f_p by trilinear interpolation of the volume, a geometry MLP gives
f_geo from [p, f_p], the SDF MLP gives s(p) from [p, f_geo] with f_geo injected into every layer
(Softplus(beta=100) activations), and the RGB MLP gives c(p, view dir, f_geo, grad s) in [0, 1].
SDF values are in normalised units (metres * ``coord_scale``).
"""
from typing import List, Sequence, Tuple

import torch
from torch import Tensor, nn

from .trilinear_interpolation import trilinear_from_table, volume_to_table


class NeuSFieldMLPs(nn.Module):
    """The geometry, SDF and RGB MLPs (weights shared by every sample of the batch).

    Args:
        in_channels: channels C of the feature volume.
        geo_channels: width of f_geo (output of the geometry MLP).
        geo_layers: linear layers of the geometry MLP.
        sdf_hidden: hidden width of the SDF MLP (UniPAD: 16).
        sdf_layers: linear layers of the SDF MLP (UniPAD: 6).
        rgb_hidden: hidden width of the RGB MLP (UniPAD: 16).
        rgb_layers: linear layers of the RGB MLP (UniPAD: 3).
        softplus_beta: beta of the Softplus activations of the geometry and SDF MLPs.
    """

    def __init__(self, in_channels: int, geo_channels: int = 16, geo_layers: int = 2, sdf_hidden: int = 16,
                 sdf_layers: int = 6, rgb_hidden: int = 16, rgb_layers: int = 3,
                 softplus_beta: float = 100.0) -> None:
        super().__init__()
        for name, val in dict(in_channels=in_channels, geo_channels=geo_channels, geo_layers=geo_layers,
                              sdf_hidden=sdf_hidden, sdf_layers=sdf_layers, rgb_hidden=rgb_hidden,
                              rgb_layers=rgb_layers).items():
            if int(val) < 1:
                raise ValueError(f'{name} must be >= 1, got {val}')
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

    @staticmethod
    def _chain(d_in: int, hidden: int, d_out: int, layers: int) -> List[nn.Linear]:
        dims = [d_in] + [hidden] * (layers - 1) + [d_out]
        return [nn.Linear(dims[i], dims[i + 1]) for i in range(layers)]

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
        """(N, 3) points, (N, 3) unit view directions, (N, G) f_geo, (N, 3) SDF gradients -> RGB (N, 3)."""
        h = torch.cat([p, view_dirs, f_geo, normals], dim=-1)
        for i, layer in enumerate(self.rgb):
            h = layer(h)
            if i < len(self.rgb) - 1:
                h = torch.relu(h)
        return torch.sigmoid(h)


class VolumeSDFField:
    """One sample's field: the shared MLPs bound to that sample's feature volume.

    Implements the field protocol of :func:`render_rays` (``query`` and ``color`` on world points).

    Args:
        mlps: the shared :class:`NeuSFieldMLPs`.
        volume: (C, Z, H, W) or (1, C, Z, H, W) feature volume spanning ``point_cloud_range``.
        point_cloud_range: [x_min, y_min, z_min, x_max, y_max, z_max] in metres.
        coord_scale: world -> normalised scale of the MLP inputs and the SDF (CLAP and UniPAD: 1/54).
    """

    def __init__(self, mlps: NeuSFieldMLPs, volume: Tensor, point_cloud_range: Sequence[float],
                 coord_scale: float) -> None:
        self.mlps = mlps
        self.volume = volume if volume.dim() == 5 else volume.unsqueeze(0)
        self.table = volume_to_table(self.volume)  # channels-last copy, made once per field
        pcr = [float(v) for v in point_cloud_range]
        # world -> [-1, 1] grid coordinates as Python scalars per axis (no host -> device copy per field)
        self._grid_scale = [2.0 / (pcr[3 + i] - pcr[i]) for i in range(3)]
        self._grid_offset = [-1.0 - pcr[i] * self._grid_scale[i] for i in range(3)]
        self.coord_scale = float(coord_scale)

    def query(self, points: Tensor) -> Tuple[Tensor, Tensor]:
        """(N, 3) world points -> SDF (N,) in normalised units and f_geo (N, G)."""
        grid = torch.stack([points[:, i] * self._grid_scale[i] + self._grid_offset[i] for i in range(3)], dim=-1)
        feats = trilinear_from_table(self.table, grid.unsqueeze(0))[0]
        return self.mlps.geometry(points * self.coord_scale, feats)

    def sdf(self, points: Tensor) -> Tensor:
        """(N, 3) world points -> SDF (N,) (for curvature estimation)."""
        return self.query(points)[0]

    def color(self, points: Tensor, view_dirs: Tensor, f_geo: Tensor, normals: Tensor) -> Tensor:
        """Colour (N, 3) in [0, 1]; ``normals`` are SDF gradients w.r.t. world points."""
        # d s / d p_normalised = (d s / d p_world) / coord_scale (unit length for a true SDF)
        return self.mlps.color(points * self.coord_scale, view_dirs, f_geo, normals / self.coord_scale)
