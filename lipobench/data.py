"""Datasets on disk: a folder of micrographs, their instance masks and a ``dataset.toml``.

::

    DATASET/
      dataset.toml
      images/<name>.mrc | .mrcs | .tif | .tiff | .png | .jpg
      masks/<name>.tif (int32 labels) | <name>.zip (Fiji ROI set) | <name>_seg.npy (Cellpose)
      distractors/<name>.tif   optional, synthetic data: uint8 artifact type codes
      particles.csv            optional, synthetic data: one row per particle, column ``image``

A folder of images with no ``dataset.toml`` is an unlabelled dataset of those images.

>>> import tempfile, pathlib
>>> from lipobench.micrograph import Micrograph
>>> labels = np.zeros((8, 8), dtype=np.int32); labels[2:5, 2:5] = 1
>>> mic = Micrograph("mic_000", np.zeros((8, 8), np.float32), 0.5,
...                  RegionSet.from_labels(labels))
>>> root = pathlib.Path(tempfile.mkdtemp()) / "tiny"
>>> _ = write_dataset(root, [mic], name="tiny", pixel_size_nm=0.5)
>>> dataset = load_dataset(root)
>>> dataset.name, dataset.names, len(dataset.micrograph("mic_000").truth)
('tiny', ['mic_000'], 1)

Why one module of this length: the dataset layout, its manifest model and the checks on it
(names, shapes, splits, fingerprints) are one contract with the user's folder.
"""

from __future__ import annotations

import enum
import hashlib
import os
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from lipobench.errors import UserError
from lipobench.fsutil import atomic_dir, atomic_write_text, check_name
from lipobench.imageio import (
    IMAGE_SUFFIXES,
    read_cellpose_seg,
    read_image,
    read_labels,
    write_labels_tiff,
    write_mrc,
)
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionKind, RegionSet

__all__ = [
    "MANIFEST_NAME",
    "MaskFormat",
    "DatasetSection",
    "SplitSection",
    "DatasetManifest",
    "Dataset",
    "LazyMicrographs",
    "load_dataset",
    "read_manifest",
    "write_manifest",
    "write_dataset",
]

MANIFEST_NAME = "dataset.toml"
_SEG_SUFFIX = "_seg.npy"


class MaskFormat(str, enum.Enum):
    """How the ground-truth masks of a dataset are stored."""

    LABELS = "labels"  #: ``masks/<name>.tif`` (or .tiff, .png): integer instance labels
    ROI = "roi"  #: ``masks/<name>.zip`` (or .roi): Fiji/ImageJ ROI sets
    CELLPOSE_SEG = "cellpose_seg"  #: ``masks/<name>_seg.npy``: Cellpose GUI files (pickles)


_MASK_SUFFIXES = {
    MaskFormat.LABELS: (".tif", ".tiff", ".png"),
    MaskFormat.ROI: (".zip", ".roi"),
    MaskFormat.CELLPOSE_SEG: (_SEG_SUFFIX,),
}


class DatasetSection(BaseModel):
    """The ``[dataset]`` table of ``dataset.toml``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Defaults to the folder's name.")
    # Strict and finite: "0.888" is a string, not a pixel size, and 1e308 nm overflows.
    pixel_size_nm: Annotated[float, Strict()] | None = Field(
        None, gt=0, le=1000, allow_inf_nan=False,
        description="Overrides MRC headers; unknown when absent and not in a header.")
    images: str = Field("images", description="Image folder, relative to dataset.toml.")
    masks: str | None = Field(None, description="Mask folder; absent for an unlabelled dataset.")
    mask_format: MaskFormat = MaskFormat.LABELS
    # Strict: only a TOML true unlocks pickles, never "yes" or 1.
    trust_pickles: Annotated[bool, Strict()] = Field(
        False, description="Must be true to load Cellpose _seg.npy files, which are pickles.")


class SplitSection(BaseModel):
    """The optional ``[split]`` table: image names (file stems) per split."""

    model_config = ConfigDict(extra="forbid")

    train: list[str] = Field(default_factory=list)
    validation: list[str] = Field(default_factory=list)
    test: list[str] = Field(default_factory=list)


class DatasetManifest(BaseModel):
    """The whole ``dataset.toml``."""

    model_config = ConfigDict(extra="forbid")

    dataset: DatasetSection = Field(default_factory=DatasetSection)
    split: SplitSection | None = None

    def to_toml(self) -> str:
        """The manifest as TOML text (keys left at None are omitted).

        >>> print(DatasetManifest(dataset=DatasetSection(name="quick")).to_toml())
        [dataset]
        name = "quick"
        images = "images"
        mask_format = "labels"
        trust_pickles = false
        <BLANKLINE>
        """
        lines = ["[dataset]"]
        lines += [f"{key} = {_toml_value(value)}"
                  for key, value in self.dataset.model_dump(mode="json").items()
                  if value is not None]
        if self.split is not None:
            lines += ["", "[split]"]
            lines += [f"{key} = {_toml_value(value)}"
                      for key, value in self.split.model_dump(mode="json").items() if value]
        return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _validation_message(path: Path, error: ValidationError) -> str:
    first = error.errors()[0]
    location = [str(part) for part in first["loc"]]
    table = f"[{location[0]}]" if len(location) > 1 else "the top level"
    key = location[-1]
    if first["type"] == "extra_forbidden":
        model = {"dataset": DatasetSection, "split": SplitSection}.get(location[0],
                                                                       DatasetManifest)
        if len(location) == 1:
            model = DatasetManifest
        allowed = ", ".join(model.model_fields)
        return f"{path}: unknown key {key!r} in {table}; allowed: {allowed}"
    return f"{path}: {'.'.join(location)}: {first['msg']}; fix that key in {path.name}"


def read_manifest(path: str | os.PathLike) -> DatasetManifest:
    """Parse and validate a ``dataset.toml`` file.

    Raises
    ------
    UserError
        Unreadable TOML, an unknown key, or a value of the wrong type, in one line.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; check the dataset path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    try:
        return DatasetManifest.model_validate(raw)
    except ValidationError as exc:
        raise UserError(_validation_message(path, exc)) from None


