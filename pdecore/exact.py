"""Exact solutions that validation and reports quote as references (public entry points).

The implementations live with the slow reference twins in :mod:`pdecore._reference` (they are the
independent cross-checks of the Numba kernels and are tested there); this module is the public door
to them, so that no code outside :mod:`pdecore` imports a private ``pdecore._*`` module.

* :func:`market_making_closed_form` — the market-making value ``θ(t, Q)`` for a common fill decay
  ``k``, unbounded spreads and ``γ = 0``: with ``ω = exp(kθ)`` the HJB becomes the linear system
  ``ω_t + Gω = 0`` (Guéant, Lehalle & Fernandez-Tapia 2013; Cartea, Jaimungal & Penalva 2015,
  Eq. (10.11)), solved by ``expm_multiply``.
"""

from __future__ import annotations


def market_making_closed_form(model, times, terminal_coeffs=None):
    """Exact ``θ(t, ·)`` at calendar ``times`` (array ``(len(times),) + (2Q̄+1,)*n``).

    Raises ``ValueError`` if the model is outside the closed form's assumptions (``temperature=0``,
    ``spread_bounds=(-inf, inf)``, one decay ``k`` for every side).
    """
    from pdecore._reference.market_making import closed_form_values

    return closed_form_values(model, times, terminal_coeffs)


__all__ = ["market_making_closed_form"]
