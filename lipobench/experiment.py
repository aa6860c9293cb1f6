"""Experiment files: what to benchmark, on which data, with which parameter grids.

An experiment is a TOML file validated by pydantic models that forbid unknown keys::

    name = "quick"                       # optional; defaults to the file's stem
    output = "results/quick"             # optional; relative to the working directory
    iou_thresholds = [0.5, 0.75]         # optional; default 0.50, 0.55, ..., 0.95

    [dataset]                            # a folder holding dataset.toml ...
    path = "data/lnp"                    # (relative to the experiment file)
    # ... or a synthetic preset, generated once and cached under the output folder:
    # synthetic = { preset = "quick", seed = 0 }

    [split]                              # the dataset's own train/test split ...
    mode = "dataset"
    # ... or k-fold cross-validation over every image:
    # mode = "kfold", k = 5, seed = 0

    [executor]
    kind = "local"                       # or "dask", with workers = N or scheduler = "tcp://..."

    [tools.cryolo]                       # options for an adapter's constructor (optional)

    [methods.cellpose]                   # a method; "adapter" defaults to the table's name
    n_epochs = 100                       # one value ...
    diameter = [                         # ... or a grid, values derived from training truth
        { derive = "diameter", statistic = "quantile", q = 0.5 },
        { derive = "diameter", statistic = "quantile", q = 0.25 },
        30.0,
    ]

A parameter the file does not name takes its adapter's default (the first value of the
adapter's grid). Derived values (:class:`Derived`) are computed per fold from the ground truth
of that fold's training images (:func:`training_statistics`), so no test image leaks into them.

:func:`load_experiment` reads and checks a file against the installed adapters before any
work: every mistake is one :class:`~lipobench.errors.UserError` line naming the file and key.

Why one module of this length: the file's pydantic models and the checks that run before any
work (literals against each adapter's schema, derived values, folds) are one contract with the
user; the error messages name TOML keys the models define.
"""

from __future__ import annotations

import enum
import itertools
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from lipobench.cache import canonical_json, sha256_key
from lipobench.errors import UserError
from lipobench.fsutil import check_name

__all__ = [
    "Quantity",
    "Statistic",
    "Derived",
    "SyntheticSource",
    "DatasetConfig",
    "DatasetSplit",
    "KFoldSplit",
    "ExecutorKind",
    "ExecutorConfig",
    "MethodConfig",
    "Experiment",
    "Configuration",
    "DEFAULT_IOU_THRESHOLDS",
    "load_experiment",
    "parse_experiment",
    "check_experiment",
    "expand_configurations",
    "training_statistics",
    "resolve_parameters",
]

#: The paper's COCO-style thresholds, 0.50 to 0.95 in steps of 0.05.
DEFAULT_IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))


#: TOML values keep their type: a string is never read as a number, nor 1 or "yes" as true,
#: and inf and nan are no numbers here.
StrictInt = Annotated[int, Strict()]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
StrictBool = Annotated[bool, Strict()]


class Quantity(str, enum.Enum):
    """A ground-truth quantity a parameter can be derived from.

    ``diameter`` is Cellpose's ``2 * sqrt(area / pi)`` of each mask; ``radius`` is the radius
    of each particle's minimal enclosing circle (Topaz's scoring shape); ``box_size`` is the
    longer side of each particle's tight box (crYOLO's square boxes); ``count_per_image`` is the
    number of particles in each training image.
    """

    DIAMETER = "diameter"
    RADIUS = "radius"
    BOX_SIZE = "box_size"
    COUNT_PER_IMAGE = "count_per_image"


class Statistic(str, enum.Enum):
    """How a derived parameter summarises its quantity."""

    MEAN = "mean"
    MEDIAN = "median"
    QUANTILE = "quantile"


