"""prefgen: versioned preference datasets for aligning vision-language models, built from unannotated images.

Importing the package is cheap on purpose: the CLI's start-up path must not pull torch or transformers.
"""

__version__ = "0.1.0"
