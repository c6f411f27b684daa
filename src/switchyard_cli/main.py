"""``switchyard``: run the whole platform on one machine."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

from switchyard_cli.config import CliSettings
from switchyard_cli.keys import dev_key, digest
from switchyard_cli.processes import NotReady
from switchyard_cli.signals import StopSignals
from switchyard_cli.supervisor import ServiceSpec, StartupError, Supervisor

DEFAULT_MODEL = "smollm2-135m-instruct"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start gateway, model-worker, session and webhook locally")
    up.add_argument("--host", default="127.0.0.1", help="gateway listen address")
    up.add_argument("--port", type=int, default=8080, help="gateway port (default 8080)")
    up.add_argument("--worker-port", type=int, default=8101)
    up.add_argument(
        "--embeddings-port",
        type=int,
        default=8104,
        help="port of the embeddings worker (all-MiniLM-L6-v2)",
    )
    up.add_argument("--no-embeddings", action="store_true",
                    help="do not start the embeddings worker")  # fmt: skip
    up.add_argument("--session-port", type=int, default=8102)
    up.add_argument("--webhook-port", type=int, default=8103)
    up.add_argument("--data-dir", type=Path, default=Path(".switchyard"), help="state directory")
    up.add_argument("--api-key", help="development API key (default: $SWITCHYARD_API_KEY, "
                    "else one generated and stored in the data directory)")  # fmt: skip
    up.add_argument("--model-path", help="GGUF file to serve (default: SmolLM2-135M-Instruct)")
    up.add_argument("--model-name", default=DEFAULT_MODEL, help="name clients use for the model")
    up.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    up.add_argument("--ready-timeout", type=float, default=180.0, help="seconds to wait for ready")
    return parser


WEBHOOK_TOKEN_ENV = "SWITCHYARD_WEBHOOK_INTERNAL_TOKEN"  # noqa: S105 (a variable name)


def service_specs(args: argparse.Namespace, dev_key_digest: str) -> list[ServiceSpec]:
    data = args.data_dir.resolve()
    common = {"LOG_LEVEL": args.log_level}
    # The webhook service takes calls only with this run's token, which the gateway sends:
    # the one in the environment when set (so a tool beside the platform can publish too),
    # else a fresh one.
    webhook_token = os.environ.get(WEBHOOK_TOKEN_ENV) or secrets.token_urlsafe(32)

    def env(prefix: str, **values: str) -> dict[str, str]:
        merged = {**common, **values}
        return {f"SWITCHYARD_{prefix}_{k.upper()}": v for k, v in merged.items()}

    worker_env = env("MODEL_WORKER", port=str(args.worker_port), model_name=args.model_name)
    if args.model_path:
        worker_env["SWITCHYARD_MODEL_WORKER_MODEL_PATH"] = str(Path(args.model_path).resolve())
    workers = [{"url": f"http://127.0.0.1:{args.worker_port}", "id": "model-worker-0"}]
    specs = [ServiceSpec("model-worker", "switchyard_model_worker", args.worker_port, worker_env)]
    if not args.no_embeddings:
        workers.append({"url": f"http://127.0.0.1:{args.embeddings_port}", "id": "embeddings-0"})
        specs.append(
            ServiceSpec("model-worker-embeddings", "switchyard_model_worker", args.embeddings_port,
                        env("MODEL_WORKER", port=str(args.embeddings_port), backend="embeddings"))
        )  # fmt: skip
    return [
        *specs,
        ServiceSpec("session", "switchyard_session", args.session_port,
                    env("SESSION", port=str(args.session_port), data_dir=str(data / "session"),
                        auto_migrate="true")),  # its embedded SQLite file: migrate at start
        ServiceSpec("webhook", "switchyard_webhook", args.webhook_port,
                    env("WEBHOOK", port=str(args.webhook_port), data_dir=str(data / "webhook"),
                        internal_token=webhook_token)),
        ServiceSpec("gateway", "switchyard_gateway", args.port,
                    env("GATEWAY", host=args.host, port=str(args.port),
                        static_workers=json.dumps(workers),
                        admin_key_hashes=json.dumps([dev_key_digest]),
                        keys_file=str(data / "gateway" / "keys.json"),
                        session_url=f"http://127.0.0.1:{args.session_port}",
                        webhook_url=f"http://127.0.0.1:{args.webhook_port}",
                        webhook_token=webhook_token),
                    host=args.host if args.host not in ("0.0.0.0", "::") else "127.0.0.1"),
    ]  # fmt: skip


def banner(gateway_url: str, key: str, key_source: str, model: str, embeddings: bool) -> str:
    models = f"{model}" + (", all-minilm-l6-v2 (embeddings)" if embeddings else "")
    return f"""
Switchyard is up.

  Gateway:  {gateway_url}
  API key:  {key}   ({key_source})
  Models:   {models}

Try it:

  curl {gateway_url}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" \\
    -H "Content-Type: application/json" \\
    -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "Say hello"}}]}}'

Press Ctrl-C to stop.
"""


def up(args: argparse.Namespace) -> int:
    # Before any child exists: from here on the first SIGINT, SIGTERM or SIGHUP asks for a
    # stop and every later one is ignored, so nothing can break off the stop below.
    stop = StopSignals().install()
    settings = CliSettings()
    data_dir: Path = args.data_dir
    explicit = args.api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
    key, key_source = dev_key(data_dir, explicit)

    supervisor = Supervisor()
    specs = service_specs(args, digest(key))
    code = 0
    try:
        for group in (specs[:-1], specs[-1:]):  # the gateway once its upstreams are ready
            for spec in group:
                if stop.requested():
                    raise NotReady("stop requested while starting")
                supervisor.start(spec)
            supervisor.wait_ready([s.name for s in group], args.ready_timeout, stop.wait)
        print(
            banner(specs[-1].url, key, key_source, args.model_name, not args.no_embeddings),
            flush=True,
        )
        while not stop.wait(0.2):
            if failed := supervisor.exited():
                print(f"switchyard: {failed[0]} exited with code {failed[1]}", file=sys.stderr)
                code = 1
                break
    except StartupError as exc:
        print(f"switchyard: {exc}", file=sys.stderr)
        code = 1
    except NotReady:
        pass  # a stop was requested while starting
    finally:
        print("switchyard: stopping all services", file=sys.stderr, flush=True)
        supervisor.stop_all()
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        return up(args)
    return 2  # pragma: no cover - argparse enforces the subcommand


if __name__ == "__main__":
    sys.exit(main())
