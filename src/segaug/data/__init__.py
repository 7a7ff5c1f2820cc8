"""Datasets in one canonical layout, adapters from VOC, downloads and the demo generator."""
