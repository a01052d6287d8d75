"""Procedural driving scenes: a straight street with lane markings, buildings, poles and road users.

Objects are oriented boxes or vertical cylinders moving at constant velocity. Annotated objects carry a
nuScenes category; their annotation box is the geometry grown by ``ANNOTATION_MARGIN`` on every side, so that
every LiDAR return on the object lies strictly inside its annotation box.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

ANNOTATION_MARGIN = 0.03  # metres between the rendered geometry and the annotated box
GROUND_CLEARANCE = 0.06  # gap under annotated objects, so ground returns stay outside their boxes

# materials: albedo texture and LiDAR reflectivity are chosen per material in the renderer; a material's id is
# its index in MATERIALS
MATERIALS = ('ground', 'building', 'vehicle', 'person', 'traffic_cone', 'barrier', 'pole', 'cycle')
MAT_GROUND, MAT_BUILDING, MAT_VEHICLE, MAT_PERSON, MAT_CONE, MAT_BARRIER, MAT_POLE, MAT_CYCLE = range(len(MATERIALS))

# detection class -> (nuScenes category, (length, width, height) mean, shape, material)
CLASS_SPECS: Dict[str, Tuple[str, Tuple[float, float, float], str, int]] = {
    'car': ('vehicle.car', (4.6, 1.95, 1.7), 'box', MAT_VEHICLE),
    'truck': ('vehicle.truck', (7.0, 2.5, 3.0), 'box', MAT_VEHICLE),
    'bus': ('vehicle.bus.rigid', (11.0, 2.9, 3.4), 'box', MAT_VEHICLE),
    'trailer': ('vehicle.trailer', (11.5, 2.9, 3.7), 'box', MAT_VEHICLE),
    'construction_vehicle': ('vehicle.construction', (6.5, 2.8, 3.2), 'box', MAT_VEHICLE),
    'pedestrian': ('human.pedestrian.adult', (0.7, 0.65, 1.75), 'box', MAT_PERSON),
    'motorcycle': ('vehicle.motorcycle', (2.1, 0.8, 1.5), 'box', MAT_CYCLE),
    'bicycle': ('vehicle.bicycle', (1.75, 0.6, 1.3), 'box', MAT_CYCLE),
    'traffic_cone': ('movable_object.trafficcone', (0.4, 0.4, 0.9), 'cylinder', MAT_CONE),
    'barrier': ('movable_object.barrier', (0.5, 2.4, 1.0), 'box', MAT_BARRIER),
}
DETECTION_CLASSES = tuple(CLASS_SPECS)

LANE_WIDTH = 3.5
ROAD_HALF_WIDTH = 2 * LANE_WIDTH  # two lanes each way: driving lane and parking lane
SIDEWALK_OUTER = 11.0


@dataclass
class SceneObject:
    """One primitive of a scene, in the global frame, moving with constant velocity from ``t0``."""
    object_id: int
    shape: str  # 'box' or 'cylinder'
    size: np.ndarray  # geometry (length, width, height); cylinders: (2r, 2r, height)
    center0: np.ndarray  # geometry centre at t0 (3,)
    yaw: float
    velocity: np.ndarray  # (2,) m/s in the global frame
    color: np.ndarray  # (3,) albedo in [0, 1]
    material: int
    t0: float = 0.0
    detection_class: Optional[str] = None
    category: Optional[str] = None
    attribute: Optional[str] = None

    @property
    def annotated(self) -> bool:
        return self.category is not None

    def center_at(self, t: float) -> np.ndarray:
        c = self.center0.copy()
        c[:2] += self.velocity * (t - self.t0)
        return c

    def annotation_box(self, t: float) -> Tuple[np.ndarray, np.ndarray, float]:
        """Annotated (centre (3,), size as nuScenes (w, l, h), yaw) at time ``t``."""
        l, w, h = self.size + 2 * ANNOTATION_MARGIN
        return self.center_at(t), np.array([w, l, h]), self.yaw


@dataclass
class Scene:
    """All objects of one scene plus the ego trajectory (constant velocity along the street)."""
    objects: List[SceneObject]
    origin: np.ndarray  # (3,) global position of the street frame
    heading: float  # global yaw of the street axis
    ego_start: np.ndarray  # (2,) ego position in the street frame at t0
    ego_speed: float
    t0: float = 0.0
    _cache: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def street_to_global(self, xy: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.heading), np.sin(self.heading)
        rot = np.array([[c, -s], [s, c]])
        return xy @ rot.T + self.origin[:2]

    def global_to_street(self, xy: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.heading), np.sin(self.heading)
        rot = np.array([[c, -s], [s, c]])
        return (xy - self.origin[:2]) @ rot

    def ego_pose(self, t: float) -> Tuple[np.ndarray, float]:
        """Ego translation (3,) and yaw in the global frame at time ``t`` (seconds)."""
        xy = self.ego_start + np.array([self.ego_speed * (t - self.t0), 0.0])
        g = self.street_to_global(xy[None])[0]
        return np.array([g[0], g[1], 0.0]), self.heading


def _attribute(cls: str, speed: float) -> Optional[str]:
    """Attributes consistent with nuScenes' usage (moving/parked vehicles, standing pedestrians, riders)."""
    moving = speed > 0.2
    if cls in ('car', 'truck', 'trailer', 'construction_vehicle'):
        return 'vehicle.moving' if moving else 'vehicle.parked'
    if cls == 'bus':
        return 'vehicle.moving' if moving else 'vehicle.stopped'
    if cls == 'pedestrian':
        return 'pedestrian.moving' if moving else 'pedestrian.standing'
    if cls in ('bicycle', 'motorcycle'):
        return 'cycle.with_rider' if moving else 'cycle.without_rider'
    return None


