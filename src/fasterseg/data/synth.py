"""Procedural street scenes written in the Cityscapes layout: the built-in data set for demos and tests.

A scene is a small world in metres seen by a pinhole camera 1.3 m above a flat road: road,
sidewalks, terrain, facades with windows, walls, fences, trees, poles with signs and lights,
and instances of cars, trucks, buses, trams, persons, and riders on bicycles and motorcycles.
Shapes are drawn far to near on three canvases at once (label ids, instance ids, albedo); the
albedo is then textured, lit and noised, and colours are jittered per scene and per object, so
that colour alone does not give the label. Every scene is drawn from its own random stream
derived from ``(seed, split, index)``: the same seed gives the same files byte for byte.

Rare classes follow a schedule (scene ``i`` features a truck, a bus, a tram or riders, by
``i % 4``), so any four consecutive scenes of a split hold all 19 evaluated classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from fasterseg.data.cityscapes import COLOR_SUFFIX, IMAGE_SUFFIX, INSTANCE_SUFFIX, LABEL_SUFFIX
from fasterseg.data.labels import NAME_TO_LABEL, color_table
from fasterseg.errors import FasterSegError
from fasterseg.utils.io import atomic_path

CITY = "synth"
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
CAMERA_HEIGHT = 1.3  # metres
NEAR = 0.6  # metres: geometry closer than this is cut


def _id(name: str) -> int:
    return NAME_TO_LABEL[name].id


# Per-label texture strength (relative albedo modulation) and grain (fine noise).
_TEXTURE = {"road": (0.10, 0.08), "sidewalk": (0.12, 0.06), "building": (0.10, 0.05), "vegetation": (0.35, 0.25),
            "terrain": (0.25, 0.15), "sky": (0.06, 0.01), "wall": (0.12, 0.06), "fence": (0.05, 0.05)}


@dataclass
class SynthConfig:
    """What ``fasterseg data synth`` writes."""

    out: Path
    train: int = 160
    val: int = 40
    size: tuple[int, int] = (256, 512)
    seed: int = 0


class _Canvas:
    """Three aligned canvases: label ids, instance ids, albedo; one draw call fills all three."""

    def __init__(self, h: int, w: int, sky_id: int):
        self.h, self.w = h, w
        self.label = Image.new("L", (w, h), sky_id)
        self.inst = Image.new("I", (w, h), sky_id)
        self.albedo = Image.new("RGB", (w, h), (0, 0, 0))
        self.shade = Image.new("L", (w, h), 255)
        self._dl, self._di = ImageDraw.Draw(self.label), ImageDraw.Draw(self.inst)
        self._da, self._ds = ImageDraw.Draw(self.albedo), ImageDraw.Draw(self.shade)

    def poly(self, pts, label: int, inst: int, color, albedo_only: bool = False) -> None:
        pts = [(float(x), float(y)) for x, y in pts]
        if not albedo_only:
            self._dl.polygon(pts, fill=label)
            self._di.polygon(pts, fill=inst)
        self._da.polygon(pts, fill=tuple(int(c) for c in color))

    def ellipse(self, box, label: int, inst: int, color, albedo_only: bool = False, width: int = 0) -> None:
        box = [float(v) for v in box]
        if box[2] <= box[0] or box[3] <= box[1]:
            return
        kw = {"width": width} if width else {}
        if not albedo_only:
            self._dl.ellipse(box, fill=None if width else label, outline=label if width else None, **kw)
            self._di.ellipse(box, fill=None if width else inst, outline=inst if width else None, **kw)
        c = tuple(int(v) for v in color)
        self._da.ellipse(box, fill=None if width else c, outline=c if width else None, **kw)

    def line(self, pts, label: int, inst: int, color, width: int) -> None:
        pts = [(float(x), float(y)) for x, y in pts]
        self._dl.line(pts, fill=label, width=width)
        self._di.line(pts, fill=inst, width=width)
        self._da.line(pts, fill=tuple(int(c) for c in color), width=width)

    def shadow(self, box, strength: int) -> None:
        self._ds.ellipse([float(v) for v in box], fill=255 - strength)


class _Scene:
    """One street scene: camera, street layout, and the drawing of every element."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, index: int):
        self.rng, self.h, self.w, self.index = rng, h, w, index
        self.f = 1.1 * w * rng.uniform(0.9, 1.1)
        self.y0 = h * rng.uniform(0.36, 0.46)
        self.vx = w * rng.uniform(0.42, 0.58)
        self.c = _Canvas(h, w, _id("sky"))
        self.counts: dict[str, int] = {}
        road_l, road_r = rng.uniform(3.0, 8.0), rng.uniform(3.0, 8.0)
        self.road = (-road_l, road_r)
        self.walk = (rng.uniform(1.8, 4.0), rng.uniform(1.8, 4.0))
        self.terrain = tuple(rng.uniform(1.0, 4.0) if rng.random() < 0.45 else 0.0 for _ in range(2))
        self.far = rng.uniform(60, 140)

    # -- projection -------------------------------------------------------------------------
    def px(self, X: float, Y: float, Z: float) -> tuple[float, float]:
        Z = max(Z, NEAR)
        return self.vx + self.f * X / Z, self.y0 + self.f * (CAMERA_HEIGHT - Y) / Z

    def ppm(self, Z: float) -> float:
        return self.f / max(Z, NEAR)

    def instance(self, name: str) -> int:
        k = self.counts.get(name, 0)
        self.counts[name] = k + 1
        return _id(name) * 1000 + k

    def jitter(self, rgb, amount: float = 18.0) -> np.ndarray:
        return np.clip(np.asarray(rgb, float) + self.rng.normal(0, amount, 3), 0, 255)

    # -- street -----------------------------------------------------------------------------
    def edges(self, side: int) -> tuple[float, float, float]:
        """Lateral positions of road edge, sidewalk edge and facade on one side (-1 left, +1 right)."""
        road = self.road[0] if side < 0 else self.road[1]
        walk = road + side * self.walk[0 if side < 0 else 1]
        facade = walk + side * self.terrain[0 if side < 0 else 1]
        return road, walk, facade

    def ground_strip(self, x0: float, x1: float, z0: float, z1: float, name: str, color) -> None:
        pts = [self.px(x0, 0, z0), self.px(x1, 0, z0), self.px(x1, 0, z1), self.px(x0, 0, z1)]
        self.c.poly(pts, _id(name), _id(name), color)

    def draw_ground(self) -> None:
        rng = self.rng
        far = self.far
        asphalt = self.jitter((rng.uniform(70, 120),) * 3, 8)
        walk_col = self.jitter(rng.choice([(150, 140, 140), (175, 160, 165), (130, 130, 135)]), 12)
        terrain_col = self.jitter((120, 150, 80), 20)
        for side in (-1, 1):
            road, walk, facade = self.edges(side)
            # ground beyond the facade line, visible through gaps between buildings
            self.ground_strip(facade, facade + side * 200, NEAR, far, "terrain" if rng.random() < 0.5 else "ground",
                              terrain_col * 0.8)
            self.ground_strip(walk, facade, NEAR, far, "terrain", terrain_col)
            self.ground_strip(road, walk, NEAR, far, "sidewalk", walk_col)
        self.ground_strip(self.road[0], self.road[1], NEAR, far, "road", asphalt)
        # lane markings (road, lighter albedo) and parking bays (ignored in evaluation)
        for X in np.arange(self.road[0] + 3.2, self.road[1] - 1.0, 3.4):
            for z in np.arange(rng.uniform(2, 6), far, 9.0):
                a, b = self.px(X - 0.07, 0, z), self.px(X + 0.07, 0, z)
                cc, d = self.px(X + 0.07, 0, z + 3.5), self.px(X - 0.07, 0, z + 3.5)
                self.c.poly([a, b, cc, d], 0, 0, (215, 215, 205), albedo_only=True)
        if rng.random() < 0.3:
            side = -1 if rng.random() < 0.5 else 1
            road = self.edges(side)[0]
            z0 = rng.uniform(8, 30)
            self.ground_strip(road, road - side * 2.2, z0, z0 + rng.uniform(5, 15), "parking", asphalt * 1.1)
        # the far end of the street: a row of buildings or trees across the view
        left, right = self.edges(-1)[2] - 60, self.edges(1)[2] + 60
        x = left
        while x < right:
            wdt = rng.uniform(6, 20)
            hgt = rng.uniform(8, 30)
            name = "building" if rng.random() < 0.75 else "vegetation"
            col = self.jitter((110, 105, 100), 30) if name == "building" else self.jitter((70, 100, 40), 15)
            pts = [self.px(x, 0, far), self.px(x + wdt, 0, far), self.px(x + wdt, hgt, far), self.px(x, hgt, far)]
            self.c.poly(pts, _id(name), _id(name), col)
            x += wdt

    def facade(self, side: int, z0: float, z1: float, height: float) -> None:
        rng = self.rng
        X = self.edges(side)[2]
        col = self.jitter(rng.choice([(120, 115, 110), (160, 140, 110), (90, 90, 95), (170, 160, 150), (140, 90, 70)]), 15)
        col = col * (0.75 if side > 0 else 1.0)
        quad = [self.px(X, 0, z0), self.px(X, 0, z1), self.px(X, height, z1), self.px(X, height, z0)]
        self.c.poly(quad, _id("building"), _id("building"), col)
        # windows: albedo only, the label stays building
        win = self.jitter((60, 70, 90), 20) if rng.random() < 0.7 else col * 0.6
        floor, bay = rng.uniform(2.8, 3.6), rng.uniform(2.0, 3.5)
        for yb in np.arange(1.0, height - 1.5, floor):
            for zb in np.arange(z0 + 0.5, z1 - 1.0, bay):
                pts = [self.px(X, yb, zb), self.px(X, yb, zb + 1.0), self.px(X, yb + 1.5, zb + 1.0), self.px(X, yb + 1.5, zb)]
                self.c.poly(pts, 0, 0, win, albedo_only=True)

    def draw_facades(self) -> None:
        rng = self.rng
        for side in (-1, 1):
            z = self.far
            while z > NEAR:
                length = rng.uniform(8, 30)
                z0 = max(z - length, NEAR)
                if rng.random() < 0.85:
                    self.facade(side, z0, z, rng.uniform(6, 28))
                else:  # a gap: trees behind the street line
                    self.tree(self.edges(side)[2] + side * rng.uniform(2, 6), (z0 + z) / 2, scale=1.6)
                z = z0 - rng.uniform(0, 3)

    def vertical_strip(self, X: float, z0: float, z1: float, height: float, name: str, color, inst: int | None = None):
        quad = [self.px(X, 0, z0), self.px(X, 0, z1), self.px(X, height, z1), self.px(X, height, z0)]
        lab = _id(name)
        self.c.poly(quad, lab, lab if inst is None else inst, color)

    def draw_barriers(self, want_wall: bool, want_fence: bool) -> None:
        rng = self.rng
        for name, want in (("wall", want_wall), ("fence", want_fence)):
            if not want:
                continue
            side = -1 if rng.random() < 0.5 else 1
            X = self.edges(side)[1] + side * 0.2
            z0 = rng.uniform(4, 15)
            z1 = z0 + rng.uniform(8, 30)
            hgt = rng.uniform(0.8, 2.0)
            col = self.jitter((150, 145, 135) if name == "wall" else (120, 110, 100), 20)
            self.vertical_strip(X, z0, z1, hgt, name, col)
            if name == "fence":  # a lattice in the albedo; the whole panel is fence
                for zb in np.arange(z0, z1, 0.4):
                    a, b = self.px(X, 0, zb), self.px(X, hgt, zb)
                    self.c.line([a, b], _id("fence"), _id("fence"), col * 0.5, width=max(1, int(self.ppm(zb) * 0.05)))

    def tree(self, X: float, Z: float, scale: float = 1.0) -> None:
        rng = self.rng
        ppm = self.ppm(Z)
        veg = _id("vegetation")
        trunk_h = rng.uniform(1.5, 3.0) * scale
        x, y = self.px(X, 0, Z)
        tw = max(1.0, 0.15 * scale * ppm)
        self.c.poly([(x - tw, y), (x + tw, y), (x + tw, y - trunk_h * ppm), (x - tw, y - trunk_h * ppm)], veg, veg,
                    self.jitter((80, 60, 40), 10))
        green = self.jitter((60, 110, 40), 20)
        cx, cy = x, y - (trunk_h + rng.uniform(1.0, 2.0) * scale) * ppm
        for _ in range(rng.integers(3, 7)):
            r = rng.uniform(1.0, 2.2) * scale * ppm
            ox, oy = rng.normal(0, 0.8 * scale * ppm, 2)
            self.c.ellipse([cx + ox - r, cy + oy - r, cx + ox + r, cy + oy + r], veg, veg, green * rng.uniform(0.8, 1.2))

    def pole(self, X: float, Z: float, with_light: bool, with_sign: bool) -> None:
        rng = self.rng
        ppm = self.ppm(Z)
        x, y = self.px(X, 0, Z)
        top = rng.uniform(3.0, 5.0)
        pw = max(0.6, 0.07 * ppm)
        pole = _id("pole")
        self.c.poly([(x - pw, y), (x + pw, y), (x + pw, y - top * ppm), (x - pw, y - top * ppm)], pole, pole,
                    self.jitter((110, 110, 110), 25))
        if with_sign:
            sid, s = _id("traffic sign"), rng.uniform(0.35, 0.5) * ppm
            cy = y - (top - 0.6) * ppm
            shape = rng.integers(3)
            col = self.jitter(rng.choice([(200, 30, 30), (30, 60, 180), (230, 230, 230), (230, 200, 40)]), 15)
            if shape == 0:
                self.c.ellipse([x - s, cy - s, x + s, cy + s], sid, sid, col)
            elif shape == 1:
                self.c.poly([(x - s, cy + s * 0.8), (x + s, cy + s * 0.8), (x, cy - s)], sid, sid, col)
            else:
                self.c.poly([(x - s, cy - s * 0.7), (x + s, cy - s * 0.7), (x + s, cy + s * 0.7), (x - s, cy + s * 0.7)],
                            sid, sid, col)
        if with_light:
            lid = _id("traffic light")
            lw, lh = 0.2 * ppm, 0.8 * ppm
            cy = y - (top - 0.2) * ppm
            self.c.poly([(x - lw, cy - lh), (x + lw, cy - lh), (x + lw, cy + lh), (x - lw, cy + lh)], lid, lid,
                        self.jitter((35, 35, 30), 8))
            on = rng.integers(3)
            for k, lamp in enumerate(((220, 40, 30), (230, 170, 20), (40, 200, 80))):
                r = 0.12 * ppm
                ly = cy - lh * 0.6 + k * lh * 0.6
                colr = lamp if k == on else tuple(v * 0.3 for v in lamp)
                self.c.ellipse([x - r, ly - r, x + r, ly + r], lid, lid, colr, albedo_only=True)

    # -- objects ------------------------------------------------------------------------------
    def box(self, X0: float, X1: float, Y0: float, Y1: float, Z: float):
        (a, b), (cc, d) = self.px(X0, Y0, Z), self.px(X1, Y1, Z)
        return [(a, b), (cc, b), (cc, d), (a, d)]

    def vehicle(self, kind: str, X: float, Z: float) -> None:
        rng = self.rng
        dims = {"car": (1.8, 1.5), "truck": (2.5, 3.4), "bus": (2.6, 3.2), "train": (2.7, 3.6),
                "caravan": (2.3, 2.7), "trailer": (2.4, 2.2)}
        width, height = dims[kind]
        width *= rng.uniform(0.9, 1.1)
        height *= rng.uniform(0.9, 1.1)
        inst = self.instance(kind)
        lab = _id(kind)
        ppm = self.ppm(Z)
        x, y = self.px(X, 0, Z)
        self.c.shadow([x - width * 0.7 * ppm, y - 0.25 * ppm, x + width * 0.7 * ppm, y + 0.25 * ppm], 120)
        palette = [(200, 200, 200), (40, 40, 45), (120, 120, 125), (150, 30, 30), (30, 50, 120), (230, 230, 225),
                   (90, 100, 80), (170, 150, 60)]
        body = self.jitter(palette[rng.integers(len(palette))], 12)
        glass = self.jitter((45, 55, 70), 10)
        X0, X1 = X - width / 2, X + width / 2
        if kind == "car":
            self.c.poly(self.box(X0, X1, 0.25, 0.95 * height * 0.6, Z), lab, inst, body)
            cab = [self.px(X0 + 0.15, height * 0.55, Z), self.px(X1 - 0.15, height * 0.55, Z),
                   self.px(X1 - 0.35, height, Z), self.px(X0 + 0.35, height, Z)]
            self.c.poly(cab, lab, inst, body)
            self.c.poly(self.box(X0 + 0.3, X1 - 0.3, height * 0.6, height * 0.93, Z), lab, inst, glass, albedo_only=True)
        elif kind == "truck":
            self.c.poly(self.box(X0, X1, 0.4, height, Z), lab, inst, body)
            self.c.poly(self.box(X0 + 0.2, X1 - 0.2, height * 0.55, height * 0.8, Z), lab, inst, glass, albedo_only=True)
        else:  # bus, train, caravan, trailer: a tall box with a band of windows
            self.c.poly(self.box(X0, X1, 0.3, height, Z), lab, inst, body)
            self.c.poly(self.box(X0 + 0.1, X1 - 0.1, height * 0.5, height * 0.85, Z), lab, inst, glass, albedo_only=True)
        for wx in (X0 + 0.35, X1 - 0.35):  # wheels belong to the vehicle
            (cx, cy), r = self.px(wx, 0.33, Z), 0.33 * ppm
            self.c.ellipse([cx - r, cy - r, cx + r, cy + r], lab, inst, (20, 20, 20))
        if kind == "car":  # a licence plate: labelled car, as in Cityscapes' fine annotations
            self.c.poly(self.box(X - 0.25, X + 0.25, 0.45, 0.57, Z), lab, inst, (225, 225, 215), albedo_only=True)

    def person(self, X: float, Z: float, name: str = "person", inst: int | None = None, lift: float = 0.0) -> None:
        rng = self.rng
        ppm = self.ppm(Z)
        lab = _id(name)
        if inst is None:
            inst = self.instance(name)
        height = rng.uniform(1.55, 1.9)
        x, y = self.px(X, lift, Z)
        self.c.shadow([x - 0.4 * ppm, y - 0.1 * ppm, x + 0.4 * ppm, y + 0.1 * ppm], 90)
        skin = self.jitter(rng.choice([(230, 190, 160), (190, 140, 100), (120, 80, 60)]), 10)
        shirt = self.jitter(rng.uniform(20, 230, 3), 5)
        trousers = self.jitter(rng.uniform(20, 120, 3), 5)
        leg = 0.45 * height
        stride = rng.uniform(0.0, 0.25)
        for dx in (-stride, stride):
            self.c.line([(x, y - leg * ppm), (x + dx * ppm, y)], lab, inst, trousers, width=max(1, int(0.14 * ppm)))
        torso_w = 0.22 * ppm
        self.c.poly([(x - torso_w, y - leg * ppm), (x + torso_w, y - leg * ppm),
                     (x + torso_w * 1.1, y - 0.82 * height * ppm), (x - torso_w * 1.1, y - 0.82 * height * ppm)],
                    lab, inst, shirt)
        r = 0.11 * ppm
        hy = y - (height - 0.11) * ppm
        self.c.ellipse([x - r, hy - r, x + r, hy + r], lab, inst, skin)

    def crowd(self, X: float, Z: float) -> None:
        """A group of persons labelled as a group (instance id = label id, no instance)."""
        pid = _id("person")
        for k in range(self.rng.integers(3, 6)):
            self.person(X + k * 0.45 + self.rng.normal(0, 0.1), Z + self.rng.normal(0, 0.3), inst=pid)

    def cycle(self, kind: str, X: float, Z: float) -> None:
        """A bicycle or motorcycle instance, ridden by a rider instance."""
        rng = self.rng
        ppm = self.ppm(Z)
        lab, inst = _id(kind), self.instance(kind)
        r = (0.34 if kind == "bicycle" else 0.32) * ppm
        span = (0.55 if kind == "bicycle" else 0.7) * ppm
        x, y = self.px(X, 0, Z)
        col = self.jitter((60, 60, 60) if kind == "motorcycle" else rng.uniform(30, 220, 3), 10)
        for dx in (-span, span):  # wheels seen from the side
            self.c.ellipse([x + dx - r, y - 2 * r, x + dx + r, y], lab, inst, col * 0.5,
                           width=max(1, int(r * (0.15 if kind == "bicycle" else 0.45))))
        if kind == "motorcycle":
            self.c.poly([(x - span, y - r * 1.2), (x + span, y - r * 1.2), (x + span * 0.8, y - r * 2.4),
                         (x - span * 0.6, y - r * 2.2)], lab, inst, col)
        else:
            self.c.line([(x - span, y - r), (x, y - 2.2 * r), (x + span, y - r), (x - span * 0.1, y - r)], lab, inst, col,
                        width=max(1, int(0.06 * ppm)))
        self.person(X, Z + 0.05, name="rider", lift=0.55)

    # -- composition --------------------------------------------------------------------------
    def compose(self) -> None:
        rng, i = self.rng, self.index
        featured = i % 4
        self.draw_ground()
        self.draw_facades()
        self.draw_barriers(want_wall=(i % 2 == 0) or rng.random() < 0.3, want_fence=(i % 2 == 1) or rng.random() < 0.3)
        items: list[tuple[float, str, float]] = []  # (depth, kind, lateral position)
        for side in (-1, 1):
            road, walk, facade = self.edges(side)
            for z in np.arange(rng.uniform(4, 12), self.far * 0.7, rng.uniform(8, 16)):
                items.append((z, "tree" if rng.random() < 0.6 else "pole", walk - side * 0.6))
            if self.terrain[0 if side < 0 else 1] > 0:
                for z in np.arange(rng.uniform(5, 15), self.far * 0.7, rng.uniform(10, 25)):
                    items.append((z, "tree", (walk + facade) / 2))
            for _ in range(rng.poisson(4)):
                items.append((rng.uniform(4, 50), "person", rng.uniform(min(road, walk) + 0.3, max(road, walk) - 0.3)))
            if rng.random() < 0.3:
                items.append((rng.uniform(8, 40), "static", road + side * 0.5))
        items.append((rng.uniform(6, 25), "sign_pole", self.edges(1)[0] + 0.4))
        items.append((rng.uniform(10, 35), "light_pole", self.edges(-1)[0] - 0.4))
        if rng.random() < 0.2:
            items.append((rng.uniform(8, 30), "crowd", self.edges(-1)[1] + 0.8))
        lanes = np.arange(self.road[0] + 1.5, self.road[1] - 1.0, 3.3)
        for _ in range(rng.poisson(5) + 2):
            items.append((rng.uniform(5, 70), "car", float(rng.choice(lanes)) + rng.normal(0, 0.2)))
        for kind, chance, slot in (("truck", 0.15, 0), ("bus", 0.1, 1), ("train", 0.03, 2), ("caravan", 0.04, -1),
                                   ("trailer", 0.03, -1)):
            if featured == slot or rng.random() < chance:
                items.append((rng.uniform(10, 50), kind, float(rng.choice(lanes))))
        for kind in ("bicycle", "motorcycle"):
            if featured == 3 or rng.random() < 0.25:
                items.append((rng.uniform(6, 35), kind, self.edges(1 if kind == "bicycle" else -1)[0] - 0.8))
        for z, kind, X in sorted(items, key=lambda t: -t[0]):
            if kind == "tree":
                self.tree(X, z)
            elif kind == "pole":
                self.pole(X, z, with_light=rng.random() < 0.2, with_sign=rng.random() < 0.3)
            elif kind == "sign_pole":
                self.pole(X, z, with_light=False, with_sign=True)
            elif kind == "light_pole":
                self.pole(X, z, with_light=True, with_sign=False)
            elif kind == "person":
                self.person(X, z)
            elif kind == "crowd":
                self.crowd(X, z)
            elif kind == "static":
                st = _id("static")
                self.c.poly(self.box(X - 0.3, X + 0.3, 0, rng.uniform(0.6, 1.1), z), st, st, self.jitter((60, 90, 60), 30))
            elif kind in ("bicycle", "motorcycle"):
                self.cycle(kind, X, z)
            else:
                self.vehicle(kind, X, z)
        self.draw_frame()

    def draw_frame(self) -> None:
        """Ego vehicle bonnet and rectification border: void pixels, as in the real recordings."""
        h, w, rng = self.h, self.w, self.rng
        if rng.random() < 0.7:
            top = h * rng.uniform(0.86, 0.94)
            ego = _id("ego vehicle")
            self.c.ellipse([-0.2 * w, top, 1.2 * w, top + 0.4 * h], ego, ego, self.jitter((30, 30, 35), 8))
        border = _id("rectification border")
        b = max(1, h // 128)
        for box in ([0, 0, b, h], [w - b, 0, w, h]):
            self.c.poly([(box[0], box[1]), (box[2], box[1]), (box[2], box[3]), (box[0], box[3])], border, border, (0, 0, 0))

    def render(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(RGB image, label ids, instance ids) after texture, light and noise."""
        rng, h, w = self.rng, self.h, self.w
        label = np.asarray(self.c.label).copy()
        inst = np.asarray(self.c.inst).astype(np.int32)
        # sky is a vertical gradient, not a flat colour
        sky_top, sky_bottom = self.jitter((90, 140, 200), 25), self.jitter((200, 210, 225), 15)
        t = np.linspace(0, 1, h)[:, None, None]
        sky = sky_top * (1 - t) + sky_bottom * t
        albedo = np.asarray(self.c.albedo).astype(np.float32)
        albedo = np.where((label == _id("sky"))[..., None], sky, albedo)
        # textures: coarse blotches and fine grain, stronger on vegetation and terrain
        strength = np.full(256, 0.06, np.float32)
        grain = np.full(256, 0.04, np.float32)
        for name, (s, g) in _TEXTURE.items():
            strength[_id(name)], grain[_id(name)] = s, g
        coarse = _smooth_noise(rng, h, w, cells=(6, 12))
        fine = rng.standard_normal((h, w)).astype(np.float32)
        albedo *= (1 + strength[label] * coarse + grain[label] * fine)[..., None]
        # lighting: a global gain and colour cast, a horizontal gradient (sun side), shadows, vignette
        gain = rng.uniform(0.6, 1.25) * np.clip(rng.normal(1, 0.06, 3), 0.8, 1.2)
        xs = np.linspace(-1, 1, w)[None, :]
        ys = np.linspace(-1, 1, h)[:, None]
        light = (1 + rng.uniform(-0.2, 0.2) * xs) * (1 - 0.25 * (xs**2 + ys**2) / 2)
        shade = np.asarray(self.c.shade.filter(ImageFilter.GaussianBlur(max(1, w / 256)))).astype(np.float32) / 255
        img = albedo * gain * (light * shade)[..., None]
        img = np.asarray(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6)),
                         dtype=np.float32)
        img += rng.normal(0, rng.uniform(2, 7), img.shape).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.uint8), label, inst


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int]) -> np.ndarray:
    """Smooth noise in about [-1, 1]: a small random grid upsampled bicubically."""
    grid = rng.uniform(0, 255, cells).astype(np.uint8)
    up = np.asarray(Image.fromarray(grid).resize((w, h), Image.BICUBIC), dtype=np.float32)
    return up / 127.5 - 1.0


def render_scene(seed: int, split: str, index: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, label ids, instance ids) of scene ``index`` of ``split``, from its own random stream."""
    h, w = size
    rng = np.random.default_rng([seed, SPLIT_CODES.get(split, 9), index])
    scene = _Scene(rng, h, w, index)
    scene.compose()
    return scene.render()


def scene_stem(split: str, index: int) -> str:
    return f"{CITY}_{SPLIT_CODES.get(split, 9):06d}_{index:06d}"


def _save_png(array: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", compress_level=1)


def write_scene(out: Path, split: str, index: int, size: tuple[int, int], seed: int) -> None:
    image, label, inst = render_scene(seed, split, index, size)
    stem = scene_stem(split, index)
    img_dir, gt_dir = out / "leftImg8bit" / split / CITY, out / "gtFine" / split / CITY
    _save_png(image, img_dir / f"{stem}{IMAGE_SUFFIX}")
    _save_png(label, gt_dir / f"{stem}{LABEL_SUFFIX}")
    _save_png(inst.astype(np.uint16), gt_dir / f"{stem}{INSTANCE_SUFFIX}")
    _save_png(color_table()[label], gt_dir / f"{stem}{COLOR_SUFFIX}")


def _refuse_leftovers(out: Path, jobs: list[tuple[str, int]]) -> None:
    """Scenes of an earlier, larger run would silently join this one's splits: refuse instead."""
    planned = {scene_stem(split, i) for split, i in jobs}
    for folder in ("leftImg8bit", "gtFine"):
        for path in sorted((out / folder).glob("*/*/*.png")) if (out / folder).is_dir() else ():
            if path.name.split("_leftImg8bit")[0].split("_gtFine")[0] not in planned:
                raise FasterSegError(f"{path}: {out} already holds scenes this run would not write "
                                     "(choose an empty folder or remove the old one)")


def generate(cfg: SynthConfig, progress: bool = True) -> dict[str, int]:
    """Write ``cfg.train`` + ``cfg.val`` scenes under ``cfg.out``; returns images per split."""
    from tqdm import tqdm

    h, w = cfg.size
    if h < 32 or w < 32:
        raise FasterSegError(f"synthetic scenes need at least 32x32 pixels, got {h}x{w}")
    if cfg.train < 0 or cfg.val < 0 or cfg.train + cfg.val == 0:
        raise FasterSegError(f"nothing to write: --train {cfg.train} --val {cfg.val}")
    out = Path(cfg.out)
    jobs = [("train", i) for i in range(cfg.train)] + [("val", i) for i in range(cfg.val)]
    _refuse_leftovers(out, jobs)
    for split, i in tqdm(jobs, desc="synth", unit="img", disable=not progress):
        write_scene(out, split, i, (h, w), cfg.seed)
    return {"train": cfg.train, "val": cfg.val}
