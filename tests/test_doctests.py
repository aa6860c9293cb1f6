"""Run every docstring example in the installed package, so documented usage stays true."""

import doctest
import importlib
import pkgutil

import pytest



# adapters/ and metrics/ install as lipobench.adapters and lipobench.metrics from folders of
# their own, so walking lipobench.__path__ alone would never reach them.
PACKAGES = ("lipobench", "lipobench.adapters", "lipobench.metrics")


def _modules():
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        yield package_name
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if ".cli" not in info.name:
                yield info.name


@pytest.mark.parametrize("name", sorted(_modules()))
def test_docstring_examples(name):
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert failures == 0, f"{failures} doctest example(s) failed in {name}"
