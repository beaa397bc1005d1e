"""The ``triptych`` command: one module per subcommand."""
