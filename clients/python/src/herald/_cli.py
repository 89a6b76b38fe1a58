"""``herald run``: load handlers and serve them until SIGINT or SIGTERM.

    herald run handlers.py [more.py ...] [-m package.module]
    herald run package.module:function --cause create --resource kopfexamples

It takes `kopf run`'s options too: -v, -d, -q and --log-format set up
logging as Kopf's do; -n, -A, --standalone, --dev, -P, -p and -L are the
sidecar's to decide, and are warned about.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import signal
import sys
from pathlib import Path

from herald import on
from herald.errors import RegistrationRejected
from herald.runtime import DEFAULT_TARGET, Operator
from herald.settings import LogFormat, configure

# `kopf run` options that the sidecar's flags decide: accepted, warned.
_SIDECAR_OPTIONS = {
    "namespace": ("-n/--namespace", "--namespaces"),
    "all_namespaces": ("-A/--all-namespaces", "--namespaces (empty: all)"),
    "standalone": ("--standalone", "its leader election"),
    "dev": ("--dev", "its leader election"),
    "peering": ("-P/--peering", "its leader election"),
    "priority": ("-p/--priority", "its leader election"),
    "liveness": ("-L/--liveness", "--health_listen"),
}


def _load(spec: str, cause: str | None, resource: str | None) -> None:
    if spec.endswith(".py") or Path(spec).is_file():
        path = Path(spec).resolve()
        sys.path.insert(0, str(path.parent))
        mod_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[path.stem] = module
        mod_spec.loader.exec_module(module)
        return
    module_name, _, function = spec.partition(":")
    sys.path.insert(0, str(Path.cwd()))
    module = importlib.import_module(module_name)
    if not function:
        return
    fn = getattr(module, function)
    if cause is None or resource is None:
        from herald.registry import get_default_registry
        if any(h.fn is fn for h in get_default_registry().handlers):
            return  # Already decorated in its module.
        raise SystemExit(f"herald: {spec} is a plain function: give --cause and --resource")
    getattr(on, cause)(resource)(fn)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="herald", description="Herald's Python handlers.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve handlers until SIGINT or SIGTERM")
    run.add_argument("paths", nargs="*", help="handler files, or module[:function]")
    run.add_argument("-m", "--module", action="append", default=[], help="a module to import")
    run.add_argument("--target", default=None,
                     help=f"the sidecar's address (default $HERALD_TARGET or {DEFAULT_TARGET})")
    run.add_argument("--credits", type=int, default=None,
                     help="deliveries held at once (default $HERALD_CREDITS, else 1000 for "
                     "async handlers plus the thread pool's size for sync ones)")
    run.add_argument("--stop-wait", type=float, default=10.0,
                     help="seconds running handlers get to finish on SIGINT/SIGTERM")
    run.add_argument("--allow-rejected", action="store_true",
                     help="serve the other handlers when the sidecar rejects some (their "
                     "errors are logged); without it, a rejection stops herald run with an error")
    run.add_argument("--cause", choices=["create", "update", "delete", "resume", "event"],
                     help="for a plain module:function, its cause")
    run.add_argument("--resource", help="for a plain module:function, its resource")
    run.add_argument("--verbose", "-v", action="store_true")
    # Kopf's `kopf run` options.
    run.add_argument("--debug", "-d", action="store_true", help="as --verbose")
    run.add_argument("--quiet", "-q", action="store_true", help="warnings and errors only")
    run.add_argument("--log-format", choices=[f.name.lower() for f in LogFormat],
                     help="Kopf's log formats (default: herald's own)")
    run.add_argument("--log-refkey", default=None, help="with --log-format=json, as Kopf's")
    run.add_argument("--log-prefix", action=argparse.BooleanOptionalAction, default=None,
                     help="accepted for Kopf: handlers' lines always carry their object")
    for dest, (flags, _) in _SIDECAR_OPTIONS.items():
        names = flags.split("/")
        if dest == "namespace":
            run.add_argument(*names, dest=dest, action="append", default=[],
                             help="the sidecar's --namespaces decides; warned")
        elif dest in ("all_namespaces", "standalone", "dev"):
            run.add_argument(*names, dest=dest, action="store_true",
                             help="the sidecar decides; warned")
        else:
            run.add_argument(*names, dest=dest, default=None, help="the sidecar decides; warned")
    args = parser.parse_args(argv)

    if args.log_format or args.debug or args.quiet:
        configure(debug=args.debug, verbose=args.verbose, quiet=args.quiet,
                  log_format=LogFormat[(args.log_format or "full").upper()],
                  log_prefix=args.log_prefix, log_refkey=args.log_refkey)
    else:
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    for dest, (flags, flag) in _SIDECAR_OPTIONS.items():
        if getattr(args, dest):
            logging.getLogger("herald").warning(
                "herald run %s: the Herald sidecar's %s decides this; ignored", flags, flag)
    for spec in args.paths:
        _load(spec, args.cause, args.resource)
    for module in args.module:
        importlib.import_module(module)

    try:
        import uvloop  # type: ignore
        uvloop.install()
    except ImportError:
        pass

    async def serve() -> None:
        op = Operator(target=args.target, credits=args.credits, stop_wait=args.stop_wait,
                      allow_rejected=args.allow_rejected)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, op.stop)
        await op.run()
        logging.getLogger("herald").info("stopped")

    try:
        asyncio.run(serve())
    except (RuntimeError, RegistrationRejected) as e:
        raise SystemExit(f"herald: {e}") from None
