"""What a backend's tests share: the backend contract, the tiny-model kit and the pytest fixtures.

- :mod:`.contract`: :class:`~comic_studio.testing.contract.BackendContract`, the tests every
  generation backend passes (subclass it in a ``Test...`` class).
- :mod:`.tiny`: seeded random-weight models with SDXL's architecture, written in the real formats,
  and the ``--models tiny`` smoke preset.
- :mod:`.plugin`: the pytest plugin (fixtures ``tiny_kit``, ``tiny_models``,
  ``restore_default_settings``), registered through the ``pytest11`` entry point, so an installed
  Comic Studio gives any project's tests these fixtures with nothing to configure.

Importing this package imports neither pytest nor torch (the CLI's ``--models tiny`` uses the kit).
"""
