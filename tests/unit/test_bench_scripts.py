"""The benchmarks (bench/) are run by hand, on a lab: each must at least import, so a change
elsewhere that breaks one shows here rather than when someone next measures."""

import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("script", sorted(path.stem for path in BENCH.glob("*.py")))
def test_a_benchmark_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    for name in [script, "common"]:
        monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module(script)
    assert module.__name__ == script
