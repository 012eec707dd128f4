"""Data: synthetic clips, HDF5 shards, TAP-Vid readers, Kubric conversion, augmentations."""
