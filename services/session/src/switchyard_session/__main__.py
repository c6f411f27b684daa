"""``python -m switchyard_session``: serve the session service."""

from switchyard_common.server import serve
from switchyard_session.config import SessionSettings
from switchyard_session.main import create_app


def main() -> None:
    settings = SessionSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
