"""The one configuration schema: target models, decomposition and evaluation settings.

Every model forbids unknown keys and is immutable; a bad value fails at load time with a one-line
message naming the key (see `load_experiment_config`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    SerializeAsAny,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Probability = Annotated[float, Field(gt=0, le=1)]
# torch takes 64-bit seeds; below 2**63, a TMS target's seed + tries stays in range too.
Seed = Annotated[int, Field(ge=0, lt=2**63)]


ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the offending key or file."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)


class TMSTargetConfig(StrictModel):
    """Toy Model of Superposition (docs/method.md, "Toy models") and its training recipe."""

    family: Literal["tms"] = "tms"
    n_features: PositiveInt = Field(description="Number of sparse input features.")
    d_hidden: PositiveInt = Field(description="Width of the bottleneck.")
    identity_layer: bool = Field(False, description="Insert a frozen d_hidden x d_hidden identity.")
    feature_probability: Probability = Field(0.05, description="P(feature active).")
    steps: PositiveInt = Field(10_000, description="Target training steps.")
    batch_size: PositiveInt = Field(1024, description="Target training batch size.")
    lr: PositiveFloat = Field(5e-3, description="AdamW learning rate.")
    lr_schedule: Literal["constant", "linear"] = Field(
        "constant",
        description="'constant', or 'linear': lr (1 - t / steps), the APD code's target training.",
    )
    weight_decay: NonNegativeFloat = Field(0.01, description="AdamW weight decay.")
    weight_init: Literal["torch", "xavier_normal"] = Field(
        "torch",
        description="W's initialisation: nn.Linear's ('torch'), or 'xavier_normal' as the APD code "
        "draws it for a model of `init_instances` instances, N(0, 2 / (d_hidden (n_features + "
        "init_instances))), after nn.Linear's init from the same seed.",
    )
    init_instances: PositiveInt = Field(
        1, description="Instances the APD code trained at once, for weight_init: xavier_normal."
    )
    seed: Seed = Field(0, description="First training seed tried.")
    max_seed_tries: PositiveInt = Field(
        20, description="Seeds tried (seed, seed+1, ...) until every feature is represented."
    )
    min_feature_norm: PositiveFloat = Field(
        0.5, description="A feature counts as represented if its column of W has this norm."
    )
    zero_bias_init: bool = Field(
        False,
        description="Start linear2's bias at zero instead of nn.Linear's uniform init (the "
        "reference implementation's 40-10 targets); the random stream is the same either way.",
    )
    tied_adam: Literal["joint", "per_layer"] = Field(
        "joint",
        description="AdamW on the tied W: 'joint', one parameter and one state for the summed "
        "gradient; 'per_layer', linear1 and linear2 parameters over one shared storage, each with "
        "its own state, so W takes two AdamW steps and two weight decays per step (the reference "
        "implementation's target training).",
    )


class ResidMLPTargetConfig(StrictModel):
    """Residual MLP (docs/method.md, "Toy models"): frozen unit-norm embedding, n_layers ReLU MLPs, labels x + ReLU(x)."""

    family: Literal["resid_mlp"]
    n_features: PositiveInt = Field(description="Number of sparse input features.")
    d_embed: PositiveInt = Field(description="Width of the residual stream.")
    d_mlp: PositiveInt = Field(description="Neurons per MLP layer.")
    n_layers: PositiveInt = Field(description="Number of residual MLP blocks.")
    feature_probability: Probability = Field(0.01, description="P(feature active).")
    steps: PositiveInt = Field(1000, description="Target training steps.")
    batch_size: PositiveInt = Field(2048, description="Target training batch size.")
    lr: PositiveFloat = Field(3e-3, description="AdamW learning rate, cosine-decayed to 0.")
    weight_decay: NonNegativeFloat = Field(0.01, description="AdamW weight decay.")
    seed: Seed = Field(0, description="Seed of the embedding, init and data.")


TARGET_FAMILIES = ("tms", "resid_mlp")
CUSTOM_FAMILY_TAG = (
    "family:custom"  # the schema tag of a family named by import path (no key can be)
)


def _target_family_tag(raw: object) -> str:
    """A built-in family's own tag; anything else goes to `_custom_target`, which names the problem."""
    family = raw.get("family") if isinstance(raw, dict) else getattr(raw, "family", None)
    return family if family in TARGET_FAMILIES else CUSTOM_FAMILY_TAG


