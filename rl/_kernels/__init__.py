"""Numba kernels of the learners (float32, compared with their PyTorch twins to rounding)."""
