"""Test helpers for Sequence Workbench and its plugin authors (contract checks, a pytest plugin)."""
