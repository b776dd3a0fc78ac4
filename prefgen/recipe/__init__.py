"""Recipes: the YAML that says what a build reads, which stages it runs, with which models, and where it writes.

``load_recipe(path)`` returns a typed ``Recipe`` or raises a ``RecipeError``; ``check_recipe(path)`` returns every
problem at once, each located by its YAML path and line, which is what ``prefgen validate`` prints;
``check.check_here`` adds what this machine lacks to run it (``readiness``: paths, devices, cached models), with no
model loaded.
"""

from prefgen.recipe.check import check_recipe, load_recipe
from prefgen.recipe.model import Recipe, recipe_model
from prefgen.recipe.overrides import apply_overrides
from prefgen.recipe.yaml_nodes import Problem

__all__ = ["Problem", "Recipe", "apply_overrides", "check_recipe", "load_recipe", "recipe_model"]