_VEHICLE_COLORS = np.array([[0.75, 0.1, 0.1], [0.1, 0.2, 0.6], [0.85, 0.85, 0.85], [0.15, 0.15, 0.15],
                            [0.9, 0.75, 0.1], [0.2, 0.5, 0.25], [0.55, 0.55, 0.6]])


@dataclass
class SceneConfig:
    """Knobs of the procedural layout."""
    duration: float  # seconds covered by the scene
    objects_per_class: Tuple[int, int] = (1, 2)  # min/max annotated objects per class
    moving_fraction: float = 0.4
    pole_spacing: float = 14.0


class _Lane:
    """Occupied intervals along x of one lane (static objects), to avoid overlaps."""

    def __init__(self) -> None:
        self.spans: List[Tuple[float, float]] = []

    def free(self, x0: float, x1: float, gap: float = 0.8) -> bool:
        return all(x1 + gap < a or x0 - gap > b for a, b in self.spans)

    def take(self, x0: float, x1: float) -> None:
        self.spans.append((x0, x1))


class _Street:
    """The objects of one scene in street coordinates (x along the street, y to the left), in placement order."""

    def __init__(self) -> None:
        self.objects: List[dict] = []

    def add(self, shape, size, x, y, z, yaw, vel, color, material, cls=None) -> None:
        self.objects.append(dict(shape=shape, size=np.asarray(size, float), xyz=np.array([x, y, z]), yaw=yaw,
                                 vel=np.asarray(vel, float), color=np.asarray(color, float), material=material,
                                 cls=cls))


@dataclass
class _Layout:
    """Where the road users of one scene go: the ego lane, the stretch seen up close, the queues of traffic."""
    ego_y: float
    near_lo: float  # static objects between near_lo and near_hi are seen up close by the ego
    near_hi: float
    traffic: Dict[str, dict]  # 'ahead' / 'oncoming' -> cursor (next free x) and speed of the lane
    parking: Dict[int, _Lane] = field(default_factory=lambda: {-1: _Lane(), 1: _Lane()})


