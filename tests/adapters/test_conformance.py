"""Every registered adapter (built-in or installed plugin) passes the conformance suite.

Adapters whose tool is missing here (crYOLO without its environment) skip with their reason.
Adapters that train a real network on the CPU are marked slow (they still run in CI).
"""

import pytest

from lipobench.plugins import load_registry
from lipobench.testing import AdapterConformance

REGISTRY = load_registry()

#: Measured: cellpose's end-to-end check took 75 s on the 2-core machine (train_seg, 1 epoch).
TRAINS_A_NETWORK = {"cellpose", "topaz", "lipopose"}


def _params():
    return [pytest.param(name, marks=pytest.mark.slow) if name in TRAINS_A_NETWORK else name
            for name in REGISTRY.names()]


class TestRegisteredAdapters(AdapterConformance):
    @pytest.fixture(params=_params())
    def adapter(self, request):
        return REGISTRY.get(request.param)


def test_builtin_adapters_are_registered():
    assert {"log", "cryolo", "cellpose", "lipopose"} <= set(REGISTRY.names())
