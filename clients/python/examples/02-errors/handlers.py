import herald


@herald.on.create('kopfexamples', retries=5, backoff=1)
def eventually(retry, logger, **_):
    # Fails twice, with the delay it asks for, then succeeds.
    if retry < 2:
        raise herald.TemporaryError(f"not ready yet (attempt {retry + 1})", delay=1)
    return {'attempts': retry + 1}


@herald.on.create('kopfexamples')
def never(**_):
    raise herald.PermanentError("this one gives up at once")


@herald.on.create('kopfexamples', errors=herald.ErrorsMode.IGNORED)
def careless(**_):
    raise ValueError("an unexpected error, ignored by this handler's errors mode")
