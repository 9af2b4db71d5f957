"""Tournaments, leaderboards and their statistics."""
