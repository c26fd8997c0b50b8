"""Checks on the repository itself: the documentation matches the code."""
