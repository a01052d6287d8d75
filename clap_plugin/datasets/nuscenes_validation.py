"""Checks of a nuScenes tree before conversion: tables present and parseable, every token reference resolvable,
the sensor files that the converter and the configs read present and well-formed (keyframes of LIDAR_TOP
and the cameras, and the LiDAR sweeps when sweeps are recorded; camera sweeps and radar are not read). Each
failure names the file, key and value at fault."""
import json
import os
from typing import Dict, List, Optional, Tuple

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


def required_sensor_files(tables: Dict[str, List[dict]], max_sweeps: int = 10) -> List[Tuple[dict, str]]:
    """The sample_data records whose files the converter and the configs read, with what each one is.

    Keyframes of LIDAR_TOP and of the cameras (the infos' ``lidar_points`` and ``images``) and, when
    ``max_sweeps > 0``, the up-to-``max_sweeps`` LIDAR_TOP records before each keyframe (``lidar_sweeps``).
    Camera sweeps and radar are never read, so a download without them passes.
    """
    sensors = {r['token']: r for r in tables['sensor']}
    calib = {r['token']: r for r in tables['calibrated_sensor']}
    by_token = {r['token']: r for r in tables['sample_data']}

    def channel(rec):
        sensor = sensors.get(calib.get(rec['calibrated_sensor_token'], {}).get('sensor_token'), {})
        return sensor.get('channel', ''), sensor.get('modality', '')

    out: List[Tuple[dict, str]] = []
    seen = set()
    for rec in tables['sample_data']:
        if not rec.get('is_key_frame', False):
            continue
        name, modality = channel(rec)
        if name == 'LIDAR_TOP':
            out.append((rec, 'LiDAR keyframe'))
            seen.add(rec['token'])
            prev, k = rec.get('prev', ''), 0
            while prev and k < max_sweeps:  # the converter's sweep walk (mmdet3d nuscenes_converter)
                k += 1
                sweep = by_token[prev]
                if sweep['token'] not in seen:
                    seen.add(sweep['token'])
                    out.append((sweep, f'LiDAR sweep {k} before keyframe {rec["token"]} (--max-sweeps '
                                       f'{max_sweeps}; pass --max-sweeps 0 for a download without LiDAR sweeps)'))
                prev = sweep.get('prev', '')
        elif modality == 'camera' or name.startswith('CAM_'):
            out.append((rec, f'{name} keyframe'))
    return out


def _check_file(root: str, rec: dict, what: str) -> Optional[str]:
    """None when the file is usable, else the error message."""
    path = os.path.join(root, rec['filename'])
    try:
        size = os.path.getsize(path)
    except OSError:
        return f'sample_data {rec["token"]} ({what}): file {path} is missing'
    if rec['filename'].endswith('.pcd.bin') and size % LIDAR_POINT_BYTES:
        return (f'LiDAR file {path} is truncated: {size} bytes is not a multiple of {LIDAR_POINT_BYTES} '
                '(5 float32 per point)')
    if rec.get('fileformat') == 'jpg' or rec['filename'].endswith('.jpg'):
        with open(path, 'rb') as f:
            head = f.read(3)
        if size < 64 or head != b'\xff\xd8\xff':
            return f'image {path} is empty or not a JPEG file'
    return None


def check_sensor_files(root: str, tables: Dict[str, List[dict]], max_sweeps: int = 10, workers: int = 1,
                       progress: bool = False) -> int:
    """The files of :func:`required_sensor_files` exist; LiDAR files hold whole float32 x 5 points; images
    are JPEGs. ``workers`` threads check them (the check is I/O-bound); with ``progress`` a line is printed
    to stderr every 10 %. Raises on the first failure in table order; returns how many files were checked."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    required = required_sensor_files(tables, max_sweeps)
    total = len(required)
    step = max(1, total // 10)
    chunk = 256
    batches = [required[i:i + chunk] for i in range(0, total, chunk)]

    def run(batch):
        return [_check_file(root, rec, what) for rec, what in batch]

    done = 0
    next_report = step
    pool = ThreadPoolExecutor(max_workers=max(1, workers)) if workers > 1 else None
    try:
        results = pool.map(run, batches) if pool else map(run, batches)
        for errors in results:
            for err in errors:
                if err is not None:
                    raise NuScenesDataError(err)
            done += chunk
            if progress and done >= next_report and done < total:
                print(f'[create_data] checked {done}/{total} sensor files', file=sys.stderr, flush=True)
                next_report += step
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if progress:
        print(f'[create_data] checked {total}/{total} sensor files', file=sys.stderr, flush=True)
    return total


def validate_nuscenes(root: str, version: str, max_sweeps: int = 10, workers: int = 1,
                      progress: bool = False) -> Dict[str, List[dict]]:
    """Run all checks; returns the loaded tables."""
    version_dir = check_root_and_version(root, version)
    tables = load_tables(version_dir)
    check_references(version_dir, tables)
    check_sensor_files(root, tables, max_sweeps=max_sweeps, workers=workers, progress=progress)
    return tables
