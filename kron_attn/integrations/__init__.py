"""Kronecker-mask attention inside other libraries' models (optional dependencies)."""