def _custom_target(raw: object) -> BaseModel:
    """A target of a family named by import path 'package.module:Object', validated by that
    family's own config model; any other family value is an error naming the known ones."""
    if isinstance(raw, BaseModel):
        return raw
    family = raw.get("family") if isinstance(raw, dict) else None
    if family is None:
        raise PydanticCustomError(
            "union_tag_not_found", "Unable to extract tag using discriminator 'family'"
        )
    if not isinstance(family, str) or ":" not in family:
        raise PydanticCustomError(
            "union_tag_invalid",
            "Input tag '{tag}' found using 'family' does not match any of the expected tags: {expected}",
            {"tag": str(family), "expected": ", ".join(f"'{name}'" for name in TARGET_FAMILIES)},
        )
    from spd.families.registry import FamilyImportError, family_named

    try:
        config_model = family_named(family).config_model
    except FamilyImportError as error:
        raise PydanticCustomError(
            "family_import", "'{family}': {detail}", {"family": family, "detail": error.detail}
        ) from None
    return config_model.model_validate(raw)


if TYPE_CHECKING:

    class _CustomTargetConfig(BaseModel):
        """What a type checker knows of a user's family's config: its model has (at least) the
        fields spd.families.base asks of every target config."""

        family: str
        n_features: int

    CustomTargetConfig = _CustomTargetConfig
else:
    CustomTargetConfig = Annotated[SerializeAsAny[BaseModel], PlainValidator(_custom_target)]
TargetConfig = Annotated[
    Annotated[TMSTargetConfig, Tag("tms")]
    | Annotated[ResidMLPTargetConfig, Tag("resid_mlp")]
    | Annotated[CustomTargetConfig, Tag(CUSTOM_FAMILY_TAG)],
    Discriminator(_target_family_tag),
]
METHODS = ("spd", "apd")


class SPDConfig(StrictModel):
    """Stochastic Parameter Decomposition settings, paper mode (docs/method.md)."""

    method: Literal["spd"] = Field("spd", description="Decomposition method (the default).")
    C: PositiveInt = Field(description="Subcomponents per decomposed matrix.")
    d_gate: Annotated[int, Field(ge=0)] = Field(16, description="Hidden width of each CI MLP.")
    faithfulness_coeff: NonNegativeFloat = Field(1.0, description="Weight of L_faith.")
    stochastic_recon_coeff: NonNegativeFloat = Field(1.0, description="beta1, weight of L_stoch.")
    layerwise_recon_coeff: NonNegativeFloat = Field(1.0, description="beta2, weight of L_layer.")
    importance_minimality_coeff: NonNegativeFloat = Field(description="beta3, weight of L_imp.")
    pnorm: PositiveFloat = Field(description="Exponent p of the importance-minimality loss.")
    lr: PositiveFloat = Field(1e-3, description="Adam learning rate.")
    lr_schedule: Literal["cosine", "constant"] = Field(
        "cosine", description="Quarter-cosine or flat."
    )
    steps: PositiveInt = Field(40_000, description="Optimisation steps.")
    batch_size: PositiveInt = Field(4096, description="Fresh synthetic examples per step.")
    seed: Seed = Field(0, description="Seed for init, data and masks.")
    leaky_alpha: Annotated[float, Field(gt=0, lt=1)] = Field(0.01, description="Sigmoid leak.")
    fused_gates: bool = Field(
        True, description="Memory-lean CI-MLP kernels; False: plain reference."
    )
    tied_adam: Literal["joint", "per_layer"] = Field(
        "joint",
        description="Adam on subcomponents tied across layers (TMS linear1/linear2): 'joint', one "
        "state for the summed gradient; 'per_layer', each layer its own parameters and Adam state "
        "over the one shared storage (the reference implementation's tying).",
    )
    restarts: PositiveInt = Field(
        1,
        description="Candidate initialisations: each trains for restart_steps steps (as prefixes of "
        "the full run), the one with the lowest loss on common fresh batches trains to the end.",
    )
    restart_steps: PositiveInt = Field(
        10_000, description="Steps before the candidates are compared."
    )
    log_every: PositiveInt = Field(500, description="Steps between progress lines / loss records.")
    modules: tuple[str, ...] | None = Field(
        None, min_length=1, description="Target layers to decompose; default: all the family's."
    )

    @property
    def steps_trained(self) -> int:
        """Optimisation steps in all, the restart candidates' included."""
        return self.steps + (self.restarts - 1) * self.restart_steps

    @model_validator(mode="after")
    def _restarts_end_before_the_run(self) -> SPDConfig:
        if self.restarts > 1 and self.restart_steps >= self.steps:
            raise ValueError(
                f"restart_steps ({self.restart_steps}) must be below steps ({self.steps})"
            )
        return self


