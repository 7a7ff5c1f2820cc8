"""Tables and figures built from per-run metrics files."""
