"""High-dimensional stopping (SPEC section 7, issue 17): references, evaluation, the paper table and the
experiment kind ``"high_dim_stopping"``.

References
----------
* Basket put: the exact 1-D equivalent (:mod:`pdecore.basket`): the American and European prices, the
  Bermudan price on the learner's ``L + 1`` exercise dates (:func:`pdecore.oracle.bermudan_price`: the
  best any rule on these dates can reach) and the discrete oracle of the RL scheme at the run's
  ``(κ, λ, L)`` (:func:`pdecore.oracle.stopping_oracle`), whose execution rule, mapped back to the
  basket (``G = Π x_k^{1/√d}``), is run on the *same* test paths as the learner (common random
  numbers): ``p_stopping − p_oracle_rule`` has a far smaller standard error than either price.
* Fractional Brownian motion: no PDE applies; the paper's table of learned (DSXZ), Dong (2024) and
  Becker et al. values (``validation/data/high_dim_stopping.json``, from SPEC section 7).

The learned rule's price on fresh paths is a lower bound of the value (up to its standard error);
an upper bound by duality (Andersen–Broadie) is not computed here.

Measured: ``docs/high_dim_stopping.md`` (every acceptance run of issue 17 with its command, the
paper's values and runtimes beside ours, and what was tried and not kept).

Spec (``kind = "high_dim_stopping"``)::

    [model]     problem = "basket" | "fbm", dimension, case, correlation, hurst
    [train]     HighDimStoppingConfig's other fields + the trainer's keys
    [evaluate]  eval_paths, test_paths, eval_seed, reference = "oracle" | "none"
"""

from __future__ import annotations

import json
import math
from dataclasses import fields as dataclass_fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from pdecore.checks import check_int

DATA_FILE = Path(__file__).parent / "data" / "high_dim_stopping.json"
#: Acceptance tolerances of issue 17 (relative for the basket, relative-or-absolute for the fBm).
BASKET_TOLERANCE = {40: 0.005, 200: 0.008}
FBM_TOLERANCE = (0.02, 0.01)


@lru_cache(maxsize=1)
def paper_values() -> dict:
    """The paper's tables (SPEC section 7) as stored in :data:`DATA_FILE`."""
    return json.loads(DATA_FILE.read_text())


def fbm_paper_values(hurst: float) -> dict | None:
    """``{"paper", "dong", "becker"}`` at ``hurst`` if it is in the table, else ``None``."""
    table = paper_values()["fbm"]
    for index, h in enumerate(table["hurst"]):
        if abs(h - hurst) < 1e-9:
            return {key: table[key][index] for key in ("paper", "dong", "becker")}
    return None


def basket_paper_values(dimension: int, case: str) -> dict | None:
    """The paper's learned price, Becker et al.'s and the paper's runtime at ``dimension`` (if tabulated)."""
    table = paper_values()["basket"]
    if dimension not in table["dimensions"]:
        return None
    index = table["dimensions"].index(dimension)
    row = table[case]
    return {key: row[key][index] for key in ("paper", "becker", "paper_runtime_s") if key in row}


def basket_oracle(config, *, execution_grid: bool = True):
    """The discrete oracle of the basket's 1-D equivalent (:func:`pdecore.oracle.stopping_oracle`) on the
    learner's execution grid (``L·m`` steps, κ scaled by m: the same κΔt), or on its decision dates."""
    from pdecore.basket import paper_equivalent
    from pdecore.oracle import stopping_oracle

    model, option, spot = paper_equivalent(config.dimension, config.case, config.correlation)
    m = config.execution_substeps if execution_grid else 1
    return stopping_oracle(model, option, n_steps=config.n_dates * m, penalty=config.penalty * m,
                           temperature=config.temperature, spot=spot)


