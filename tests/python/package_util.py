"""Imports the hilo package for the package tests: from the build tree (HILO_PYTHON_BUILT=1, set by ctest: a
failure to import is then an error) or an installed package; otherwise the tests skip."""
import os

import pytest


def import_hilo():
    if os.environ.get("HILO_PYTHON_BUILT") == "1":
        import hilo  # must work: the build made it
        return hilo
    return pytest.importorskip("hilo", reason="the hilo Python package is not built (needs nanobind)")
