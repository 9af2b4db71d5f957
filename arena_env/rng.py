"""Counter-based random numbers keyed by (seed, day, user, stream).

Every random draw of the simulation is a pure function of four integers, so a trajectory does not
depend on the order in which users are visited, on the number of threads, or on the backend.  The
hash is SplitMix64's finaliser applied to a mix of the four keys; a uniform double in ``[0, 1)`` is
taken from its top 53 bits.

Two implementations with the same results, bit for bit:

* ``uniform(seed, day, user, stream)``: scalar, compiled with Numba; inside the kernels as
  ``uniform_at(day_key(seed, day), user, stream)`` with the day's key computed once;
* ``uniform_np(seed, day, users, stream)``: vectorised NumPy over an array of user ids, used by the
  NumPy twins in ``economy/population_ref.py``.

``seed`` is a non-negative integer below 2**63.  ``stream`` names the purpose of a draw (one constant
per decision in the model, see :mod:`arena_env.economy.layout`), so that adding a draw never shifts
the others.
"""

from __future__ import annotations

import numpy as np

from ._numba import jit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_K_DAY = np.uint64(0xD1B54A32D192ED03)
_K_USER = np.uint64(0xABC98388FB8FAC03)
_K_STREAM = np.uint64(0x8CB92BA72F3D8DD7)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@jit
def mix64(z):
    """SplitMix64 finaliser of a uint64."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@jit
def day_key(seed, day):
    """The hash of (seed, day): the part of a key shared by every draw of one day.

    Kernels compute it once per day and call :func:`uniform_at` per draw, which gives exactly
    ``uniform(seed, day, user, stream)`` at a third of the cost.
    """
    z = mix64(np.uint64(seed) + _GOLDEN)
    return mix64(z ^ (np.uint64(day) * _K_DAY))


@jit
def uniform_at(dkey, user, stream):
    """``uniform(seed, day, user, stream)`` from ``dkey = day_key(seed, day)``."""
    z = mix64(np.uint64(dkey) ^ (np.uint64(user) * _K_USER) ^ (np.uint64(stream) * _K_STREAM))
    return float(np.int64(z >> _S11)) * _INV53  # < 2**53: a signed conversion is exact and cheaper


_S38 = np.uint64(38)
_S12 = np.uint64(12)
_M26 = np.uint64((1 << 26) - 1)
_INV26 = 1.0 / 67108864.0  # 2**-26


@jit
def uniform_pair_at(dkey, user, stream):
    """Two uniforms on the 2**-26 grid in [0, 1) from one hash (bits 38-63 and 12-37): half the cost of
    two draws, for decisions that need no finer resolution than 1.5e-8."""
    z = mix64(np.uint64(dkey) ^ (np.uint64(user) * _K_USER) ^ (np.uint64(stream) * _K_STREAM))
    return float(np.int64(z >> _S38)) * _INV26, float(np.int64((z >> _S12) & _M26)) * _INV26


@jit
def uniform(seed, day, user, stream):
    """A uniform double in [0, 1), a pure function of its four integer keys."""
    return uniform_at(day_key(seed, day), user, stream)


def _mix64_np(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _hash_np(seed: int, day: int, users: np.ndarray, stream: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = _mix64_np(np.asarray([np.uint64(seed) + _GOLDEN], dtype=np.uint64))
        z = _mix64_np(z ^ (np.uint64(day) * _K_DAY))
        u = np.asarray(users).astype(np.uint64)
        return _mix64_np(z ^ (u * _K_USER) ^ (np.uint64(stream) * _K_STREAM))


def uniform_np(seed: int, day: int, users: np.ndarray, stream: int) -> np.ndarray:
    """Vectorised twin of :func:`uniform` over an array of user ids (bit-identical results)."""
    return (_hash_np(seed, day, users, stream) >> _S11).astype(np.float64) * _INV53


def uniform_pair_np(seed: int, day: int, users: np.ndarray, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised twin of :func:`uniform_pair_at` (bit-identical results)."""
    z = _hash_np(seed, day, users, stream)
    return (z >> _S38).astype(np.float64) * _INV26, ((z >> _S12) & _M26).astype(np.float64) * _INV26
