"""Test-wide settings."""
import torch

# The tests run tiny models: one intra-op thread is about as fast as two, and it keeps the suite's
# time steady on a small or busy CPU, where two spinning threads per process can be 10x slower.
torch.set_num_threads(1)


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Each test session caches superpixel maps and image checks in its own folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
