"""Measuring the product: latency against its floor and a sequential baseline, lip sync, and the soak."""
