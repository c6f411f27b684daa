"""``python -m switchyard_gateway``: serve the gateway."""

from switchyard_common.server import serve
from switchyard_gateway.config import GatewaySettings
from switchyard_gateway.main import create_app


def main() -> None:
    settings = GatewaySettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
