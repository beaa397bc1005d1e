"""`python -m desktop_app` runs the Triptych command line (and the window by default)."""

from desktop_app.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
