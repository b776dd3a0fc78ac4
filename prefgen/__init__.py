"""prefgen: versioned preference datasets for aligning vision-language models, built from unannotated images.

Importing the package is cheap on purpose: the CLI's start-up path must not pull torch or transformers. The one
thing done here is arming the torchvision fix for CPU torch, which costs nothing until torchvision is imported.
"""

from prefgen._compat import tvshim as _tvshim

__version__ = "0.1.0"

_tvshim.install()