class APDConfig(StrictModel):
    """The APD baseline (docs/method.md): rank-m parameter components, batch top-k on attributions."""

    method: Literal["apd"] = Field(description="Selects APD.")
    C: PositiveInt = Field(description="Parameter components.")
    m: PositiveInt | None = Field(
        None, description="Rank of each component per layer; default min(d_in, d_out)."
    )
    topk: PositiveFloat = Field(description="Mean active components per example (batch top-k).")
    faithfulness_coeff: NonNegativeFloat = Field(1.0, description="lambda_F.")
    minimality_coeff: NonNegativeFloat = Field(1.0, description="lambda_min, top-k reconstruction.")
    simplicity_coeff: NonNegativeFloat = Field(description="lambda_S, Schatten-p simplicity.")
    activation_recon_coeff: NonNegativeFloat = Field(
        0.0,
        description="lambda_act: MSE of the MLP activations, target vs top-k pass (residual MLP).",
    )
    unit_norm_A: bool = Field(False, description="Constrain every column of every A to unit norm.")
    init_instances: PositiveInt = Field(
        1,
        description="Models the published code trains at once, which sets the scale of its "
        "xavier-normal init of A and B (its TMS runs: 12 for 5-2, 3 for 40-10).",
    )
    schatten_p: PositiveFloat = Field(description="Schatten p of the simplicity loss.")
    lr: PositiveFloat = Field(description="Adam learning rate.")
    lr_schedule: Literal["cosine", "constant"] = Field("constant", description="After the warm-up.")
    warmup_pct: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.05, description="Linear warm-up share of steps."
    )
    steps: PositiveInt = Field(20_000, description="Optimisation steps.")
    batch_size: PositiveInt = Field(2048, description="Fresh synthetic examples per step.")
    seed: Seed = Field(0, description="Seed for init and data.")
    log_every: PositiveInt = Field(500, description="Steps between progress lines / loss records.")
    modules: tuple[str, ...] | None = Field(
        None, min_length=1, description="Target layers to decompose."
    )

    @property
    def steps_trained(self) -> int:
        """Optimisation steps in all (APD has no restarts)."""
        return self.steps


def _method(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("method", "spd"))
    return str(getattr(value, "method", "spd"))


DecompositionConfig = Annotated[
    Annotated[SPDConfig, Tag("spd")] | Annotated[APDConfig, Tag("apd")], Discriminator(_method)
]


class EvalConfig(StrictModel):
    """Ground-truth evaluation settings (docs/method.md, "Recovery criteria")."""

    probe_value: PositiveFloat = Field(0.75, description="Value of the one-hot probes.")
    n_random: PositiveInt = Field(10_000, description="Size of the random evaluation batch.")
    alive_threshold: Probability = Field(0.1, description="CI above which a subcomponent lives.")
    l0_thresholds: tuple[Probability, ...] = Field((0.01, 0.1), description="CI-L0 thresholds.")
    diag_min: Probability = Field(0.9, description="Diagonal CI below this is an error.")
    offdiag_max: Probability = Field(0.1, description="Off-diagonal CI above this is an error.")
    seed: Seed = Field(12345, description="Seed of the random batch.")


class ExperimentSettings(StrictModel):
    """What an experiment is: a target model, its decomposition and its evaluation."""

    target: TargetConfig
    decomposition: DecompositionConfig
    evaluation: EvalConfig = EvalConfig()


class ExperimentConfig(ExperimentSettings):
    """One named experiment, as a single YAML file or as an entry of params.yaml."""

    name: str = Field(min_length=1, description="Experiment name, e.g. tms_5-2.")


SWEEP_SEPARATOR = (
    "@"  # a sweep point's name: <experiment>@<sweep>=<value>, e.g. tms_5-2@beta3=0.001
)


class Sweep(StrictModel):
    """One decomposition setting varied over a grid, for some experiments: each value is a
    decomposition of the experiment's own target, named <experiment>@<sweep>=<value>."""

    setting: str = Field(
        min_length=1, description="A decomposition key, e.g. importance_minimality_coeff."
    )
    experiments: dict[str, tuple[int | float, ...]] = Field(
        min_length=1, description="Values per experiment."
    )


def sweep_point_name(experiment: str, sweep: str, value: float) -> str:
    return f"{experiment}{SWEEP_SEPARATOR}{sweep}={value:g}"


