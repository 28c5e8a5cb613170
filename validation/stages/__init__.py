"""Experiment stages of ``pderl reproduce`` (see :mod:`validation.reproduce`)."""
