"""The MD5 sums in project.yml's assets are those of the original files, so
`spacy project assets` accepts a good copy and rejects any other."""

import pytest
import srsly
from conftest import PROJECT_DIR, shared_data_dir
from weasel.util import get_checksum

ASSETS = srsly.read_yaml(PROJECT_DIR / "project.yml")["assets"]


def test_every_asset_has_a_checksum():
    assert [asset["dest"] for asset in ASSETS if not asset.get("checksum")] == []


@pytest.mark.parametrize("asset", ASSETS, ids=[asset["dest"] for asset in ASSETS])
def test_asset_checksum_matches_the_original_file(asset):
    path = shared_data_dir() / asset["dest"].removeprefix("assets/")
    if not path.is_file():
        pytest.skip(f"{path} is absent (put the original there or set CONLL_DATA_DIR): checksum not checked")
    assert get_checksum(path) == asset["checksum"]
