# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Merton's problem with transaction costs as a Dynkin game
#
# With a bond, a stock and a proportional cost θ on every trade, the log-utility investor keeps the
# bond/stock ratio `x = B/S` inside a no-trade band `[x_s(t), x_b(t)]` (SPEC section 4). pdecore solves
# the double-obstacle problem for `w = x φ_x` by the penalty Newton method on both half-lines; here we
# look at the band, its exploratory (entropy-regularized) version, its θ^{1/3} shrinking, and a 20-year
# backtest against buy-and-hold.

# %%
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import pdecore
from validation.backtest_merton import backtest_merton

QUICK = os.environ.get("PDERL_NOTEBOOK_QUICK", "1") == "1"
model = pdecore.MertonCosts(drift=0.168, rate=0.008, volatility=0.3, cost=0.005, maturity=1.0)
print(f"Merton fraction {model.merton_fraction:.4f}, frictionless ratio x_M = {model.merton_ratio:.4f}")

# %% [markdown]
# ## The band over time (variational inequality)

# %%
result = pdecore.solve_merton_costs(model)
print(f"t = 0: sell below x_s = {result.sell_boundary[0]:.4f}, buy above x_b = {result.buy_boundary[0]:.4f}")
ax = result.plot()
ax.figure.savefig("merton_band.png", dpi=120)

# %% [markdown]
# ## Finite penalty and exploration
# A finite penalty κ narrows the band (trading is only encouraged, not forced); a temperature λ
# randomizes the decision near the boundaries.

# %%
for penalty, temperature in [(None, 0.0), (50.0, 0.0), (5.0, 0.0), (5.0, 1e-2)]:
    res = pdecore.solve_merton_costs(model, penalty=penalty, temperature=temperature)
    print(f"penalty={penalty}, temperature={temperature}: band at t=0 "
          f"[{res.sell_boundary[0]:.4f}, {res.buy_boundary[0]:.4f}]")

# %% [markdown]
# ## The band shrinks like θ^{1/3}

# %%
costs = np.array([1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
widths = []
for cost in costs:
    res = pdecore.solve_merton_costs(pdecore.MertonCosts(0.168, 0.008, 0.3, float(cost), 1.0))
    widths.append(res.buy_boundary[0] - res.sell_boundary[0])
slope = np.polyfit(np.log(costs), np.log(widths), 1)[0]
print(f"fitted exponent of the width in θ: {slope:.3f} (theory 1/3)")
fig, ax = plt.subplots()
ax.loglog(costs, widths, "o-", label=f"band width (slope {slope:.3f})")
ax.set_xlabel("cost θ")
ax.set_ylabel("x_b − x_s at t = 0")
ax.legend()
fig.savefig("merton_width.png", dpi=120)

# %% [markdown]
# ## A 20-year backtest on common random numbers

# %%
report = backtest_merton(model, years=20.0, paths=500 if QUICK else 10_000, seed=0)
print(report.table())
