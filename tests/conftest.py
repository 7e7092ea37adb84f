import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from hw2_fixture import write_hw2_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def hw2_data_pristine(tmp_path_factory) -> Path:
    """A valid hw2_data tree, written once per session; do not modify it."""
    return write_hw2_data(tmp_path_factory.mktemp("pristine") / "hw2_data")


@pytest.fixture
def hw2_data(hw2_data_pristine, tmp_path) -> Path:
    """A private copy of the valid tree, free to break."""
    dst = tmp_path / "hw2_data"
    shutil.copytree(hw2_data_pristine, dst)
    return dst
