"""``python -m cli``: the planner command line."""

from cli import app

app()
