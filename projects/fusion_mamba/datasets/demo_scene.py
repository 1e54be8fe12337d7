"""Procedural drawing of one registered visible / thermal street scene (numpy + cv2).

Complementary visibility by design:

=========  ===========================================  ==============================
class      visible image (BGR)                          infrared image (thermal)
=========  ===========================================  ==============================
person     coloured clothes by day, near black at night  warm (bright) day and night
car        coloured body (dimmer at night), head and tail   warm tyres and engine, cool glass
           lights at night
sign       bright painted plate, retro-reflective at     same temperature as the
           night                                         background: invisible
animal     camouflaged: the colour of the ground behind  warm (bright) day and night
=========  ===========================================  ==============================

So signs need the visible image, animals the infrared one, and people at night the
infrared one. Boxes are in visible-image pixels; the infrared image is shifted by a small
integer registration offset (dx, dy) as real rigs are not perfectly registered.
"""
from dataclasses import dataclass, field
from typing import List, Tuple

import cv2
import numpy as np

from .classes import DEMO_CLASSES

NIGHT_ILLUMINATION = 0.14  # visible-light level at night relative to day
SIGN_NIGHT_LEVEL = 0.75  # retro-reflective paint seen in head lights
CAR_NIGHT_LEVEL = 0.35  # car paint under street lights
VISIBILITY = {  # modalities in which each class is distinct (day, night)
    'person': (('visible', 'infrared'), ('infrared', )),
    'car': (('visible', 'infrared'), ('visible', 'infrared')),
    'sign': (('visible', ), ('visible', )),
    'animal': (('infrared', ), ('infrared', )),
}


@dataclass
class Canvas:
    """The two images being drawn, float32: ``rgb`` (H, W, 3) BGR, ``ir`` (H, W)."""
    rgb: np.ndarray
    ir: np.ndarray
    illumination: float  # 1 by day, NIGHT_ILLUMINATION at night
    boxes: List[Tuple[str, Tuple[float, float, float, float]]] = field(default_factory=list)


def _fill(img: np.ndarray, pts, value) -> None:
    cv2.fillPoly(img, [np.round(np.asarray(pts)).astype(np.int32)], value, cv2.LINE_AA)


def _rect(img: np.ndarray, x0, y0, x1, y1, value) -> None:
    _fill(img, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], value)


def _ellipse(img: np.ndarray, center, axes, value) -> None:
    cv2.ellipse(img, (int(round(center[0])), int(round(center[1]))),
                (max(1, int(round(axes[0]))), max(1, int(round(axes[1])))), 0, 0, 360, value,
                -1, cv2.LINE_AA)


def _lit(color, level: float) -> tuple:
    return tuple(float(c) * level for c in color)