class Params(StrictModel):
    """params.yaml: every experiment of the project, the seeds to run each with, and sweeps."""

    seeds: tuple[Seed, ...] = Field((0,), min_length=1, description="Seeds.")
    robustness_seeds: tuple[Seed, ...] = Field(
        (0, 1, 2, 3, 4),
        min_length=1,
        description="Seeds of the robustness and SPD-vs-APD comparisons.",
    )
    experiments: dict[str, ExperimentSettings] = Field(min_length=1, description="By name.")
    sweeps: dict[str, Sweep] = Field({}, description="Grids of one decomposition setting, by name.")
    main_experiments: tuple[str, ...] | None = Field(
        None,
        min_length=1,
        description="The main job (tms.pdf, its Table 1, dvc.yaml's stages): SPD experiments of a "
        "family scored by MMCS and ML2R (TMS); default every one of them.",
    )

    def experiment(self, name: str) -> ExperimentConfig:
        if name in self.experiments:
            return ExperimentConfig(name=name, **dict(self.experiments[name]))
        points = self.sweep_points()
        if name in points:
            return points[name]
        raise ConfigError(f"unknown experiment '{name}' ({self._names_like(name)})")

    def _names_like(self, name: str) -> str:
        """For an unknown name: the point it spells otherwise, or its sweep's point names, or
        every experiment's name."""
        base, _, point = name.partition(SWEEP_SEPARATOR)
        sweep, _, value = point.partition("=")
        grid = self.sweeps[sweep].experiments.get(base) if sweep in self.sweeps else None
        if grid is not None:
            names = [sweep_point_name(base, sweep, v) for v in grid]
            try:
                spelled = sweep_point_name(base, sweep, float(value))
            except ValueError:
                spelled = None
            if spelled in names:
                return f"did you mean '{spelled}'?"
            return f"sweep {sweep} of {base} has: {', '.join(names)}"
        known = "params has: " + ", ".join(sorted(self.experiments))
        if self.sweeps:
            known += f"; and the points of sweeps {', '.join(self.sweeps)}"
        return known

    def sweep_points(self, sweep: str | None = None) -> dict[str, ExperimentConfig]:
        """Every sweep point (or one sweep's) by name, in params order, each validated."""
        points = {}
        for sweep_name, grid in self.sweeps.items():
            if sweep is not None and sweep_name != sweep:
                continue
            for experiment, values in grid.experiments.items():
                for value in values:
                    name = sweep_point_name(experiment, sweep_name, value)
                    points[name] = self._sweep_point(name, sweep_name, experiment, value)
        return points

    def _sweep_point(
        self, name: str, sweep: str, experiment: str, value: float
    ) -> ExperimentConfig:
        key = f"sweeps.{sweep}.experiments.{experiment}"
        if experiment not in self.experiments:
            raise ConfigError(f"bad config key '{key}': no experiment named '{experiment}'")
        raw = self.experiment(experiment).model_dump(mode="json")
        setting = self.sweeps[sweep].setting
        if setting not in type(self.experiments[experiment].decomposition).model_fields:
            raise ConfigError(
                f"bad config key 'sweeps.{sweep}.setting': '{setting}' is not a decomposition setting"
            )
        raw["name"], raw["decomposition"][setting] = name, value
        return parse_experiment_config(raw, source=key)

    def run_source(self, name: str) -> str:
        """The experiment whose decomposition runs stand for `name`'s: a sweep point at its base
        experiment's own value is the base experiment's run, not a second copy of it."""
        base = name.split(SWEEP_SEPARATOR)[0]
        if (
            name != base
            and self.experiment(name).decomposition == self.experiments[base].decomposition
        ):
            return base
        return name

    def target_source(self, name: str) -> str:
        """The first experiment whose target settings equal `name`'s: experiments (and sweep
        points) with the same target share one trained target."""
        target = self.experiment(name).target
        return next(
            other for other, settings in self.experiments.items() if settings.target == target
        )


_SECTIONS: dict[str, tuple[type[BaseModel], ...]] = {
    "target": (TMSTargetConfig, ResidMLPTargetConfig),
    "decomposition": (SPDConfig, APDConfig),
    "evaluation": (EvalConfig,),
}


def _key(loc: tuple[int | str, ...]) -> str:
    # A target's family and a decomposition's method select its schema; pydantic puts that tag
    # into the location, where the user wrote no key.
    return ".".join(str(part) for part in _written(loc)) or "<root>"


