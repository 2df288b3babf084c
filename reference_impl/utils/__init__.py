"""Shared utilities: typed configuration loading."""
