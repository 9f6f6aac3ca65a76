"""Identifiers for document objects."""

import uuid


def new_id() -> str:
    """A short random id (12 hex digits): unique enough inside one project, readable in JSON."""
    return uuid.uuid4().hex[:12]
