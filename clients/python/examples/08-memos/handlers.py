import threading

import herald


@herald.on.create('kopfexamples')
def create_fn(memo, shared_memo, **_):
    # memo: in this process only; anything goes (here a lock).
    memo.lock = threading.Lock()
    # shared_memo: JSON kept by the sidecar for this object, seen by every
    # handler process, kept across their restarts.
    shared_memo['generation'] = 1
    return 'memos set'


@herald.on.update('kopfexamples')
def update_fn(memo, shared_memo, **_):
    with memo.get('lock') or threading.Lock():
        shared_memo['generation'] = shared_memo.get('generation', 0) + 1
    return {'generation': shared_memo['generation']}
