"""The cache: stable keys, region files, and entries that are finished or absent, never half."""

from __future__ import annotations

import numpy as np
import pytest

from lipobench import cache as cache_module
from lipobench.cache import Cache, canonical_json, load_regions, save_regions, sha256_key
from lipobench.experiment import Derived
from lipobench.regions import RegionKind, RegionSet


def test_canonical_json_is_order_and_type_stable():
    assert canonical_json({"b": 1, "a": 2}) == canonical_json({"a": 2, "b": 1})
    assert canonical_json({"x": 30.0}) == canonical_json({"x": 30}) == '{"x":30}'
    assert canonical_json({"x": np.float32(0.5), "k": RegionKind.BOX}) == '{"k":"box","x":0.5}'
    derived = Derived(derive="radius", statistic="quantile", q=0.25)
    assert '"derive":"radius"' in canonical_json({"r": derived})


def test_keys_change_with_every_part():
    base = sha256_key("topaz", "0.3.20", {"radius": 8}, "data-a")
    assert base == sha256_key("topaz", "0.3.20", {"radius": 8}, "data-a")
    assert base != sha256_key("topaz", "0.3.21", {"radius": 8}, "data-a")
    assert base != sha256_key("topaz", "0.3.20", {"radius": 9}, "data-a")
    assert base != sha256_key("topaz", "0.3.20", {"radius": 8}, "data-b")
    assert base != sha256_key("cryolo", "0.3.20", {"radius": 8}, "data-a")


@pytest.mark.parametrize("scores", [None, [0.9, 0.1]])
def test_region_files_round_trip(tmp_path, scores):
    labels = np.zeros((12, 10), dtype=np.int32)
    labels[1:4, 1:4] = 3
    labels[6:9, 5:9] = 7
    sets = [
        RegionSet.from_labels(labels, scores=scores),
        RegionSet.from_boxes([[0, 0, 2, 3], [4, 4, 8, 9]], image_shape=(12, 10), scores=scores),
        RegionSet.from_circles([[2, 2, 1.5], [7, 7, 2]], image_shape=(12, 10), scores=scores),
    ]
    for regions in sets:
        back = load_regions(save_regions(tmp_path / f"{regions.kind.value}.npz", regions))
        assert back.kind is regions.kind and back.image_shape == (12, 10)
        assert np.array_equal(back.to_label_image(), regions.to_label_image())
        if scores is None:
            assert back.scores is None
        else:
            assert back.scores.tolist() == scores
    empty = RegionSet.empty(RegionKind.CIRCLE, (5, 5))
    assert len(load_regions(save_regions(tmp_path / "e.npz", empty))) == 0


def test_train_entry_counts_only_when_finished(tmp_path):
    cache = Cache(tmp_path)
    assert cache.train_done("k") is None
    workdir = cache.start_train("k")
    (workdir / "half-written-model").write_text("x")
    # a killed training leaves no done.json: still missing, and a restart wipes it
    assert cache.train_done("k") is None
    workdir = cache.start_train("k")
    assert list(workdir.iterdir()) == []
    cache.finish_train("k", {"model": {"name": "none"}, "seconds": 1.5})
    assert cache.train_done("k") == {"model": {"name": "none"}, "seconds": 1.5}


def test_predictions_appear_all_at_once(tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    regions = [RegionSet.from_circles([[3, 3, 2]], image_shape=(8, 8)) for _ in range(3)]
    real_save = cache_module.save_regions
    calls = []

    def save_then_die(path, region_set):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the run were killed mid-write
        return real_save(path, region_set)

    monkeypatch.setattr(cache_module, "save_regions", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        cache.store_predictions("p", ["a", "b", "c"], regions, {"seconds": 1})
    assert cache.predict_done("p") is None
    assert not cache.predict_dir("p").exists()
    monkeypatch.setattr(cache_module, "save_regions", real_save)
    cache.store_predictions("p", ["a", "b", "c"], regions, {"seconds": 1})
    assert cache.predict_done("p") == {"seconds": 1}
    loaded = cache.load_predictions("p", ["a", "b", "c"])
    assert [r.circles.tolist() for r in loaded] == [[[3.0, 3.0, 2.0]]] * 3
    # no temporary folders left beside the entry
    assert [p.name for p in cache.predict_dir("p").parent.iterdir()] == ["p"]
