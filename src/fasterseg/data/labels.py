"""Label tables: one list of records per dataset, every mapping derived from it.

The Cityscapes table follows the dataset's definition (name, id, trainId, category, categoryId,
hasInstances, ignoreInEval, color); trainId 255 marks pixels that are not evaluated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np

IGNORE_INDEX = 255


class Label(NamedTuple):
    name: str
    id: int
    train_id: int
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


CITYSCAPES_LABELS: tuple[Label, ...] = (
    Label("unlabeled", 0, 255, "void", 0, False, True, (0, 0, 0)),
    Label("ego vehicle", 1, 255, "void", 0, False, True, (0, 0, 0)),
    Label("rectification border", 2, 255, "void", 0, False, True, (0, 0, 0)),
    Label("out of roi", 3, 255, "void", 0, False, True, (0, 0, 0)),
    Label("static", 4, 255, "void", 0, False, True, (0, 0, 0)),
    Label("dynamic", 5, 255, "void", 0, False, True, (111, 74, 0)),
    Label("ground", 6, 255, "void", 0, False, True, (81, 0, 81)),
    Label("road", 7, 0, "flat", 1, False, False, (128, 64, 128)),
    Label("sidewalk", 8, 1, "flat", 1, False, False, (244, 35, 232)),
    Label("parking", 9, 255, "flat", 1, False, True, (250, 170, 160)),
    Label("rail track", 10, 255, "flat", 1, False, True, (230, 150, 140)),
    Label("building", 11, 2, "construction", 2, False, False, (70, 70, 70)),
    Label("wall", 12, 3, "construction", 2, False, False, (102, 102, 156)),
    Label("fence", 13, 4, "construction", 2, False, False, (190, 153, 153)),
    Label("guard rail", 14, 255, "construction", 2, False, True, (180, 165, 180)),
    Label("bridge", 15, 255, "construction", 2, False, True, (150, 100, 100)),
    Label("tunnel", 16, 255, "construction", 2, False, True, (150, 120, 90)),
    Label("pole", 17, 5, "object", 3, False, False, (153, 153, 153)),
    Label("polegroup", 18, 255, "object", 3, False, True, (153, 153, 153)),
    Label("traffic light", 19, 6, "object", 3, False, False, (250, 170, 30)),
    Label("traffic sign", 20, 7, "object", 3, False, False, (220, 220, 0)),
    Label("vegetation", 21, 8, "nature", 4, False, False, (107, 142, 35)),
    Label("terrain", 22, 9, "nature", 4, False, False, (152, 251, 152)),
    Label("sky", 23, 10, "sky", 5, False, False, (70, 130, 180)),
    Label("person", 24, 11, "human", 6, True, False, (220, 20, 60)),
    Label("rider", 25, 12, "human", 6, True, False, (255, 0, 0)),
    Label("car", 26, 13, "vehicle", 7, True, False, (0, 0, 142)),
    Label("truck", 27, 14, "vehicle", 7, True, False, (0, 0, 70)),
    Label("bus", 28, 15, "vehicle", 7, True, False, (0, 60, 100)),
    Label("caravan", 29, 255, "vehicle", 7, True, True, (0, 0, 90)),
    Label("trailer", 30, 255, "vehicle", 7, True, True, (0, 0, 110)),
    Label("train", 31, 16, "vehicle", 7, True, False, (0, 80, 100)),
    Label("motorcycle", 32, 17, "vehicle", 7, True, False, (0, 0, 230)),
    Label("bicycle", 33, 18, "vehicle", 7, True, False, (119, 11, 32)),
    Label("license plate", -1, -1, "vehicle", 7, False, True, (0, 0, 142)),
)


def train_labels(labels: tuple[Label, ...] = CITYSCAPES_LABELS) -> list[Label]:
    """The evaluated classes, ordered by train id."""
    chosen = [lab for lab in labels if 0 <= lab.train_id < IGNORE_INDEX]
    return sorted(chosen, key=lambda lab: lab.train_id)


CITYSCAPES_CLASSES: tuple[str, ...] = tuple(lab.name for lab in train_labels())
CITYSCAPES_PALETTE: tuple[tuple[int, int, int], ...] = tuple(lab.color for lab in train_labels())

# Derived lookups, the way the rest of the package asks for them.
NAME_TO_LABEL: dict[str, Label] = {lab.name: lab for lab in CITYSCAPES_LABELS}
ID_TO_LABEL: dict[int, Label] = {lab.id: lab for lab in CITYSCAPES_LABELS if lab.id >= 0}
TRAIN_ID_TO_LABEL: dict[int, Label] = {lab.train_id: lab for lab in train_labels()}
NUM_LABEL_IDS = max(ID_TO_LABEL) + 1  # label ids 0..33 are stored in gtFine PNGs


def categories(labels: tuple[Label, ...] = CITYSCAPES_LABELS) -> dict[str, list[Label]]:
    """Category name -> its labels, in table order (``void`` first, as the table has it)."""
    out: dict[str, list[Label]] = {}
    for lab in labels:
        out.setdefault(lab.category, []).append(lab)
    return out


CATEGORY_TO_LABELS = categories()
# The 7 evaluated categories: those with at least one evaluated class, in table order.
CITYSCAPES_CATEGORIES: tuple[str, ...] = tuple(
    cat for cat, labs in CATEGORY_TO_LABELS.items() if any(not lab.ignore_in_eval for lab in labs))

# Mean pixel size of an instance per class over the Cityscapes training set: the fixed weights
# of the benchmark's instance-level iIoU (the numbers the official evaluation script uses).
CITYSCAPES_AVG_INSTANCE_SIZE: dict[str, float] = {
    "bicycle": 4672.3249222261,
    "caravan": 36771.8241758242,
    "motorcycle": 6298.7200839748,
    "rider": 3930.4788056518,
    "bus": 35732.1511111111,
    "train": 67583.7075812274,
    "car": 12794.0202738185,
    "person": 3462.4756337644,
    "truck": 27855.1264367816,
    "trailer": 16926.9763313609,
}


def id_to_train_table() -> "np.ndarray":
    """uint8[256]: stored label id -> train id (255 for ignored ids and ids outside the table)."""
    import numpy as np

    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for lab in ID_TO_LABEL.values():
        table[lab.id] = lab.train_id if 0 <= lab.train_id < IGNORE_INDEX else IGNORE_INDEX
    return table


def train_to_id_table() -> "np.ndarray":
    """uint8[256]: train id -> label id, for writing predictions the way the test server reads them.

    Train ids outside the table (including 255) map to 0, ``unlabeled``.
    """
    import numpy as np

    table = np.zeros(256, dtype=np.uint8)
    for lab in train_labels():
        table[lab.train_id] = lab.id
    return table


def color_table() -> "np.ndarray":
    """uint8[256, 3]: label id -> colour of the gtFine ``_color.png`` images (black elsewhere)."""
    import numpy as np

    table = np.zeros((256, 3), dtype=np.uint8)
    for lab in ID_TO_LABEL.values():
        table[lab.id] = lab.color
    return table


def generated_palette(num_classes: int) -> "np.ndarray":
    """Distinct colours for classes that come without any: the bits of the class index spread over
    R, G and B, high bits first (the PASCAL VOC scheme); index + 1, so class 0 is not black."""
    import numpy as np

    palette = np.zeros((num_classes, 3), dtype=np.uint8)
    for index in range(num_classes):
        value, r, g, b = index + 1, 0, 0, 0
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (r, g, b)
    return palette
