"""RegionSet (lipobench/regions.py): validation and geometric properties."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lipobench.errors import InvalidRegionsError, UserError
from lipobench.regions import RegionKind, RegionSet

SETTINGS = settings(max_examples=60, deadline=None)

label_images = arrays(np.int32, st.tuples(st.integers(1, 12), st.integers(1, 12)),
                      elements=st.integers(0, 4))


def _pixel_centres(mask):
    rows, cols = np.nonzero(mask)
    return np.column_stack([rows + 0.5, cols + 0.5])


# ---------------------------------------------------------------------------- invalid input
@pytest.mark.parametrize("labels, fragment", [
    (np.zeros((2, 3, 4), np.int32), "2-D"),
    (np.zeros(5, np.int32), "2-D"),
    (np.zeros((3, 3), np.float32), "integers"),
    (np.zeros((3, 3), bool), "integers"),
    (np.array([[0, -1], [2, 3]], np.int32), "negative"),
])
def test_from_labels_rejects_bad_label_images(labels, fragment):
    with pytest.raises(InvalidRegionsError, match=fragment):
        RegionSet.from_labels(labels)


@pytest.mark.parametrize("boxes, fragment", [
    ([[0, 0, 5]], "N x 4"),
    ([[5, 0, 2, 4]], "inverted"),
    ([[0, 3, 4, 3]], "inverted"),
    ([[0, 0, np.nan, 4]], "not finite"),
    ([[0, 0, np.inf, 4]], "not finite"),
])
def test_from_boxes_rejects_bad_boxes(boxes, fragment):
    with pytest.raises(InvalidRegionsError, match=fragment):
        RegionSet.from_boxes(boxes, image_shape=(10, 10))


@pytest.mark.parametrize("circles, fragment", [
    ([[1, 2]], "N x 3"),
    ([[1, 2, 0]], "radius"),
    ([[1, 2, -3]], "radius"),
    ([[np.nan, 2, 3]], "not finite"),
])
def test_from_circles_rejects_bad_circles(circles, fragment):
    with pytest.raises(InvalidRegionsError, match=fragment):
        RegionSet.from_circles(circles, image_shape=(10, 10))


def test_wrong_score_count_and_nan_scores_are_rejected():
    with pytest.raises(InvalidRegionsError, match="2 scores for 1 regions"):
        RegionSet.from_boxes([[0, 0, 2, 2]], image_shape=(5, 5), scores=[0.1, 0.2])
    with pytest.raises(InvalidRegionsError, match="finite"):
        RegionSet.from_circles([[2, 2, 1]], image_shape=(5, 5), scores=[np.nan])
    labels = np.zeros((4, 4), np.int32)
    labels[0, 0] = 3
    with pytest.raises(InvalidRegionsError, match="0 scores for 1 regions"):
        RegionSet.from_labels(labels, scores=[])


@pytest.mark.parametrize("shape", [(0, 5), (5,), (3, -1), None])
def test_bad_image_shape_is_rejected(shape):
    with pytest.raises(InvalidRegionsError, match="image_shape"):
        RegionSet.from_boxes([[0, 0, 1, 1]], image_shape=shape)


def test_select_needs_one_flag_per_region():
    boxes = RegionSet.from_boxes([[0, 0, 1, 1], [1, 1, 2, 2]], image_shape=(3, 3))
    with pytest.raises(InvalidRegionsError, match="2 flags"):
        boxes.select([True])


def test_invalid_regions_error_is_a_user_error():
    assert issubclass(InvalidRegionsError, UserError)


def test_empty_sets_of_each_kind():
    for kind in RegionKind:
        empty = RegionSet.empty(kind, (4, 6))
        assert len(empty) == 0 and empty.kind is kind
        assert empty.areas().shape == (0,)
        assert empty.centroids().shape == (0, 2)
        assert not empty.to_label_image().any()


def test_constructors_copy_and_freeze_their_input():
    labels = np.zeros((3, 3), np.int32)
    labels[1, 1] = 2
    regions = RegionSet.from_labels(labels)
    labels[1, 1] = 0
    assert regions.ids.tolist() == [2]
    with pytest.raises(ValueError):
        regions.labels[0, 0] = 1
    table = np.array([[0.0, 0.0, 2.0, 2.0]])
    boxes = RegionSet.from_boxes(table, image_shape=(3, 3))
    table[0, 2] = 9
    assert boxes.boxes[0, 2] == 2.0


# ---------------------------------------------------------------------------- properties
@SETTINGS
@given(label_images)
def test_tight_boxes_are_tight(labels):
    regions = RegionSet.from_labels(labels)
    boxes = regions.to_boxes().boxes
    assert len(boxes) == len(regions)
    for label, (r0, c0, r1, c1) in zip(regions.ids, boxes):
        rows, cols = np.nonzero(labels == label)
        # every mask pixel inside the half-open box, and each edge touches a mask pixel
        assert rows.min() == r0 and rows.max() == r1 - 1
        assert cols.min() == c0 and cols.max() == c1 - 1


def _smallest_enclosing_radius(points):
    """Brute force over pairs and triples of convex hull points (small sets only)."""
    if len(points) == 1:
        return 0.0
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = points[ConvexHull(points).vertices]
    except QhullError:  # collinear points: the two extremes decide
        hull = points
    best = np.inf

    def covers(centre, radius):
        return np.all(np.hypot(*(points - centre).T) <= radius + 1e-9)

    for a, b in itertools.combinations(hull, 2):
        centre, radius = (a + b) / 2, np.hypot(*(a - b)) / 2
        if radius < best and covers(centre, radius):
            best = radius
    for a, b, c in itertools.combinations(hull, 3):
        d = 2 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]))
        if abs(d) < 1e-12:
            continue
        ux = ((a @ a) * (b[1] - c[1]) + (b @ b) * (c[1] - a[1]) + (c @ c) * (a[1] - b[1])) / d
        uy = ((a @ a) * (c[0] - b[0]) + (b @ b) * (a[0] - c[0]) + (c @ c) * (b[0] - a[0])) / d
        centre = np.array([ux, uy])
        radius = np.hypot(*(a - centre))
        if radius < best and covers(centre, radius):
            best = radius
    return best


@SETTINGS
@given(label_images)
def test_minimal_enclosing_circles_contain_the_mask_and_are_minimal(labels):
    regions = RegionSet.from_labels(labels)
    circles = regions.to_circles().circles
    for label, (row, col, radius) in zip(regions.ids, circles):
        centres = _pixel_centres(labels == label)
        distances = np.hypot(centres[:, 0] - row, centres[:, 1] - col)
        assert np.all(distances <= radius + 1e-3)  # cv2 works in float32
        optimum = _smallest_enclosing_radius(centres)
        # minimal: no circle even 1e-3 px smaller holds every pixel centre (a single pixel
        # gets radius 0.5, its own inscribed circle)
        assert radius <= max(optimum, 0.5) + 1e-3
        assert radius >= optimum - 1e-3


@SETTINGS
@given(label_images)
def test_areas_diameters_and_centroids_match_pixel_counts(labels):
    regions = RegionSet.from_labels(labels)
    expected_ids = [v for v in range(1, 5) if np.any(labels == v)]
    assert regions.ids.tolist() == expected_ids
    areas = np.array([np.sum(labels == v) for v in expected_ids], dtype=float)
    np.testing.assert_array_equal(regions.areas(), areas.reshape(-1))
    np.testing.assert_allclose(regions.equivalent_diameters(),
                               2 * np.sqrt(areas / np.pi).reshape(-1))
    expected_centroids = [_pixel_centres(labels == v).mean(axis=0) for v in expected_ids]
    np.testing.assert_allclose(regions.centroids(),
                               np.array(expected_centroids).reshape(-1, 2))


@SETTINGS
@given(label_images)
def test_label_image_round_trip_keeps_every_instance(labels):
    regions = RegionSet.from_labels(labels)
    relabelled = regions.to_label_image()
    assert relabelled.dtype == np.int32
    back = RegionSet.from_labels(relabelled)
    assert back.ids.tolist() == list(range(1, len(regions) + 1))
    for new, old in zip(back.ids, regions.ids):
        assert np.array_equal(relabelled == new, labels == old)


@SETTINGS
@given(label_images, st.data())
def test_select_keeps_exactly_the_flagged_regions(labels, data):
    regions = RegionSet.from_labels(labels, scores=np.arange(len(np.unique(labels[labels > 0]))))
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=len(regions),
                                       max_size=len(regions))), dtype=bool)
    chosen = regions.select(keep)
    assert chosen.ids.tolist() == regions.ids[keep].tolist()
    assert chosen.scores.tolist() == regions.scores[keep].tolist()
    kept = np.isin(labels, regions.ids[keep])
    assert np.array_equal(chosen.labels, np.where(kept, labels, 0))


@SETTINGS
@given(label_images)
def test_methods_do_not_mutate_their_input(labels):
    original = labels.copy()
    regions = RegionSet.from_labels(labels, copy=False)
    regions.areas(), regions.centroids(), regions.to_boxes(), regions.to_circles()
    regions.to_label_image(), regions.select(np.ones(len(regions), bool))
    regions.with_scores(np.zeros(len(regions)))
    assert np.array_equal(labels, original)
    assert regions.scores is None


box_tables = st.lists(
    st.tuples(st.floats(0, 10), st.floats(0, 10), st.floats(0.5, 8), st.floats(0.5, 8)),
    max_size=4,
).map(lambda rows: np.array([[r, c, r + h, c + w] for r, c, h, w in rows]).reshape(-1, 4))


@SETTINGS
@given(box_tables)
def test_box_label_image_holds_the_pixels_whose_centres_are_inside(table):
    boxes = RegionSet.from_boxes(table, image_shape=(12, 14))
    image = boxes.to_label_image()
    rows, cols = np.indices(image.shape) + 0.5
    expected = np.zeros(image.shape, np.int32)
    for k, (r0, c0, r1, c1) in enumerate(table):
        expected[(rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)] = k + 1
    assert np.array_equal(image, expected)
    np.testing.assert_allclose(boxes.areas(), (table[:, 2] - table[:, 0])
                               * (table[:, 3] - table[:, 1]))


@SETTINGS
@given(st.lists(st.tuples(st.floats(-2, 14), st.floats(-2, 14), st.floats(0.3, 6)),
                max_size=4))
def test_circle_label_image_holds_the_pixels_whose_centres_are_inside(rows_):
    table = np.array(rows_, dtype=float).reshape(-1, 3)
    circles = RegionSet.from_circles(table, image_shape=(12, 14))
    image = circles.to_label_image()
    rows, cols = np.indices(image.shape) + 0.5
    expected = np.zeros(image.shape, np.int32)
    for k, (r, c, radius) in enumerate(table):
        expected[(rows - r) ** 2 + (cols - c) ** 2 <= radius ** 2] = k + 1
    assert np.array_equal(image, expected)
    boxes = circles.to_boxes().boxes
    np.testing.assert_allclose(boxes, np.column_stack([table[:, :2] - table[:, 2:],
                                                       table[:, :2] + table[:, 2:]]).reshape(-1, 4))


def test_scores_are_copied():
    scores = np.array([0.25])
    boxes = RegionSet.from_boxes([[0, 0, 1, 1]], image_shape=(2, 2), scores=scores)
    scores[0] = 0.75
    assert boxes.scores.tolist() == [0.25]


def test_circle_label_image_includes_pixel_centres_on_the_circle():
    # pixel (0, 0) has its centre (0.5, 0.5) exactly on this circle: distance == radius
    circle = RegionSet.from_circles([[0.0, 0.5, 0.5]], image_shape=(3, 3))
    expected = np.zeros((3, 3), np.int32)
    expected[0, 0] = 1
    assert np.array_equal(circle.to_label_image(), expected)
    ring = RegionSet.from_circles([[2.5, 2.5, 2.0]], image_shape=(5, 5)).to_label_image()
    assert ring[4, 2] == 1 and ring[0, 2] == 1 and ring[2, 4] == 1 and ring[2, 0] == 1


def test_sparse_huge_label_values_do_not_allocate_per_value_tables():
    labels = np.zeros((50, 50), dtype=np.int64)
    labels[1:5, 1:5] = 2**40  # a hashed id, far beyond the pixel count
    labels[10:20, 10:12] = 7
    regions = RegionSet.from_labels(labels)
    assert regions.ids.tolist() == [7, 2**40]
    assert regions.areas().tolist() == [20.0, 16.0]
    assert regions.centroids().tolist() == [[15.0, 11.0], [3.0, 3.0]]
    assert sorted(np.unique(regions.to_label_image()).tolist()) == [0, 1, 2]
    assert regions.select([False, True]).ids.tolist() == [2**40]
