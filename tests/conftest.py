"""Test-wide settings."""
import torch

# The tests run tiny models: one intra-op thread is about as fast as two, and it keeps the suite's
# time steady on a small or busy CPU, where two spinning threads per process can be 10x slower.
torch.set_num_threads(1)


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Each test session caches superpixel maps and image checks in its own folder; each test
    starts with empty weights caches and never downloads: a test that needs published weights
    writes a tiny file into the cache first (``tests/weights_cache.py``)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    weights = tmp_path_factory.mktemp("weights_cache")
    monkeypatch.setenv("TORCH_HOME", str(weights / "torch"))
    monkeypatch.setenv("HF_HOME", str(weights / "huggingface"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("ACTIVE_LEARNING_OFFLINE", "1")


def pytest_generate_tests(metafunc):
    """A task's end-to-end contract (tests/task_contract.py) runs the strategies its test module
    lists in ``STRATEGIES``."""
    if "strategy" in metafunc.fixturenames and metafunc.function.__module__ == "task_contract":
        metafunc.parametrize("strategy", metafunc.module.STRATEGIES)
