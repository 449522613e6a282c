"""The ``featurestore`` command line: ``featurestore --help`` lists the commands."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from featurestore import __version__
from featurestore.cli.commands import STORE_HELP
from featurestore.cli.failures import (
    PROG,
    RUNTIME_EXIT,
    USAGE_EXIT,
    OneLineParser,
    SubcommandParser,
    UsageError,
    describe,
)
from featurestore.cli.output import Output

Handler = Callable[[argparse.Namespace, Output], int]


def _dev_db(args: argparse.Namespace, out: Output) -> int:
    from featurestore.devdb import DevDatabase

    db = DevDatabase(args.dir)
    if args.action == "start":
        st = db.start()
        out.message(
            f"MariaDB running on 127.0.0.1:{st.port} (data in {db.base_dir}); "
            "'featurestore dev-db url' prints the connection URL",
            port=st.port, dir=str(db.base_dir),
        )
    elif args.action == "stop":
        stopped = db.stop()
        out.message("stopped" if stopped else "not running", stopped=stopped)
    elif args.action == "url":
        # Printing the URL (with its password) is this command's purpose; it is never logged.
        url = db.jdbc_url() if args.jdbc else db.url()
        out.message(url, url=url)
    elif args.action == "status":
        st = db.state()
        out.record({"running": db.is_running(), "dir": str(db.base_dir),
                    "port": st.port if st else None, "user": st.user if st else None})
    return 0


def _config_show(args: argparse.Namespace, out: Output) -> int:
    from featurestore.config import load_config

    cfg = load_config(args.config)
    out.record({"source": str(cfg.source) if cfg.source else "(built-in defaults)", **cfg.redacted()})
    return 0


def _serve(args: argparse.Namespace, out: Output) -> int:
    from featurestore.config import load_config
    from featurestore.feature_store import FeatureStore
    from featurestore.server.http import serve

    if args.workers < 1:
        raise UsageError(f"serve: --workers must be at least 1, got {args.workers}")
    from featurestore.server.http import serve_options

    fs = FeatureStore(load_config(args.config), args.store)
    serve_options(fs, args.host, args.ssl_certfile, args.ssl_keyfile, args.insecure)  # fail before the banner
    scheme = "https" if args.ssl_certfile else "http"
    out.message(f"serving feature store '{fs.name}' on {scheme}://{args.host}:{args.port}", host=args.host,
                port=args.port)
    serve(fs, args.host, args.port, workers=args.workers, config_path=args.config,
          ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile, insecure=args.insecure)
    return 0


def _api_key_new(args: argparse.Namespace, out: Output) -> int:
    from featurestore.server.auth import key_digest, new_api_key

    key = new_api_key()
    entry = {"name": args.name, "sha256": key_digest(key), "stores": list(args.store or [])}
    # the key is shown this once, to the person who asked; the configuration keeps only its hash
    out.message(f"new API key (shown once): {key}\nadd to server.api_keys in the configuration:\n"
                f"  - {{name: {entry['name']}, sha256: {entry['sha256']}, stores: [{', '.join(entry['stores'])}]}}",
                key=key, entry=entry)
    return 0


def _report(args: argparse.Namespace, out: Output) -> int:
    from featurestore.config import load_config
    from featurestore.feature_store import FeatureStore

    fs = FeatureStore(load_config(args.config), args.store)
    fg = fs.get_feature_group(args.feature_group, args.version)
    path = fg.statistics_report(args.output)
    out.message(f"statistics report of '{fg.name}' v{fg.version} written to {path}", path=path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``featurestore`` command."""
    parser = OneLineParser(
        prog=PROG,
        description="Spark-native lakehouse feature store on Apache Hudi.",
    )
    parser.add_argument("--version", action="version", version=f"featurestore {__version__}")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    parser.add_argument("--config", help="configuration file (default: see README, Configuration)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=SubcommandParser)

    p = sub.add_parser("dev-db", help="start, stop or locate a local MariaDB for development")
    p.add_argument("action", choices=["start", "stop", "url", "status"])
    p.add_argument("--dir", help="server folder (default $FEATURESTORE_DEV_DB_DIR or ./.dev-db)")
    p.add_argument("--jdbc", action="store_true", help="with 'url': print the JDBC URL instead")
    p.set_defaults(handler=_dev_db)

    p = sub.add_parser("config", help="show the resolved configuration (secrets masked)")
    p.set_defaults(handler=_config_show)

    p = sub.add_parser("serve", help="run the HTTP feature server (POST /feature-vectors, "
                                     "POST /feature-views/{name}/{version}/vector, GET /health)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--store", help=STORE_HELP)
    p.add_argument("--workers", type=int, default=1,
                   help="server processes sharing the port (default 1; about one per core scales with cores)")
    p.add_argument("--ssl-certfile", help="TLS certificate (PEM); with --ssl-keyfile the server speaks HTTPS")
    p.add_argument("--ssl-keyfile", help="TLS private key (PEM)")
    p.add_argument("--insecure", action="store_true",
                   help="allow binding an address beyond loopback without API keys (anyone reaching it reads "
                        "every feature group)")
    p.set_defaults(handler=_serve)

    p = sub.add_parser("api-key", help="API keys of the HTTP feature server")
    key_sub = p.add_subparsers(dest="api_key_command", required=True)
    p = key_sub.add_parser("new", help="make a new key: prints it once and the entry for server.api_keys")
    p.add_argument("--name", required=True, help="who or what uses the key (shown instead of the key)")
    p.add_argument("--store", action="append", help="a feature store the key may read (repeat; default every one)")
    p.set_defaults(handler=_api_key_new)

    p = sub.add_parser("report", help="write a feature group's statistics report (one static HTML file)")
    p.add_argument("feature_group", help="feature group name")
    p.add_argument("--version", type=int, help="version (default: the latest)")
    p.add_argument("--output", help="HTML file (default <warehouse>/<store>/reports/<name>_<version>.html)")
    p.add_argument("--store", help=STORE_HELP)
    p.set_defaults(handler=_report)

    from featurestore.cli import commands

    commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code.

    A failure is one ``featurestore: error: ...`` line on stderr (exit 2 for a usage mistake, 1 at run
    time); ``--debug`` (before or after the subcommand) prints the traceback above it.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # known before parsing, so that a parse failure can show its traceback too
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 0
        return args.handler(args, Output(as_json=args.json))
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line (the traceback with --debug)
        if debug:
            traceback.print_exc()
        print(f"{PROG}: error: {describe(exc)}", file=sys.stderr)
        return USAGE_EXIT if isinstance(exc, UsageError) else RUNTIME_EXIT


if __name__ == "__main__":
    sys.exit(main())
