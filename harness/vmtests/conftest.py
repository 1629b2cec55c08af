"""Loads the gmemtest pytest plugin for the tests in this directory (see test_gmemtest.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gmemharness.pytest_plugin import (gmemtest_case, pytest_addoption, pytest_configure,  # noqa: E402,F401
                                       pytest_generate_tests, pytest_terminal_summary, pytest_unconfigure)
