"""Test doubles shipped with the package (never imported by production code)."""