def draw_background(rng: np.random.Generator, width: int, height: int,
                    night: bool) -> Tuple[Canvas, int]:
    """Sky, buildings on the horizon, road with lane marks and verges.

    Returns the canvas and the horizon row.
    """
    level = NIGHT_ILLUMINATION if night else 1.0
    horizon = int(height * rng.uniform(0.34, 0.44))
    rgb = np.empty((height, width, 3), np.float32)
    ir = np.empty((height, width), np.float32)
    rows = np.linspace(0, 1, horizon, dtype=np.float32)[:, None]
    sky_top, sky_low = np.array([200, 150, 90]), np.array([245, 215, 175])
    rgb[:horizon] = ((1 - rows) * sky_top + rows * sky_low)[:, None, :] * level
    ir[:horizon] = 25 + 15 * rows
    ground_rgb = np.array([rng.uniform(60, 90), rng.uniform(100, 140), rng.uniform(90, 120)])
    ground_ir = rng.uniform(115, 135) if not night else rng.uniform(70, 90)
    rgb[horizon:] = ground_rgb * level
    ir[horizon:] = ground_ir
    x = 0
    while x < width:  # buildings and trees along the horizon
        w = int(rng.uniform(20, 60))
        top = horizon - int(rng.uniform(10, horizon * 0.8))
        color = rng.uniform(70, 200, 3)
        _rect(rgb, x, top, x + w, horizon, _lit(color, level))
        _rect(ir, x, top, x + w, horizon, float(rng.uniform(60, 110)))
        for _ in range(int(rng.integers(0, 4))):  # windows: warm at night, unlabelled
            wx, wy = x + rng.uniform(2, max(3, w - 8)), rng.uniform(top + 2, horizon - 6)
            window_rgb = (60, 200, 240) if night and rng.random() < 0.5 else (90, 80, 70)
            _rect(rgb, wx, wy, wx + 5, wy + 4, _lit(window_rgb, level if not night else 0.8))
            _rect(ir, wx, wy, wx + 5, wy + 4, float(rng.uniform(120, 170)))
        x += w + int(rng.uniform(0, 15))
    road_half_top, road_half_bottom = width * rng.uniform(0.03, 0.08), width * rng.uniform(
        0.35, 0.5)
    cx = width * rng.uniform(0.4, 0.6)
    road = [(cx - road_half_top, horizon), (cx + road_half_top, horizon),
            (cx + road_half_bottom, height), (cx - road_half_bottom, height)]
    road_rgb = rng.uniform(95, 130)
    _fill(rgb, road, _lit((road_rgb, road_rgb, road_rgb), level))
    _fill(ir, road, float(ground_ir + (12 if not night else 6)))
    for t0 in np.arange(0.05, 1.0, 0.16):  # dashed centre line: paint, invisible in IR
        t1 = t0 + 0.07
        y0, y1 = horizon + t0 * (height - horizon), horizon + t1 * (height - horizon)
        hw0, hw1 = 0.5 + 2.5 * t0, 0.5 + 2.5 * t1
        _fill(rgb, [(cx - hw0, y0), (cx + hw0, y0), (cx + hw1, y1), (cx - hw1, y1)],
              _lit((235, 235, 235), max(level, 0.35)))
    return Canvas(rgb, ir, level), horizon


def draw_person(canvas: Canvas, rng: np.random.Generator, xc: float, yb: float,
                h: float) -> Tuple[float, float, float, float]:
    """A standing person with feet at (xc, yb), height h; returns its box (x0, y0, x1, y1)."""
    w = 0.38 * h
    shirt, trousers = rng.uniform(30, 230, 3), rng.uniform(20, 110, 3)
    skin = (rng.uniform(90, 160), rng.uniform(120, 180), rng.uniform(170, 230))
    warm = rng.uniform(-12, 12)
    for img, head, torso, legs in ((canvas.rgb, _lit(skin, canvas.illumination),
                                    _lit(shirt, canvas.illumination),
                                    _lit(trousers, canvas.illumination)),
                                   (canvas.ir, 232 + warm, 212 + warm, 200 + warm)):
        _rect(img, xc - 0.14 * w, yb - 0.45 * h, xc - 0.02 * w, yb, legs)
        _rect(img, xc + 0.02 * w, yb - 0.45 * h, xc + 0.14 * w, yb, legs)
        _fill(img, [(xc - 0.5 * w, yb - 0.76 * h), (xc + 0.5 * w, yb - 0.76 * h),
                    (xc + 0.3 * w, yb - 0.42 * h), (xc - 0.3 * w, yb - 0.42 * h)], torso)
        _ellipse(img, (xc, yb - 0.88 * h), (0.3 * w, 0.12 * h), head)
    return xc - 0.5 * w, yb - h, xc + 0.5 * w, yb


