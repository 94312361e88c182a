"""utilities package."""
