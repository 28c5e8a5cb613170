# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # The American put: PDE oracle versus a continuous-time RL agent
#
# 1. pdecore prices the American put of the stopping paper (S0 = K = 40, r = 6%, σ = 40%, T = 1) by
#    the Forsyth–Vetzal penalty method, with its free boundary, the penalized values `V^κ` (Lemma 2.1)
#    and the exploratory values `V^Π` (Theorem 2.5) — SPEC section 1.
# 2. The discrete-time oracle is the fixed point that a perfect RL learner converges to on L = 50
#    dates (SPEC section 2).
# 3. A martingale-loss agent that does not know σ learns the early-exercise premium from simulated
#    paths; we measure how far it is from both oracles (SPEC section 3).

# %%
import os
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import pdecore

QUICK = os.environ.get("PDERL_NOTEBOOK_QUICK", "1") == "1"
model = pdecore.BlackScholes(volatility=0.4, rate=0.06)
put = pdecore.AmericanOption("put", strike=40.0, maturity=1.0)

# %% [markdown]
# ## 1. The PDE oracle

# %%
american = pdecore.solve_american(model, put)
print(f"American put {american.price(40.0):.6f} (SPEC 5.318294), delta {american.delta(40.0):.4f}, "
      f"gamma {american.gamma(40.0):.4f}; exercise below S*(0) = {american.boundary[0]:.3f}")
print(f"European {float(pdecore.bs_price('put', 40.0, 40.0, 1.0, 0.4, 0.06)):.6f}")
for penalty in (1.0, 10.0, 100.0, 1000.0):
    value = pdecore.solve_american(model, put, penalty=penalty).price(40.0)
    print(f"penalized κ = {penalty:6.0f}: {value:.5f}   κ·(V_VI − V_κ) = {penalty * (american.price(40.0) - value):.3f}")
ax = american.plot()
ax.figure.savefig("american_boundary.png", dpi=120)

# %% [markdown]
# ## 2. The discrete-time oracle of the RL scheme (κ = 10, λ = 1, L = 50)

# %%
oracle = pdecore.stopping_oracle(model, put, n_steps=50, penalty=10.0, temperature=1.0)
print(f"V_0(40) = {oracle.value0:.4f}, P_stopping = {oracle.p_stopping:.4f}, P_control = {oracle.p_control:.4f}")
ax = oracle.plot()
ax.figure.savefig("oracle_boundary.png", dpi=120)

# %% [markdown]
# ## 3. A martingale-loss agent that learns σ
# The agent starts from σ = 0.8, fits the European price by the martingale loss, and learns the
# premium networks of the 50 dates as one batched module. The quick setting trains 200 steps.

# %%
from validation import experiments  # noqa: E402
from validation.stopping import PDEReferences, evaluate_learner, plot_premium_curves  # noqa: E402

# the experiment spec: the paper's Table 1 (every key at its default, as examples/stopping_paper.toml)
# except the run length; the PDE references are solved once below, not during training
steps = 200 if QUICK else 1000
spec = {"kind": "stopping", "train": {"algorithm": "ml", "seed": 0, "steps": steps, "eval_every": steps,
                                      "checkpoint_every": steps, "eval_at_start": False},
        "evaluate": {"reference": "none"}}
with tempfile.TemporaryDirectory() as run_dir:
    experiments.run(spec, out=os.path.join(run_dir, "ml"))
    learner, _ = experiments.load_run(os.path.join(run_dir, "ml"), reference=None)
references = PDEReferences.compute(learner.config)
evaluation = evaluate_learner(learner, test_paths=2**14 if QUICK else 2**18, references=references)
print(f"after {steps} steps: σ learned {evaluation['sigma_learned']:.4f}; "
      f"P_stopping {evaluation['p_stopping']:.4f} ({100 * evaluation['rel_error_stopping']:.2f}% off), "
      f"P_control {evaluation['p_control']:.4f} ({100 * evaluation['rel_error_control']:.2f}% off)")
axes = plot_premium_curves(learner, references)
np.ravel(axes)[0].figure.savefig("premium_curves.png", dpi=120)
plt.close("all")
