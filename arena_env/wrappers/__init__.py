"""Adapters of the arena's environments to other APIs (single-agent Gymnasium, ...)."""
