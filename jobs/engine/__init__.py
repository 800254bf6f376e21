"""Declared SQL steps (steps.py), the runner that orders and runs them (runner.py), and the
engine seam they run through (engine.py)."""