class _Strict(BaseModel):
    """Base of every experiment model: unknown keys are refused, naming the allowed ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            allowed = sorted(cls.model_fields)
            unknown = [key for key in data if key not in cls.model_fields]
            if unknown:
                raise PydanticCustomError(
                    "unknown_key", "unknown key; allowed: {allowed}",
                    {"key": str(unknown[0]), "allowed": ", ".join(allowed)},
                )
        return data


class Derived(_Strict):
    """A parameter value computed from the training ground truth of each fold.

    ``value = statistic(quantity) * scale``, rounded to an integer when ``round_to_int``.

    Examples
    --------
    >>> d = Derived(derive=Quantity.DIAMETER, statistic=Statistic.QUANTILE, q=0.25)
    >>> d.resolve({Quantity.DIAMETER: np.array([10.0, 20.0, 30.0, 40.0, 50.0])})
    20.0
    >>> Derived(derive="radius", scale=0.9, round_to_int=True).resolve(
    ...     {Quantity.RADIUS: np.array([10.0, 12.0, 30.0])})
    11
    >>> d.label()
    'q0.25(diameter)'
    """

    derive: Quantity
    statistic: Statistic = Statistic.MEDIAN
    q: Number | None = Field(default=None, ge=0.0, le=1.0)
    scale: Number = Field(default=1.0, gt=0.0)
    round_to_int: StrictBool = False

    @model_validator(mode="after")
    def _q_with_quantile(self) -> Derived:
        if self.statistic is Statistic.QUANTILE and self.q is None:
            raise ValueError('statistic = "quantile" needs q (between 0 and 1), e.g. q = 0.25')
        if self.statistic is not Statistic.QUANTILE and self.q is not None:
            raise ValueError(f'q is only used with statistic = "quantile", not '
                             f'"{self.statistic.value}"; remove q or change the statistic')
        return self

    def resolve(self, statistics: Mapping[Quantity, np.ndarray]) -> float | int:
        """The value for one fold, from :func:`training_statistics` of its training images."""
        values = np.asarray(statistics[self.derive], dtype=np.float64)
        if values.size == 0:
            raise UserError(
                f"cannot derive a parameter from {self.derive.value}: the training images hold "
                "no ground-truth particles; label the training set or give a literal value"
            )
        if self.statistic is Statistic.MEAN:
            value = float(values.mean())
        elif self.statistic is Statistic.MEDIAN:
            value = float(np.median(values))
        else:
            value = float(np.quantile(values, self.q))
        value *= self.scale
        return int(round(value)) if self.round_to_int else round(value, 6)

    def label(self) -> str:
        """A short human-readable description, for tables and plots (never parsed)."""
        if self.statistic is Statistic.QUANTILE:
            text = f"q{self.q:g}({self.derive.value})"
        else:
            text = f"{self.statistic.value}({self.derive.value})"
        if self.scale != 1.0:
            text = f"{self.scale:g}*{text}"
        return f"round({text})" if self.round_to_int else text


def _literal(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("parameter_value", "{got} is not a usable number; give a "
                                  "finite value", {"got": value})
    if isinstance(value, (bool, int, float, str)):
        return value
    raise PydanticCustomError(
        "parameter_value",
        "expected a number, a string, true/false, or a derived-value table "
        "(derive = ..., statistic = ...); got {got}",
        {"got": type(value).__name__},
    )


def _value_kind(value: Any) -> str:
    return "<derived>" if isinstance(value, (Mapping, Derived)) else "<value>"


#: One parameter value: a literal, or a value derived from the training ground truth.
ParamValue = Annotated[
    Union[
        Annotated[Derived, Tag("<derived>")],
        Annotated[Any, AfterValidator(_literal), Tag("<value>")],
    ],
    Discriminator(_value_kind),
]

#: A method parameter in the file: one value, or a list of values to sweep.
ParamGrid = Annotated[
    Union[Annotated[list[ParamValue], Tag("<grid>")], Annotated[ParamValue, Tag("<one>")]],
    Discriminator(lambda v: "<grid>" if isinstance(v, list) else "<one>"),
]


class SyntheticSource(_Strict):
    """A dataset drawn by :func:`lipobench.synth.make_dataset` (cached under the output)."""

    preset: str = "quick"
    seed: StrictInt = 0
    n_images: StrictInt | None = Field(default=None, ge=2)
    size: StrictInt | None = Field(default=None, ge=16)
    pixel_size_nm: Number | None = Field(default=None, gt=0.0, le=1000.0)
    binning: StrictInt | None = Field(default=None, ge=1)
    count: Number | None = Field(default=None, ge=0.0)


class DatasetConfig(_Strict):
    """Either ``path`` (a dataset folder) or ``synthetic`` (a preset and seed)."""

    path: Path | None = None
    synthetic: SyntheticSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> DatasetConfig:
        if (self.path is None) == (self.synthetic is None):
            raise ValueError('give exactly one of path = "FOLDER" or synthetic = { preset = ... }')
        return self


class DatasetSplit(_Strict):
    """Train on the dataset's ``train`` images, test on its ``test`` images (one fold)."""

    mode: Literal["dataset"] = "dataset"
    train: str = "train"
    test: str = "test"


