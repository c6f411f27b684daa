"""``python -m switchyard_webhook``: serve the webhook service."""

from switchyard_common.server import serve
from switchyard_webhook.config import WebhookSettings
from switchyard_webhook.main import create_app


def main() -> None:
    settings = WebhookSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
