"""Conformance suite for adapters, shipped as a pytest plugin (entry point ``pytest11``).

Any adapter, built-in or third-party, can be checked against the contract of
:class:`lipobench.adapters.base.Adapter` in two ways:

* call :func:`check_adapter` from a test::

      def test_my_adapter(tmp_path):
          check_adapter(MyAdapter(), tmp_path)

* or subclass :class:`AdapterConformance` and provide an ``adapter`` fixture; the class brings
  its tests along (pytest collects them in the subclass)::

      from lipobench.testing import AdapterConformance

      class TestMyAdapter(AdapterConformance):
          @pytest.fixture
          def adapter(self):
              return MyAdapter()

An adapter whose tool is missing here is skipped with its own availability reason and fix.
The run uses tiny synthetic micrographs (:func:`make_test_micrographs`) and the adapter's
:meth:`~lipobench.adapters.base.Adapter.test_parameters`, so keep those fast.

It also holds the two helpers every command-line test uses: :func:`run_cli` and
:func:`assert_user_error` (a user's mistake is one line on stderr and exit code 2).

This module is imported by every pytest run in an environment where lipobench is installed,
so it imports nothing but pytest at import time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

__all__ = ["AdapterConformance", "assert_user_error", "check_adapter", "make_test_micrographs",
           "run_cli"]


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """Run ``lipobench ARGV`` in process; return (exit code, stdout, stderr)."""
    from lipobench.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # main() exits 2 on a user error
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(code, err, *fragments) -> None:
    """A user error as lipobench promises it: exit 2, one line, no traceback, ``fragments``."""
    assert code == 2, (code, err)
    assert err.startswith("lipobench: error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def make_test_micrographs(count: int = 3, *, shape: tuple[int, int] = (128, 128),
                          radius: float = 10.0, seed: int = 0) -> list:
    """``count`` synthetic micrographs: dark disks on Gaussian noise, with mask ground truth.

    Each image holds a few non-overlapping disks of about ``radius`` pixels, darker than the
    background, like lipid nanoparticles in vitreous ice.

    >>> images = make_test_micrographs(2, shape=(64, 64), radius=6)
    >>> [m.name for m in images], images[0].image.dtype.name, len(images[0].truth) > 0
    (['conformance_0', 'conformance_1'], 'float32', True)
    """
    import numpy as np

    from lipobench.micrograph import Micrograph
    from lipobench.regions import RegionSet

    rng = np.random.default_rng(seed)
    rows, cols = np.indices(shape)
    margin = radius * 1.5
    micrographs = []
    for index in range(count):
        labels = np.zeros(shape, dtype=np.int32)
        centres: list[tuple[float, float, float]] = []
        for _ in range(200):
            if len(centres) == 4:
                break
            r = rng.uniform(margin, shape[0] - margin)
            c = rng.uniform(margin, shape[1] - margin)
            size = radius * rng.uniform(0.8, 1.2)
            if all(math.hypot(r - r2, c - c2) > size + s2 + 2 for r2, c2, s2 in centres):
                centres.append((r, c, size))
        for label, (r, c, size) in enumerate(centres, start=1):
            labels[(rows + 0.5 - r) ** 2 + (cols + 0.5 - c) ** 2 <= size ** 2] = label
        image = 1.0 + rng.normal(scale=0.3, size=shape)
        image[labels > 0] -= 0.8
        micrographs.append(Micrograph(f"conformance_{index}", image.astype(np.float32),
                                      pixel_size_nm=1.0, truth=RegionSet.from_labels(labels)))
    return micrographs


def _fail(adapter: Any, message: str) -> None:
    pytest.fail(f"adapter {getattr(adapter, 'name', adapter)!r}: {message}", pytrace=False)


def check_adapter(adapter, tmp_path: Path, *, micrographs=None) -> list:
    """Run ``adapter`` through availability, to_native, train, predict and select.

    Parameters
    ----------
    adapter : lipobench.adapters.base.Adapter
        The instance to check.
    tmp_path : Path
        A scratch folder (pytest's ``tmp_path``).
    micrographs : list of Micrograph, optional
        Defaults to :func:`make_test_micrographs`.

    Returns
    -------
    list of RegionSet
        The selected predictions, one per micrograph.

    Raises
    ------
    pytest.skip.Exception
        When the adapter is unavailable here (the reason and fix are the skip message).
    pytest.fail.Exception
        On the first broken promise of the contract.
    """
    import numpy as np

    from lipobench.adapters.base import Adapter, Availability, Stage
    from lipobench.regions import RegionSet

    if not isinstance(adapter, Adapter):
        _fail(adapter, f"is a {type(adapter).__name__}, not an Adapter instance")
    available = adapter.availability()
    if not isinstance(available, Availability):
        _fail(adapter, "availability() must return an Availability")
    if not available.ok:
        if not available.reason or not available.fix:
            _fail(adapter, "an unavailable adapter must say why (reason) and how to fix it (fix)")
        pytest.skip(f"{adapter.name} unavailable: {available.reason} (fix: {available.fix})")
    description = adapter.describe()
    if description.get("name") != adapter.name:
        _fail(adapter, "describe() must report the adapter's name")

    if micrographs is None:
        micrographs = make_test_micrographs()
    originals = [m.image.copy() for m in micrographs]
    params = adapter.test_parameters()
    unknown = set(params) - set(adapter.parameters)
    if unknown:
        _fail(adapter, f"test_parameters() has undeclared keys {sorted(unknown)}")
    by_stage = adapter.split_parameters(params)

    tmp_path = Path(tmp_path)
    folders = {step: tmp_path / step for step in ("native", "train", "predict")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    native = adapter.to_native(micrographs, folders["native"])
    if not isinstance(native, Path):
        _fail(adapter, f"to_native() must return a Path, got {type(native).__name__}")
    model = adapter.train(native, by_stage[Stage.TRAIN], folders["train"])
    if not isinstance(model, (str, Path)):
        _fail(adapter, f"train() must return a Path or a model name, got {type(model).__name__}")
    predictions = adapter.predict(model, micrographs, by_stage[Stage.PREDICT], folders["predict"])
    if not isinstance(predictions, list) or len(predictions) != len(micrographs):
        _fail(adapter, f"predict() must return a list of {len(micrographs)} RegionSets "
                       f"(one per micrograph), got {type(predictions).__name__} "
                       f"of length {len(predictions) if hasattr(predictions, '__len__') else '?'}")
    selected = []
    for micrograph, regions in zip(micrographs, predictions):
        where = f"prediction for {micrograph.name!r}"
        for step, result in (("predict()", regions),
                             ("select()", adapter.select(regions, by_stage[Stage.SELECT]))):
            if not isinstance(result, RegionSet):
                _fail(adapter, f"{step} {where} is a {type(result).__name__}, not a RegionSet")
            if result.kind is not adapter.region_kind:
                _fail(adapter, f"{step} {where} has kind {result.kind.value}, but the adapter "
                               f"declares {adapter.region_kind.value}")
            if tuple(result.image_shape) != tuple(micrograph.shape):
                _fail(adapter, f"{step} {where} has shape {result.image_shape}, the image "
                               f"{micrograph.shape}")
            if result.scores is not None and not np.all(np.isfinite(result.scores)):
                _fail(adapter, f"{step} {where} has non-finite scores")
        if len(result) > len(regions):
            _fail(adapter, f"select() {where} returned more regions than predict()")
        selected.append(result)
    for micrograph, original in zip(micrographs, originals):
        if not np.array_equal(micrograph.image, original):
            _fail(adapter, f"modified the pixels of {micrograph.name!r}; work on a copy")
    return selected


class AdapterConformance:
    """Tests every adapter must pass; subclass it and define an ``adapter`` fixture."""

    @pytest.fixture
    def adapter(self):
        raise NotImplementedError("define an `adapter` fixture returning your adapter instance")

    def test_declares_name_kind_and_parameters(self, adapter):
        from lipobench.registry import AdapterRegistry

        AdapterRegistry().register(type(adapter), package="conformance")

    def test_test_parameters_lie_in_the_declared_parameters(self, adapter):
        params = adapter.test_parameters()
        assert set(params) <= set(adapter.parameters)
        assert adapter.split_parameters(params)

    def test_runs_end_to_end(self, adapter, tmp_path):
        check_adapter(adapter, tmp_path)
