"""Every figure a test makes is closed after it, so pyplot does not keep them all open."""

import matplotlib.pyplot as plt
import pytest


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")
