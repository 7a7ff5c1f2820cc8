"""segaug: augmentation for semantic segmentation under class imbalance and scarce labels.

The library holds the algorithms; it never imports Snakemake and never reads config files.
"""

__version__ = "0.1.0"