def _add_buildings_and_poles(rng: np.random.Generator, street: _Street, cfg: SceneConfig, x_lo: float,
                             x_hi: float) -> None:
    """Buildings on both sides of the street, poles along each sidewalk."""
    for side in (-1, 1):
        x = x_lo - 20
        while x < x_hi + 20:
            length = rng.uniform(8, 25)
            depth = rng.uniform(8, 14)
            height = rng.uniform(6, 20)
            y = side * (SIDEWALK_OUTER + depth / 2 + rng.uniform(0.0, 2.0))
            color = rng.uniform(0.35, 0.85, size=3)
            street.add('box', (length, depth, height), x + length / 2, y, height / 2, 0.0, (0, 0), color,
                       MAT_BUILDING)
            x += length + rng.uniform(0.0, 6.0)
        for xp in np.arange(x_lo + rng.uniform(0, cfg.pole_spacing), x_hi, cfg.pole_spacing):
            street.add('cylinder', (0.3, 0.3, 5.5), xp, side * (ROAD_HALF_WIDTH + 0.6), 2.75, 0.0, (0, 0),
                       (0.5, 0.5, 0.52), MAT_POLE)


def _add_walking_pedestrian(rng: np.random.Generator, street: _Street, layout: _Layout, shape: str, lwh, z: float,
                            color, material: int, cls: str) -> None:
    """A pedestrian walking along a sidewalk, in either direction."""
    l, w, h = lwh
    side = int(rng.choice([-1, 1]))
    y = side * rng.uniform(ROAD_HALF_WIDTH + 1.3, SIDEWALK_OUTER - 1.0)
    direction = float(rng.choice([-1, 1]))
    speed = rng.uniform(1.0, 1.6)
    x = rng.uniform(layout.near_lo, layout.near_hi)
    street.add(shape, (l, w, h), x, y, z, 0.0 if direction > 0 else np.pi, (direction * speed, 0), color, material,
               cls)


def _add_moving_vehicle(rng: np.random.Generator, street: _Street, layout: _Layout, shape: str, lwh, z: float,
                        color, material: int, cls: str) -> None:
    """A road user driving ahead of the ego (faster) or oncoming; each lane moves at one speed, in a queue."""
    l, w, h = lwh
    lane = 'ahead' if rng.uniform() < 0.5 else 'oncoming'
    queue = layout.traffic[lane]
    x = queue['cursor'] + l / 2
    queue['cursor'] += l + rng.uniform(4.0, 12.0)
    speed = queue['speed']
    if lane == 'ahead':
        street.add(shape, (l, w, h), x, layout.ego_y, z, 0.0, (speed, 0), color, material, cls)
    else:
        street.add(shape, (l, w, h), x, LANE_WIDTH / 2, z, np.pi, (-speed, 0), color, material, cls)


