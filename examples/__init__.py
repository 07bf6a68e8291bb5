"""Worked examples for users of the framework (each is exercised by a test)."""
