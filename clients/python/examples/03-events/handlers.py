import herald


@herald.on.event('kopfexamples')
def on_event(type, name, memo, logger, **_):
    # Every raw watch event; nothing is stored, errors are not retried.
    memo.events = memo.get('events', 0) + 1
    logger.info(f"{type} {name}: event #{memo.events} for this object")
