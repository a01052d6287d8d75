"""Checks of a nuScenes tree before conversion: tables present and parseable, every token reference resolvable,
the sensor files that the converter and the configs read present and well-formed (keyframes of LIDAR_TOP
and the cameras, and the LiDAR sweeps when sweeps are recorded; camera sweeps and radar are not read), either
cheaply ('files': existence, sizes, headers) or in full ('full': every file read whole and every image decoded).
Each failure names the file, key and value at fault; a bad sensor file its sensor, sample and sample_data
tokens, and all bad files are listed."""
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .transforms.sensor_file_checks import jpeg_decode_problem, point_bytes_problem

TABLES = ('attribute', 'calibrated_sensor', 'category', 'ego_pose', 'instance', 'log', 'map', 'sample',
          'sample_annotation', 'sample_data', 'scene', 'sensor', 'visibility')
KNOWN_VERSIONS = ('v1.0-mini', 'v1.0-trainval', 'v1.0-test')
LIDAR_POINT_BYTES = 5 * 4  # x, y, z, intensity, ring as float32
CHECK_LEVELS = ('files', 'full')

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


def _sensor_of(what: str) -> str:
    """The sensor named in reports: the camera, ``LIDAR_TOP`` or ``LIDAR_TOP sweep``."""
    if what.startswith('LiDAR keyframe'):
        return 'LIDAR_TOP'
    if what.startswith('LiDAR sweep'):
        return 'LIDAR_TOP sweep'
    return what.split()[0]


def _bad_file_line(root: str, rec: dict, what: str, reason: str) -> str:
    """One line: sensor, file, sample token, sample_data token, reason (and, for sweeps, where it is read)."""
    line = (f'{_sensor_of(what)} file {os.path.join(root, rec["filename"])} (sample token '
            f'{rec.get("sample_token", "unknown")}, sample_data token {rec.get("token")}): {reason}')
    return line + (f' [{what}]' if what.startswith('LiDAR sweep') else '')


def _check_file(root: str, rec: dict, what: str) -> Optional[str]:
    """The cheap check ('files'): None when the file exists, LiDAR files hold whole points and images start like
    a JPEG; else the report line."""
    path = os.path.join(root, rec['filename'])
    try:
        size = os.path.getsize(path)
    except OSError:
        return _bad_file_line(root, rec, what, 'is missing')
    if rec['filename'].endswith('.pcd.bin') and size % LIDAR_POINT_BYTES:
        return _bad_file_line(root, rec, what, f'truncated: {size} bytes is not a multiple of {LIDAR_POINT_BYTES} '
                                               '(5 float32 per point)')
    if rec.get('fileformat') == 'jpg' or rec['filename'].endswith('.jpg'):
        with open(path, 'rb') as f:
            head = f.read(3)
        if size < 64 or head != b'\xff\xd8\xff':
            return _bad_file_line(root, rec, what, 'is empty or not a JPEG file')
    return None


