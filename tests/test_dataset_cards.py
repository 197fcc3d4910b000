"""The dataset cards inside the packages (raw_microscopy/README.md, raw_drone/README.md) are the
templates that scripts/export_to_hub.py fills: their YAML says so, lists every configuration of
the builder with exactly the builder's features, gives the file layout an export writes, and
carries no split sizes (those exist only for exported files)."""

from __future__ import annotations

import re
from pathlib import Path

import datasets
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SPLITS = ["train", "validation", "test"]


def builder_class(package: str):
    if package == "raw_microscopy":
        from raw_microscopy.builder import RawMicroscopy

        return RawMicroscopy
    from raw_drone.builder import RawDrone

    return RawDrone


def card(package: str) -> tuple[str, str, dict]:
    text = (REPO / package / "README.md").read_text(encoding="utf-8")
    _, header, body = text.split("---\n", 2)
    return header, body, yaml.safe_load(header)


@pytest.mark.parametrize("package", ["raw_microscopy", "raw_drone"])
def test_card_yaml_is_the_export_template_and_matches_the_builder(package, tmp_path):
    header, body, meta = card(package)
    assert header.startswith(f"# TEMPLATE card of the {package} package")
    assert "scripts/export_to_hub.py fills it" in header

    builder = builder_class(package)
    names = [c.name for c in builder.BUILDER_CONFIGS]
    assert [info["config_name"] for info in meta["dataset_info"]] == names
    assert [c["config_name"] for c in meta["configs"]] == names
    assert [c["config_name"] for c in meta["configs"] if c.get("default")] == [builder.DEFAULT_CONFIG_NAME]
    for info in meta["dataset_info"]:
        name = info["config_name"]
        # Features only: no splits or sizes that would be true for one source and one size only.
        assert set(info) == {"config_name", "features"}, name
        want = builder(config_name=name, cache_dir=str(tmp_path)).info.features
        assert datasets.Features._from_yaml_list(info["features"]) == want, name
    for c in meta["configs"]:
        assert [entry["split"] for entry in c["data_files"]] == SPLITS
        for entry in c["data_files"]:
            assert entry["path"] == f"data/{c['config_name']}/{entry['split']}-*.parquet"
    assert not (REPO / package / "data").exists()  # the layout is the export's, not shipped files

    # The sentence about the template sits in the block the export replaces by its own source line.
    block = re.search(r"<!-- export:source:start -->\n(.*?)<!-- export:source:end -->", body, re.S).group(1)
    assert "template that\n`scripts/export_to_hub.py` completes" in block


@pytest.mark.parametrize("package", ["raw_microscopy", "raw_drone"])
def test_exported_yaml_drops_the_template_comments(package):
    """The export rewrites the YAML through huggingface_hub's card data (as render_card does), which
    keeps keys and drops comments, so no exported card calls itself a template."""
    from huggingface_hub import DatasetCard

    text = (REPO / package / "README.md").read_text(encoding="utf-8")
    exported = DatasetCard(text)
    for key in ("configs", "dataset_info"):
        exported.data.pop(key, None)
    content = exported.content
    assert "TEMPLATE" not in content.split("---\n", 2)[1] and "# " not in content.split("---\n", 2)[1]
    assert exported.data.license == "cc-by-4.0"
