"""Replay of logged decisions: the canonical event schema, manifests, safe expressions, point-in-time
snapshots, decision points, the replay environment and off-policy evaluation (:mod:`.ope`).

Nothing here imports pyarrow or scikit-learn at package import time; the modules that need them import
them where they are used, so ``import arena_env`` stays light.
"""