def interpolated_oracle_value(config, *, training_substeps: int = 1) -> float:
    """The basket price of the learner's execution rule if its networks were exact (no Monte Carlo).

    The learner's rule on the execution grid (``L·m`` dates, ``m = execution_substeps``) is the premium
    interpolated in time between decision dates, ``(1 − a) w_l + a w_{l+1} ≤ 0`` with ``w_L = 0``
    (:meth:`rl.stopping.high_dim.HighDimStoppingLearner.exercise`). Here ``w_l = V_l − g`` is the 1-D
    oracle's own premium at the decision dates, scored exactly on the 1-D equivalent by
    :func:`pdecore.oracle.rule_value`: what the rule form gives with exact networks. Its gap to the
    execution grid's Bermudan price is the rule form's limit, not learning error (at d = 40, main case:
    6.5233 against 6.5422; a learned premium, smoother than the oracle's, can score a little above it;
    ``docs/high_dim_stopping.md``).

    The oracle is that of the decision dates (``training_substeps = 1``: a Bermudan-type premium, as the
    learner is trained) or of a grid ``training_substeps`` times finer (κ scaled alike), read at the
    decision dates: what networks trained on that finer grid would carry.

    With ``config.continuity_correction`` the rule asks the premium at ``G e^{δ}``,
    ``δ = β σ_G (√(Δt/s) − √(Δt/m))`` for a premium of a grid ``s = training_substeps`` times finer than the
    decision dates: the learner's move (:meth:`rl.stopping.high_dim.HighDimStoppingLearner.continuity_shifts`,
    ``s = 1``) for a premium that depends on ``G`` only (main case, d = 40: 6.5419 against 6.5233 without;
    the 1000 dates' Bermudan price 6.5422).
    """
    import dataclasses

    from pdecore.oracle import rule_value

    if config.problem != "basket":
        raise ValueError(f"interpolated_oracle_value needs problem='basket' (a 1-D equivalent), got "
                         f"problem={config.problem!r}; the fBm has no PDE oracle")
    training_substeps = check_int("training_substeps", training_substeps, minimum=1,
                                  fix="pass 1 (the decision dates' premium) or a finer grid's factor, e.g. 2")
    n_dates, m = config.n_dates, config.execution_substeps
    # the oracle on the decision dates, or on a grid training_substeps times finer (κ scaled alike)
    oracle = basket_oracle(dataclasses.replace(config, execution_substeps=training_substeps))
    model, option, spot = oracle.model, oracle.option, oracle.spot
    premiums: dict[int, np.ndarray] = {}

    def premium(l: int, spots: np.ndarray) -> np.ndarray:
        if l == n_dates:
            return np.zeros_like(spots)
        if l not in premiums:  # the rule is asked at the same grid nodes every date
            premiums[l] = oracle.value(l * training_substeps, spots) - option.payoff(spots)
        return premiums[l]

    moved = 1.0
    if config.continuity_correction and m > 1:
        from rl.stopping.high_dim import BGK_BETA

        dt = 1.0 / n_dates  # a put: up, toward continuation; none where the premium is the execution grid's
        moved = float(np.exp(BGK_BETA * model.volatility * (np.sqrt(dt / training_substeps) - np.sqrt(dt / m))))

    def exercise(j: int, spots: np.ndarray) -> np.ndarray:
        l, k = divmod(j, m)
        a = k / m
        asked = spots * moved
        return (1.0 - a) * premium(l, asked) + a * premium(l + 1, asked) <= 0.0

    return rule_value(model, option, n_steps=n_dates * m, exercise=exercise, spot=spot)


def build_reference(config) -> dict:
    """The learner's reference (a plain dict).

    Basket: ``price`` = the American price of the 1-D equivalent, with the European price, the Bermudan
    price on the decision dates and the oracle on the execution grid (κ scaled by m: the same κΔt); with
    ``execution_substeps > 1`` also ``bermudan_execution_grid`` (the Bermudan price on the ``L·m``
    execution dates) and ``interpolated_oracle_value`` (the learner's interpolated rule with the oracle's
    premium, :func:`interpolated_oracle_value`). fBm: ``price`` = Becker et al.'s value at H (``None``
    off the table)."""
    if config.problem == "basket":
        from pdecore.basket import basket_reference, paper_equivalent
        from pdecore.oracle import bermudan_price

        basket = basket_reference(config.dimension, config.case, correlation=config.correlation)
        model, option, spot = paper_equivalent(config.dimension, config.case, config.correlation)
        m = config.execution_substeps
        oracle = basket_oracle(config)
        reference = {"price": basket.american, "european": basket.european,
                     "bermudan": float(bermudan_price(model, option, n_steps=config.n_dates, spot=spot)),
                     "oracle_p_stopping": float(oracle.summary()["p_stopping"]), "oracle": oracle,
                     "name": "American price of the 1-D equivalent (pdecore)"}
        if m > 1:
            reference["bermudan_execution_grid"] = float(bermudan_price(model, option, n_steps=config.n_dates * m,
                                                                        spot=spot))
            reference["interpolated_oracle_value"] = interpolated_oracle_value(config)
        return reference
    values = fbm_paper_values(config.hurst)
    return {"price": None if values is None else values["becker"], "paper_values": values,
            "name": "Becker, Cheridito & Jentzen"}


