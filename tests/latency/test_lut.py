"""Latency tables: keys, JSON round trip, merge, the official profile and its lookups."""

from __future__ import annotations

import json

import pytest

from fasterseg.genotype import Genotype
from fasterseg.latency.lut import LatencyTable, MissingEntriesError, OpSpec, TableMeta, parse_key, spec_key
from fasterseg.errors import LatencyTableError
from fasterseg.latency.official import import_official, load_profile, load_table, official_name, official_to_spec
from fasterseg.latency.specs import network_specs, space_specs
from fasterseg.space.config import SupernetConfig
from fasterseg.nets.official import load_official_arch, official_genotype

OFFICIAL_LUT = "official_lut_1080ti_trt5.json"


def test_key_is_canonical_and_parses_back():
    spec = OpSpec("conv_2x", 128, 256, 32, 48, 1)
    assert spec_key(spec) == spec.key == "conv_2x_H128_W256_Cin32_Cout48_s1"
    assert parse_key(spec.key) == spec
    assert parse_key("conv_2x_downup_H64_W128_Cin64_Cout128_s2") == OpSpec("conv_2x_downup", 64, 128, 64, 128, 2)
    with pytest.raises(LatencyTableError, match="not a latency table key"):
        parse_key("BasicResidual2x_H128_W256_Cin32_Cout32_stride1_dilation1")
    with pytest.raises(LatencyTableError, match="unknown op type"):
        OpSpec("conv3", 8, 8, 4, 4, 1)


def test_round_trip_keeps_entries_and_metadata(tmp_path):
    meta = TableMeta(device="cpu: test", backend="torch", precision="fp32", memory_format="channels_last",
                     size=(256, 512), threads=1, versions={"torch": "x"}, date="2026-01-01T00:00:00+00:00")
    table = LatencyTable(meta, {"conv_H32_W64_Cin32_Cout32_s1": 0.25, "head_H32_W64_Cin64_Cout19_s1": 1.5})
    path = table.save(tmp_path / "t.json")
    again = LatencyTable.load(path)
    assert again.entries == table.entries
    assert again.meta == table.meta
    assert again.meta.size == (256, 512)
    # human-readable: one entry per line, sorted
    text = path.read_text()
    assert text.index("conv_H32") < text.index("head_H32")


def test_load_names_the_bad_entry(tmp_path):
    good = LatencyTable(TableMeta(), {"conv_H8_W8_Cin4_Cout4_s1": 1.0}).to_dict()
    good["entries"]["conv_H8_W8_Cin4_Cout4_s1"] = -1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(good))
    with pytest.raises(LatencyTableError, match=r"bad\.json.*conv_H8_W8_Cin4_Cout4_s1.*>= 0"):
        LatencyTable.load(path)
    path.write_text("{")
    with pytest.raises(LatencyTableError, match="not valid JSON"):
        LatencyTable.load(path)


def test_merge_prefers_the_newer_and_refuses_other_settings():
    a = LatencyTable(TableMeta(device="cpu: x"), {"conv_H8_W8_Cin4_Cout4_s1": 1.0, "skip_H8_W8_Cin4_Cout4_s1": 0.1})
    b = LatencyTable(TableMeta(device="cpu: x"), {"conv_H8_W8_Cin4_Cout4_s1": 2.0, "conv_H8_W8_Cin4_Cout8_s1": 3.0})
    m = a.merge(b)
    assert m.entries == {"conv_H8_W8_Cin4_Cout4_s1": 2.0, "skip_H8_W8_Cin4_Cout4_s1": 0.1, "conv_H8_W8_Cin4_Cout8_s1": 3.0}
    c = LatencyTable(TableMeta(device="cpu: x", precision="bf16"))
    with pytest.raises(LatencyTableError, match="different settings"):
        a.merge(c)


def test_missing_entries_are_listed_together():
    table = LatencyTable(TableMeta(), {"conv_H8_W8_Cin4_Cout4_s1": 1.0})
    specs = [OpSpec("conv", 8, 8, 4, 4, 1), OpSpec("conv", 8, 8, 4, 8, 1), OpSpec("skip", 8, 8, 4, 8, 2)]
    with pytest.raises(MissingEntriesError) as info:
        table.lookup(specs)
    assert "lacks 2 entries" in str(info.value)
    assert "conv_H8_W8_Cin4_Cout8_s1" in str(info.value) and "skip_H8_W8_Cin4_Cout8_s2" in str(info.value)


def test_official_names_map_both_ways(official_dir):
    entries = json.loads((official_dir / OFFICIAL_LUT).read_text())["entries"]
    assert len(entries) == 667
    for name in entries:
        assert official_name(official_to_spec(name)) == name
    assert official_to_spec("BasicResidual_downup_2x_H64_W128_Cin64_Cout64_stride1_dilation1") == OpSpec(
        "conv_2x_downup", 64, 128, 64, 64, 1)
    assert official_to_spec("ConvNorm_H32_W64_Cin256_Cout128_kernel1_stride1").op == "arm"
    assert official_to_spec("ff_H128_W256_C128") == OpSpec("ffm", 128, 256, 128, 128, 1)


def test_shipped_profile_equals_the_official_table(official_dir):
    original = json.loads((official_dir / OFFICIAL_LUT).read_text())["entries"]
    profile = load_profile("official-1080ti-trt5")
    assert len(profile) == len(original)
    for name, ms in original.items():
        assert profile.get(official_to_spec(name)) == ms
    assert import_official(official_dir / OFFICIAL_LUT).entries == profile.entries
    assert load_table("official-1080ti-trt5").meta.size == (1024, 2048)


@pytest.mark.parametrize("arch_file,role", [("arch_1.pt", "student"), ("arch_0.pt", "teacher")])
def test_every_piece_of_the_official_networks_is_in_the_official_table(official_dir, arch_file, role):
    genotype = official_genotype(load_official_arch(official_dir / arch_file), role)
    table = import_official(official_dir / OFFICIAL_LUT)
    specs = network_specs(genotype, (1024, 2048))
    assert table.missing(specs) == []
    # every computed cell is there, not just the total: count them against the plan
    from fasterseg.nets.network import plan_cells

    n_cells = sum(len(layer) for layer in plan_cells(genotype))
    assert sum(1 for s in specs if s.op in ("skip", "conv", "conv_downup", "conv_2x", "conv_2x_downup")) == n_cells + 2


def test_space_covers_the_official_cells():
    """Every cell entry of the official table is an instance our default space enumerates."""
    ours = {s.key for s in space_specs(SupernetConfig(), (1024, 2048))}
    profile = load_profile("official-1080ti-trt5")
    cell_ops = ("skip", "conv", "conv_downup", "conv_2x", "conv_2x_downup")
    theirs = {k for k in profile.entries if parse_key(k).op in cell_ops and parse_key(k).h <= 128}
    assert len(theirs) == 625
    assert theirs <= ours


def test_space_specs_contain_every_random_network():
    from fasterseg.latency.validate import sample_genotypes

    space = SupernetConfig()
    ours = set(space_specs(space, (256, 512)))
    for g in sample_genotypes(space, 30, seed=3):
        assert isinstance(g, Genotype)
        assert set(network_specs(g, (256, 512))) <= ours