class KFoldSplit(_Strict):
    """k-fold cross-validation over every image of the dataset, shuffled with ``seed``."""

    mode: Literal["kfold"]
    k: StrictInt = Field(ge=2)
    seed: StrictInt = 0


SplitConfig = Annotated[Union[DatasetSplit, KFoldSplit], Field(discriminator="mode")]


class ExecutorKind(str, enum.Enum):
    """Where tasks run: in this process, or on a dask.distributed cluster."""

    LOCAL = "local"
    DASK = "dask"


class ExecutorConfig(_Strict):
    """The executor; ``workers`` starts a LocalCluster, ``scheduler`` joins an existing one."""

    kind: ExecutorKind = ExecutorKind.LOCAL
    workers: StrictInt = Field(default=2, ge=1)
    scheduler: str | None = None


class MethodConfig(_Strict):
    """One method table: the adapter it runs and its parameter grids (every other key)."""

    adapter: str | None = None
    params: dict[str, ParamGrid] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_keys(cls, data: Any) -> Any:
        # Every key but "adapter" is a parameter; the adapter decides which exist.
        if isinstance(data, Mapping):
            reserved = {"adapter"}
            data = {"adapter": data.get("adapter"),
                    "params": {k: v for k, v in data.items() if k not in reserved}}
        return data


class Experiment(_Strict):
    """A whole experiment file, validated but not yet checked against the adapters."""

    name: str | None = None
    output: Path | None = None
    iou_thresholds: list[Annotated[Number, Field(gt=0.0, lt=1.0)]] = Field(
        default_factory=lambda: list(DEFAULT_IOU_THRESHOLDS), min_length=1)
    dataset: DatasetConfig
    split: SplitConfig = Field(default_factory=DatasetSplit)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    tools: dict[str, dict[str, Any]] = Field(default_factory=dict)
    methods: dict[str, MethodConfig] = Field(min_length=1)

    #: Where the file was read from (set by :func:`load_experiment`; not a TOML key).
    source: Path | None = Field(default=None, exclude=True)

    @property
    def label(self) -> str:
        """The experiment's name: ``name``, else the file's stem."""
        if self.name:
            return self.name
        return self.source.stem if self.source is not None else "experiment"

    def dataset_path(self) -> Path | None:
        """The dataset folder, resolved against the experiment file's folder."""
        path = self.dataset.path
        if path is None:
            return None
        path = Path(path).expanduser()
        if not path.is_absolute() and self.source is not None:
            path = self.source.parent / path
        return path


# ---------------------------------------------------------------------------- loading


def _where(source: Path | str) -> str:
    return str(source)


def _format_error(source: str, error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]
           if not (isinstance(part, str) and part.startswith("<"))]
    # MethodConfig keeps parameters under "params"; the file has them directly in the table.
    if len(loc) >= 3 and loc[0] == "methods" and loc[2] == "params":
        del loc[2]
    if error["type"] == "unknown_key":
        loc.append(error["ctx"]["key"])
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if error["type"] == "missing":
        message = "missing key; add it"
    if error["type"] == "union_tag_invalid" and loc[-1:] == ["split"]:
        message = 'unknown split mode; use mode = "dataset" or mode = "kfold"'
    path = ".".join(loc) or "(top level)"
    return f"{source}: {path}: {message}"


def parse_experiment(data: Mapping[str, Any], *, source: Path | str = "experiment") -> Experiment:
    """Validate a parsed TOML mapping; a mistake raises one UserError line naming the key.

    >>> exp = parse_experiment({"dataset": {"synthetic": {"preset": "quick"}},
    ...                         "methods": {"log": {"threshold": [0.1, 0.2]}}})
    >>> exp.methods["log"].params["threshold"], exp.iou_thresholds[:3]
    ([0.1, 0.2], [0.5, 0.55, 0.6])
    >>> parse_experiment({"dataset": {"path": "d"}, "methods": {"log": {}}, "ouput": "x"},
    ...                  source="x.toml")
    Traceback (most recent call last):
    ...
    lipobench.errors.UserError: x.toml: ouput: unknown key; allowed: dataset, executor, ...
    """
    try:
        experiment = Experiment.model_validate(dict(data))
    except ValidationError as exc:
        raise UserError(_format_error(_where(source), exc.errors()[0])) from None
    if isinstance(source, Path):
        experiment = experiment.model_copy(update={"source": source})
    return experiment


