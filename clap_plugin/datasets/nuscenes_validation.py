"""Checks of a nuScenes tree before conversion: tables present and parseable, every token reference resolvable,
sensor files present and well-formed. Each failure names the file, key and value at fault."""
import json
import os
from typing import Dict, List, Tuple

TABLES = ('attribute', 'calibrated_sensor', 'category', 'ego_pose', 'instance', 'log', 'map', 'sample',
          'sample_annotation', 'sample_data', 'scene', 'sensor', 'visibility')
KNOWN_VERSIONS = ('v1.0-mini', 'v1.0-trainval', 'v1.0-test')
LIDAR_POINT_BYTES = 5 * 4  # x, y, z, intensity, ring as float32

# (table, key) -> referenced table; '' values allowed for prev/next links only
_REFERENCES: Tuple[Tuple[str, str, str], ...] = (
    ('calibrated_sensor', 'sensor_token', 'sensor'),
    ('instance', 'category_token', 'category'),
    ('instance', 'first_annotation_token', 'sample_annotation'),
    ('instance', 'last_annotation_token', 'sample_annotation'),
    ('sample', 'scene_token', 'scene'),
    ('sample_annotation', 'sample_token', 'sample'),
    ('sample_annotation', 'instance_token', 'instance'),
    ('sample_annotation', 'visibility_token', 'visibility'),
    ('sample_data', 'sample_token', 'sample'),
    ('sample_data', 'ego_pose_token', 'ego_pose'),
    ('sample_data', 'calibrated_sensor_token', 'calibrated_sensor'),
    ('scene', 'log_token', 'log'),
    ('scene', 'first_sample_token', 'sample'),
    ('scene', 'last_sample_token', 'sample'),
)
_LINKED = ('sample', 'sample_data', 'sample_annotation')


class NuScenesDataError(ValueError):
    """The nuScenes tree is missing, incomplete or inconsistent."""


def check_root_and_version(root: str, version: str) -> str:
    """The version folder ``root/version``; raises with a clear message when it cannot be used."""
    if version not in KNOWN_VERSIONS:
        raise NuScenesDataError(f'unknown nuScenes version {version!r}; expected one of {", ".join(KNOWN_VERSIONS)}')
    if not os.path.isdir(root):
        raise NuScenesDataError(f'data root {root!r} does not exist or is not a directory')
    version_dir = os.path.join(root, version)
    if not os.path.isdir(version_dir):
        found = sorted(d for d in os.listdir(root) if d.startswith('v1.0'))
        raise NuScenesDataError(f'version folder {version_dir!r} not found (found: {found or "none"})')
    return version_dir


def load_tables(version_dir: str) -> Dict[str, List[dict]]:
    tables = {}
    for name in TABLES:
        path = os.path.join(version_dir, f'{name}.json')
        if not os.path.isfile(path):
            raise NuScenesDataError(f'table file {path} is missing')
        try:
            with open(path, encoding='utf-8') as f:
                tables[name] = json.load(f)
        except json.JSONDecodeError as err:
            raise NuScenesDataError(f'table file {path} is not valid JSON: {err}') from err
        if not isinstance(tables[name], list):
            raise NuScenesDataError(f'table file {path} must hold a JSON list of records')
    return tables


def check_references(version_dir: str, tables: Dict[str, List[dict]]) -> None:
    """Every token a record refers to exists in the referenced table."""
    tokens = {name: {r.get('token') for r in recs} for name, recs in tables.items()}

    def fail(table, i, key, value, target):
        raise NuScenesDataError(f'{os.path.join(version_dir, table + ".json")}: record {i} '
                                f'(token {tables[table][i].get("token")!r}) has {key}={value!r}, '
                                f'which is not a token of {target}.json')

    for table, key, target in _REFERENCES:
        for i, rec in enumerate(tables[table]):
            if key not in rec:
                raise NuScenesDataError(f'{os.path.join(version_dir, table + ".json")}: record {i} lacks key {key!r}')
            if rec[key] not in tokens[target]:
                fail(table, i, key, rec[key], target)
    for table in _LINKED:
        for i, rec in enumerate(tables[table]):
            for key in ('prev', 'next'):
                if rec.get(key, '') and rec[key] not in tokens[table]:
                    fail(table, i, key, rec[key], table)
    for i, rec in enumerate(tables['sample_annotation']):
        for tok in rec.get('attribute_tokens', []):
            if tok not in tokens['attribute']:
                fail('sample_annotation', i, 'attribute_tokens', tok, 'attribute')
    for i, rec in enumerate(tables['map']):
        for tok in rec.get('log_tokens', []):
            if tok not in tokens['log']:
                fail('map', i, 'log_tokens', tok, 'log')


def check_sensor_files(root: str, tables: Dict[str, List[dict]]) -> None:
    """Every sample_data file exists; LiDAR files hold whole float32 x 5 points; images are non-empty."""
    for rec in tables['sample_data']:
        path = os.path.join(root, rec['filename'])
        if not os.path.isfile(path):
            raise NuScenesDataError(f'sample_data {rec["token"]}: file {path} is missing')
        size = os.path.getsize(path)
        if rec['filename'].endswith('.pcd.bin') and size % LIDAR_POINT_BYTES:
            raise NuScenesDataError(f'LiDAR file {path} is truncated: {size} bytes is not a multiple of '
                                    f'{LIDAR_POINT_BYTES} (5 float32 per point)')
        if rec.get('fileformat') == 'jpg':
            with open(path, 'rb') as f:
                head = f.read(3)
            if size < 64 or head != b'\xff\xd8\xff':
                raise NuScenesDataError(f'image {path} is empty or not a JPEG file')


def validate_nuscenes(root: str, version: str) -> Dict[str, List[dict]]:
    """Run all checks; returns the loaded tables."""
    version_dir = check_root_and_version(root, version)
    tables = load_tables(version_dir)
    check_references(version_dir, tables)
    check_sensor_files(root, tables)
    return tables
