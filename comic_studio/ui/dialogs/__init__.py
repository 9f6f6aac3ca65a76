"""Modal dialogs of the main window: preferences, export with progress, crash recovery."""
