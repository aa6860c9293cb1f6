"""Every registered adapter (built-in or installed plugin) passes the conformance suite.

Adapters whose tool is missing here (crYOLO without its environment) skip with their reason.
Adapters that train a real network on the CPU are marked slow (they still run in CI).
"""

import pytest

from lipobench.plugins import load_registry
from lipobench.testing import AdapterConformance

REGISTRY = load_registry()

#: Measured end-to-end on the shared 2-core machine: cellpose 75 s, topaz 74 s, lipopose 103 s.
TRAINS_A_NETWORK = {"cellpose", "topaz", "lipopose"}


def _params():
    return [pytest.param(name, marks=pytest.mark.slow) if name in TRAINS_A_NETWORK else name
            for name in REGISTRY.names()]


class TestRegisteredAdapters(AdapterConformance):
    @pytest.fixture(params=_params())
    def adapter(self, request):
        return REGISTRY.get(request.param)


def test_builtin_adapters_are_registered():
    assert {"log", "cryolo", "cellpose", "topaz", "lipopose"} <= set(REGISTRY.names())
