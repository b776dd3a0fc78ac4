"""The method stages, one per file, on the templates in ``base``. The recipe's catalogue (``prefgen.recipe.catalogue``)
maps ``type`` names to them."""
