"""The SPEC reference numbers come from one data file, with their provenance, in every installed form."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from validation.reference_data import spec_keys, spec_reference, spec_value


def test_every_entry_names_its_spec_section_and_source():
    assert len(spec_keys()) >= 10
    for key in spec_keys():
        entry = spec_reference(key)
        assert entry.section and entry.source, key
        assert all(part.strip().isdigit() for part in entry.section.split(",")), (key, entry.section)


def test_values_have_the_documented_shapes():
    assert spec_value("american.put.price") == 5.318294
    penalized = spec_value("american.put.penalized")
    assert list(penalized) == [1, 5, 10, 20, 50, 100, 1000] and penalized[10.0] == 5.2644
    assert spec_value("oracle.kappa10_lambda1_L50", "p_stopping") == 5.3072
    assert spec_value("american.put.boundary")[0.0] == 24.20
    # a fresh object per call: editing one does not change the next caller's numbers
    penalized[10] = 0.0
    assert spec_value("american.put.penalized")[10] == 5.2644


def test_unknown_keys_and_items_are_refused_with_the_known_names():
    with pytest.raises(ValueError, match="american.put.price"):
        spec_value("american.price")
    with pytest.raises(ValueError, match="p_control"):
        spec_value("oracle.kappa10_lambda1_L50", "p_exercise")


def test_data_file_is_package_data():
    # importlib.resources finds it the way an installed wheel would; setup.cfg ships data/*.json
    text = resources.files("validation").joinpath("data", "spec_reference.json").read_text(encoding="utf-8")
    assert "american.put.price" in json.loads(text)
    setup_cfg = Path(__file__).resolve().parents[2] / "setup.cfg"
    assert "data/*.json" in setup_cfg.read_text(encoding="utf-8")