def write_manifest(root: str | os.PathLike, manifest: DatasetManifest) -> Path:
    """Write ``root/dataset.toml`` atomically and return its path."""
    return atomic_write_text(Path(root) / MANIFEST_NAME, manifest.to_toml())


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Dataset:
    """A dataset folder: image and mask files paired by name, loaded on demand.

    Use :func:`load_dataset` to open one. :attr:`names` are the image file stems, sorted.
    """

    def __init__(self, root: Path, manifest: DatasetManifest, manifest_path: Path | None):
        self.root = root
        self.manifest = manifest
        self.manifest_path = manifest_path
        section = manifest.dataset
        self.name = section.name or root.name
        self.image_dir = root / section.images
        self.mask_dir = None if section.masks is None else root / section.masks
        self.mask_format = section.mask_format
        self._images = self._find_images()
        self._masks = self._find_masks() if self.mask_dir is not None else {}
        self.names = sorted(self._images)
        self._split = self._check_split()
        self._hashes: dict[Path, str] = {}

    # ------------------------------------------------------------------ discovery
    def _where(self) -> str:
        return str(self.manifest_path or self.root)

    def _find_images(self) -> dict[str, Path]:
        if not self.image_dir.is_dir():
            raise UserError(f"{self.image_dir}: image folder not found; create it or set "
                            f"'images' in [dataset] of {self._where()}")
        images: dict[str, Path] = {}
        for path in _visible_files(self.image_dir):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            check_name(path.stem, where=str(path), what="micrograph")
            if path.stem in images:
                raise UserError(f"{path}: two images named {path.stem!r} ({images[path.stem].name}"
                                f" and {path.name}); keep one file per image name")
            images[path.stem] = path
        if not images:
            hint = (f"add {MANIFEST_NAME} naming the image folder"
                    if self.manifest_path is None else "put the micrographs there")
            raise UserError(f"{self.image_dir}: no images ({', '.join(IMAGE_SUFFIXES)}); {hint}")
        return images

    def _find_masks(self) -> dict[str, Path]:
        if not self.mask_dir.is_dir():
            raise UserError(f"{self.mask_dir}: mask folder not found; create it or remove "
                            f"'masks' from [dataset] of {self._where()}")
        suffixes = _MASK_SUFFIXES[self.mask_format]
        masks: dict[str, Path] = {}
        for path in _visible_files(self.mask_dir):
            suffix = next((s for s in suffixes if path.name.lower().endswith(s)), None)
            if suffix is None:
                continue
            name = path.name[: -len(suffix)]
            if name in masks:
                raise UserError(f"{path}: two masks for image {name!r}; keep one")
            if name not in self._images:
                raise UserError(f"{path}: mask without an image (no {name}.* in "
                                f"{self.image_dir}); add the image or remove the mask")
            masks[name] = path
        for name, image in self._images.items():
            if name not in masks:
                raise UserError(f"{image}: image without a mask (expected "
                                f"{self.mask_dir / (name + suffixes[0])}); add its mask, or "
                                f"move the image out of {self.image_dir}")
        if self.mask_format is MaskFormat.CELLPOSE_SEG and not self.manifest.dataset.trust_pickles:
            raise UserError(
                f"{self._where()}: mask_format = \"cellpose_seg\" loads Python pickles, which can "
                "run arbitrary code; set trust_pickles = true in [dataset] if you trust "
                "these files, or convert them to label TIFFs"
            )
        return masks

    def _check_split(self) -> dict[str, list[str]]:
        split = self.manifest.split
        if split is None:
            return {"all": list(self.names)}
        out = {}
        seen: dict[str, str] = {}
        for key, names in split.model_dump().items():
            for name in names:
                if name not in self._images:
                    raise UserError(f"{self._where()}: [split] {key} names {name!r}, which is "
                                    f"not an image in {self.image_dir}; fix the name")
                if name in seen:
                    where = "twice" if seen[name] == key else f"in {seen[name]} and {key}"
                    raise UserError(f"{self._where()}: [split] {key}: image {name!r} is listed "
                                    f"{where}; keep each image in one split, once")
                seen[name] = key
            if names:
                out[key] = list(names)
        return out

    # ------------------------------------------------------------------ public API
    @property
    def split(self) -> dict[str, list[str]]:
        """Image names per split (``{"all": names}`` when dataset.toml has no [split])."""
        return {key: list(names) for key, names in self._split.items()}

    @property
    def labelled(self) -> bool:
        """Whether the dataset has ground-truth masks."""
        return self.mask_dir is not None

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self)} images, root={str(self.root)!r})"

    def image_path(self, name: str) -> Path:
        """The image file of ``name``."""
        return self._images[self._known(name)]

    def mask_path(self, name: str) -> Path | None:
        """The mask file of ``name`` (None for an unlabelled dataset)."""
        return self._masks.get(self._known(name))

    def _known(self, name: str) -> str:
        if name not in self._images:
            raise UserError(f"{name!r} is not an image of dataset {self.name} ({self.image_dir}); "
                            "use one of its file stems")
        return name

    def micrograph(self, name: str) -> Micrograph:
        """Load one micrograph with its ground truth (a mask RegionSet, or None)."""
        image_path = self.image_path(name)
        image, header_pixel_size = read_image(image_path)
        pixel_size = self.manifest.dataset.pixel_size_nm or header_pixel_size
        truth = None
        mask_path = self.mask_path(name)
        if mask_path is not None:
            labels = self._read_mask(mask_path, image.shape)
            if labels.shape != image.shape:
                raise UserError(f"{mask_path}: mask shape {labels.shape} differs from image "
                                f"{image_path} shape {image.shape}; they must match pixel "
                                "for pixel")
            truth = RegionSet.from_labels(labels, copy=False)
        return Micrograph(name, image, pixel_size, truth, image_path)

    def _read_mask(self, path: Path, shape) -> np.ndarray:
        if self.mask_format is MaskFormat.LABELS:
            return read_labels(path)
        if self.mask_format is MaskFormat.ROI:
            from lipobench.roi import read_roi_set

            return read_roi_set(path, shape)
        return read_cellpose_seg(path, trust_pickles=self.manifest.dataset.trust_pickles)

    def micrographs(self, names: Iterable[str] | None = None) -> list[Micrograph]:
        """Load several micrographs (all by default), in the order given."""
        return [self.micrograph(name) for name in (self.names if names is None else names)]

    def lazy_micrographs(self, names: Iterable[str] | None = None) -> LazyMicrographs:
        """Like :meth:`micrographs`, but each is read from disk only when it is accessed."""
        return LazyMicrographs(self, [self._known(n) for n in
                                      (self.names if names is None else names)])

    def distractor_map(self, name: str) -> np.ndarray | None:
        """``distractors/<name>.tif`` (synthetic data: uint8 artifact codes), or None."""
        path = self.root / "distractors" / f"{self._known(name)}.tif"
        if not path.is_file():
            return None
        import tifffile

        return tifffile.imread(path)

    def particle_table(self):
        """``particles.csv`` as a pandas DataFrame, or None when the dataset has none."""
        path = self.root / "particles.csv"
        if not path.is_file():
            return None
        import pandas as pd

        try:
            return pd.read_csv(path)
        except (ValueError, OSError) as exc:
            raise UserError(f"{path}: not a readable CSV table ({exc}); fix or remove it") \
                from None

    def fingerprint(self, names: Iterable[str] | None = None) -> str:
        """A sha256 hex digest of the named images and masks (all by default).

        It covers each name, the size and content hash of its image and mask files, the pixel
        size and the mask format; not paths or times, so a copy of the folder has the same
        fingerprint. Use it as a cache key.
        """
        names = sorted(self.names if names is None else (self._known(n) for n in names))
        digest = hashlib.sha256()
        section = self.manifest.dataset
        digest.update(f"pixel_size_nm={section.pixel_size_nm!r};"
                      f"mask_format={self.mask_format.value}\n".encode())
        for name in names:
            digest.update(f"name={name}\n".encode())
            for path in (self._images[name], self._masks.get(name)):
                if path is None:
                    continue
                if path not in self._hashes:
                    self._hashes[path] = _sha256(path)
                digest.update(f"{path.suffix.lower()} {path.stat().st_size} "
                              f"{self._hashes[path]}\n".encode())
        return digest.hexdigest()