def load_experiment(path: str | Path, registry=None, *, only: Sequence[str] | None = None,
                    allow_tool_paths: bool = False) -> Experiment:
    """Read, validate and (given a registry) check an experiment file before any work.

    ``only`` keeps just the named methods (table names). ``allow_tool_paths`` accepts tool
    options that name programs to run (see :func:`check_experiment`). Raises
    :class:`UserError`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such experiment file; check the path "
                        "(see experiments/ for examples)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the experiment file ({exc}); "
                        "give a readable UTF-8 TOML file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc}); fix the syntax there") from None
    experiment = parse_experiment(data, source=path)
    if only:
        unknown = [name for name in only if name not in experiment.methods]
        if unknown:
            raise UserError(f"--only {unknown[0]}: no such method in {path}; "
                            f"methods: {', '.join(experiment.methods)}")
        experiment = experiment.model_copy(
            update={"methods": {k: v for k, v in experiment.methods.items() if k in only}})
    if registry is not None:
        check_experiment(experiment, registry, allow_tool_paths=allow_tool_paths)
    return experiment


# ---------------------------------------------------------------------------- checking


def _adapter_name(label: str, method: MethodConfig) -> str:
    return method.adapter or label


def _kinds(values: Sequence[Any]) -> set[type]:
    return {bool if isinstance(v, bool) else int if isinstance(v, int)
            else float if isinstance(v, float) else str if isinstance(v, str) else object
            for v in values}


def _check_type(where: str, value: Any, defaults: Sequence[Any]) -> None:
    expected = _kinds(defaults)
    if object in expected:
        return
    numeric = expected & {int, float}
    if isinstance(value, Derived):
        if not numeric:
            raise UserError(f"{where}: a derived value needs a numeric parameter, but this one "
                            f"takes {_type_names(expected)}; give a literal value")
        if numeric == {int} and not value.round_to_int:
            raise UserError(f"{where}: this parameter takes integers; add round_to_int = true "
                            "to the derived value")
        return
    (kind,) = _kinds([value])
    if kind in expected or (kind is int and float in expected):
        return
    raise UserError(f"{where}: {value!r} has the wrong type; this parameter takes "
                    f"{_type_names(expected)} (default {defaults[0]!r})")


def _type_names(kinds: set[type]) -> str:
    names = {bool: "true/false", int: "integers", float: "numbers", str: "strings"}
    return " or ".join(sorted(names[k] for k in kinds))


def check_experiment(experiment: Experiment, registry, *, allow_tool_paths: bool = False
                     ) -> None:
    """Check names, methods, parameters, grids and tool options against the installed adapters.

    A tool option that names a program to run (an adapter's ``code_options``, such as
    crYOLO's ``bin_dir``) makes the experiment file code: it is refused unless
    ``allow_tool_paths`` (``lipobench run --allow-tool-paths``); otherwise such locations come
    only from the user's own configuration or environment.

    Raises one :class:`UserError` naming the file and key of the first mistake; nothing is
    read or written.
    """
    where = _where(experiment.source or "experiment")
    if experiment.name is not None:
        check_name(experiment.name, where=f"{where}: name", what="experiment")
    for label in experiment.methods:
        check_name(label, where=f"{where}: methods.{label}", what="method")
    for tool, options in experiment.tools.items():
        if tool not in registry:
            raise UserError(f"{where}: tools.{tool}: unknown method; known: "
                            f"{', '.join(registry.names())}")
        code_options = getattr(registry.entry(tool).adapter_cls, "code_options", ())
        named = [key for key in options if key in code_options]
        if named and not allow_tool_paths:
            raise UserError(f"{where}: tools.{tool}.{named[0]}: names programs that lipobench "
                            "would run, so this experiment file is code; set it in "
                            "~/.config/lipobench/config.toml or the environment instead, or "
                            "pass --allow-tool-paths if you trust this file")
        try:
            registry.get(tool, **options)
        except UserError as exc:
            raise UserError(f"{where}: tools.{tool}: {exc}") from None
    for label, method in experiment.methods.items():
        name = _adapter_name(label, method)
        if name not in registry:
            key = f"methods.{label}.adapter" if method.adapter else f"methods.{label}"
            raise UserError(f"{where}: {key}: unknown method {name!r}; known: "
                            f"{', '.join(registry.names())}")
        adapter_cls = registry.entry(name).adapter_cls
        parameters = adapter_cls.parameters
        schemas = _schema_per_key(adapter_cls)
        for key, grid in method.params.items():
            path = f"methods.{label}.{key}"
            if key not in parameters:
                allowed = ", ".join(["adapter", *sorted(parameters)])
                raise UserError(f"{where}: {path}: unknown key; allowed: {allowed}")
            values = grid if isinstance(grid, list) else [grid]
            if not values:
                raise UserError(f"{where}: {path}: empty grid; give at least one value")
            for index, value in enumerate(values):
                at = f"{where}: {path}" + (f".{index}" if isinstance(grid, list) else "")
                if key in schemas:
                    _check_against_schema(at, key, value, schemas[key])
                else:  # an adapter without schemas: the type its default grid suggests
                    _check_type(at, value, parameters[key].grid)
    # A grid of this size is a typo, not a benchmark; refuse it before any work.
    configurations = expand_configurations(experiment, registry)
    if len(configurations) > 10_000:
        raise UserError(f"{where}: methods: {len(configurations)} configurations; shrink the "
                        "parameter grids")
    for configuration in configurations:
        check_parameters(f"{where}: methods.{configuration.method}", configuration.spec,
                         registry.entry(configuration.adapter).adapter_cls)


def _schema_per_key(adapter_cls) -> dict[str, type[BaseModel]]:
    """Each parameter's stage model, for an adapter that declares :attr:`schemas`."""
    return {key: model for model in getattr(adapter_cls, "schemas", {}).values()
            for key in model.model_fields}


def _schema_errors(model: type[BaseModel], values: Mapping[str, Any]) -> list[dict]:
    try:
        model.model_validate(dict(values))
    except ValidationError as exc:
        return exc.errors()
    return []


def _message(error: Mapping[str, Any]) -> str:
    # A model validator's ValueError reads "Value error, <ours>": the prefix says nothing.
    return str(error["msg"]).removeprefix("Value error, ")


def _check_against_schema(at: str, key: str, value: Any, model: type[BaseModel]) -> None:
    """One grid value of ``key`` against its field in the adapter's stage model.

    A derived value is checked for the type it resolves to (an int with ``round_to_int``,
    else a float); its size is known only once the fold's training truth is.
    """
    field = model.model_fields[key]
    help_text = f" ({field.description})" if field.description else ""
    if isinstance(value, Derived):
        # 2, not 1: a true/false parameter takes 1 as true. Only the type is probed; limits
        # (gt=0, ...) are checked on the resolved value.
        probe = 2 if value.round_to_int else 2.5
        if not _type_errors(model, key, probe):
            return
        if not value.round_to_int and not _type_errors(model, key, 2):
            raise UserError(f"{at}: this parameter takes integers; add round_to_int = true "
                            "to the derived value")
        raise UserError(f"{at}: a derived value needs a numeric parameter, but this one "
                        f"takes no numbers{help_text}; give a literal value")
    errors = [e for e in _schema_errors(model, {key: value}) if e["loc"][:1] == (key,)]
    if errors:
        wrong_type = _is_type_error(errors[0])
        raise UserError(f"{at}: {value!r}{' has the wrong type:' if wrong_type else ':'} "
                        f"{_message(errors[0])}{help_text}")


def _is_type_error(error: Mapping[str, Any]) -> bool:
    """A value of the wrong kind (a string for a number), as against one out of limits."""
    kind = str(error["type"])
    return kind.endswith(("_type", "_parsing")) or kind in ("enum", "literal_error",
                                                          "int_from_float")


def _type_errors(model: type[BaseModel], key: str, value: Any) -> list[dict]:
    return [e for e in _schema_errors(model, {key: value})
            if e["loc"][:1] == (key,) and _is_type_error(e)]


def check_parameters(at: str, spec: Mapping[str, Any], adapter_cls) -> None:
    """One configuration's values against its adapter's schemas, rules between them included
    (log's ``min_sigma <= max_sigma``); a mistake is a :class:`UserError` starting with ``at``.

    A stage holding a derived value is skipped: the run checks it once the value is resolved
    for each fold, still before any task runs.
    """
    for model in getattr(adapter_cls, "schemas", {}).values():
        values = {key: spec[key] for key in model.model_fields if key in spec}
        if any(isinstance(v, Derived) for v in values.values()):
            continue
        errors = _schema_errors(model, values)
        if errors:
            loc = ".".join(str(part) for part in errors[0]["loc"])
            raise UserError(f"{at}{'.' + loc if loc else ''}: {_message(errors[0])}")


# ---------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class Configuration:
    """One point of one method's grid, before derived values are resolved for a fold.

    ``spec`` maps every parameter of the adapter to a literal or a :class:`Derived`.
    ``config_id`` is stable across runs: the method label and a hash of the spec.
    """

    method: str
    adapter: str
    spec: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Parameters whose grid in this method has several values (the ones its label names:
    #: :func:`lipobench.report.labels.config_labels`).
    varying: tuple[str, ...] = ()

    @property
    def spec_json(self) -> str:
        """The spec as canonical JSON (derived values as their tables)."""
        return canonical_json({k: _jsonable(v) for k, v in self.spec.items()})

    @property
    def config_id(self) -> str:
        return f"{self.method}-{sha256_key(self.adapter, self.spec_json)[:10]}"

    @property
    def derives(self) -> bool:
        return any(isinstance(v, Derived) for v in self.spec.values())


def _jsonable(value: Any) -> Any:
    if isinstance(value, Derived):
        return value.model_dump(mode="json")
    return value


def expand_configurations(experiment: Experiment, registry) -> list[Configuration]:
    """Every configuration: the Cartesian product of each method's grids, defaults filled in.

    Parameters the file does not name take the adapter's default, the first value of its grid.
    """
    configurations = []
    for label, method in experiment.methods.items():
        name = _adapter_name(label, method)
        parameters = registry.entry(name).adapter_cls.parameters
        keys = sorted(parameters)
        grids = []
        for key in keys:
            grid = method.params.get(key, [parameters[key].grid[0]])
            grids.append(grid if isinstance(grid, list) else [grid])
        options = experiment.tools.get(name, {})
        varying = tuple(k for k, g in zip(keys, grids) if len(g) > 1)
        for combo in itertools.product(*grids):
            configurations.append(Configuration(label, name, dict(zip(keys, combo)), options,
                                                varying))
    return configurations


# ---------------------------------------------------------------------------- derivation


def training_statistics(truths: Iterable[Any]) -> dict[Quantity, np.ndarray]:
    """Every derivable quantity over the ground-truth RegionSets of the training images.

    >>> from lipobench.regions import RegionSet
    >>> labels = np.zeros((20, 20), dtype=np.int32); labels[2:6, 2:10] = 1
    >>> stats = training_statistics([RegionSet.from_labels(labels)])
    >>> stats[Quantity.BOX_SIZE].tolist(), stats[Quantity.COUNT_PER_IMAGE].tolist()
    ([8.0], [1.0])
    """
    diameters, radii, boxes, counts = [], [], [], []
    for truth in truths:
        if truth is None:
            continue
        counts.append(float(len(truth)))
        if len(truth) == 0:
            continue
        diameters.append(truth.equivalent_diameters())
        radii.append(truth.to_circles().circles[:, 2])
        b = truth.to_boxes().boxes
        boxes.append(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]))

    def join(parts):
        return np.concatenate(parts) if parts else np.zeros(0)

    return {Quantity.DIAMETER: join(diameters), Quantity.RADIUS: join(radii),
            Quantity.BOX_SIZE: join(boxes), Quantity.COUNT_PER_IMAGE: np.asarray(counts, float)}


def resolve_parameters(spec: Mapping[str, Any],
                       statistics: Mapping[Quantity, np.ndarray] | None) -> dict[str, Any]:
    """The spec with every :class:`Derived` replaced by its value for one fold.

    >>> resolve_parameters({"a": 1, "b": Derived(derive="count_per_image", statistic="mean")},
    ...                    {Quantity.COUNT_PER_IMAGE: np.array([2.0, 4.0])})
    {'a': 1, 'b': 3.0}
    """
    resolved = {}
    for key, value in spec.items():
        if isinstance(value, Derived):
            if statistics is None:
                raise ValueError(f"parameter {key} is derived but no training statistics given")
            value = value.resolve(statistics)
        elif isinstance(value, float) and math.isfinite(value):
            value = float(value)
        resolved[key] = value
    return resolved
