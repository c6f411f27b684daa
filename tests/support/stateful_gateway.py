"""``python -m tests.support.stateful_gateway``: the gateway with the stateful APIs installed
(their settings read from ``SWITCHYARD_GATEWAY_SESSION_URL``/``_SESSION_TOKEN``).

Stands in for ``python -m switchyard_gateway`` until the gateway's app installs them itself.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from switchyard_common.server import serve
from switchyard_gateway.config import GatewaySettings
from switchyard_gateway.main import create_app
from switchyard_gateway.stateful import install_stateful


def main() -> None:
    settings = GatewaySettings()

    def build() -> FastAPI:
        app = create_app(settings)
        install_stateful(
            app,
            os.environ.get("SWITCHYARD_GATEWAY_SESSION_URL"),
            os.environ.get("SWITCHYARD_GATEWAY_SESSION_TOKEN"),
        )
        return app

    serve(build, settings)


if __name__ == "__main__":
    main()
