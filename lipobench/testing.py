"""Conformance suite for adapters (a pytest plugin); filled in by the adapters work."""
