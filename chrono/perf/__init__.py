"""Instruments and cases of ``python -m chrono.bench``."""
