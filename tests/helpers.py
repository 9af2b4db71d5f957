"""Helpers shared by the tests."""

from __future__ import annotations

import numpy as np

from arena_env.economy import layout as L
from arena_env.economy import model
from arena_env.economy.params import DEFAULT_VECTOR


class Population:
    """A scenario's population driven directly through a backend's ``step_population``; ``backend`` is
    :mod:`arena_env.economy.population` (Numba) or :mod:`arena_env.economy.population_ref` (NumPy)."""

    def __init__(self, sc, seed: int, backend, cfg=None):
        self.sc, self.seed, self.backend = sc, seed, backend
        self.state = model.init_population(sc, seed)
        V = sc.n_variants
        n_sites = -(-sc.n_users // sc.site_size)
        self.spc = model.sites_per_chunk(sc.site_size)
        n_chunks = model.chunk_count(sc.n_users, sc.site_size)
        self.site_prev = np.zeros((n_sites, L.N_SITE))
        self.site_next = np.zeros((n_sites, L.N_SITE))
        self.agg_i = np.zeros((n_chunks, V, L.N_AI), dtype=np.int64)
        self.agg_f = np.zeros((n_chunks, V, L.N_AF))
        self.sg = model.segment_table(sc)
        self.tenure = model.tenure_table(sc)
        self.pscale = np.ones(V)
        self.log1p = model.log1p_table(1024)
        self.set_config(np.tile(DEFAULT_VECTOR, (V, 1)) if cfg is None else cfg)

    def set_config(self, cfg):
        self.cfg = np.asarray(cfg, dtype=np.float64)
        self.vs = model.variant_segment_table(self.sc, self.cfg)

    def step(self, day: int, payout=None):
        """One day; ``payout`` (V,) pays today's claims pro rata through the backend's ``pay_out``."""
        glob = model.global_vector(self.sc, day)
        self.backend.step_population(
            day, self.seed, self.sc.site_size, self.spc, self.state, self.cfg, self.pscale, self.vs, self.sg,
            glob, self.tenure, self.log1p, self.site_prev, self.site_next, self.agg_i, self.agg_f)
        if payout is not None:
            self.backend.pay_out(day, self.sc.site_size, self.spc, self.state, np.asarray(payout, dtype=np.float64),
                                 glob, self.site_next, self.agg_i, self.agg_f)
        self.site_prev, self.site_next = self.site_next, self.site_prev
        return self.agg_i.sum(axis=0), self.agg_f.sum(axis=0)
