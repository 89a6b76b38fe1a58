"""An operator embedded in an application: it runs in its own thread and
event loop while the application's main thread does its own work."""

import asyncio
import logging
import os
import threading
import time

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

    def operator_thread():
        asyncio.run(herald.operator(registry=registry, memo=herald.Memo(app=app),
                                    stop_flag=stop, ready_flag=ready,
                                    target=os.environ.get('HERALD_TARGET')))

    thread = threading.Thread(target=operator_thread, name='operator')
    thread.start()
    ready.wait()
    print("app: the operator is ready", flush=True)
    try:
        while True:  # The application's own work.
            time.sleep(0.5)
            if app.seen:
                print(f"app: objects seen so far: {app.seen}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        thread.join()
        print("app: stopped", flush=True)


if __name__ == '__main__':
    main()
