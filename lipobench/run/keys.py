"""The cache keys: what goes into each task's key, so that a result is reused only when valid.

A key is :func:`lipobench.cache.sha256_key` of everything that decides the result:

- **train** (:func:`train_key`): the training adapter, its tool's version, its options
  (``[tools.<name>]``), the TRAIN parameters, the fingerprint of the training images (none
  for an adapter that does not train: one model for every fold), and the code version;
- **predict** (:func:`predict_key`): the train key, the PREDICT parameters, the fingerprint
  of the test images, the predicting adapter and its code version. SELECT parameters are not
  in it: they are applied to the cached predictions, so a sweep over them never reruns a tool;
- **predict work folder** (:func:`predict_workdir_key`): as the predict key without the
  PREDICT parameters, so a tool can reuse its own intermediate files across them;
- **synthetic dataset** (:func:`synthetic_key`): the preset, the seed and any override.

The code version (:func:`code_version`) is lipobench's version and the adapter's
``cache_version``: a fix to either must not be answered from the old code's cache. Changing
what goes into a key invalidates every cache built before: these functions say it exactly
once. Imports nothing else of :mod:`lipobench.run`.

>>> code = ("1.0", "1")
>>> train = train_key("log", "0.1", {}, {"sigma": 2}, "fp-train", code)
>>> train == train_key("log", "0.1", {}, {"sigma": 2}, "fp-other", code)
False
>>> predict_key(train, "log", code, {}, "fp-test") != predict_workdir_key(train, "log", code,
...                                                                     "fp-test")
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lipobench import __version__ as lipobench_version
from lipobench.cache import sha256_key

__all__ = ["code_version", "train_key", "predict_key", "predict_workdir_key", "synthetic_key"]

#: (lipobench's version, the adapter's cache_version).
CodeVersion = tuple[str, str]


def code_version(registry, adapter: str) -> CodeVersion:
    """lipobench's version and ``adapter``'s ``cache_version``, as keys hold them."""
    return (lipobench_version, str(registry.entry(adapter).adapter_cls.cache_version))


def train_key(trainer: str, tool_version: str | None, options: Mapping[str, Any],
              params: Mapping[str, Any], train_fingerprint: str | None,
              code: CodeVersion) -> str:
    """The key of training ``trainer`` (``train_fingerprint`` None: it does not train)."""
    return sha256_key("train", trainer, tool_version, options, params, train_fingerprint, code)


def predict_key(train_key: str, adapter: str, code: CodeVersion, params: Mapping[str, Any],
                test_fingerprint: str) -> str:
    """The key of ``adapter``'s predictions of the test images with the model of ``train_key``."""
    return sha256_key("predict", train_key, params, test_fingerprint, (adapter, code))


def predict_workdir_key(train_key: str, adapter: str, code: CodeVersion,
                        test_fingerprint: str) -> str:
    """The key of the predict work folder, shared by every PREDICT value of one model."""
    return sha256_key("predict-work", train_key, test_fingerprint, (adapter, code))


def synthetic_key(preset: str, seed: int, overrides: Mapping[str, Any]) -> str:
    """The folder name of a synthetic dataset: readable, plus a hash of any overrides.

    >>> synthetic_key("tiny", 3, {})
    'tiny-seed3'
    >>> synthetic_key("tiny", 3, {"n_images": 4}).startswith("tiny-seed3-")
    True
    """
    key = f"{preset}-seed{seed}"
    if overrides:
        key += "-" + sha256_key(dict(overrides))[:10]
    return key
