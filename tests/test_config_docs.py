from pathlib import Path

from fasterseg.commands.config import reference_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_configuration_reference_is_up_to_date():
    assert DOC.read_text() == reference_markdown(), "regenerate with: fasterseg config --markdown > docs/configuration.md"


def test_every_setting_is_explained():
    undocumented = [line.split("|")[1].strip() for line in reference_markdown().splitlines()
                    if line.startswith("| `") and line.rstrip().endswith("|  |")]
    assert undocumented == []
