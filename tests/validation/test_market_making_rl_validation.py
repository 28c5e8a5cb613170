"""validation.market_making: common random numbers, the quadratic-approximation adapter, cross effects."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pdecore  # noqa: E402
from rl.market_making.policies import ConstantSpreadPolicy, GibbsSpreadTable, MarketState  # noqa: E402
from validation.market_making import compare_policies, pnl_table_markdown, quadratic_policy  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_common_random_numbers_make_paired_differences_exact():
    model = pdecore.MarketMakingModel.paper_defaults(max_inventory=20, temperature=0.0)
    policies = {"a": ConstantSpreadPolicy.myopic(model), "b": ConstantSpreadPolicy.myopic(model),
                "wide": ConstantSpreadPolicy(1.0, 1.0)}
    table = compare_policies(model, policies, n_paths=300, n_steps=50, seed=4, reference="a")
    assert table["b"]["pnl_diff_vs_ref"] == 0.0 and table["b"]["pnl_diff_stderr"] == 0.0
    # a different policy on the same numbers: the paired s.e. is far below the P&L s.d.
    assert table["wide"]["pnl_diff_stderr"] < 0.5 * table["wide"]["pnl_std"] / np.sqrt(300)
    text = pnl_table_markdown(table)
    assert "| wide |" in text and text.count("\n") == 4


@pytest.mark.parametrize("temperature", [0.0, 0.1])
def test_quadratic_adapter_reproduces_the_closed_form_quotes(temperature):
    model = pdecore.MarketMakingModel.paper_defaults(2, max_inventory=20, temperature=temperature, risk_aversion=1.0)
    approx = pdecore.quadratic_approximation(model)
    gibbs = GibbsSpreadTable.from_model(model)
    policy = quadratic_policy(model, gibbs, execution="mean")
    q = np.array([[0, 0], [5, -3], [-12, 7]], dtype=float)
    inventory = torch.as_tensor(q, dtype=torch.float64)
    state = MarketState(inventory, torch.full((3,), 100.0, dtype=torch.float64), inventory * 0, inventory * 0)
    for t in (0.0, 6.0):
        quotes = policy.quote(t, state, torch.rand(3, 2, 2, dtype=torch.float64))
        for i in range(2):
            np.testing.assert_allclose(quotes.bid[:, i].numpy(), approx.bid_spread(t, q, option=i), atol=2e-4)
            np.testing.assert_allclose(quotes.ask[:, i].numpy(), approx.ask_spread(t, q, option=i), atol=2e-4)
