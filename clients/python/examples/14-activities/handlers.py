import herald


@herald.on.startup()
async def configure(memo, shared_memo, logger, **_):
    # Runs once, before the sidecar watches the resources of this process.
    memo.greeting = 'hello'         # The operator memo in this process.
    shared_memo['region'] = 'eu-1'  # The sidecar's operator memo: every object's memo starts with it.
    logger.info("configured")


@herald.on.create('kopfexamples')
def create_fn(memo, shared_memo, **_):
    return {'greeting': memo.greeting, 'region': shared_memo.get('region')}


@herald.on.probe(id='probes')
def count_probes(memo, **_):
    # Behind the sidecar's /healthz; results are reused for 10 seconds.
    memo.probes = memo.get('probes', 0) + 1
    return memo.probes


@herald.on.cleanup()
async def goodbye(logger, **_):
    logger.info("cleaning up")
