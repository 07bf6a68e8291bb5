"""Measurements printed as tables (see README.md); ``python -m benchmarks`` runs them all."""
