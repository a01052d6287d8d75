"""One labelled figure of a pre-training step (:class:`PretrainVisuals`): rendered vs real RGB and range,
the pixel selection map with the selected camera rays, the LiDAR points with the selected LiDAR rays and a
BEV of hard prototype assignments; axes in pixels or metres, colour bars with units."""
from typing import Optional

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from ..models.pretrain.visuals import PretrainVisuals

PANEL_TITLES = {
    'rgb_real': 'real RGB (camera {cam}, preview grid)',
    'rgb': 'rendered RGB',
    'range_real': 'LiDAR range where points project [m]',
    'range': 'rendered range [m]',
    'pixel_map': 'pixel selection probability and selected camera rays',
    'bev_rays': 'BEV: LiDAR points by selection weight, selected LiDAR rays',
    'bev_prototypes': 'BEV: hard prototype assignment per cell',
}


def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _preview_extent(h: int, w: int, stride: int):
    """imshow extent (left, right, bottom, top) of a stride grid in image pixels."""
    return (0, w * stride, h * stride, 0)


def pretrain_figure(vis: PretrainVisuals, title: str = '') -> Figure:
    """The figure of one step (Agg canvas, not shown). Panels without data (no cameras, no prototypes) show a
    note instead."""
    fig = Figure(figsize=(13, 15), layout='constrained')
    gs = fig.add_gridspec(4, 2, height_ratios=[1, 1, 1.1, 2.2])
    if title:
        fig.suptitle(title)
    x0, y0, _, x1, y1, _ = [float(v) for v in vis.point_cloud_range]

    cam = vis.camera
    axes = dict(rgb_real=fig.add_subplot(gs[0, 0]), rgb=fig.add_subplot(gs[0, 1]),
                range_real=fig.add_subplot(gs[1, 0]), range=fig.add_subplot(gs[1, 1]),
                pixel_map=fig.add_subplot(gs[2, :]), bev_rays=fig.add_subplot(gs[3, 0]),
                bev_prototypes=fig.add_subplot(gs[3, 1]))
    for key, ax in axes.items():
        ax.set_title(PANEL_TITLES[key].format(cam=cam.camera if cam is not None else '-'))
    if cam is not None:
        h, w = cam.rgb.shape[:2]
        ext = _preview_extent(h, w, cam.stride)
        for key in ('rgb_real', 'rgb'):
            axes[key].imshow(np.clip(_np(getattr(cam, key)), 0, 1), extent=ext, interpolation='nearest')
        real, rendered = _np(cam.range_real), _np(cam.range)
        finite = np.concatenate([real[np.isfinite(real)], rendered[np.isfinite(rendered)]])
        vmax = float(finite.max()) if finite.size else 1.0
        for key, val in (('range_real', real), ('range', rendered)):
            im = axes[key].imshow(np.ma.masked_invalid(val), extent=ext, cmap='turbo', vmin=0.0, vmax=vmax,
                                  interpolation='nearest')
            fig.colorbar(im, ax=axes[key], label='range [m]')
        axes['range_real'].set_facecolor('black')  # no LiDAR return
        pm = _np(cam.pixel_map)
        im = axes['pixel_map'].imshow(pm, cmap='magma', interpolation='nearest')
        fig.colorbar(im, ax=axes['pixel_map'], label='probability per pixel')
        px = _np(cam.pixels)
        axes['pixel_map'].scatter(px[:, 0], px[:, 1], s=6, c='cyan', marker='o', linewidths=0,
                                  label=f'{px.shape[0]} selected pixels')
        axes['pixel_map'].legend(loc='upper right', fontsize=8)
        for key in ('rgb_real', 'rgb', 'range_real', 'range', 'pixel_map'):
            axes[key].set_xlabel('u [px]')
            axes[key].set_ylabel('v [px]')
    else:
        for key in ('rgb_real', 'rgb', 'range_real', 'range', 'pixel_map'):
            axes[key].text(0.5, 0.5, 'no camera rays', ha='center', va='center', transform=axes[key].transAxes)

    ax = axes['bev_rays']
    pts, wts = _np(vis.points), _np(vis.point_weights)
    order = np.argsort(wts)
    sc = ax.scatter(pts[order, 0], pts[order, 1], c=wts[order] * max(len(wts), 1), s=1.5, cmap='viridis',
                    linewidths=0)
    fig.colorbar(sc, ax=ax, label='selection weight x number of points (1 = uniform)')
    sel = pts[_np(vis.point_inds).astype(int)]
    ax.scatter(sel[:, 0], sel[:, 1], s=4, c='red', linewidths=0, label=f'{len(sel)} selected rays')
    ax.legend(loc='upper right', fontsize=8)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect('equal')
    ax.set_xlabel('x [m]')
    ax.set_ylabel('y [m]')

    ax = axes['bev_prototypes']
    proto = vis.prototypes
    if proto is not None:
        nx, ny = int(proto.grid[0]), int(proto.grid[1])
        img = np.full((ny, nx), np.nan)
        ix, iy = _np(proto.cells).astype(int)
        img[iy, ix] = _np(proto.assignment)
        cmap = _category_cmap(proto.num_prototypes)
        im = ax.imshow(np.ma.masked_invalid(img), origin='lower', extent=(x0, x1, y0, y1), cmap=cmap, vmin=-0.5,
                       vmax=proto.num_prototypes - 0.5, interpolation='nearest')
        used = np.unique(_np(proto.assignment)).size
        fig.colorbar(im, ax=ax, label=f'prototype index ({used} of {proto.num_prototypes} used by '
                                      f'{ix.size} cells)')
        ax.set_facecolor('0.85')
        ax.set_aspect('equal')
        ax.set_xlabel('x [m]')
        ax.set_ylabel('y [m]')
    else:
        ax.text(0.5, 0.5, 'no prototype losses', ha='center', va='center', transform=ax.transAxes)
    return fig


def _category_cmap(n: int, seed: Optional[int] = 0) -> ListedColormap:
    """A colour map of ``n`` well-separated random colours (neighbouring indices differ)."""
    rng = np.random.default_rng(seed)
    return ListedColormap(rng.uniform(0.15, 1.0, size=(max(n, 1), 3)))
