"""Building blocks, one per file: attention dispatch, ViT block parts, the temporal adapter."""
