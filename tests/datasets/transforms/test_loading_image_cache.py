"""CLAPLoadMultiViewImageFromFiles' decoded-image cache returns what a fresh decode returns, and stays bounded."""
import copy
import pickle

import numpy as np
import pytest

from clap_plugin.datasets.transforms.loading import CLAPLoadMultiViewImageFromFiles


def _fix_paths(results, root, prefix):
    for name, cam in results['images'].items():
        cam['img_path'] = f'{root}/{prefix[name]}/{cam["img_path"].split("/")[-1]}'
    return results


def test_cached_loads_equal_fresh_decodes_and_eviction_bounds_memory(synthetic_nus, nus_prefix):
    with open(f'{synthetic_nus}/nuscenes_infos_train.pkl', 'rb') as f:
        infos = pickle.load(f)['data_list']
    samples = [_fix_paths(dict(images=copy.deepcopy(i['images'])), synthetic_nus, nus_prefix) for i in infos[:2]]
    fresh = CLAPLoadMultiViewImageFromFiles(to_float32=True)
    one_image = 1600 * 900 * 3
    cached = CLAPLoadMultiViewImageFromFiles(to_float32=True, cache_bytes=8 * one_image)
    for _ in range(2):  # the second pass reads (part of) the cache
        for s in samples:
            a = fresh(copy.deepcopy(s))['img']
            b = cached(copy.deepcopy(s))['img']
            assert all(np.array_equal(x, y) for x, y in zip(a, b))
            b[0][:] = 0  # a consumer writing into its image must not corrupt the cache
    assert 0 < cached._cached_bytes <= 8 * one_image and len(cached._cache) == 8  # 12 images read, 8 kept
    again = cached(copy.deepcopy(samples[1]))['img']
    assert np.array_equal(again[0], fresh(copy.deepcopy(samples[1]))['img'][0])
    raw = CLAPLoadMultiViewImageFromFiles(to_float32=False, cache_bytes=8 * one_image)
    r1 = raw(copy.deepcopy(samples[0]))['img'][0]
    r1[:] = 0
    assert raw(copy.deepcopy(samples[0]))['img'][0].any()  # uint8 output is a copy too
    with pytest.raises(ValueError, match='cache_bytes'):
        CLAPLoadMultiViewImageFromFiles(cache_bytes=-1)
