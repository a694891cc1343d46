import json

import pytest

from fasterseg.errors import GenotypeError
from fasterseg.genotype import Branch, Genotype


def make_genotype() -> Genotype:
    return Genotype(
        branches=(
            Branch(end=2, ops=("conv_2x", "conv", "conv_downup", "conv_2x_downup", "conv"),
                   path=(0, 0, 1, 1, 2), widths=(1 / 3, 2 / 3, 0.5, 5 / 6)),
            Branch(end=0, ops=("conv_2x", "skip", "conv"), path=(0, 0, 0), widths=(1 / 3, 1.0)),
        ),
        num_classes=11, base_channels=12, stem_width=8 / 12, head_width=8 / 12,
    )


def test_json_round_trip_is_exact(tmp_path):
    g = make_genotype()
    assert Genotype.from_json(g.to_json()) == g
    path = tmp_path / "g.json"
    g.save(path)
    assert Genotype.load(path) == g
    # Human-readable: operator names, not indices.
    assert json.loads(path.read_text())["branches"][0]["ops"][0] == "conv_2x"


def test_downs_follow_the_path():
    assert make_genotype().branches[0].downs == (0, 1, 0, 1, 0)


def _mutated(**changes):
    data = make_genotype().to_dict()
    for dotted, value in changes.items():
        target = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        if value is _DELETE:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": "19"}, "num_classes"),
        ({"version": 99}, "version"),
        ({"stem_width": -1}, "stem_width"),
        ({"branches.0.ops.1": "conv_9x9"}, "branches[0].ops[1]"),
        ({"branches.0.path.0": 1}, "branches[0].path[0]"),
        ({"branches.0.path.3": 3}, "branches[0].path[3]"),
        ({"branches.0.end": 1}, "branches[0].path"),
        ({"branches.1.widths": [1.0]}, "branches[1].widths"),
        ({"branches.1.widths.0": 0}, "branches[1].widths[0]"),
        ({"branches.1.end": 2}, "branches"),
        ({"branches.0.end": _DELETE}, "'end'"),
        ({"head_width": _DELETE}, "'head_width'"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_genotypes_name_the_field(changes, field):
    with pytest.raises(GenotypeError) as info:
        Genotype.from_dict(_mutated(**changes))
    assert field in str(info.value)


def test_unreadable_and_invalid_json_name_the_file(tmp_path):
    with pytest.raises(GenotypeError, match="missing.json"):
        Genotype.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GenotypeError, match="bad.json"):
        Genotype.load(bad)
