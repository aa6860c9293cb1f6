"""Every registered adapter (built-in or installed plugin) passes the conformance suite.

Adapters whose tool is missing here (crYOLO without its environment) skip with their reason.
"""

import pytest

from lipobench.plugins import load_registry
from lipobench.testing import AdapterConformance

REGISTRY = load_registry()


class TestRegisteredAdapters(AdapterConformance):
    @pytest.fixture(params=REGISTRY.names())
    def adapter(self, request):
        return REGISTRY.get(request.param)


def test_builtin_adapters_are_registered():
    assert {"log"} <= set(REGISTRY.names())
