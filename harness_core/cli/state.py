"""Tasks for this area arrive with their issue."""
