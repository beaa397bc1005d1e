"""Rollouts: N answers per model checked against a key, practice-set runs, Goodhart."""