def oracle_rule(learner, oracle):
    """The discrete oracle's execution rule on the basket's raw test paths (log-prices ``(B, N+1, d)``, on
    the oracle's ``N`` dates: the execution grid): exercise at date ``n`` iff the 1-D oracle exercises at
    ``G_n = exp(Σ_k log x_k /√d)``."""
    import torch  # on use: importing the experiment registry must not load torch

    n_dates = oracle.n_steps

    def rule(raw: torch.Tensor) -> torch.Tensor:
        if raw.shape[1] != n_dates + 1:
            raise ValueError(f"paths with {raw.shape[1]} dates for an oracle on {n_dates + 1}; build the reference "
                             "with the learner's configuration (build_reference)")
        geometric = learner.simulator.geometric_mean_log(raw).cpu().numpy()
        decisions = np.stack([np.asarray(oracle.exercise(l, geometric[:, l]), dtype=bool) for l in range(n_dates)],
                             axis=1)
        return torch.as_tensor(decisions)

    return rule


def fbm_tolerance(becker: float) -> float:
    """Issue 17's absolute tolerance at an fBm reference value: 2 % of it or 0.01, whichever is larger."""
    return max(FBM_TOLERANCE[0] * abs(becker), FBM_TOLERANCE[1])


#: Configuration keys that change only how a trained rule is evaluated (never the training).
EVALUATION_ONLY = ("execution_substeps", "antithetic_test_paths", "continuity_correction")


def with_evaluation_settings(learner, **settings):
    """The learner's networks under other evaluation settings (:data:`EVALUATION_ONLY`, ``None`` = keep):
    a learner with those keys replaced in its configuration and the same weights; the learner itself
    when nothing changes."""
    import dataclasses

    unknown = sorted(set(settings) - set(EVALUATION_ONLY))
    if unknown:
        raise ValueError(f"{unknown} are not evaluation settings; allowed: {', '.join(EVALUATION_ONLY)}")
    changes = {key: value for key, value in settings.items()
               if value is not None and value != getattr(learner.config, key)}
    if not changes:
        return learner
    config = dataclasses.replace(learner.config, **changes)  # validated there (a refusal names the key)
    other = type(learner)(config, reference=learner.reference, device=learner.device)
    other.net.load_state_dict(learner.net.state_dict())
    other.value_updates = learner.value_updates
    return other


