"""An operator embedded in an application: it runs in its own thread and
event loop while the application's main thread does its own work."""

import asyncio
import logging
import os
import signal
import threading

import herald

registry = herald.Registry()


@herald.on.create('kopfexamples', registry=registry)
def create_fn(name, memo, **_):
    memo.app.seen.append(name)
    return {'embedded': True}


class App:
    def __init__(self):
        self.seen = []


def main():
    logging.basicConfig(level=logging.INFO)
    app = App()
    stop = threading.Event()
    ready = threading.Event()

    # The application decides when its operator stops. Ctrl+C (SIGINT) and
    # a pod's termination (SIGTERM) set the stop flag through handlers of
    # its own: relying on KeyboardInterrupt would miss SIGTERM, and would
    # never fire in a process started in the background of a script, which
    # inherits SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())

    def operator_thread():
        asyncio.run(herald.operator(registry=registry, memo=herald.Memo(app=app),
                                    stop_flag=stop, ready_flag=ready,
                                    target=os.environ.get('HERALD_TARGET')))

    thread = threading.Thread(target=operator_thread, name='operator')
    thread.start()
    ready.wait()
    print("app: the operator is ready", flush=True)
    reported = 0
    while not stop.wait(0.5):  # The application's own work.
        if len(app.seen) > reported:
            reported = len(app.seen)
            print(f"app: objects seen so far: {app.seen}", flush=True)
    thread.join()
    print("app: stopped", flush=True)


if __name__ == '__main__':
    main()
