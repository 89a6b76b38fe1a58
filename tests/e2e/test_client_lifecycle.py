"""herald run's graceful stop against the real sidecar."""

import signal
import time

from .test_examples import Setup, crd, ex  # noqa: F401 - fixtures

SLOW = '''
import asyncio
import os
import herald

@herald.on.create('kopfexamples')
async def create_fn(spec, logger, **_):
    logger.info("started")
    if os.environ.get('HERALD_TEST_SLOW'):
        await asyncio.sleep(spec.get('sleep', 0))
    return {'slept': spec.get('sleep', 0), 'pid': os.getpid()}
'''


def run_file(ex, tmp_path, stop_wait, slow=True):
    path = tmp_path / f"slow-{time.monotonic_ns()}.py"
    path.write_text(SLOW)
    import os
    import sys
    from pathlib import Path
    from heraldproc import Proc
    env = dict(ex.cluster.env(), PYTHONUNBUFFERED="1")
    if slow:
        env["HERALD_TEST_SLOW"] = "1"
    p = Proc([str(Path(sys.executable).parent / "herald"), "run", str(path), "--target",
              f"unix:{ex.sock}", "--stop-wait", str(stop_wait)], env=env)
    p.wait_for(r"registered 1 handler", timeout=60)
    ex.client = p
    return p


def test_running_handlers_finish_within_the_stop_wait(ex, tmp_path):
    p = run_file(ex, tmp_path, stop_wait=15)
    ex.apply(spec={"sleep": 3})
    p.wait_for(r"\] started")
    p.proc.send_signal(signal.SIGTERM)
    assert p.proc.wait(timeout=30) == 0
    assert ex.status("create_fn") == {"slept": 3, "pid": p.proc.pid}
    assert any("waiting up to 15s for 1 handler" in line for line in p.lines)


def test_handlers_past_the_stop_wait_are_cancelled_and_redelivered(ex, tmp_path):
    p = run_file(ex, tmp_path, stop_wait=1)
    ex.apply(spec={"sleep": 30})
    p.wait_for(r"\] started")
    t0 = time.monotonic()
    p.proc.send_signal(signal.SIGINT)
    assert p.proc.wait(timeout=30) == 0
    assert time.monotonic() - t0 < 10
    assert "create_fn" not in ex.get().get("status", {})
    # The cancelled delivery goes to the next process, which answers at once.
    q = run_file(ex, tmp_path, stop_wait=5, slow=False)
    assert ex.status("create_fn") == {"slept": 30, "pid": q.proc.pid}
    assert len([l for l in q.lines if "] started" in l]) == 1


TWO = '''
import asyncio, os, signal, sys, threading, herald

first, second = herald.Registry(), herald.Registry()

@herald.on.create('kopfexamples', id='from_first', registry=first)
def a(memo, **_):
    return memo.who

@herald.on.create('kopfexamples', id='from_second', registry=second)
async def b(memo, **_):
    return memo.who

def serve(registry, who, stop, ready):
    asyncio.run(herald.operator(registry=registry, memo=herald.Memo(who=who), stop_flag=stop,
                                ready_flag=ready, target=os.environ['HERALD_TARGET']))

def start():
    stop = threading.Event()
    readies = [threading.Event(), threading.Event()]
    threads = [threading.Thread(target=serve, args=(r, w, stop, ready))
               for (r, w), ready in zip(((first, 'one'), (second, 'two')), readies)]
    for t in threads:
        t.start()
    for ready in readies:
        ready.wait()
    return stop, threads

# Start and stop both operators again and again (a stress of their
# lifecycle), then serve until SIGINT or SIGTERM.
cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 0
for i in range(cycles):
    stop, threads = start()
    stop.set()
    for t in threads:
        t.join(timeout=30)
        if t.is_alive():
            print(f'cycle {i}: an operator did not stop', flush=True)
            os._exit(3)
print(f'{cycles} start/stop cycles done', flush=True)
stop, threads = start()
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda signum, frame: stop.set())
print('both ready', flush=True)
stop.wait()
for t in threads:
    t.join()
print('both stopped', flush=True)
'''


def run_two(ex, tmp_path, cycles=0):
    import sys
    from heraldproc import Proc
    path = tmp_path / "two.py"
    path.write_text(TWO)
    env = dict(ex.cluster.env(), PYTHONUNBUFFERED="1", HERALD_TARGET=f"unix:{ex.sock}")
    # Started as a background job of a script is: with SIGINT ignored.
    p = Proc([sys.executable, str(path), str(cycles)], env=env, sigint_ignored=True)
    ex.client = p
    p.wait_for("both ready", timeout=60 + cycles)
    return p


def test_two_isolated_operators_in_one_process(ex, tmp_path):
    p = run_two(ex, tmp_path)
    ex.apply()
    assert ex.status("from_first") == "one"
    assert ex.status("from_second") == "two"
    # SIGINT stops them although the process inherited it ignored.
    p.proc.send_signal(signal.SIGINT)
    assert p.proc.wait(timeout=30) == 0
    assert "both stopped" in p.lines


def test_embedded_operators_start_and_stop_hundreds_of_times(ex, tmp_path):
    p = run_two(ex, tmp_path, cycles=200)
    assert "200 start/stop cycles done" in p.lines
    ex.apply()
    assert ex.status("from_first") == "one"
    p.proc.send_signal(signal.SIGTERM)
    assert p.proc.wait(timeout=30) == 0
    assert "both stopped" in p.lines
