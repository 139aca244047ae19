"""What `hotline up` shows a newcomer: the addresses to open once the API answers, and
the embedded servers' start-up chatter kept in a log file instead of the terminal."""

import logging
import time
import urllib.request
from pathlib import Path

from db.settings import Settings


def embedded_log(settings: Settings) -> Path:
    """pgserver logs every initdb and pg_ctl run at INFO (~45 lines on a first start):
    into `<data dir>/embedded.log`, not over the addresses."""
    data_dir = Path(settings.hotline_data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "embedded.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    pg_log = logging.getLogger("pgserver")
    pg_log.addHandler(handler)
    pg_log.setLevel(logging.INFO)
    pg_log.propagate = False
    return path


def base_url(settings: Settings) -> str:
    host = settings.hotline_host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{host}:{settings.hotline_port}"


def addresses(settings: Settings, log_file: Path | None) -> str:
    base = base_url(settings)
    lines = [
        "",
        "未保热线已启动，请在浏览器中打开：",
        f"  首页       {base}/",
        f"  强制报告   {base}/report",
        f"  查询回执   {base}/receipt",
        f"  工作台     {base}/console",
        f"  接口文档   {base}/console/api-docs",
        "第一次试用：另开一个终端运行 hotline demo，载入演示账号和案件。",
    ]
    if log_file is not None:
        lines.append(f"内置数据库的输出记录在 {log_file}")
    return "\n".join(lines) + "\n"


def announce_when_up(settings: Settings, log_file: Path | None, timeout: float = 300.0) -> None:
    """Wait (in a thread beside the server) until /healthz answers, then print."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url(settings)}/healthz", timeout=1):
                print(addresses(settings, log_file), flush=True)
                return
        except OSError:
            time.sleep(0.2)
