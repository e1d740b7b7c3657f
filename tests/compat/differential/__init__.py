"""Differential test machinery: scenarios (model, strategies), a kazoo executor, normalization
and a field-by-field comparator. tests/compat/test_differential.py wires them to two servers."""