def evaluate_learner(learner, *, test_paths: int | None = None, reference: dict | None = None,
                     dual_paths: int = 0, execution_substeps: int | None = None,
                     antithetic_test_paths: bool | None = None, continuity_correction: bool | None = None) -> dict:
    """Final evaluation on ``test_paths`` fresh common paths: ``p_stopping`` (+ s.e.), ``p_stopping_cv``
    (martingale control variate), relative errors vs the reference, and for the basket the oracle's
    rule on the same paths (``p_oracle_rule``, ``p_stopping_minus_oracle_rule`` with its s.e.), the
    Bermudan price and ``p_stopping_oracle_cv`` (the oracle rule's exact value + that difference: the
    learned rule's expected price free of the test paths' luck, with ``rel_error_stopping_oracle_cv`` and
    ``within_tolerance_oracle_cv``); for the fBm the paper's three values at H and, with ``dual_paths > 0``, the dual
    upper bound from the learned values (:func:`rl.stopping.dual.dual_upper_bound`: ``dual_upper``,
    ``dual_lower`` the learned rule on the same outer paths, ``dual_gap``, each with ``_stderr``).
    ``execution_substeps``, ``antithetic_test_paths`` and ``continuity_correction`` (basket; ``None``: the
    configuration's) replace the configuration's evaluation settings (:class:`rl.stopping.high_dim.HighDimStoppingConfig`): with
    ``m > 1`` ``p_decision_dates`` is the paper's evaluation on the same paths and the oracle and
    Bermudan references are on the execution grid. Keys without the ``eval/`` prefix."""
    changed = with_evaluation_settings(learner, execution_substeps=execution_substeps,
                                       antithetic_test_paths=antithetic_test_paths,
                                       continuity_correction=continuity_correction)
    if changed is not learner and (changed.config.execution_substeps, changed.config.continuity_correction) != (
            learner.config.execution_substeps, learner.config.continuity_correction):
        reference = None  # its oracle is on the old grid, its interpolated value for the old rule
    learner = changed
    config = learner.config
    if dual_paths and config.problem != "fbm":  # refused before any evaluation work
        raise ValueError(f"dual_paths={dual_paths} asks for the dual upper bound, which is for the fBm; this run "
                         f"is problem={config.problem!r} (its evaluation already compares with the "
                         "exact oracle's rule); drop dual_paths")
    reference = reference if reference is not None else (learner.reference or build_reference(config))
    if reference.get("price") is not None and learner.reference is None:
        learner.reference = {"price": reference["price"]}
    comparison = oracle_rule(learner, reference["oracle"]) if "oracle" in reference else None
    raw = learner.evaluate(test_paths or config.test_paths, final=True, comparison=comparison)
    out = {key.removeprefix("eval/"): value for key, value in raw.items()}
    if "p_comparison" in out:
        out["p_oracle_rule"] = out.pop("p_comparison")
        out["p_oracle_rule_stderr"] = out.pop("p_comparison_stderr")
        out["p_stopping_minus_oracle_rule"] = out.pop("p_stopping_minus_comparison")
        out["p_stopping_minus_oracle_rule_stderr"] = out.pop("p_stopping_minus_comparison_stderr")
    for key in ("european", "bermudan", "bermudan_execution_grid", "interpolated_oracle_value",
                "oracle_p_stopping"):
        if key in reference:
            out[key] = reference[key]
    if "p_stopping_minus_oracle_rule" in out and "oracle_p_stopping" in out:
        # the oracle's rule as control variate: its exact expected value is known (oracle_p_stopping), so
        # known + (learned − oracle on the same paths) estimates the learned rule's expected price without
        # the test paths' luck, with the difference's small standard error
        out["p_stopping_oracle_cv"] = out["oracle_p_stopping"] + out["p_stopping_minus_oracle_rule"]
        out["p_stopping_oracle_cv_stderr"] = out["p_stopping_minus_oracle_rule_stderr"]
        if reference.get("price"):
            out["rel_error_stopping_oracle_cv"] = out["p_stopping_oracle_cv"] / reference["price"] - 1.0
    if config.problem == "basket":
        values = basket_paper_values(config.dimension, config.case) or {}
        out.update({f"paper_{key}" if key != "paper" else "paper_price": value for key, value in values.items()})
        tolerance = BASKET_TOLERANCE.get(config.dimension)
        if tolerance is not None and reference.get("price"):
            out["tolerance"] = tolerance
            out["within_tolerance"] = bool(abs(out["p_stopping"] / reference["price"] - 1.0) <= tolerance)
            if "rel_error_stopping_oracle_cv" in out:
                out["within_tolerance_oracle_cv"] = bool(abs(out["rel_error_stopping_oracle_cv"]) <= tolerance)
    else:
        values = fbm_paper_values(config.hurst) or {}
        out.update({f"{key}_value": value for key, value in values.items()})
        if "becker" in values:
            error = out["p_stopping"] - values["becker"]
            out["abs_error_becker"] = error
            out["within_tolerance"] = bool(abs(error) <= fbm_tolerance(values["becker"]))
        if dual_paths:
            from rl.stopping.dual import dual_upper_bound

            bound = dual_upper_bound(learner, n_paths=dual_paths)
            out.update({f"dual_{key}": value for key, value in bound.items()})
    out["problem"] = config.problem
    out["n_dates"] = config.n_dates
    out["execution_substeps"] = config.execution_substeps
    out["antithetic_test_paths"] = config.antithetic_test_paths
    out["continuity_correction"] = learner.corrects_continuity()
    return out


def comparison_table(rows: list[dict]) -> str:
    """Markdown table of evaluations (one per run) against the paper's values and runtimes.

    Each row: an :func:`evaluate_learner` mapping plus optional ``seconds`` (training time) and ``label``.
    """
    lines = ["| run | problem | p_stopping ± s.e. | reference | rel./abs. error | paper | Becker | Dong | "
             "seconds (pderl) | seconds (paper) |", "|---|---|---|---|---|---|---|---|---|---|"]

    def fmt(value, digits=4):
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"

    for row in rows:
        price = row.get("reference_price")
        if row.get("problem") == "basket":
            error = fmt(row.get("rel_error_stopping", None) and 100 * row["rel_error_stopping"], 3) + " %"
            paper, becker, dong = row.get("paper_price"), row.get("paper_becker"), None
        else:
            error = fmt(row.get("abs_error_becker"), 4)
            paper, becker, dong = row.get("paper_value"), row.get("becker_value"), row.get("dong_value")
        lines.append(f"| {row.get('label', '')} | {row.get('problem', '')} | {fmt(row.get('p_stopping'))} ± "
                     f"{fmt(row.get('p_stopping_stderr'))} | {fmt(price)} | {error} | {fmt(paper, 3)} | "
                     f"{fmt(becker, 3)} | {fmt(dong, 3)} | {fmt(row.get('seconds'), 0)} | "
                     f"{fmt(row.get('paper_paper_runtime_s'), 0)} |")
    return "\n".join(lines)


