"""Plain-Python checks and planning over a workflow config dict (no Snakemake import):
the Snakefile calls them when it starts, and pytest tests them directly."""
