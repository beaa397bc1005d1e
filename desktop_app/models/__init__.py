"""Models: the catalog, where each model comes from, getting its file, and whether it fits."""
