"""Rollouts: N answers per model checked against a key, practice-set runs, Goodhart; the
class's votes, the reward model and best-of-N against it (RLHF)."""
