import os

import herald


@herald.daemon('kopfexamples', cancellation_backoff=1.0, cancellation_timeout=10)
async def monitor(stopped, patch, logger, name, restarted, **_):
    # One long-running call per object, on whichever handler process serves
    # it; it takes no credit from the process. Its patches are applied while
    # it runs.
    logger.info(f"monitoring {name} in process {os.getpid()}"
                f"{' (restarted after its process went away)' if restarted else ''}")
    beats = 0
    while not stopped:
        beats += 1
        patch.status['monitor'] = {'beats': beats, 'pid': os.getpid()}
        await stopped.wait(0.5)
    logger.info(f"stopping {name}: {stopped.reason}")
