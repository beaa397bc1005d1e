"""A pane's conversation as plain data, and the runs that fill it."""
