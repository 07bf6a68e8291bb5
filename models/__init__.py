"""The executable specification: small, pure, deterministic reference models.

Every module here imports only the standard library, ``attrs`` and other modules of
this package. Slow is fine; unclear is not.
"""
