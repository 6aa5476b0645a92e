"""gunicorn's settings for dxdesk (docs/deploy.md): gunicorn -c deploy/gunicorn.conf.py 'app:create_app()'

Web workers only: they take webhooks and serve the console; the one `dxdesk scheduler` runs the timed work. With
PROMETHEUS_MULTIPROC_DIR set (the systemd unit sets it), /metrics adds up what every worker counted."""
import os
import shutil

# The heaviest imports (line-bot-sdk builds hundreds of pydantic models), done once in the master: workers fork with
# them loaded, so they boot in a fraction of the time and share those pages. No app is built here (no threads, no
# connections, no metrics before the fork).
import linebot.v3.messaging  # noqa: F401
import sqlalchemy.orm  # noqa: F401

bind = os.environ.get("DXDESK_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("DXDESK_WORKERS", "4"))
threads = int(os.environ.get("DXDESK_THREADS", "4"))
timeout = 30
graceful_timeout = 20
forwarded_allow_ips = "127.0.0.1"  # the reverse proxy on this host
accesslog = None  # the proxy keeps the access log; the app logs one JSON line per thing it does
# Each worker processes inbox events and sends messages too. Four workers with one inbox thread and two senders each
# keep two cores as busy as more threads would, and leave the webhooks room: on the bench (bench/README.md) the
# default of a single process (2 and 4) took paced acknowledgements' p99 over 50 ms and 20 % off the throughput.
os.environ.setdefault("DXDESK_INBOX_THREADS", "1")
os.environ.setdefault("DXDESK_SENDER_THREADS", "2")


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
