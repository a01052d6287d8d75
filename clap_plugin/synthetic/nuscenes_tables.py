"""Builders of the 13 nuScenes tables (``v1.0-*/*.json``) with deterministic tokens."""
import json
import os
from typing import Dict, List, Optional

import numpy as np

TABLE_NAMES = ('attribute', 'calibrated_sensor', 'category', 'ego_pose', 'instance', 'log', 'map', 'sample',
               'sample_annotation', 'sample_data', 'scene', 'sensor', 'visibility')

CATEGORY_DESCRIPTIONS = {
    'human.pedestrian.adult': 'Adult subcategory.',
    'vehicle.car': 'Vehicle designed primarily for personal use.',
    'vehicle.truck': 'Vehicles primarily designed to haul cargo.',
    'vehicle.bus.rigid': 'Rigid bus.',
    'vehicle.trailer': 'Any vehicle trailer.',
    'vehicle.construction': 'Vehicles primarily designed for construction.',
    'vehicle.motorcycle': 'Gasoline or electric powered 2-wheeled vehicle.',
    'vehicle.bicycle': 'Human or electric powered 2-wheeled vehicle.',
    'movable_object.trafficcone': 'All types of traffic cones.',
    'movable_object.barrier': 'Temporary road barrier.',
}
ATTRIBUTE_NAMES = ('vehicle.moving', 'vehicle.stopped', 'vehicle.parked', 'cycle.with_rider', 'cycle.without_rider',
                   'pedestrian.sitting_lying_down', 'pedestrian.standing', 'pedestrian.moving')
VISIBILITY_LEVELS = (('1', 'v0-40', 'visibility of whole object is between 0 and 40%'),
                     ('2', 'v40-60', 'visibility of whole object is between 40 and 60%'),
                     ('3', 'v60-80', 'visibility of whole object is between 60 and 80%'),
                     ('4', 'v80-100', 'visibility of whole object is between 80 and 100%'))


def visibility_token(fraction: float) -> str:
    """nuScenes visibility bin ('1'..'4') of a visible fraction in [0, 1]."""
    if fraction < 0.4:
        return '1'
    if fraction < 0.6:
        return '2'
    if fraction < 0.8:
        return '3'
    return '4'


class TokenFactory:
    """32-hex-digit tokens drawn from a seeded generator (deterministic for a seed)."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, 0x70C3]))
        self._seen: set = set()

    def __call__(self) -> str:
        while True:
            tok = ''.join(f'{b:02x}' for b in self._rng.integers(0, 256, size=16, dtype=np.uint8))
            if tok not in self._seen:
                self._seen.add(tok)
                return tok


class NuScenesTables:
    """In-memory tables, written as JSON files by :meth:`write`."""

    def __init__(self, token: TokenFactory) -> None:
        self.token = token
        self.tables: Dict[str, List[dict]] = {name: [] for name in TABLE_NAMES}
        self.category_token: Dict[str, str] = {}
        self.attribute_token: Dict[str, str] = {}
        self.sensor_token: Dict[str, str] = {}
        for name, desc in CATEGORY_DESCRIPTIONS.items():
            tok = self.token()
            self.category_token[name] = tok
            self.tables['category'].append(dict(token=tok, name=name, description=desc))
        for name in ATTRIBUTE_NAMES:
            tok = self.token()
            self.attribute_token[name] = tok
            self.tables['attribute'].append(dict(token=tok, name=name, description=name.replace('.', ': ')))
        for tok, level, desc in VISIBILITY_LEVELS:
            self.tables['visibility'].append(dict(token=tok, level=level, description=desc))

    def add(self, table: str, **record) -> str:
        if 'token' not in record:
            record = dict(token=self.token(), **record)
        self.tables[table].append(record)
        return record['token']

    def add_sensor(self, channel: str, modality: str) -> str:
        if channel not in self.sensor_token:
            self.sensor_token[channel] = self.add('sensor', channel=channel, modality=modality)
        return self.sensor_token[channel]

    @staticmethod
    def link(records: List[dict]) -> None:
        """Fill ``prev``/``next`` of consecutive records."""
        for i, rec in enumerate(records):
            rec['prev'] = records[i - 1]['token'] if i > 0 else ''
            rec['next'] = records[i + 1]['token'] if i + 1 < len(records) else ''

    def write(self, version_dir: str) -> None:
        os.makedirs(version_dir, exist_ok=True)
        for name in TABLE_NAMES:
            with open(os.path.join(version_dir, f'{name}.json'), 'w', encoding='utf-8') as f:
                json.dump(self.tables[name], f, indent=1)


def quaternion_list(q) -> List[float]:
    """pyquaternion -> [w, x, y, z] as plain floats."""
    return [float(v) for v in q.elements]


def vector_list(v: Optional[np.ndarray]) -> List[float]:
    return [float(x) for x in np.asarray(v).reshape(-1)]
