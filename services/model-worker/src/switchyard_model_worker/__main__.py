"""``python -m switchyard_model_worker``: serve the model-worker."""

from switchyard_common.server import serve
from switchyard_model_worker.config import WorkerSettings
from switchyard_model_worker.main import create_app


def main() -> None:
    settings = WorkerSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
