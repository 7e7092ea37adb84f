import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from hw2_fixture import write_hw2_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _apt_install(package: str) -> None:
    """Install a Debian package by name when this is root with apt-get (as CI is); else nothing."""
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                       f"apt-get install -y -qq {package}", shell=True, timeout=900,
                       capture_output=True)


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium (the report's reader and printer), installed when absent and possible."""
    from hw2lib.report import check
    if check.find_chromium() is None:
        _apt_install("chromium")
    path = check.find_chromium()
    if path is None:
        pytest.skip("chromium is absent and could not be installed (needs root and apt-get)")
    return path


@pytest.fixture(scope="session")
def poppler():
    """poppler-utils' pdftotext and pdftoppm (reading a PDF back), installed when absent."""
    tools = ("pdftotext", "pdftoppm")
    if not all(map(shutil.which, tools)):
        _apt_install("poppler-utils")
    if not all(map(shutil.which, tools)):
        pytest.skip("pdftotext/pdftoppm are absent and poppler-utils could not be installed "
                    "(needs root and apt-get)")


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



@pytest.fixture(scope="session", autouse=True)
def precision_cache(tmp_path_factory):
    """precision="auto" measures this machine once per test session into a temporary cache,
    not into ~/.cache/hw2lib."""
    from hw2lib import precision
    path = tmp_path_factory.mktemp("precision_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(precision, "default_cache_dir", lambda: path)
        yield path
