"""Executing recipes: sources, the stage runner, the per-stage cache."""