# ====================================================================== experiment kind
class HighDimStoppingKind:
    """Experiment adapter (:mod:`validation.experiments`) of :class:`rl.stopping.high_dim.HighDimStoppingLearner`."""

    name = "high_dim_stopping"
    MODEL_FIELDS = ("problem", "dimension", "case", "correlation", "hurst")
    EVALUATE_FIELDS = ("eval_paths", "test_paths", "eval_seed", "execution_substeps", "continuity_correction",
                       "antithetic_test_paths")
    TRAINER_DEFAULTS = {"steps": 1000, "eval_every": 100, "checkpoint_every": 100, "eval_at_start": False,
                        "device": "cpu", "threads": 0}

    def config_class(self):
        from rl.stopping.high_dim_config import HighDimStoppingConfig

        return HighDimStoppingConfig

    def schema(self) -> dict:
        from validation.experiments import Key

        config_fields = {f.name: f.default for f in dataclass_fields(self.config_class()) if f.name != "steps"}
        model = {name: Key.like(config_fields[name]) for name in self.MODEL_FIELDS}
        model["problem"].choices = ("basket", "fbm")
        model["case"].choices = ("main", "variant")
        evaluate = {name: Key.like(config_fields[name]) for name in self.EVALUATE_FIELDS}
        evaluate["reference"] = Key("oracle", (str,), choices=("oracle", "none"))
        train = {name: Key.like(default) for name, default in config_fields.items()
                 if name not in model and name not in evaluate}
        train.update({name: Key.like(default) for name, default in self.TRAINER_DEFAULTS.items()})
        return {"model": model, "numerics": {}, "train": train, "evaluate": evaluate}

    def config(self, spec: dict):
        names = {f.name for f in dataclass_fields(self.config_class())}
        values = {key: value for table in ("model", "train", "evaluate") for key, value in spec[table].items()
                  if key in names}  # includes [train] steps, recorded in the learner's configuration
        return self.config_class()(**values)

    def resolve(self, spec: dict) -> None:
        """Validate by building the configuration, and refuse a batch that does not fit in memory."""
        from rl.stopping.high_dim import HighDimStoppingLearner

        HighDimStoppingLearner(self.config(spec))  # checks memory before any allocation of paths

    def build(self, spec: dict, *, reference=None):
        from rl.stopping.high_dim import HighDimStoppingLearner

        config = self.config(spec)
        if reference is None and spec["evaluate"]["reference"] == "oracle":
            reference = {"price": build_reference(config)["price"]}
        return HighDimStoppingLearner(config, reference=reference, device=spec["train"]["device"])

    def owns_record(self, learner_record: dict) -> bool:
        return learner_record.get("learner") == "high_dim_stopping"

    def learner_from_record(self, record: dict, *, device: str = "cpu", reference="default"):
        from rl.stopping.high_dim import HighDimStoppingLearner

        config = self.config_class().from_dict({k: v for k, v in record["learner"].items() if k != "learner"})
        return HighDimStoppingLearner(config, reference=None if reference in ("default", None) else reference,
                                      device=device)

    def evaluate(self, learner, record: dict, *, test_paths: int | None = None, dual_paths: int = 0,
                 execution_substeps: int | None = None, antithetic_test_paths: bool | None = None,
                 continuity_correction: bool | None = None, **unknown) -> dict:
        if unknown:
            raise ValueError(f"unknown evaluation option(s) {sorted(unknown)}; allowed: test_paths, dual_paths, "
                             "execution_substeps, antithetic_test_paths, continuity_correction")
        evaluation = evaluate_learner(learner, test_paths=test_paths, dual_paths=dual_paths,
                                      execution_substeps=execution_substeps,
                                      antithetic_test_paths=antithetic_test_paths,
                                      continuity_correction=continuity_correction)
        evaluation["step"] = record["checkpoint_step"]
        return evaluation


__all__ = ["BASKET_TOLERANCE", "EVALUATION_ONLY", "DATA_FILE", "FBM_TOLERANCE", "HighDimStoppingKind", "basket_oracle",
           "basket_paper_values",
           "build_reference", "comparison_table", "evaluate_learner", "fbm_paper_values", "fbm_tolerance", "oracle_rule",
           "paper_values", "with_evaluation_settings"]
