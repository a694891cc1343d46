"""Our Cityscapes label table against cityscapesscripts' own."""

from cityscapesscripts.helpers import labels as official

from fasterseg.data.labels import (
    CITYSCAPES_CATEGORIES, CITYSCAPES_CLASSES, CITYSCAPES_LABELS, color_table, id_to_train_table, train_to_id_table,
)


def test_table_matches_cityscapesscripts():
    ours = [(lab.name, lab.id, lab.train_id, lab.category, lab.category_id, lab.has_instances, lab.ignore_in_eval,
             tuple(lab.color)) for lab in CITYSCAPES_LABELS]
    theirs = [(lab.name, lab.id, lab.trainId, lab.category, lab.categoryId, lab.hasInstances, lab.ignoreInEval,
               tuple(lab.color)) for lab in official.labels]
    assert ours == theirs


def test_derived_tables():
    to_train, to_id = id_to_train_table(), train_to_id_table()
    for lab in official.labels:
        if lab.id < 0:
            continue
        expected = lab.trainId if not lab.ignoreInEval else 255
        assert to_train[lab.id] == expected, lab.name
        if not lab.ignoreInEval:
            assert to_id[lab.trainId] == lab.id
        assert tuple(color_table()[lab.id]) == lab.color
    assert to_train[34:].tolist() == [255] * (256 - 34)
    assert len(CITYSCAPES_CLASSES) == 19 and CITYSCAPES_CLASSES[0] == "road" and CITYSCAPES_CLASSES[-1] == "bicycle"
    assert set(CITYSCAPES_CATEGORIES) == {"flat", "construction", "object", "nature", "sky", "human", "vehicle"}