def _check_file_full(root: str, rec: dict, what: str) -> Optional[str]:
    """The full check ('full'): the whole file read; LiDAR files hold whole, finite float32 x 5 points; images
    decode completely and strictly, to the size of the tables. None when usable, else the report line."""
    path = os.path.join(root, rec['filename'])
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        return _bad_file_line(root, rec, what, 'is missing')
    except OSError as exc:
        return _bad_file_line(root, rec, what, f'cannot be read: {type(exc).__name__}: {exc}')
    if rec['filename'].endswith('.pcd.bin'):
        problem = point_bytes_problem(data, LIDAR_POINT_BYTES // 4)
    elif rec.get('fileformat') == 'jpg' or rec['filename'].endswith('.jpg'):
        problem = jpeg_decode_problem(data, int(rec.get('width') or 0), int(rec.get('height') or 0))
    else:
        problem = None
    return _bad_file_line(root, rec, what, problem) if problem else None


def _run_checks(items: Sequence, check: Callable, workers: int, progress: bool, label: str) -> List[str]:
    """``check(*item)`` for every item in ``workers`` threads (the checks are I/O-bound or release the GIL:
    file reads, libjpeg); with ``progress`` a line to stderr every 10 %. Returns the non-None results in order."""
    total = len(items)
    step = max(1, total // 10)
    chunk = 64
    batches = [items[i:i + chunk] for i in range(0, total, chunk)]

    def run(batch):
        return [check(*item) for item in batch]

    bad: List[str] = []
    done = 0
    next_report = step
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for lines in (pool.map(run, batches) if pool else map(run, batches)):
            bad += [line for line in lines if line is not None]
            done = min(total, done + chunk)
            if progress and done >= next_report and done < total:
                print(f'[create_data] checked {done}/{total} {label}' + (f', {len(bad)} bad' if bad else ''),
                      file=sys.stderr, flush=True)
                next_report += step
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if progress:
        print(f'[create_data] checked {total}/{total} {label}' + (f', {len(bad)} bad' if bad else ''),
              file=sys.stderr, flush=True)
    return bad


def _raise_bad(bad: List[str], total: int, what: str) -> None:
    if bad:
        raise NuScenesDataError(f'{len(bad)} of {total} {what} are bad:\n' + '\n'.join('  ' + b for b in bad))


def check_sensor_files(root: str, tables: Dict[str, List[dict]], max_sweeps: int = 10, workers: int = 1,
                       progress: bool = False, level: str = 'files') -> int:
    """Check the files of :func:`required_sensor_files` at ``level``; returns how many were checked.

    ``'files'`` (cheap): they exist, LiDAR files hold whole float32 x 5 points, images start like a JPEG.
    ``'full'``: every file is read whole; LiDAR values are finite; every image is decoded completely and
    strictly (a JPEG whose body is garbage is refused, see :mod:`.transforms.sensor_file_checks`) to the size
    the tables give. ``workers`` threads check them; with ``progress`` a line goes to stderr every 10 %.
    Raises :class:`NuScenesDataError` listing every bad file (sensor, file, sample token, sample_data token,
    reason), one a line.
    """
    if level not in CHECK_LEVELS:
        raise NuScenesDataError(f'unknown check level {level!r}; expected one of {", ".join(CHECK_LEVELS)}')
    required = required_sensor_files(tables, max_sweeps)
    items = [(root, rec, what) for rec, what in required]
    check = _check_file_full if level == 'full' else _check_file
    label = 'sensor files (decoded / read whole)' if level == 'full' else 'sensor files'
    bad = _run_checks(items, check, max(1, workers), progress, label)
    _raise_bad(bad, len(items), 'sensor files')
    return len(items)


def check_gt_database(db_info_path: str, workers: int = 1, progress: bool = False) -> int:
    """Read every object file of a GT-sampling database (``*_dbinfos_train.pkl``; paths relative to its
    folder): whole, finite float32 x 5 points (empty files are valid: boxes without points). Raises
    :class:`NuScenesDataError` listing every bad file; returns how many were checked."""
    import pickle
    try:
        with open(db_info_path, 'rb') as f:
            dbinfos = pickle.load(f)
    except Exception as exc:
        raise NuScenesDataError(f'GT-database info {db_info_path} cannot be read: {type(exc).__name__}: {exc}')
    base = os.path.dirname(os.path.abspath(db_info_path))
    items = [(base, entry) for entries in dbinfos.values() for entry in entries]

    def check(base: str, entry: dict) -> Optional[str]:
        path = os.path.join(base, entry['path'])
        where = (f'{entry.get("name")} box {entry.get("gt_idx")} of training sample_idx {entry.get("image_idx")} '
                 f'in {db_info_path}')
        try:
            with open(path, 'rb') as f:
                problem = point_bytes_problem(f.read(), LIDAR_POINT_BYTES // 4)
        except FileNotFoundError:
            problem = 'is missing'
        except OSError as exc:
            problem = f'cannot be read: {type(exc).__name__}: {exc}'
        return f'LIDAR_TOP GT-database object file {path} ({where}): {problem}' if problem else None

    bad = _run_checks(items, check, max(1, workers), progress, 'GT-database files')
    _raise_bad(bad, len(items), 'GT-database files')
    return len(items)


def validate_nuscenes(root: str, version: str, max_sweeps: int = 10, workers: int = 1,
                      progress: bool = False, level: str = 'files') -> Dict[str, List[dict]]:
    """Run all checks, the sensor files at ``level`` ('files' or 'full'); returns the loaded tables."""
    version_dir = check_root_and_version(root, version)
    tables = load_tables(version_dir)
    check_references(version_dir, tables)
    check_sensor_files(root, tables, max_sweeps=max_sweeps, workers=workers, progress=progress, level=level)
    return tables
