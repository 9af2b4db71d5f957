"""Training Stable-Baselines3 policies on the economy arena (``python train.py``): configs
(:mod:`.config`), the run with its checkpoints, logs and final evaluation (:mod:`.run`), the
learning curve (:mod:`.curve`).  docs/training.md describes the format and the outputs."""
