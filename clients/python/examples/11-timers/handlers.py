import herald


@herald.timer('kopfexamples', interval=1, initial_delay=1)
def every_second(shared_memo, logger, **_):
    # Scheduled by the sidecar: one scheduler for all objects, no thread or
    # task per object here.
    shared_memo['ticks'] = shared_memo.get('ticks', 0) + 1
    logger.debug(f"tick {shared_memo['ticks']}")
    return {'ticks': shared_memo['ticks']}