def draw_car(canvas: Canvas, rng: np.random.Generator, xc: float, yb: float,
             w: float) -> Tuple[float, float, float, float]:
    """A side-view car with wheels touching yb, width w; returns its box."""
    h = 0.5 * w
    x0, x1 = xc - 0.5 * w, xc + 0.5 * w
    facing = 1 if rng.random() < 0.5 else -1  # +1: front on the right
    body = rng.uniform(20, 235, 3)
    night = canvas.illumination < 1
    paint = max(canvas.illumination, CAR_NIGHT_LEVEL)
    body_ir = float(rng.uniform(145, 170) if not night else rng.uniform(100, 120))
    _rect(canvas.rgb, x0, yb - 0.62 * h, x1, yb - 0.15 * h, _lit(body, paint))
    _rect(canvas.ir, x0, yb - 0.62 * h, x1, yb - 0.15 * h, body_ir)
    cabin = [(x0 + 0.22 * w, yb - h), (x1 - 0.22 * w, yb - h), (x1 - 0.08 * w, yb - 0.6 * h),
             (x0 + 0.08 * w, yb - 0.6 * h)]
    _fill(canvas.rgb, cabin, _lit(body, paint))
    _fill(canvas.ir, cabin, body_ir)
    glass = [(x0 + 0.26 * w, yb - 0.92 * h), (x1 - 0.26 * w, yb - 0.92 * h),
             (x1 - 0.15 * w, yb - 0.64 * h), (x0 + 0.15 * w, yb - 0.64 * h)]
    _fill(canvas.rgb, glass, _lit((110, 90, 70), canvas.illumination))
    _fill(canvas.ir, glass, float(rng.uniform(55, 75)))  # glass reflects the cold sky
    engine_x0 = xc + facing * 0.2 * w
    _rect(canvas.ir, min(engine_x0, xc + facing * 0.5 * w), yb - 0.55 * h,
          max(engine_x0, xc + facing * 0.5 * w), yb - 0.2 * h, float(rng.uniform(175, 205)))
    for wheel_x in (x0 + 0.22 * w, x1 - 0.22 * w):
        _ellipse(canvas.rgb, (wheel_x, yb - 0.15 * h), (0.15 * h, 0.15 * h),
                 _lit((25, 25, 25), canvas.illumination))
        _ellipse(canvas.ir, (wheel_x, yb - 0.15 * h), (0.15 * h, 0.15 * h),
                 float(rng.uniform(190, 220)))
    if night:  # head light in front, tail light at the back
        front_x, back_x = xc + facing * 0.47 * w, xc - facing * 0.47 * w
        _ellipse(canvas.rgb, (front_x, yb - 0.42 * h), (0.06 * w, 0.1 * h), (200, 250, 255))
        _ellipse(canvas.rgb, (back_x, yb - 0.42 * h), (0.04 * w, 0.08 * h), (40, 40, 230))
    return x0, yb - h, x1, yb


def draw_sign(canvas: Canvas, rng: np.random.Generator, xc: float, yb: float,
              size: float) -> Tuple[float, float, float, float]:
    """A painted traffic sign on a pole standing at (xc, yb); returns the plate's box.

    Plate and pole have the temperature of what is behind them: nothing is drawn in the
    infrared image.
    """
    level = SIGN_NIGHT_LEVEL if canvas.illumination < 1 else 1.0
    pole_top = yb - 2.2 * size
    r = size / 2
    cy = pole_top - r
    _rect(canvas.rgb, xc - 0.06 * size, pole_top, xc + 0.06 * size, yb,
          _lit((150, 150, 150), canvas.illumination))
    shape = rng.integers(3)
    red, white, blue = (30, 30, 220), (245, 245, 245), (200, 90, 20)
    if shape == 0:  # prohibition: red disc, white centre
        _ellipse(canvas.rgb, (xc, cy), (r, r), _lit(red, level))
        _ellipse(canvas.rgb, (xc, cy), (0.7 * r, 0.7 * r), _lit(white, level))
    elif shape == 1:  # warning: white triangle, red border
        _fill(canvas.rgb, [(xc, cy - r), (xc + r, cy + r), (xc - r, cy + r)], _lit(red, level))
        _fill(canvas.rgb, [(xc, cy - 0.45 * r), (xc + 0.6 * r, cy + 0.75 * r),
                           (xc - 0.6 * r, cy + 0.75 * r)], _lit(white, level))
    else:  # information: blue square, white arrow
        _rect(canvas.rgb, xc - r, cy - r, xc + r, cy + r, _lit(blue, level))
        _fill(canvas.rgb, [(xc - 0.2 * r, cy + 0.6 * r), (xc + 0.2 * r, cy + 0.6 * r),
                           (xc + 0.2 * r, cy - 0.1 * r), (xc + 0.5 * r, cy - 0.1 * r),
                           (xc, cy - 0.7 * r), (xc - 0.5 * r, cy - 0.1 * r),
                           (xc - 0.2 * r, cy - 0.1 * r)], _lit(white, level))
    return xc - r, cy - r, xc + r, cy + r


