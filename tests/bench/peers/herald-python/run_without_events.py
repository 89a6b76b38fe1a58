"""Serves handlers.py like `herald run`, but posting no Kubernetes Events.

The Herald Python client posts its own "handler ... succeeded" log line as a
Kubernetes Event for every object; Kopf posts no Events for its own messages,
only for what handlers log. For this handler, which logs nothing, this is
Kopf's amount of API writes.

    python run_without_events.py unix:/path/to/herald.sock
"""
import asyncio
import logging
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import handlers  # noqa: E402,F401 - registers the handler
import herald  # noqa: E402


async def main(target: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await herald.operator(target=target, stop_flag=stop, posting_level=None)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    asyncio.run(main(sys.argv[1]))
