"""The common region interface: every method's output and every ground truth is a RegionSet.

Coordinates are (row, col) in image pixels, origin at the top-left corner. Pixel ``(i, j)``
covers the square ``[i, i + 1) x [j, j + 1)``, so its centre lies at ``(i + 0.5, j + 0.5)``:

- a *box* is ``row0, col0, row1, col1``, half-open, so the tight box of pixel ``(i, j)`` is
  ``(i, j, i + 1, j + 1)``;
- a *circle* is ``row, col, radius``; a pixel belongs to it when its centre lies inside
  (distance <= radius);
- a *mask* is an integer instance label image, 0 the background, each positive value one
  particle.

Tool conventions (x/y, lower-left corners, flipped rows) never appear here; each adapter and
:mod:`lipobench.formats` convert at the border.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from lipobench.errors import InvalidRegionsError

__all__ = ["RegionKind", "RegionSet", "equivalent_diameter"]

#: Label images of at least this many pixels (2048^2) are encoded as runs
#: (lipobench._label_runs). The compiled kernels cost ~0.5 s once per process (numba's import
#: and loading the cached kernels; ~4 s the very first time, compiling): at 2048^2 that is
#: repaid within ~30 image pairs, at 4096^2 within ~7; smaller images stay on plain numpy.
_RUNS_MIN_PIXELS = 1 << 22


class RegionKind(str, enum.Enum):
    """What a RegionSet holds: instance masks, axis-aligned boxes or circles."""

    MASK = "mask"
    BOX = "box"
    CIRCLE = "circle"


def equivalent_diameter(area):
    """Diameter of the disk with the given area, ``2 * sqrt(area / pi)``.

    This is Cellpose's notion of a particle's diameter.

    >>> float(equivalent_diameter(np.pi * 25.0))
    10.0
    """
    return 2.0 * np.sqrt(np.asarray(area, dtype=np.float64) / np.pi)


def _as_shape(image_shape) -> tuple[int, int]:
    try:
        shape = tuple(int(s) for s in image_shape)
    except TypeError as exc:
        raise InvalidRegionsError(f"image_shape must be (rows, cols), got {image_shape!r}") from exc
    if len(shape) != 2 or min(shape) <= 0:
        raise InvalidRegionsError(
            f"image_shape must be two positive sizes (rows, cols), got {image_shape!r}"
        )
    return shape


def _as_table(values, width: int, what: str) -> np.ndarray:
    # A copy, not asarray: the table is frozen below and must not alias the caller's array.
    table = np.array(values, dtype=np.float64)
    if table.size == 0:
        return np.zeros((0, width), dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != width:
        raise InvalidRegionsError(f"{what} must be an N x {width} array, got shape {table.shape}")
    if not np.all(np.isfinite(table)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(table), axis=1))[0])
        raise InvalidRegionsError(f"{what} row {bad} is not finite: {table[bad].tolist()}")
    return table


def _as_scores(scores, count: int) -> np.ndarray | None:
    if scores is None:
        return None
    scores = np.array(scores, dtype=np.float64).reshape(-1)
    if scores.shape[0] != count:
        raise InvalidRegionsError(f"got {scores.shape[0]} scores for {count} regions")
    if not np.all(np.isfinite(scores)):
        raise InvalidRegionsError("scores must be finite (no NaN or infinity)")
    return scores


@dataclass(frozen=True, eq=False)
class RegionSet:
    """Particles in one image, all of one :class:`RegionKind`, with optional scores.

    Build one with :meth:`from_labels`, :meth:`from_boxes` or :meth:`from_circles`; the
    constructors validate and copy their input, so a RegionSet never aliases a caller's array.

    >>> boxes = RegionSet.from_boxes([[2, 3, 6, 9]], image_shape=(10, 12), scores=[0.8])
    >>> len(boxes), boxes.kind.value, boxes.areas().tolist()
    (1, 'box', [24.0])
    >>> labels = np.zeros((8, 8), dtype=np.int32); labels[2:5, 1:4] = 7
    >>> masks = RegionSet.from_labels(labels)
    >>> masks.ids.tolist(), masks.to_boxes().boxes.tolist()
    ([7], [[2.0, 1.0, 5.0, 4.0]])
    """

    kind: RegionKind
    image_shape: tuple[int, int]
    labels: np.ndarray | None = field(default=None, repr=False)
    boxes: np.ndarray | None = field(default=None, repr=False)
    circles: np.ndarray | None = field(default=None, repr=False)
    scores: np.ndarray | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_labels(cls, labels, *, scores=None, copy: bool = True) -> RegionSet:
        """Instance masks from a 2-D integer label image (0 = background).

        ``scores``, if given, follow the order of :attr:`ids` (ascending label values).
        ``copy=False`` keeps a read-only view of the caller's array, for large images.
        """
        array = np.asarray(labels)
        if array.ndim != 2:
            raise InvalidRegionsError(f"a label image must be 2-D, got shape {array.shape}")
        if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
            raise InvalidRegionsError(
                f"a label image must hold integers, got {array.dtype}; "
                "convert a binary mask with scipy.ndimage.label first"
            )
        runs, lowest = None, None
        if array.size >= _RUNS_MIN_PIXELS:
            # The pass that looks for negative labels also encodes the foreground as runs,
            # which matching uses instead of reading the image again.
            from lipobench._label_runs import label_runs

            runs, lowest = label_runs(array)
        if lowest is None and array.size:
            lowest = array.min()
        if array.size and lowest < 0:
            raise InvalidRegionsError("a label image must not hold negative labels")
        array = array.copy() if copy else array.view()
        array.flags.writeable = False
        regions = cls(RegionKind.MASK, _as_shape(array.shape), labels=array)
        if runs is not None:
            regions.__dict__["label_runs"] = runs  # the cached_property's slot
        if scores is not None:  # counting labels costs a pass over the image: only when needed
            object.__setattr__(regions, "scores", _as_scores(scores, len(regions)))
        return regions

    @classmethod
    def from_boxes(cls, boxes, *, image_shape, scores=None) -> RegionSet:
        """Axis-aligned boxes, N x 4 ``row0, col0, row1, col1`` (half-open, pixels)."""
        table = _as_table(boxes, 4, "boxes")
        inverted = (table[:, 2] <= table[:, 0]) | (table[:, 3] <= table[:, 1])
        if inverted.any():
            bad = int(np.flatnonzero(inverted)[0])
            raise InvalidRegionsError(
                f"box {bad} {table[bad].tolist()} is empty or inverted: "
                "boxes are row0, col0, row1, col1 with row1 > row0 and col1 > col0"
            )
        table.flags.writeable = False
        shape = _as_shape(image_shape)
        return cls(RegionKind.BOX, shape, boxes=table, scores=_as_scores(scores, len(table)))

    @classmethod
    def from_circles(cls, circles, *, image_shape, scores=None) -> RegionSet:
        """Circles, N x 3 ``row, col, radius`` (pixels)."""
        table = _as_table(circles, 3, "circles")
        if (table[:, 2] <= 0).any():
            bad = int(np.flatnonzero(table[:, 2] <= 0)[0])
            raise InvalidRegionsError(
                f"circle {bad} has radius {table[bad, 2]}: radii must be positive"
            )
        table.flags.writeable = False
        shape = _as_shape(image_shape)
        return cls(RegionKind.CIRCLE, shape, circles=table, scores=_as_scores(scores, len(table)))

    @classmethod
    def empty(cls, kind: RegionKind, image_shape) -> RegionSet:
        """No particles, of the given kind."""
        kind = RegionKind(kind)
        if kind is RegionKind.MASK:
            return cls.from_labels(np.zeros(_as_shape(image_shape), dtype=np.int32), copy=False)
        if kind is RegionKind.BOX:
            return cls.from_boxes(np.zeros((0, 4)), image_shape=image_shape)
        return cls.from_circles(np.zeros((0, 3)), image_shape=image_shape)

    # ------------------------------------------------------------------ basic properties
    @cached_property
    def ids(self) -> np.ndarray:
        """Label values of the masks, ascending; ``0 .. N-1`` for boxes and circles."""
        if self.kind is RegionKind.MASK:
            flat = self.labels.ravel()
            if flat.size == 0 or flat.max() == 0:
                return np.zeros(0, dtype=np.int64)
            if int(flat.max()) > 4 * flat.size:
                # sparse huge label values: a bincount table would not fit in memory
                unique = np.unique(flat)
                return unique[unique > 0].astype(np.int64)
            present = np.bincount(flat.astype(np.int64, copy=False))
            present[0] = 0
            return np.flatnonzero(present)
        return np.arange(len(self._table()), dtype=np.int64)

    @cached_property
    def label_runs(self):
        """Foreground of a mask set as runs of equal labels, or None (small image, other kind).

        See :mod:`lipobench._label_runs`; :meth:`from_labels` computes them while it checks
        the labels.
        """
        if self.kind is not RegionKind.MASK or self.labels.size < _RUNS_MIN_PIXELS:
            return None
        from lipobench._label_runs import label_runs

        return label_runs(self.labels)[0]

    def __len__(self) -> int:
        return len(self.ids) if self.kind is RegionKind.MASK else len(self._table())

    def _table(self) -> np.ndarray:
        return self.boxes if self.kind is RegionKind.BOX else self.circles

    def with_scores(self, scores) -> RegionSet:
        """The same regions with new scores (one per region, in :attr:`ids` order)."""
        copy = RegionSet(self.kind, self.image_shape, self.labels, self.boxes, self.circles)
        object.__setattr__(copy, "scores", _as_scores(scores, len(self)))
        if "label_runs" in self.__dict__:  # same labels, same runs
            copy.__dict__["label_runs"] = self.__dict__["label_runs"]
        return copy

    def select(self, keep) -> RegionSet:
        """The regions where the boolean array ``keep`` (one per region) is true.

        >>> c = RegionSet.from_circles([[5, 5, 2], [9, 9, 3]], image_shape=(20, 20),
        ...                            scores=[0.2, 0.9])
        >>> c.select(c.scores > 0.5).circles.tolist()
        [[9.0, 9.0, 3.0]]
        """
        keep = np.asarray(keep, dtype=bool).reshape(-1)
        if keep.shape[0] != len(self):
            raise InvalidRegionsError(f"select needs {len(self)} flags, got {keep.shape[0]}")
        scores = None if self.scores is None else self.scores[keep]
        if self.kind is RegionKind.MASK:
            keep_index = np.concatenate([[False], keep])  # index 0 is the background
            labels = np.where(keep_index[self._region_index()], self.labels, 0)
            return RegionSet.from_labels(labels, scores=scores, copy=False)
        if self.kind is RegionKind.BOX:
            return RegionSet.from_boxes(self.boxes[keep], image_shape=self.image_shape,
                                        scores=scores)
        return RegionSet.from_circles(self.circles[keep], image_shape=self.image_shape,
                                      scores=scores)

    # ------------------------------------------------------------------ geometry
    def _region_index(self) -> np.ndarray:
        """The label image with region k (in :attr:`ids` order) as k + 1, background 0.

        Label values may be sparse and huge (a 64-bit hash, say); per-region sums then run
        over ``len(self) + 1`` bins instead of ``labels.max() + 1``.
        """
        if len(self) and int(self.ids[-1]) <= 4 * self.labels.size:
            lookup = np.zeros(int(self.ids[-1]) + 1, dtype=np.int64)
            lookup[self.ids] = np.arange(1, len(self) + 1)
            return lookup[self.labels]
        index = np.searchsorted(self.ids, self.labels) + 1
        return np.where(self.labels > 0, index, 0)

    def areas(self) -> np.ndarray:
        """Area of each region in pixels (exact for boxes and circles, pixel count for masks)."""
        if self.kind is RegionKind.MASK:
            index = self._region_index()
            return np.bincount(index.ravel(), minlength=len(self) + 1)[1:].astype(np.float64)
        if self.kind is RegionKind.BOX:
            return (self.boxes[:, 2] - self.boxes[:, 0]) * (self.boxes[:, 3] - self.boxes[:, 1])
        return np.pi * self.circles[:, 2] ** 2

    def equivalent_diameters(self) -> np.ndarray:
        """``2 * sqrt(area / pi)`` for each region, in pixels."""
        return equivalent_diameter(self.areas())

    def centroids(self) -> np.ndarray:
        """N x 2 (row, col) centres: the mean pixel centre of a mask, the middle of a box."""
        if self.kind is RegionKind.MASK:
            if len(self) == 0:
                return np.zeros((0, 2))
            rows, cols = np.indices(self.image_shape, sparse=True)
            index = self._region_index().ravel()
            size = len(self) + 1
            counts = np.bincount(index, minlength=size)[1:]
            row_sum = np.bincount(index, weights=np.broadcast_to(rows, self.image_shape).ravel(),
                                  minlength=size)[1:]
            col_sum = np.bincount(index, weights=np.broadcast_to(cols, self.image_shape).ravel(),
                                  minlength=size)[1:]
            return np.column_stack([row_sum / counts, col_sum / counts]) + 0.5
        if self.kind is RegionKind.BOX:
            return np.column_stack([(self.boxes[:, 0] + self.boxes[:, 2]) / 2,
                                    (self.boxes[:, 1] + self.boxes[:, 3]) / 2])
        return self.circles[:, :2].copy()

    # ------------------------------------------------------------------ conversions
    def to_boxes(self) -> RegionSet:
        """Tight axis-aligned boxes (crYOLO's ground-truth shape), scores kept."""
        if self.kind is RegionKind.BOX:
            return self
        if self.kind is RegionKind.CIRCLE:
            r, c, rad = self.circles.T
            table = np.column_stack([r - rad, c - rad, r + rad, c + rad])
        else:
            from scipy import ndimage  # here, not at the top: 0.07 s of start-up

            slices = ndimage.find_objects(self.labels)
            table = np.array(
                [[s[0].start, s[1].start, s[0].stop, s[1].stop] for s in
                 (slices[i - 1] for i in self.ids)],
                dtype=np.float64,
            ).reshape(-1, 4)
        return RegionSet.from_boxes(table, image_shape=self.image_shape, scores=self.scores)

    def to_circles(self) -> RegionSet:
        """Minimal enclosing circles (Topaz's ground-truth shape), scores kept.

        For masks the circle is ``cv2.minEnclosingCircle`` of the centres of the mask's
        boundary pixels; it contains every pixel centre of the mask. Boxes become their
        circumscribed circle.
        """
        if self.kind is RegionKind.CIRCLE:
            return self
        if self.kind is RegionKind.BOX:
            b = self.boxes
            table = np.column_stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                                     np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) / 2])
            return RegionSet.from_circles(table, image_shape=self.image_shape,
                                          scores=self.scores)
        import cv2  # heavy import, only for this conversion
        from scipy import ndimage

        table = np.zeros((len(self), 3))
        slices = ndimage.find_objects(self.labels)
        for k, label in enumerate(self.ids):
            window = slices[label - 1]
            patch = (self.labels[window] == label).astype(np.uint8)
            contours, _ = cv2.findContours(patch, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            points = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float32)
            (x, y), radius = cv2.minEnclosingCircle(points)
            # cv2 works in (x, y) = (col, row) pixel indices; shift to pixel centres.
            table[k] = (y + window[0].start + 0.5, x + window[1].start + 0.5,
                        max(float(radius), 0.5))
        return RegionSet.from_circles(table, image_shape=self.image_shape, scores=self.scores)

    def to_label_image(self, dtype=np.int32) -> np.ndarray:
        """An instance label image (region k gets label k + 1, later regions drawn on top).

        Masks are returned relabelled to ``1 .. N`` in :attr:`ids` order. A pixel belongs to a
        box or circle when its centre lies inside.
        """
        out = np.zeros(self.image_shape, dtype=dtype)
        if self.kind is RegionKind.MASK:
            out[...] = self._region_index()
            return out
        rows_total, cols_total = self.image_shape
        for k, bounds in enumerate(self.to_boxes().boxes):
            r0, c0 = (max(int(np.ceil(v - 0.5)), 0) for v in bounds[:2])
            if self.kind is RegionKind.BOX:
                r1 = min(int(np.ceil(bounds[2] - 0.5)), rows_total)
                c1 = min(int(np.ceil(bounds[3] - 0.5)), cols_total)
            else:
                # A circle is closed (distance <= radius): a pixel centre on its bounding
                # box's far edge can be inside it, so that edge is inclusive.
                r1 = min(int(np.floor(bounds[2] - 0.5)) + 1, rows_total)
                c1 = min(int(np.floor(bounds[3] - 0.5)) + 1, cols_total)
            if r1 <= r0 or c1 <= c0:
                continue
            if self.kind is RegionKind.BOX:
                out[r0:r1, c0:c1] = k + 1
            else:
                row, col, radius = self.circles[k]
                rr, cc = np.ogrid[r0:r1, c0:c1]
                inside = (rr + 0.5 - row) ** 2 + (cc + 0.5 - col) ** 2 <= radius ** 2
                out[r0:r1, c0:c1][inside] = k + 1
        return out

    def __repr__(self) -> str:
        scored = "" if self.scores is None else ", scored"
        return f"RegionSet({self.kind.value}, n={len(self)}, shape={self.image_shape}{scored})"