class LazyMicrographs(Sequence[Micrograph]):
    """A dataset's micrographs, read from disk on access; the last one read is kept.

    What the runner hands to adapters: 31 training micrographs of 4096² with their masks are
    4 GB in memory, and an adapter that goes through them one by one (as every built-in
    writes its tool's files) then holds one at a time. Going through twice reads twice.

    >>> import tempfile
    >>> from lipobench.micrograph import Micrograph
    >>> root = write_dataset(tempfile.mkdtemp(), [Micrograph(f"m{i}", np.zeros((8, 8),
    ...                      np.float32)) for i in range(3)])
    >>> lazy = load_dataset(root).lazy_micrographs()
    >>> len(lazy), [m.name for m in lazy], lazy[-1].name, [m.name for m in lazy[1:]]
    (3, ['m0', 'm1', 'm2'], 'm2', ['m1', 'm2'])
    """

    def __init__(self, dataset: Dataset, names: Sequence[str]):
        self._dataset = dataset
        self.names = tuple(names)
        self._last: Micrograph | None = None

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return LazyMicrographs(self._dataset, self.names[index])
        name = self.names[index]
        if self._last is None or self._last.name != name:
            self._last = self._dataset.micrograph(name)
        return self._last

    def __repr__(self) -> str:
        return f"LazyMicrographs({self._dataset.name!r}, {len(self)} micrographs)"


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Open a dataset folder (or its ``dataset.toml``); a plain image folder is unlabelled.

    Raises
    ------
    UserError
        A missing path, a bad manifest, images without masks (or the reverse), or a split
        naming an unknown image.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such dataset folder; check the path")
    if path.is_file():
        if path.name != MANIFEST_NAME:
            raise UserError(f"{path}: a dataset is a folder (or its {MANIFEST_NAME}); "
                            "give the folder")
        manifest_path = path
    elif (path / MANIFEST_NAME).is_file():
        manifest_path = path / MANIFEST_NAME
    else:
        return Dataset(path, DatasetManifest(dataset=DatasetSection(images=".")), None)
    manifest = read_manifest(manifest_path)
    return Dataset(manifest_path.parent, manifest, manifest_path)


