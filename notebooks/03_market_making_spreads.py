# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Market making of options: the inventory-grid HJB
#
# A market maker quotes bid and ask spreads on options written on one underlying; fills arrive as
# Poisson processes whose intensity decays exponentially with the spread (SPEC section 5). For
# policies that depend on time and inventory only, the value is `X + θ(t, q)` and θ solves a system of
# ODEs on the inventory grid, which pdecore integrates exactly enough to serve as the oracle of the
# RL market maker. With the entropy temperature γ > 0 the optimal policy is a Gibbs density on a
# bounded spread interval; we report its mean spread.

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import pdecore

model = pdecore.MarketMakingModel.paper_defaults(n_options=1)
result = pdecore.solve_market_making(model)
print(f"θ(0, 0) = {result.theta(0.0, (0,)):.4f}; myopic spread 1/k = {1 / model.decay_array()[0]:.4f}")

# %% [markdown]
# ## Spreads against inventory, at t = 0 and at 0.6 T
# A long inventory lowers both quotes: the ask spread narrows (to sell) and the bid spread widens
# (to avoid buying more) — more steeply near the horizon, where the terminal penalty bites.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
result.plot_spreads_vs_inventory(axes[0], t=0.0)
result.plot_spreads_vs_inventory(axes[1], t=0.6 * model.horizon)
fig.tight_layout()
fig.savefig("mm_spreads_vs_inventory.png", dpi=120)

# %% [markdown]
# ## Spreads over time at a fixed long inventory

# %%
ax = result.plot_spreads_vs_time(inventory=(10,))
ax.figure.savefig("mm_spreads_vs_time.png", dpi=120)

# %% [markdown]
# ## Two options: cross effects need risk aversion and correlated noise
# With φ = 0 the two-option problem splits into two one-option problems: option 2's quotes do not
# depend on option 1's inventory. With φ > 0 and positively correlated price shocks, a long position
# in option 1 widens option 2's bid and narrows its ask.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
inventories = np.arange(-15, 16)
for ax, risk_aversion in zip(axes, (0.0, 1.0)):
    two = pdecore.MarketMakingModel.paper_defaults(n_options=2, max_inventory=30, risk_aversion=risk_aversion)
    res = pdecore.solve_market_making(two, n_time=200)
    bid = [res.bid_spread(0.0, (int(q), 0), option=1) for q in inventories]
    ask = [res.ask_spread(0.0, (int(q), 0), option=1) for q in inventories]
    ax.plot(inventories, bid, label="option 2 bid")
    ax.plot(inventories, ask, label="option 2 ask")
    ax.set_title(f"φ = {risk_aversion}")
    ax.set_xlabel("inventory of option 1")
axes[0].set_ylabel("mean spread at t = 0")
axes[0].legend()
fig.tight_layout()
fig.savefig("mm_cross_inventory.png", dpi=120)

# %% [markdown]
# ## Many options: the quadratic approximation
# For n = 10 the grid has 10^{13} states; the closed-form Riccati approximation of Bergault,
# Evangelista, Guéant & Vieira (2021) still gives θ and the quotes.

# %%
strikes = tuple(np.linspace(90.0, 110.0, 10))
ten = pdecore.MarketMakingModel.paper_defaults(n_options=1).__class__(
    spot=100.0, volatility=0.02, strikes=strikes, maturities=(30.0,) * 10, horizon=10.0,
    intensity_bid=100.0, intensity_ask=100.0, decay=1.5, terminal_penalty=0.1, max_inventory=50,
    spread_bounds=(0.0, 4.0), temperature=0.1)
approx = pdecore.quadratic_approximation(ten)
q = np.zeros(10, dtype=int)
print(f"θ(0, 0) ≈ {approx.theta(0.0, q):.4f}; option 1 bid/ask at q = 0: "
      f"{approx.bid_spread(0.0, q, 0):.4f} / {approx.ask_spread(0.0, q, 0):.4f}")
