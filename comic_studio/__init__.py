"""comic_studio: a desktop studio for authoring comics with AI.

Importing the package is cheap: no Qt, no torch. Heavy stacks load only where a feature needs them.
"""

__version__ = "0.1.0"

import warnings as _warnings

# The CPU set-up installs torchvision 0.15.2 in Python-only mode for open_clip (see the README's
# install notes); every import of the ML stack would then print its "no image extension" and "beta
# namespace" warnings. They say nothing a user can act on.
_warnings.filterwarnings("ignore", category=UserWarning, module=r"torchvision(\.|$)")
