import hashlib

import herald


def checksum(data: str, rounds: int) -> str:
    digest = data.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()[:16]


@herald.on.create('kopfexamples')
def sync_fn(spec, **_):
    # A plain function: it runs in the executor pool, not in the event loop.
    return {'checksum': checksum(str(spec), 20000)}


def after_answer(name, outcome, logger, **_):
    # Runs after the outcome has been sent to the sidecar.
    logger.info(f"answered for {name}: {outcome}")


@herald.on.update('kopfexamples', after=after_answer)
async def async_fn(spec, **_):
    # An async handler hands CPU-bound work to the same pool.
    value = await herald.run_in_executor(checksum, str(spec), 20000)
    return {'checksum': value}
