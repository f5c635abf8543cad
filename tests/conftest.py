"""Test-wide settings."""
import torch

# The tests run tiny models: one intra-op thread is about as fast as two, and it keeps the suite's
# time steady on a small or busy CPU, where two spinning threads per process can be 10x slower.
torch.set_num_threads(1)
