"""Adapters of the arena's environments to other APIs: single-agent Gymnasium (:mod:`.single`), the
agent protocol (:mod:`.agents`), a Stable-Baselines3 ``VecEnv`` over many economies (:mod:`.vec`)."""