def write_dataset(
    root: str | os.PathLike,
    micrographs: Iterable[Micrograph],
    *,
    name: str | None = None,
    pixel_size_nm: float | None = None,
    split: dict[str, list[str]] | None = None,
) -> Path:
    """Write micrographs as a dataset folder: MRC images, label TIFF masks, dataset.toml.

    Every micrograph must have ground truth, or none. The folder appears complete or not at
    all (an existing ``root`` is replaced). ``pixel_size_nm`` defaults to the micrographs' own
    when they all agree. ``split`` maps ``train``/``validation``/``test`` to image names.
    """
    micrographs = list(micrographs)
    root = Path(root)
    names = [m.name for m in micrographs]
    if len(set(names)) != len(names):
        raise ValueError("write_dataset: micrograph names must be unique")
    labelled = {m.truth is not None for m in micrographs}
    if len(labelled) > 1:
        raise ValueError("write_dataset: either every micrograph has ground truth or none has")
    if pixel_size_nm is None:
        sizes = {m.pixel_size_nm for m in micrographs}
        pixel_size_nm = sizes.pop() if len(sizes) == 1 else None
    has_masks = labelled == {True}
    try:
        split_section = None if split is None else SplitSection(**split)
    except ValidationError as exc:
        raise ValueError(f"write_dataset: bad split: {exc.errors()[0]['msg']}") from None
    manifest = DatasetManifest(
        dataset=DatasetSection(name=name or root.name, pixel_size_nm=pixel_size_nm,
                               masks="masks" if has_masks else None),
        split=split_section,
    )
    with atomic_dir(root) as tmp:
        for mic in micrographs:
            write_mrc(tmp / "images" / f"{mic.name}.mrc", mic.image,
                      pixel_size_nm=mic.pixel_size_nm or pixel_size_nm)
            if has_masks:
                truth = mic.truth
                # Keep mask label values: synthetic particle tables refer to them.
                labels = truth.labels if truth.kind is RegionKind.MASK else truth.to_label_image()
                write_labels_tiff(tmp / "masks" / f"{mic.name}.tif", labels)
        (tmp / "images").mkdir(exist_ok=True)
        write_manifest(tmp, manifest)
    return root
