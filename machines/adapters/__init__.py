"""Adapters: one module an implementation, each wrapping it in a protocol of
``machines.contracts`` and calling ``harness.register``. Every module here is imported
when a machine collects its implementations; adding a file adds an implementation."""
