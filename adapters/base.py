"""The contract every localization method fulfils, built-in or third-party.

An adapter wraps one tool behind the region interface. The runner calls, in order:

1. :meth:`Adapter.availability` (cheap, imports nothing heavy) before any work;
2. :meth:`Adapter.to_native` once per training set: the ground truth in the tool's own format;
3. :meth:`Adapter.train` once per combination of the parameters whose stage is
   :attr:`Stage.TRAIN`, returning a model reference (a path inside ``workdir``, or the name of
   a model the tool ships);
4. :meth:`Adapter.predict` once per model and combination of :attr:`Stage.PREDICT`
   parameters, returning one RegionSet per micrograph;
5. :meth:`Adapter.select` for each combination of :attr:`Stage.SELECT` parameters: a cheap
   filter of finished predictions (a confidence threshold, say), so a sweep over it never
   reruns the tool.

Workdirs handed to ``train`` and ``predict`` persist in the runner's cache. The ``predict``
workdir is one folder per (model, micrograph set), shared by every combination of PREDICT
parameters, so an adapter may keep intermediate results there, named by the parameters that
produced them (LipoPose keeps its per-diameter masks and reruns only the merge).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lipobench.errors import UserError
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionKind, RegionSet
from lipobench.toolenv import ToolEnvironment

__all__ = ["Adapter", "Availability", "Stage", "Parameter", "ModelRef", "validate_parameters",
           "schema_parameters", "keep_scores_at_least", "keep_diameters_within",
           "SizeFilterParams"]

#: A trained model: a file or folder inside the train workdir, or a name the tool ships.
ModelRef = Path | str


class Stage(str, enum.Enum):
    """When a parameter takes effect, which decides what the runner caches and reuses."""

    TRAIN = "train"
    PREDICT = "predict"
    SELECT = "select"


@dataclass(frozen=True)
class Parameter:
    """One tunable parameter: its stage, its default grid, what it means, its legend name.

    ``abbreviation`` is how figure legends and configuration labels name the parameter
    (``d`` for a diameter: ``cellpose d=31``); empty: its full name.
    """

    stage: Stage
    grid: tuple[Any, ...]
    help: str = ""
    abbreviation: str = ""


def validate_parameters(adapter_name: str, model_cls: type[BaseModel],
                        params: Mapping[str, Any], stage: str) -> BaseModel:
    """``params`` checked by an adapter's pydantic model for one stage.

    A wrong name or value is a :class:`~lipobench.errors.UserError` naming the adapter, the
    stage, the key and the keys that stage knows.
    """
    try:
        return model_cls(**dict(params))
    except ValidationError as exc:
        first = exc.errors()[0]
        if not first["loc"]:
            # A check across parameters: its message names the keys.
            message = first["msg"].removeprefix("Value error, ")
            raise UserError(f"{adapter_name} {stage} parameters: {message}") from None
        # parameters are flat; deeper loc parts only name a union member's type
        raise UserError(
            f"{adapter_name} {stage} parameter {str(first['loc'][0])!r}: {first['msg']}; "
            f"known {stage} parameters: {', '.join(model_cls.model_fields)}"
        ) from None


def schema_parameters(stages: Mapping[Stage, type[BaseModel]]) -> dict[str, Parameter]:
    """:attr:`Adapter.parameters` derived from one pydantic model per stage.

    Each field's default is its one-point grid and its description the help, so a parameter's
    name, type, default and meaning are written once, in the model.

    >>> from pydantic import BaseModel, Field
    >>> class Select(BaseModel):
    ...     confidence: float = Field(0.3, description="minimum confidence")
    >>> schema_parameters({Stage.SELECT: Select})["confidence"]
    Parameter(stage=<Stage.SELECT: 'select'>, grid=(0.3,), help='minimum confidence',
              abbreviation='')

    A field whose default grid has several points says so in ``json_schema_extra={"grid":
    (...)}``; the first point is then the default.

    >>> class Predict(BaseModel):
    ...     sigma: float = Field(4.0, json_schema_extra={"grid": (4.0, 8.0)})
    >>> schema_parameters({Stage.PREDICT: Predict})["sigma"].grid
    (4.0, 8.0)

    Its short name in legends is ``json_schema_extra={"abbreviation": "..."}``.

    >>> class Train(BaseModel):
    ...     n_epochs: int = Field(10, json_schema_extra={"abbreviation": "ep"})
    >>> schema_parameters({Stage.TRAIN: Train})["n_epochs"].abbreviation
    'ep'
    """
    parameters = {}
    for stage, model in stages.items():
        for key, field in model.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            # Typed as JSON by pydantic, but it holds what the model's author wrote: a tuple.
            grid = cast("Sequence[Any] | None", extra.get("grid"))
            if grid is None:
                grid = (field.get_default(call_default_factory=True),)
            # Grids hold what an experiment file would write: an enum's value, not the member.
            points = tuple(v.value if isinstance(v, enum.Enum) else v for v in grid)
            parameters[key] = Parameter(stage, points, field.description or "",
                                        str(extra.get("abbreviation") or ""))
    return parameters


@dataclass(frozen=True)
class Availability:
    """Whether an adapter can run here; if not, why and how to fix it."""

    ok: bool
    reason: str = ""
    fix: str = ""
    tool_version: str | None = None

    def __bool__(self) -> bool:
        return self.ok


def keep_scores_at_least(regions: RegionSet, minimum: float | None) -> RegionSet:
    """The regions scoring ``minimum`` or more: SELECT's one score comparison, ``>=``.

    ``minimum`` None, or regions without scores, keep everything. A threshold sweep then
    reads as "at least this confident" for every method alike, and a threshold equal to a
    score keeps that region.

    >>> from lipobench.regions import RegionSet
    >>> picks = RegionSet.from_circles([[5, 5, 2], [9, 9, 2]], image_shape=(16, 16),
    ...                                scores=[0.3, 0.5])
    >>> len(keep_scores_at_least(picks, 0.5)), len(keep_scores_at_least(picks, None))
    (1, 2)
    """
    if minimum is None or regions.scores is None:
        return regions
    return regions.select(regions.scores >= minimum)


def keep_diameters_within(regions: RegionSet, min_px: float | None = None,
                          max_px: float | None = None) -> RegionSet:
    """The regions whose equivalent diameter lies in ``[min_px, max_px]`` (None: no bound).

    The size filter of every mask method: the equivalent diameter is that of the disc of the
    region's area (:meth:`~lipobench.regions.RegionSet.equivalent_diameters`).

    >>> from lipobench.regions import RegionSet
    >>> labels = np.zeros((20, 20), int); labels[:2, :2] = 1; labels[5:15, 5:15] = 2
    >>> keep_diameters_within(RegionSet.from_labels(labels), min_px=5).ids.tolist()
    [2]
    """
    if min_px is None and max_px is None:
        return regions
    diameters = regions.equivalent_diameters()
    keep = np.ones(len(regions), dtype=bool)
    if min_px is not None:
        keep &= diameters >= min_px
    if max_px is not None:
        keep &= diameters <= max_px
    return regions if keep.all() else regions.select(keep)


class SizeFilterParams(BaseModel):
    """SELECT-stage size filter of a mask method (:func:`keep_diameters_within`).

    In pixels, because SELECT sees regions only; None keeps every size (the study filtered
    none). ``lipobench segment`` sets both from the LNP size prior in nm.
    """

    model_config = ConfigDict(extra="forbid")

    min_diameter_px: float | None = Field(None, gt=0, json_schema_extra={"abbreviation": "dmin"},
                                          description=(
        "drop objects whose equivalent diameter is below this (px); None: no minimum"))
    max_diameter_px: float | None = Field(None, gt=0, json_schema_extra={"abbreviation": "dmax"},
                                          description=(
        "drop objects whose equivalent diameter is above this (px); None: no maximum"))

    @model_validator(mode="after")
    def _ordered(self):
        if (self.min_diameter_px is not None and self.max_diameter_px is not None
                and self.min_diameter_px > self.max_diameter_px):
            raise ValueError(f"min_diameter_px {self.min_diameter_px:g} exceeds "
                             f"max_diameter_px {self.max_diameter_px:g}; give min <= max")
        return self

    def apply(self, regions: RegionSet) -> RegionSet:
        """The regions within the size range."""
        return keep_diameters_within(regions, self.min_diameter_px, self.max_diameter_px)


class Adapter(ABC):
    """Base class of all adapters (modelled on benchopt's solvers).

    Subclasses set :attr:`name`, :attr:`region_kind`, :attr:`parameters` and :attr:`citation`,
    and implement :meth:`availability`, :meth:`to_native`, :meth:`train` and :meth:`predict`.
    Heavy tools are imported inside methods only, so listing adapters stays fast.
    """

    name: ClassVar[str]
    region_kind: ClassVar[RegionKind]
    citation: ClassVar[str] = ""
    #: False for methods that need no training (a classical detector, a shipped model).
    trainable: ClassVar[bool] = True
    #: Name of another adapter whose training this one reuses (same TRAIN parameters, same
    #: model); the runner then trains once for both, as the LipoPose study does.
    trains_as: ClassVar[str | None] = None
    #: One pydantic model per stage: the one place each parameter's name, type, constraints,
    #: default grid and help are written. A subclass that sets it gets :attr:`parameters`
    #: derived from it (:func:`schema_parameters`), and ``lipobench run`` validates every
    #: value of an experiment file against it before any work.
    schemas: ClassVar[Mapping[Stage, type[BaseModel]]] = {}
    #: Name -> :class:`Parameter`; derived from :attr:`schemas` where a subclass sets those.
    parameters: ClassVar[Mapping[str, Parameter]] = {}
    #: The environment of its own the tool needs, which ``lipobench tools install NAME``
    #: builds (crYOLO: Python 3.7); None when the tool lives in lipobench's environment.
    environment: ClassVar[ToolEnvironment | None] = None
    #: Constructor options that name a program, or a folder of programs, the adapter runs
    #: (crYOLO's ``bin_dir``). An experiment file may set them only when the user passes
    #: ``--allow-tool-paths``: otherwise opening someone's experiment could run their code.
    code_options: ClassVar[tuple[str, ...]] = ()
    #: Part of every cache key of this adapter's tasks: change it with any change to the
    #: adapter that changes what it trains or predicts (a conversion, a default, a bug
    #: fix), so that cached results made by the old code are not served again. The
    #: tool's version and lipobench's are in the keys already.
    cache_version: ClassVar[str] = "1"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "schemas" in cls.__dict__ and "parameters" not in cls.__dict__:
            cls.parameters = schema_parameters(cls.schemas)

    # ---------------------------------------------------------------- discovery
    @abstractmethod
    def availability(self) -> Availability:
        """Say whether the tool can run here, without importing it."""

    def describe(self) -> dict[str, Any]:
        """Name, region kind, tool version and citation, for results tables and reports."""
        available = self.availability()
        return {
            "name": self.name,
            "region_kind": self.region_kind.value,
            "tool_version": available.tool_version,
            "citation": self.citation,
        }

    def parameter_grid(self) -> dict[str, list[Any]]:
        """The default grid: every parameter with the values a benchmark sweeps."""
        return {key: list(p.grid) for key, p in self.parameters.items()}

    def test_parameters(self) -> dict[str, Any]:
        """One point of the grid that runs in seconds on tiny images (conformance suite)."""
        return {key: p.grid[0] for key, p in self.parameters.items()}

    def stage_of(self, key: str) -> Stage:
        """The stage of parameter ``key``; unknown keys raise KeyError naming the known ones."""
        try:
            return self.parameters[key].stage
        except KeyError:
            known = ", ".join(sorted(self.parameters)) or "none"
            raise KeyError(f"{self.name} has no parameter {key!r}; known: {known}") from None

    def split_parameters(self, params: Mapping[str, Any]) -> dict[Stage, dict[str, Any]]:
        """Group a full parameter assignment by stage."""
        groups: dict[Stage, dict[str, Any]] = {stage: {} for stage in Stage}
        for key, value in params.items():
            groups[self.stage_of(key)][key] = value
        return groups

    # ---------------------------------------------------------------- work
    @abstractmethod
    def to_native(self, micrographs: Sequence[Micrograph], workdir: Path) -> Path:
        """Write the ground truth of ``micrographs`` in the tool's training format; return it.

        ``lipobench convert DATASET OUT --to NAME`` runs it too: it writes inside ``workdir``.
        """

    @abstractmethod
    def train(self, native: Path, params: Mapping[str, Any], workdir: Path) -> ModelRef:
        """Train on ``native`` with the TRAIN-stage ``params``; return the model reference."""

    @abstractmethod
    def predict(
        self,
        model: ModelRef,
        micrographs: Sequence[Micrograph],
        params: Mapping[str, Any],
        workdir: Path,
    ) -> list[RegionSet]:
        """One RegionSet of :attr:`region_kind` per micrograph, scored where the tool scores."""

    def select(self, regions: RegionSet, params: Mapping[str, Any]) -> RegionSet:
        """Apply SELECT-stage ``params`` to finished predictions; the default keeps all.

        A score cut is :func:`keep_scores_at_least`, the one comparison every built-in uses.
        """
        return regions

    def model_info(self, model: ModelRef) -> dict[str, str]:
        """Facts about a trained model a reader of the results must know (how it started).

        Stored with the training in the cache and as ``model.<key>`` columns of the results;
        the default says nothing.
        """
        return {}
