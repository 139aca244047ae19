"""What every entry point does first: its logs, and where it counts for `/metrics`.

`hotline up` starts the others (workers, scheduler, API processes) and owns the metrics
folder (`HOTLINE_METRICS_DIR`, default `<data dir>/metrics`): it empties it and its
children inherit it. In the container set every process kind is its own container; they
share the folder as a volume, named by HOTLINE_METRICS_DIR, which the one-shot `migrate`
empties before the others start. A lone `hotline api` without the setting counts into a
fresh folder of its own (its several uvicorn workers share it). Without
HOTLINE_METRICS_TOKEN nothing is counted to files: there is nobody to read them.
"""

import tempfile
from pathlib import Path

from db.metrics import multiprocess_folder, use_folder
from db.settings import Settings
from dispatch.ops import logs


def start(settings: Settings, kind: str) -> None:
    """Configure logs and the metrics folder for a process of `kind`
    (up, api, worker, scheduler, migrate)."""
    logs.configure(settings, kind)
    folder = settings.hotline_metrics_dir
    if kind == "migrate":
        if folder is not None:
            use_folder(Path(folder), clear=True)
        return
    if not settings.hotline_metrics_token or multiprocess_folder() is not None:
        return  # metrics off, or a child of `hotline up` (it adopted its parent's folder)
    if kind == "up":
        use_folder(Path(folder or Path(settings.hotline_data_dir) / "metrics"), clear=True)
    elif folder is not None:
        use_folder(Path(folder))
    elif kind == "api":
        use_folder(Path(tempfile.mkdtemp(prefix="hotline-metrics-")))