def _add_static(rng: np.random.Generator, street: _Street, layout: _Layout, shape: str, lwh, z: float, color,
                material: int, cls: str) -> None:
    """A standing object in a parking lane, where it overlaps nothing placed before (200 tries, then none)."""
    l, w, h = lwh
    if cls in ('traffic_cone', 'barrier', 'pedestrian', 'bicycle', 'motorcycle'):
        # small objects stand at the inner edge of the parking lane, in plain view of the road
        lateral = lambda side: side * (LANE_WIDTH + 0.1 + w / 2 + rng.uniform(0.0, 0.1))
    else:  # parked vehicles
        lateral = lambda side: side * (LANE_WIDTH * 1.5 + rng.uniform(0.0, 0.3))
    half = max(l, w) / 2
    for attempt in range(200):
        widen = 2.0 * (attempt // 20)  # a crowded street pushes objects further out
        side = int(rng.choice([-1, 1]))
        x = rng.uniform(layout.near_lo - widen, layout.near_hi + widen)
        if layout.parking[side].free(x - half, x + half):
            layout.parking[side].take(x - half, x + half)
            yaw = rng.uniform(-0.05, 0.05) + (np.pi if rng.uniform() < 0.3 else 0.0)
            street.add(shape, (l, w, h), x, lateral(side), z, yaw, (0, 0), color, material, cls)
            return


def _add_road_users(rng: np.random.Generator, street: _Street, cfg: SceneConfig, layout: _Layout) -> None:
    """``cfg.objects_per_class`` annotated objects of every detection class, standing or moving."""
    for cls, (category, (ml, mw, mh), shape, material) in CLASS_SPECS.items():
        count = int(rng.integers(cfg.objects_per_class[0], cfg.objects_per_class[1] + 1))
        for k in range(count):
            l, w, h = np.array([ml, mw, mh]) * rng.uniform(0.9, 1.1, size=3)
            if shape == 'cylinder':
                w = l
            color = _VEHICLE_COLORS[rng.integers(len(_VEHICLE_COLORS))] if material == MAT_VEHICLE else \
                rng.uniform(0.2, 0.9, size=3)
            # the first object of every class stands still near the ego path, so each class is seen up close
            moving = k > 0 and cls not in ('traffic_cone', 'barrier') and (rng.uniform() < cfg.moving_fraction)
            z = GROUND_CLEARANCE + ANNOTATION_MARGIN + h / 2
            if moving and cls == 'pedestrian':
                place = _add_walking_pedestrian
            elif moving:
                place = _add_moving_vehicle
            else:
                place = _add_static
            place(rng, street, layout, shape, (l, w, h), z, color, material, cls)


def _to_global(street: _Street, origin: np.ndarray, heading: float, t0: float) -> List[SceneObject]:
    """The street's objects as :class:`SceneObject` in the global frame (ids from 1, in placement order)."""
    c, s = np.cos(heading), np.sin(heading)
    rot = np.array([[c, -s], [s, c]])
    objects = []
    for i, o in enumerate(street.objects):
        xy = rot @ o['xyz'][:2] + origin[:2]
        vel = rot @ o['vel']
        cls = o['cls']
        speed = float(np.linalg.norm(vel))
        objects.append(SceneObject(
            object_id=i + 1, shape=o['shape'], size=o['size'], center0=np.array([xy[0], xy[1], o['xyz'][2]]),
            yaw=float(np.arctan2(np.sin(o['yaw'] + heading), np.cos(o['yaw'] + heading))), velocity=vel,
            color=o['color'], material=o['material'], t0=t0, detection_class=cls,
            category=CLASS_SPECS[cls][0] if cls else None, attribute=_attribute(cls, speed) if cls else None))
    return objects


def build_scene(rng: np.random.Generator, cfg: SceneConfig, origin: np.ndarray, heading: float,
                t0: float) -> Scene:
    """Lay out one street scene. The ego drives in the right lane at 5-9 m/s for ``cfg.duration`` seconds."""
    ego_speed = float(rng.uniform(5.0, 9.0))
    ego_y = -LANE_WIDTH / 2
    travel = ego_speed * cfg.duration
    street = _Street()
    _add_buildings_and_poles(rng, street, cfg, x_lo=-45.0, x_hi=travel + 60.0)
    traffic = {'ahead': dict(cursor=float(rng.uniform(8.0, 14.0)), speed=ego_speed + float(rng.uniform(0.5, 2.5))),
               'oncoming': dict(cursor=travel * 0.5 + float(rng.uniform(0.0, 15.0)),
                                speed=float(rng.uniform(3.0, 8.0)))}
    _add_road_users(rng, street, cfg, _Layout(ego_y=ego_y, near_lo=-20.0, near_hi=travel + 30.0, traffic=traffic))
    return Scene(objects=_to_global(street, origin, heading, t0), origin=np.asarray(origin, float),
                 heading=float(heading), ego_start=np.array([0.0, ego_y]), ego_speed=ego_speed, t0=t0)
