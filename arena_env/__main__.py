"""Command line: ``python -m arena_env check-scenario NAME|PATH [--seeds N] [--train-seeds N]
[--workers K] [--out DIR] [--quick]`` and ``python -m arena_env serve [--scenario NAME] [--port P] ...``.

``check-scenario`` builds the scenario report card (``arena_env/economy/card.py``; described in
``docs/scenarios.md``), prints it as Markdown and writes ``card.md`` and ``card.json`` into ``--out``
(default ``runs/cards/<scenario>``).

``serve`` runs one experiment of the economy simulator behind the TendedLoop Arena HTTP protocol
(``arena_env/server/``; ``docs/server.md``), bound to 127.0.0.1 unless ``--host`` says otherwise.  A
new experiment prints its manifest (URL, experiment id, the admin token, one strategy token per
variant) once, when the port accepts connections, and ``--manifest-out`` then writes it as JSON (``--port 0``:
the port the system chose); ``--db`` keeps the experiment, and running the
command again with the same ``--db`` resumes it (tokens unchanged, simulation where it was).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from arena_env.cli import int_at_least
from arena_env.paths import check_out_dir


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m arena_env", description="arena command line tools")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser("check-scenario", help="a report card: does a scenario make a good benchmark?",
                       description="Run fixed and scheduled policies on many seeds and report each lever's "
                                   "effect, the static optimum, the best two-phase schedule, signal to noise, "
                                   "whether the control moves, budget adherence and a PASS/FAIL verdict.")
    c.add_argument("scenario", metavar="NAME|PATH", help="a scenario name (configs/scenarios/) or a .yaml path")
    c.add_argument("--seeds", type=int_at_least(2, "--seeds"), default=None,
                   help="evaluation seeds 1,000,000 + i (default 10, --quick 4)")
    c.add_argument("--train-seeds", type=int_at_least(1, "--train-seeds"), default=None,
                   help="training seeds 0 .. N-1 used by the searches (default 3, --quick 2)")
    c.add_argument("--workers", type=int_at_least(1, "--workers"), default=None,
                   help="worker processes (default: min(2, cores))")
    c.add_argument("--n-users", type=int_at_least(10, "--n-users"), default=None,
                   help="override the scenario's population (e.g. a card of `large` at a size that runs in minutes)")
    c.add_argument("--out", default=None, help="output directory (default runs/cards/<scenario>)")
    c.add_argument("--quick", action="store_true", help="a small grid, one round per search and fewer seeds")
    c.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    v = sub.add_parser("serve", help="the TendedLoop Arena protocol over one simulated experiment",
                       description="Serve one experiment of the economy simulator over the TendedLoop Arena "
                                   "HTTP protocol (docs/server.md).")
    v.add_argument("--scenario", default="default", help="scenario name or path (default: default)")
    v.add_argument("--seed", type=int_at_least(0, "--seed"), default=0, help="simulation seed (default 0)")
    v.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    v.add_argument("--port", type=int_at_least(0, "--port", 65535), default=7860, help="port (default 7860)")
    v.add_argument("--db", default=None, help="experiment database (SQLite; default runs/server/<scenario>.db); "
                                              "an existing one is resumed")
    v.add_argument("--seconds-per-day", type=float, default=60.0,
                   help="wall seconds per simulated day (default 60)")
    v.add_argument("--manual-clock", action="store_true",
                   help="simulated time moves only through POST /api/admin/advance")
    v.add_argument("--manifest-out", default=None, help="write the experiment manifest (tokens included) here")
    return p


def serve(args, p: argparse.ArgumentParser) -> int:
    import json

    from arena_env.economy.scenario import ScenarioError
    from arena_env.server.app import create_app
    from arena_env.server.experiment import Experiment

    db = Path(args.db) if args.db else Path("runs") / "server" / f"{Path(str(args.scenario)).stem}.db"
    if args.seconds_per_day <= 0:
        p.error(f"--seconds-per-day must be > 0, got {args.seconds_per_day}")
    out = Path(args.manifest_out) if args.manifest_out else None
    if out is not None and not db.exists():  # checked before the experiment exists: its tokens are shown once
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            p.error(f"--manifest-out {out}: cannot create its directory ({exc.strerror or exc})")
        if out.is_dir() or not os.access(out.parent, os.W_OK):
            p.error(f"--manifest-out {out}: " + ("is a directory" if out.is_dir() else "its directory is not writable")
                    + "; give a file path in a writable directory")
    sock = _listen(args.host, args.port, p)  # before anything is created: a busy port leaves no experiment behind
    port = sock.getsockname()[1]  # the port the system chose for --port 0
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{port}"
    manifest = None
    try:
        if db.exists():
            exp = Experiment.open(db)
            print(f"resumed experiment {exp.meta['experiment_id']} from {db} (day {exp.env.day}, "
                  f"{exp.status}); its tokens are those of its manifest", file=sys.stderr)
        else:
            db.parent.mkdir(parents=True, exist_ok=True)
            exp, tokens = Experiment.create(db, args.scenario, args.seed, seconds_per_day=args.seconds_per_day,
                                            manual_clock=args.manual_clock)
            manifest = {"apiUrl": url, "experimentId": exp.meta["experiment_id"], "adminToken": tokens[-1],
                        "variants": [{"variantId": exp.ids[v], "variantName": exp.names[v], "isControl": v == 0,
                                      "strategyToken": tokens[v]} for v in range(len(exp.ids))]}
    except (ScenarioError, ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        sock.close()
        p.error(str(exc))
    try:
        exp.warm_up()  # the simulator compiled before the first request, not inside it
        import uvicorn

        webhooks = None
        try:
            from arena_env.server.webhooks import WebhookDispatcher

            secret = (db.with_suffix(".secret"))
            if not secret.exists():
                import secrets as _secrets

                fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(_secrets.token_bytes(32))
            webhooks = WebhookDispatcher(db, secret.read_bytes())
            exp.listeners.append(webhooks.listener)
        except ImportError:
            pass
        print(f"serving on {url} (scenario {exp.meta['scenario']}, "
              f"{'manual clock' if exp.meta['manual_clock'] else str(exp.meta['seconds_per_day']) + ' s per day'})",
              file=sys.stderr, flush=True)
        print(f"live scoreboard: {url}/ (paste the admin token, or open {url}/#token=<adminToken>)", file=sys.stderr,
              flush=True)
        server = uvicorn.Server(uvicorn.Config(create_app(exp, webhooks=webhooks, freeze_gc=True), host=args.host,
                                               port=port, log_level="warning", access_log=False))
    finally:  # the manifest when the server is about to accept (the socket listens already), also on a failure
        if manifest is not None:
            _publish(json.dumps(manifest, indent=2), out)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if webhooks is not None:
            webhooks.close()
    return 0 if server.started else 1


def _publish(text: str, out: Path | None) -> None:
    """Print the manifest (stdout first: the tokens are never lost), then write it to ``out`` whole: a
    temporary file renamed, mode 0600 as it holds secrets, so a client waiting for the file reads it complete."""
    print(text, flush=True)
    if out is None:
        return
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.replace(tmp, out)


def _listen(host: str, port: int, p: argparse.ArgumentParser):
    """A TCP socket bound to ``host:port`` and listening (uvicorn serves on it); a port in use or a host that
    is not an address of this machine is a usage error naming it."""
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a restart may reuse the port
    try:
        sock.bind((host, port))
        sock.listen(2048)  # uvicorn's default backlog
    except OSError as exc:
        sock.close()
        p.error(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); "
                "pick a free port (--port 0 lets the system choose one) or an address of this machine")
    return sock


def check_scenario(args, p: argparse.ArgumentParser) -> int:
    from arena_env.economy import card as C
    from arena_env.economy.scenario import ScenarioError, find

    try:
        find(args.scenario)
    except ScenarioError as exc:
        p.error(str(exc))
    seeds = args.seeds or (C.QUICK_SEEDS if args.quick else C.DEFAULT_SEEDS)
    train = args.train_seeds or (C.QUICK_TRAIN_SEEDS if args.quick else C.DEFAULT_TRAIN_SEEDS)
    workers = args.workers or max(1, min(2, os.cpu_count() or 1))
    stem = Path(args.scenario).stem if str(args.scenario).endswith((".yaml", ".yml")) else str(args.scenario)
    out = Path(args.out) if args.out else Path("runs") / "cards" / stem
    try:
        check_out_dir(out)  # before minutes of work
    except FileExistsError as exc:
        p.error(str(exc))
    try:
        C.seed_lists(seeds, train)
        overrides = {"n_users": args.n_users} if args.n_users else None
        card = C.build_card(args.scenario, seeds=seeds, train_seeds=train, workers=workers, quick=args.quick,
                            overrides=overrides, progress=not args.no_progress)
    except ScenarioError as exc:
        p.error(str(exc))
    except ValueError as exc:
        if "seed" not in str(exc):
            raise
        p.error(str(exc))
    pj, pm = C.write_card(card, out)
    print(C.render_markdown(card))
    print(f"wrote {pm} and {pj}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command == "check-scenario":
        return check_scenario(args, p)
    if args.command == "serve":
        return serve(args, p)
    p.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse rejects it first
    return 2


if __name__ == "__main__":
    sys.exit(main())
