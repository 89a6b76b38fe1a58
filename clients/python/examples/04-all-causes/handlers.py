import herald


@herald.on.resume('kopfexamples')
def resume_fn(name, logger, **_):
    logger.info(f"resuming {name}: it existed before the sidecar started")


@herald.on.create('kopfexamples')
def create_fn(name, logger, **_):
    logger.info(f"created {name}")
    return {'created': True}


@herald.on.update('kopfexamples')
def update_fn(old, new, diff, logger, **_):
    logger.info(f"updated: {diff}")
    return {'changes': len(diff)}


@herald.on.delete('kopfexamples')
def delete_fn(name, logger, **_):
    # Holds a finalizer until it has run.
    logger.info(f"deleted {name}")
