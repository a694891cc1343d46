"""A small CamVid-layout set and a tiny genotype, shared by the training tests."""

import pytest

from tests.helpers import tiny_genotype, write_toy_camvid


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(dataset spec, genotype path) of real PNG files written once per test module."""
    root = tmp_path_factory.mktemp("toy_camvid")
    spec = write_toy_camvid(root)
    geno = root / "tiny.json"
    tiny_genotype().save(geno)
    return spec, str(geno)
