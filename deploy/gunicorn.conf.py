"""gunicorn's settings for dxdesk (docs/deploy.md): gunicorn -c deploy/gunicorn.conf.py 'app:create_app()'

Web workers only: they take webhooks and serve the console; the one `dxdesk scheduler` runs the timed work. With
PROMETHEUS_MULTIPROC_DIR set (the systemd unit sets it), /metrics adds up what every worker counted."""
import os
import shutil

bind = os.environ.get("DXDESK_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("DXDESK_WORKERS", "4"))
threads = int(os.environ.get("DXDESK_THREADS", "4"))
timeout = 30
graceful_timeout = 20
forwarded_allow_ips = "127.0.0.1"  # the reverse proxy on this host
accesslog = None  # the proxy keeps the access log; the app logs one JSON line per thing it does


def on_starting(server):
    """A fresh metrics folder per start of the master: counts of a previous run's workers are not added twice."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
