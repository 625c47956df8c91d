"""Shared test settings: two CPU threads (the project's machine), deterministic torch."""

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)