def _written(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The location as the user wrote it: without the schema tags pydantic inserts."""
    tags = (*TARGET_FAMILIES, CUSTOM_FAMILY_TAG, *METHODS)
    return tuple(part for part in loc if part not in tags)


def _fields(*models: type[BaseModel]) -> set[str]:
    return {field for model in models for field in model.model_fields}


def _keys_beside(loc: tuple[int | str, ...], schema: type[BaseModel]) -> set[str]:
    """The keys allowed where the key at `loc` (as written) stands, in a file of `schema`."""
    parent = loc[:-1]
    if parent and parent[-1] in _SECTIONS:
        return _fields(*_SECTIONS[str(parent[-1])])
    if not parent:
        return _fields(schema)
    if parent[0] == "sweeps" and len(parent) == 2:
        return _fields(Sweep)
    if parent[0] == "experiments" and len(parent) == 2:
        return _fields(ExperimentSettings)
    return _fields(*(model for models in _SECTIONS.values() for model in models))


def _unknown_key(loc: tuple[int | str, ...], schema: type[BaseModel]) -> str:
    """'unknown config key ...' with the allowed key it resembles, or else the other section's
    key it is or resembles."""
    written = _written(loc)
    key = str(written[-1])
    match = difflib.get_close_matches(key, _keys_beside(written, schema), n=1)
    if match:
        return f"unknown config key '{_key(loc)}' (did you mean '{match[0]}'?)"
    for section, models in _SECTIONS.items():
        elsewhere = difflib.get_close_matches(key, _fields(*models), n=1)
        if elsewhere:
            return f"unknown config key '{_key(loc)}' ('{elsewhere[0]}' is a {section} key)"
    return f"unknown config key '{_key(loc)}'"


def _format_validation_error(error: ValidationError, schema: type[BaseModel], source: str) -> str:
    """One line: every unknown key the user wrote (a typo also makes its intended key missing,
    so those come first), else the first problem; the count of the others."""
    errors = error.errors()
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        shown = [_unknown_key(e["loc"], schema) for e in unknown]
    else:
        first = errors[0]
        key = _key(first["loc"])
        if first["type"] in ("union_tag_invalid", "union_tag_not_found", "family_import"):
            tag = "method" if key.split(".")[-1] == "decomposition" else "family"
            key = f"{key}.{tag}" if key != "<root>" else tag
        if first["type"] == "family_import":
            shown = [f"{key} {first['msg']}"]
        elif first["type"] == "union_tag_invalid":
            ctx = first.get("ctx", {})
            expected = ctx.get("expected_tags", ctx.get("expected"))
            shown = [f"bad config key '{key}': '{ctx.get('tag')}' is not one of {expected}"]
        else:
            shown = [f"bad config key '{key}': {first['msg']}"]
    extra = len(errors) - len(shown)
    more = f" (and {extra} more problem{'s' if extra > 1 else ''})" if extra else ""
    return f"{source}: {'; '.join(shown)}{more}"


def _validate(schema: type[ModelT], raw: object, source: str) -> ModelT:
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(raw).__name__}"
        )
    try:
        return schema.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(error, schema, source)) from None


def _read_yaml(path: str | Path) -> object:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error.__class__.__name__})") from None


def parse_experiment_config(raw: object, source: str = "config") -> ExperimentConfig:
    return _validate(ExperimentConfig, raw, source)


def load_experiment_config(path: str | Path) -> ExperimentConfig:
    """A single-experiment YAML file (name, target, decomposition, evaluation)."""
    raw = _read_yaml(path)
    if isinstance(raw, dict) and "experiments" in raw:
        raise ConfigError(
            f"{path}: a params file (it has 'experiments'), not one experiment's config: "
            "give it as --params with --experiment NAME"
        )
    return parse_experiment_config(raw, source=str(path))


def parse_params(raw: object, source: str = "params") -> Params:
    from spd.families.registry import family

    params = _validate(Params, raw, source)
    for name in params.main_experiments or ():
        settings = params.experiments.get(name)
        if (
            settings is None
            or settings.decomposition.method != "spd"
            or not family(settings.target).feature_matched
        ):
            raise ConfigError(
                f"{source}: bad config key 'main_experiments': '{name}' is not an SPD experiment "
                "scored by MMCS and ML2R"
            )
    try:
        params.sweep_points()  # every sweep point is a valid experiment, before any compute
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    return params


def load_params(path: str | Path) -> Params:
    """params.yaml: seeds and every experiment, validated as a whole."""
    return parse_params(_read_yaml(path), source=str(path))


def config_hash(model: BaseModel) -> str:
    """A short stable hash of a config's content (key order independent). Settings left at their
    defaults are left out, so that a new optional setting does not change every existing hash."""
    return _hash(model.model_dump(mode="json", exclude_defaults=True))


def settings_hash(config: ExperimentConfig) -> str:
    """The hash of an experiment's settings as a run ran them, its decomposition seed aside: what
    the seeds of one experiment share, and what a run of other steps or settings does not."""
    raw = config.model_dump(mode="json", exclude_defaults=True)
    raw.get("decomposition", {}).pop("seed", None)
    return _hash(raw)


def _hash(raw: object) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:12]