def draw_animal(canvas: Canvas, rng: np.random.Generator, xc: float, yb: float,
                w: float) -> Tuple[float, float, float, float]:
    """A four-legged animal (feet at yb, width w) coloured like the ground behind it."""
    h = 0.65 * w
    x0, y0 = int(max(xc - 0.5 * w, 0)), int(max(yb - h, 0))
    ground = canvas.rgb[y0:int(yb) + 1, x0:int(xc + 0.5 * w) + 1].reshape(-1, 3).mean(0)
    coat = tuple(ground + rng.uniform(-6, 6, 3))
    facing = 1 if rng.random() < 0.5 else -1
    temp = float(rng.uniform(185, 220))
    for img, value in ((canvas.rgb, coat), (canvas.ir, temp)):
        for leg_x in (xc - 0.3 * w, xc - 0.15 * w, xc + 0.1 * w, xc + 0.25 * w):
            _rect(img, leg_x, yb - 0.45 * h, leg_x + 0.07 * w, yb, value)
        _ellipse(img, (xc - facing * 0.05 * w, yb - 0.55 * h), (0.36 * w, 0.2 * h), value)
        _ellipse(img, (xc + facing * 0.36 * w, yb - 0.8 * h), (0.14 * w, 0.2 * h), value)
    return xc - 0.5 * w, yb - h, xc + 0.5 * w, yb


# class -> (drawing function, size at the horizon, size at the bottom row)
OBJECT_MODELS = {
    'person': (draw_person, 26.0, 80.0),
    'car': (draw_car, 48.0, 120.0),
    'sign': (draw_sign, 12.0, 28.0),
    'animal': (draw_animal, 26.0, 52.0),
}
# Extent of each model's box relative to its size: (width, height) / size.
BOX_EXTENT = {'person': (0.38, 1.0), 'car': (1.0, 0.5), 'sign': (1.0, 3.2),
              'animal': (1.0, 0.65)}


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def plan_objects(rng: np.random.Generator, width: int, height: int,
                 horizon: int) -> List[Tuple[str, float, float, float]]:
    """Choose (class, x_centre, y_bottom, size) for 1-7 non-overlapping objects, far first."""
    counts = {'person': rng.integers(0, 4), 'car': rng.integers(0, 3),
              'sign': rng.integers(0, 3), 'animal': rng.integers(0, 3)}
    if sum(counts.values()) == 0:
        counts[DEMO_CLASSES[rng.integers(len(DEMO_CLASSES))]] = 1
    planned, extents = [], []
    for name in DEMO_CLASSES:
        _, far, near = OBJECT_MODELS[name]
        ext_w, ext_h = BOX_EXTENT[name]
        for _ in range(counts[name]):
            for _attempt in range(20):
                yb = rng.uniform(horizon + 8, height - 2)
                size = far + (near - far) * (yb - horizon) / (height - horizon)
                half_w = 0.5 * ext_w * size
                xc = rng.uniform(half_w + 1, width - half_w - 1)
                box = (xc - half_w, yb - ext_h * size, xc + half_w, yb)
                if box[1] >= 1 and all(_iou(box, other) < 0.05 for other in extents):
                    planned.append((name, xc, yb, size))
                    extents.append(box)
                    break
    return sorted(planned, key=lambda item: item[2])


def render_pair(rng: np.random.Generator, width: int, height: int, night: bool,
                ir_offset: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray, list]:
    """Draw one scene.

    Returns:
        tuple: visible image (H, W, 3) uint8 BGR, infrared image (H, W) uint8 (shifted by
        ``ir_offset`` = (dx, dy) pixels), and a list of (class name, (x0, y0, x1, y1)) boxes
        in visible-image pixels.
    """
    canvas, horizon = draw_background(rng, width, height, night)
    for name, xc, yb, size in plan_objects(rng, width, height, horizon):
        box = OBJECT_MODELS[name][0](canvas, rng, xc, yb, size)
        canvas.boxes.append((name, box))
    noise_rgb = 6.0 if not night else 4.0
    rgb = canvas.rgb + rng.standard_normal(canvas.rgb.shape, dtype=np.float32) * noise_rgb
    ir = cv2.GaussianBlur(canvas.ir, (3, 3), 0.8)
    ir += rng.standard_normal(ir.shape, dtype=np.float32) * 3.0
    dx, dy = ir_offset
    pad = max(abs(dx), abs(dy))
    if pad:
        padded = np.pad(ir, pad, mode='edge')
        ir = padded[pad - dy:pad - dy + height, pad - dx:pad - dx + width]
    return _to_uint8(rgb), _to_uint8(ir), canvas.boxes
