"""comic_studio: a desktop studio for authoring comics with AI.

Importing the package is cheap: no Qt, no torch. Heavy stacks load only where a feature needs them.
"""

__version__ = "0.1.0"
