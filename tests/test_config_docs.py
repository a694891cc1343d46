from pathlib import Path

from fasterseg.commands.config import reference_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_configuration_reference_is_up_to_date():
    assert DOC.read_text() == reference_markdown(), "regenerate with: fasterseg config --markdown > docs/configuration.md"


def test_every_setting_is_explained():
    undocumented = [line.split("|")[1].strip() for line in reference_markdown().splitlines()
                    if line.startswith("| `") and line.rstrip().endswith("|  |")]
    assert undocumented == []


def test_each_default_in_the_reference_is_what_the_command_prints():
    """The table's defaults against `fasterseg config NAME`'s YAML, key by key (a section built by
    default_factory may differ from its class's defaults: the search's phases do)."""
    import yaml

    from fasterseg.commands.config import CONFIGS, config_class
    from fasterseg.utils.configdoc import default_yaml, reference_rows

    for name in CONFIGS:
        printed = yaml.safe_load(default_yaml(config_class(name)))
        for key, _, default, _ in reference_rows(config_class(name)):
            value = printed
            for part in key.split("."):
                value = value[part]
            assert yaml.safe_load(default) == value, f"{name}: {key}"


def test_markdown_of_one_command_has_only_its_section(capsys):
    from fasterseg.cli import main

    assert main(["config", "train", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "## Training" in out and "## Search" not in out and "## Demo" not in out
