"""Hypothesis rule-based state machines: each reference model against real implementations."""
