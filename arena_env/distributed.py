"""Ray, for users who outgrow one machine: ``python evaluate.py --backend ray`` (tournament cells as Ray
tasks) and ``python train.py --config configs/rllib_ppo.yaml`` (RLlib).  The ``distributed`` extra
installs it (``ray[rllib]==2.60.0``; ``make install`` includes it); docs/scaling.md has the figures.

:func:`ray_session` starts or joins Ray for one run and leaves the machine as it found it:

* **address** ``None`` (and no ``RAY_ADDRESS`` in the environment): a local Ray of ``num_cpus`` CPUs,
  started here and shut down at the end.  Its session files (logs, sockets) go to ``<run_dir>/ray/``;
  when that path is too long for the sockets Ray makes inside it (an ``AF_UNIX`` path has at most 107
  bytes, and Ray adds ~64), to a short temporary directory whose session (its logs, not its sockets)
  is moved into ``<run_dir>/ray/`` at the end: nothing is left elsewhere.  Ray 2.60 turns token
  authentication on for a new local cluster and writes a token to ``~/.ray/auth_token``: here the
  process gets a random token through ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN`` instead (unless
  either is set already), so nothing is written into the home folder.
* **address** ``"auto"`` or ``"<head>:6379"`` (or ``RAY_ADDRESS``): join that running cluster (``ray
  start --head`` on a machine of it; its token, if it uses one, comes the usual way: ``RAY_AUTH_TOKEN``
  or ``~/.ray/auth_token``).  The checkout travels with the job (:func:`job_runtime_env`: code, scenarios,
  your agent modules), so the nodes need the project's dependencies (the same Python and ``pip install``
  of its extras), not a checkout.  A host:port nobody listens on is refused at once.  Ray is
  disconnected at the end, the cluster is left running.
* Ray already initialised by the caller: used as it is, and left so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Ray's longest socket path inside its temp dir: "/session_2026-12-03_09-39-00_876054_12345678/sockets/plasma_store"
_SOCKET_TAIL = 72  # with a margin: the pid may be longer
_AF_UNIX_MAX = 107
INSTALL_HINT = "install the distributed extra: pip install -c constraints.txt -e '.[distributed]' (make install has it)"


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached; the message says what to do."""


def import_ray():
    """The ``ray`` module, or :class:`RayUnavailable` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(f"Ray is not installed ({exc}); {INSTALL_HINT}") from None
    return ray


def _temp_dir(run_dir: Path | None) -> tuple[Path, bool]:
    """Where a local Ray keeps its session, and whether that directory is ours to remove afterwards."""
    if run_dir is not None:
        d = Path(run_dir).resolve() / "ray"
        if len(str(d)) + _SOCKET_TAIL <= _AF_UNIX_MAX:
            d.mkdir(parents=True, exist_ok=True)
            return d, False
    return Path(tempfile.mkdtemp(prefix="arena-ray-")), True


def _session_token() -> None:
    """Token authentication for this process's local clusters with a random token that is not written to
    ``~/.ray``.  It stays set for the process: Ray reads the mode and the token once (a later session with
    another token would be refused), so it is set before Ray is imported, or Ray's cached view is refreshed."""
    import sys

    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    if "ray" in sys.modules:  # imported already (by the caller): refresh what it read
        try:
            from ray._raylet import AuthenticationTokenLoader, Config

            Config.initialize("")
            AuthenticationTokenLoader.instance().reset_cache()
        except (ImportError, AttributeError):
            pass


def job_runtime_env() -> dict:
    """What a job on a cluster ships to its workers: the checkout (code, ``configs/`` with the scenarios,
    your own agent modules; without ``.git``, ``.venv``, ``runs/`` and what ``.gitignore`` excludes) as the
    workers' working directory, first on their Python path (an installed copy without a checkout ships
    its two packages), and the driver's ``PYTHONHASHSEED`` (default 0) for the workers' interpreters."""
    root = Path(__file__).resolve().parents[1]
    env_vars = {"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")}  # RLlib's results follow it (train.py)
    if (root / "configs" / "scenarios").is_dir() and (root / "pyproject.toml").is_file():
        return {"working_dir": str(root), "excludes": [".git", ".venv", "runs", "*.pyc", "__pycache__"],
                "env_vars": env_vars}
    import agents
    import arena_env

    return {"py_modules": [arena_env, agents], "env_vars": env_vars}


def _probe(address: str) -> None:
    """Refuse a ``host:port`` nobody listens on at once (Ray itself retries for minutes)."""
    import socket

    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise RayUnavailable(f"--ray-address {address!r}: expected host:port (e.g. 10.0.0.5:6379) or 'auto'")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=5):
            pass
    except OSError as exc:
        raise RayUnavailable(f"cannot join the Ray cluster at {address!r}: {exc}; start one with `ray start "
                             "--head` on its head node, or check the address (docs/scaling.md)") from None


def check_ray(address: str | None = None) -> None:
    """Before any work: :class:`RayUnavailable` when Ray is not installed, or when ``address`` (or
    ``$RAY_ADDRESS``) names a ``host:port`` nobody listens on."""
    import_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _probe(address)


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                run_dir: str | os.PathLike | None = None) -> Iterator:
    """Ray for the duration of the ``with`` block (see the module docstring); yields the ``ray`` module."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not address and os.environ.get("RAY_AUTH_MODE") is None and os.environ.get("RAY_AUTH_TOKEN") is None:
        _session_token()
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
    if address:
        _probe(address)
        try:
            ray.init(address=address, runtime_env=job_runtime_env(),
                     **{k: v for k, v in quiet.items() if k != "include_dashboard"})
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayUnavailable(f"cannot join the Ray cluster at {address!r}: {exc}; start one with "
                                 "`ray start --head` or check the address (docs/scaling.md)") from None
        try:
            yield ray
        finally:
            ray.shutdown()
        return
    temp, ours = _temp_dir(Path(run_dir) if run_dir is not None else None)
    try:
        ray.init(num_cpus=num_cpus, _temp_dir=str(temp), **quiet)
        try:
            yield ray
        finally:
            ray.shutdown()
    finally:
        if ours:
            if run_dir is not None:
                with contextlib.suppress(OSError):
                    shutil.copytree(temp, Path(run_dir) / "ray", symlinks=True, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("sockets", "session_latest"))
            shutil.rmtree(temp, ignore_errors=True)
