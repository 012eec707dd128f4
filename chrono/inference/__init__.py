"""Tracking a user's video: windowed tracking in bounded memory, query points, output files, the demo."""
