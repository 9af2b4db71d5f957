"""Agents for the arena's environments (baselines, bandits, controllers, learners).

The agent protocol, the registry and the strategies land with the agents work item; this package
is part of the installable distribution from the start so that its import path is stable.
"""
