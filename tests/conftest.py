import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from hw2_fixture import write_hw2_data  # noqa: E402

from hw2lib import browser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--lab-defaults", action="store_true",
                     help="tests/test_lab.py: Run All with every notebook's default parameters "
                          "(about 4 minutes on an idle 2-core machine) instead of tiny ones")


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


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get when absent and this runs as root; else a skip."""
    path = browser.find_chromium()
    if path is None and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                       "apt-get install -y -qq chromium", shell=True, timeout=900,
                       capture_output=True)
        path = browser.find_chromium()
    if path is None:
        pytest.skip("chromium is absent and could not be installed (needs root and apt-get)")
    return path
