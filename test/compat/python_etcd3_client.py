"""Drives a server through python3-etcd3 (the gRPC client) and prints what it saw.

Usage: python_etcd3_client.py HOST PORT MEMBER_NAME

Prints one JSON object: each step's result, or the error it raised (exception class, gRPC
code and message). What legitimately differs between two single-member clusters is replaced:
cluster and member ids and raft terms in response headers, lease ids (by order of first
appearance), member ids, peer URLs and the server version's minor. Revisions are kept: both
servers start empty and the steps run one after another, so both count the same writes.
Times are kept coarse: a TTL is compared as "within the granted TTL", never as a number of
seconds left.
"""
import json
import sys
import threading
import time

import grpc
from google.protobuf.descriptor import FieldDescriptor

import etcd3
import etcd3.exceptions
import etcd3.transactions as transactions

CALL_TIMEOUT_S = 10
WATCH_WAIT_S = 10
LEASE_EXPIRY_WAIT_S = 15
POLL_S = 0.05
EXPLICIT_LEASE_ID = 0x1234
# Below etcd's default --max-request-bytes (1.5 MiB); 1.6 MiB is above it, and four times it is
# above the gRPC server's message limit (--max-request-bytes plus 512 KiB) as well.
LARGE_VALUE_BYTES = 1024 * 1024
TOO_LARGE_EXTRA_BYTES = 600 * 1024
# A range response of about 3 MiB: many DATA frames, below python-grpc's 4 MiB receive limit.
LARGE_RANGE_KEYS = 30
LARGE_RANGE_VALUE_BYTES = 100 * 1024
CONCURRENT_WRITERS = 8
CONCURRENT_PUTS = 25
# etcd's default --max-txn-ops.
TXN_OPS_MAX = 128
WATCHERS = 100


class Leases(object):
    """Names lease ids by order of first appearance: 'lease-1', 'lease-2', ..."""

    def __init__(self):
        self.names = {}

    def name(self, lease_id):
        if lease_id == 0:
            return 0
        if lease_id not in self.names:
            self.names[lease_id] = 'lease-%d' % (len(self.names) + 1)
        return self.names[lease_id]


LEASES = Leases()


def text(value):
    if value is None:
        return None
    return value.decode('utf-8', 'backslashreplace')


def plain(message, path=()):
    """A protobuf message as JSON-ready data; fields at their default value are left out."""
    out = {}
    for field, value in message.ListFields():
        if field.label == FieldDescriptor.LABEL_REPEATED:
            out[field.name] = [plain_value(field, v, path + (field.name,)) for v in value]
        else:
            out[field.name] = plain_value(field, value, path + (field.name,))
    if path and path[-1] == 'header':
        for name, placeholder in (('cluster_id', '<cluster>'), ('member_id', '<member>'), ('raft_term', '<term>')):
            if name in out:
                out[name] = placeholder
    return out


def plain_value(field, value, path):
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return plain(value, path)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return text(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values_by_number[value].name
    if field.name in ('lease', 'ID'):
        return LEASES.name(value)
    return value


def error(exc):
    """An exception as data: python-etcd3's own class, and the gRPC status when there is one."""
    out = {'error': type(exc).__name__}
    if isinstance(exc, grpc.RpcError):
        out['code'] = exc.code().name
        out['details'] = exc.details()
    else:
        out['message'] = str(exc)
    if isinstance(exc, etcd3.exceptions.RevisionCompactedError):
        out['compacted_revision'] = exc.compacted_revision
    return out


def step(out, name, call):
    """Records call()'s result under name, or the error it raised, and goes on."""
    try:
        out[name] = call()
    except Exception as exc:  # noqa: BLE001 - an error is a result to compare
        out[name] = error(exc)


def kv(value, meta):
    """A (value, KVMetadata) pair as python-etcd3 returns it from get and friends."""
    if meta is None:
        return [text(value), None]
    return [text(value), {
        'key': text(meta.key),
        'create_revision': meta.create_revision,
        'mod_revision': meta.mod_revision,
        'version': meta.version,
        'lease': LEASES.name(meta.lease_id),
        'header_revision': meta.response_header.revision,
    }]


def kvs(pairs):
    return [kv(value, meta) for value, meta in pairs]


def keys(pairs):
    return [text(meta.key) for _, meta in pairs]


def event(ev, prev_kv=False):
    out = {
        'type': type(ev).__name__,
        'key': text(ev.key),
        'value': text(ev.value),
        'create_revision': ev.create_revision,
        'mod_revision': ev.mod_revision,
        'version': ev.version,
        'lease': LEASES.name(ev.lease),
    }
    if prev_kv:
        out['prev_value'] = text(ev.prev_value)
        out['prev_mod_revision'] = ev.prev_mod_revision
    return out


def wait_until(predicate, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


class Collector(object):
    """Iterates a watch's event iterator on a thread until the iterator ends."""

    def __init__(self, events, prev_kv=False):
        self.seen = []
        self.failure = None
        self.prev_kv = prev_kv
        self.thread = threading.Thread(target=self.run, args=(events,), daemon=True)
        self.thread.start()

    def run(self, events):
        try:
            for ev in events:
                self.seen.append(event(ev, self.prev_kv))
        except Exception as exc:  # noqa: BLE001 - recorded, compared
            self.failure = error(exc)

    def result(self, count, cancel):
        """Waits for count events, cancels, and reports them and whether the iterator ended."""
        wait_until(lambda: len(self.seen) >= count or self.failure is not None, WATCH_WAIT_S)
        cancel()
        self.thread.join(WATCH_WAIT_S)
        return {'events': self.seen, 'failure': self.failure, 'ended_on_cancel': not self.thread.is_alive()}


def kv_steps(client, out):
    step(out, 'put', lambda: plain(client.put('foo', 'bar')))
    step(out, 'put_prev_kv', lambda: plain(client.put('foo', 'baz', prev_kv=True)))
    step(out, 'get', lambda: kv(*client.get('foo')))
    step(out, 'get_serializable', lambda: kv(*client.get('foo', serializable=True)))
    step(out, 'get_missing', lambda: kv(*client.get('nope')))
    step(out, 'get_response', lambda: plain(client.get_response('foo')))
    step(out, 'put_if_not_exists_new', lambda: client.put_if_not_exists('created', 'x'))
    step(out, 'put_if_not_exists_existing', lambda: client.put_if_not_exists('created', 'y'))
    step(out, 'replace_wrong', lambda: client.replace('foo', 'not-baz', 'qux'))
    step(out, 'replace_right', lambda: client.replace('foo', 'baz', 'qux'))
    step(out, 'get_after_replace', lambda: kv(*client.get('foo')))

    # Values, versions and create order that sort differently on every target.
    for key, value in (('sort/a', 'z1'), ('sort/c', 'y1'), ('sort/a', 'z2'), ('sort/c', 'y2'),
                       ('sort/a', 'z3'), ('sort/b', 'x1'), ('sort/d', 'w1')):
        client.put(key, value)
    step(out, 'get_prefix', lambda: kvs(client.get_prefix('sort/')))
    step(out, 'get_prefix_keys_only', lambda: kvs(client.get_prefix('sort/', keys_only=True)))
    step(out, 'get_prefix_descend_value',
         lambda: keys(client.get_prefix('sort/', sort_order='descend', sort_target='value')))
    step(out, 'get_range', lambda: kvs(client.get_range('sort/b', 'sort/d')))
    for order in ('ascend', 'descend', None):
        for target in ('key', 'version', 'create', 'mod', 'value'):
            name = 'get_all_%s_%s' % (order, target)
            step(out, name, lambda o=order, t=target: keys(client.get_all(sort_order=o, sort_target=t)))
    step(out, 'get_all_keys_only', lambda: kvs(client.get_all(keys_only=True)))
    step(out, 'get_all_sort_bad_order', lambda: keys(client.get_all(sort_order='sideways')))

    step(out, 'delete', lambda: client.delete('sort/d'))
    step(out, 'delete_missing', lambda: client.delete('sort/d'))
    step(out, 'delete_prev_kv', lambda: plain(client.delete('sort/b', prev_kv=True, return_response=True)))
    step(out, 'delete_prefix', lambda: plain(client.delete_prefix('sort/')))
    step(out, 'delete_prefix_empty', lambda: plain(client.delete_prefix('sort/')))
    step(out, 'get_prefix_after_delete', lambda: kvs(client.get_prefix('sort/')))
    step(out, 'put_empty_key', lambda: plain(client.put('', 'v')))
    step(out, 'put_bytes', lambda: plain(client.put(b'bin/\x00\xff', b'\x00\x01\xfe\xff')))
    step(out, 'get_bytes', lambda: kv(*client.get(b'bin/\x00\xff')))
    step(out, 'put_unicode', lambda: plain(client.put('bin/ключ', 'значение')))
    step(out, 'get_prefix_bytes', lambda: kvs(client.get_prefix(b'bin/')))
    step(out, 'delete_prefix_bytes', lambda: plain(client.delete_prefix(b'bin/')))


def txn_steps(client, out):
    t = client.transactions
    client.put('txn/a', '1')
    client.put('txn/a', '2')
    client.put('txn/b', 'b')
    _, a = client.get('txn/a')

    def txn(compare, success, failure):
        ok, responses = client.transaction(compare=compare, success=success, failure=failure)
        return {'succeeded': ok, 'responses': [response(r) for r in responses]}

    def response(r):
        # A Get in a txn comes back as a list of (value, KVMetadata); everything else as a ResponseOp.
        if isinstance(r, list):
            return kvs(r)
        return plain(r)

    step(out, 'txn_value_equal', lambda: txn(
        [t.value('txn/a') == '2'], [t.put('txn/c', 'c'), t.get('txn/a')], [t.put('txn/x', 'x')]))
    step(out, 'txn_value_not_equal', lambda: txn(
        [t.value('txn/a') != '2'], [t.put('txn/x', 'x')], [t.get('txn/b'), t.delete('txn/b', prev_kv=True)]))
    step(out, 'txn_version', lambda: txn(
        [t.version('txn/a') == 2, t.version('txn/b') < 1], [t.put('txn/v', 'v', prev_kv=True)], [t.get('txn/', 'txn0')]))
    step(out, 'txn_create', lambda: txn(
        [t.create('txn/a') == a.create_revision, t.create('txn/missing') == 0], [t.get('txn/a')], []))
    step(out, 'txn_mod_greater', lambda: txn(
        [t.mod('txn/a') > a.mod_revision], [t.put('txn/x', 'x')], [t.put('txn/a', '3', prev_kv=True)]))
    step(out, 'txn_mod_less', lambda: txn(
        [t.mod('txn/a') < a.mod_revision + 100], [t.delete('txn/', 'txn0', prev_kv=True)], []))
    step(out, 'txn_nested', lambda: txn(
        [t.version('txn/n') == 0],
        [t.txn([t.version('txn/n') == 0], [t.put('txn/n', 'inner')], []), t.get('txn/n')], []))
    step(out, 'txn_empty', lambda: txn([], [], []))
    step(out, 'txn_duplicate_put', lambda: txn([], [t.put('txn/d', '1'), t.put('txn/d', '2')], []))
    step(out, 'txn_value_of_missing', lambda: txn([t.value('txn/missing') == ''], [t.put('txn/x', 'x')], []))
    step(out, 'txn_value_not_equal_missing', lambda: txn([t.value('txn/missing') != 'x'], [t.put('txn/x', 'x')], []))
    step(out, 'txn_version_of_missing', lambda: txn([t.version('txn/missing') < 1], [], [t.get('txn/n')]))
    step(out, 'txn_compare_range', lambda: txn(
        [transactions.Version('txn/', 'txn0') > 0], [t.get('txn/', 'txn0')], [t.put('txn/x', 'x')]))
    step(out, 'txn_compare_range_value', lambda: txn(
        [transactions.Value('txn/', 'txn0') == 'inner'], [], [t.delete('txn/missing', prev_kv=True)]))
    step(out, 'txn_too_many_ops', lambda: txn([], [t.put('txn/many/%d' % i, 'v') for i in range(TXN_OPS_MAX + 1)], []))
    step(out, 'txn_get_after', lambda: kvs(client.get_prefix('txn/')))


def lease_steps(client, out):
    lease = client.lease(30)
    out['lease_grant_ttl'] = lease.ttl
    step(out, 'lease_put', lambda: plain(client.put('lease/a', '1', lease=lease)))
    step(out, 'lease_put_by_id', lambda: plain(client.put('lease/b', '2', lease=lease.id)))
    step(out, 'lease_get', lambda: kv(*client.get('lease/a')))
    step(out, 'lease_keys', lambda: sorted(text(k) for k in lease.keys))
    step(out, 'lease_granted_ttl', lambda: lease.granted_ttl)
    step(out, 'lease_remaining_ttl_within_granted', lambda: 20 <= lease.remaining_ttl <= 30)
    step(out, 'lease_refresh', lambda: [plain(r) for r in lease.refresh()])
    step(out, 'lease_info', lambda: sorted(plain(client.get_lease_info(lease.id)).keys()))
    step(out, 'lease_revoke', lambda: lease.revoke())
    step(out, 'lease_keys_after_revoke', lambda: kvs(client.get_prefix('lease/')))
    step(out, 'lease_remaining_ttl_after_revoke', lambda: lease.remaining_ttl)
    step(out, 'lease_keys_of_revoked', lambda: list(lease.keys))
    step(out, 'lease_refresh_revoked', lambda: [plain(r) for r in lease.refresh()])
    step(out, 'lease_revoke_revoked', lambda: lease.revoke())
    step(out, 'lease_put_revoked', lambda: plain(client.put('lease/c', '3', lease=lease)))
    step(out, 'lease_txn_put_revoked', lambda: client.transaction(
        compare=[], success=[client.transactions.put('lease/c', '3', lease=lease)], failure=[]))
    step(out, 'lease_put_unknown', lambda: plain(client.put('lease/c', '3', lease=EXPLICIT_LEASE_ID)))

    step(out, 'lease_explicit_id', lambda: client.lease(30, lease_id=EXPLICIT_LEASE_ID).id == EXPLICIT_LEASE_ID)
    step(out, 'lease_explicit_id_again', lambda: client.lease(30, lease_id=EXPLICIT_LEASE_ID).id)
    step(out, 'lease_revoke_explicit', lambda: client.revoke_lease(EXPLICIT_LEASE_ID))
    step(out, 'lease_too_large', lambda: client.lease(9000000001).ttl)
    step(out, 'lease_ttl_zero', lambda: client.lease(0).ttl)
    step(out, 'lease_ttl_negative', lambda: client.lease(-5).ttl)
    step(out, 'lease_negative_id', lambda: client.lease(30, lease_id=-7).id)
    step(out, 'lease_info_unknown', lambda: plain(client.get_lease_info(999)))

    # A lease shorter than etcd's minimum TTL is given the minimum, then expires on its own:
    # the attached key goes, in one revision a watch sees.
    short = client.lease(1)
    out['lease_short_ttl'] = short.ttl
    client.put('lease/short', 's', lease=short)
    events, cancel = client.watch('lease/short')
    collector = Collector(events)
    started = time.monotonic()
    out['lease_short_expired'] = wait_until(lambda: client.get('lease/short')[0] is None, LEASE_EXPIRY_WAIT_S)
    out['lease_short_expired_in_time'] = time.monotonic() - started <= LEASE_EXPIRY_WAIT_S
    out['lease_short_watch'] = collector.result(1, cancel)
    step(out, 'lease_short_ttl_after_expiry', lambda: short.remaining_ttl)


def watch_steps(client, out):
    out['watch_start'] = client.get_response('w').header.revision
    # watch() returns once the server has created the watch: what follows is seen.
    events, cancel = client.watch('w/key')
    collector = Collector(events)
    client.put('w/key', 'one')
    client.put('w/other', 'unseen')
    client.put('w/key', 'two')
    client.delete('w/key')
    out['watch'] = collector.result(3, cancel)

    events, cancel = client.watch_prefix('w/', prev_kv=True)
    collector = Collector(events, prev_kv=True)
    client.put('w/p1', 'a')
    client.put('w/p2', 'b')
    client.put('w/p1', 'c')
    client.put('x/outside', 'unseen')
    client.delete_prefix('w/p')
    out['watch_prefix'] = collector.result(5, cancel)

    # Everything since watch_start, replayed from history: the 9 events above and w/other's.
    events, cancel = client.watch_prefix('w/', start_revision=out['watch_start'] + 1)
    out['watch_history'] = Collector(events).result(9, cancel)

    step(out, 'watch_once_history', lambda: event(
        client.watch_once('w/key', timeout=WATCH_WAIT_S, start_revision=out['watch_start'] + 1)))
    # From the next revision: the put may land before or after the watch is in place.
    next_revision = client.get_response('w').header.revision + 1
    once = {}

    def wait_once():
        try:
            once['event'] = event(client.watch_once('w/once', timeout=WATCH_WAIT_S, start_revision=next_revision))
        except Exception as exc:  # noqa: BLE001 - recorded, compared
            once['event'] = error(exc)

    waiter = threading.Thread(target=wait_once, daemon=True)
    waiter.start()
    client.put('w/once', 'fired')
    waiter.join(WATCH_WAIT_S + 1)
    out['watch_once'] = once.get('event')
    step(out, 'watch_once_timeout', lambda: event(client.watch_once('w/silent', timeout=0.5)))

    # Many watches on python-etcd3's one watch stream, one write that they all see.
    many = []
    ids = [client.add_watch_prefix_callback('many/', many.append) for _ in range(WATCHERS)]
    out['many_watch_ids_distinct'] = len(set(ids)) == WATCHERS
    client.put('many/key', 'v')
    wait_until(lambda: len(many) >= WATCHERS, WATCH_WAIT_S)
    for watch_id in ids:
        client.cancel_watch(watch_id)
    out['many_watches'] = sorted(set(json.dumps([event(ev) for ev in r.events]) for r in many))
    out['many_watches_count'] = len(many)
    step(out, 'cancel_unknown_watch', lambda: client.cancel_watch(987654))
    step(out, 'watch_future_revision', lambda: event(client.watch_once(
        'many/key', timeout=0.5, start_revision=client.get_response('many').header.revision + 1000)))

    responses = []

    def callback(response):
        if isinstance(response, Exception):
            responses.append(error(response))
        else:
            responses.extend(event(ev) for ev in response.events)

    watch_id = client.add_watch_callback('cb/key', callback)
    prefix_id = client.add_watch_prefix_callback('cb/', callback)
    out['callback_ids_differ'] = watch_id != prefix_id
    client.put('cb/key', '1')
    client.put('cb/other', '2')
    wait_until(lambda: len(responses) >= 3, WATCH_WAIT_S)
    client.cancel_watch(watch_id)
    client.cancel_watch(prefix_id)
    client.put('cb/key', 'after-cancel')
    # A later watch proves the cancelled ones got nothing more: its event comes after theirs would.
    step(out, 'callback_later_watch', lambda: event(
        client.watch_once('cb/key', timeout=WATCH_WAIT_S, start_revision=client.get_response('cb').header.revision)))
    # Both watches see cb/key=1, in either order (they are two watches); cb/other only the prefix one.
    out['add_watch_callback'] = sorted(responses, key=lambda e: json.dumps(e, sort_keys=True))


def lock_steps(client, out):
    lock = client.lock('resource', ttl=30)
    step(out, 'lock_acquire', lambda: lock.acquire(timeout=5))
    step(out, 'lock_is_acquired', lambda: lock.is_acquired())
    step(out, 'lock_key_holds_uuid', lambda: client.get('/locks/resource')[0] == lock.uuid)
    step(out, 'lock_key', lambda: kv(*client.get('/locks/resource'))[1])
    step(out, 'lock_refresh', lambda: [plain(r) for r in lock.refresh()])
    other = client.lock('resource', ttl=30)
    started = time.monotonic()
    step(out, 'lock_other_acquire_while_held', lambda: other.acquire(timeout=1))
    out['lock_other_gave_up_in_time'] = time.monotonic() - started < 5
    step(out, 'lock_other_is_acquired', lambda: other.is_acquired())
    step(out, 'lock_other_release_not_held', lambda: other.release())
    step(out, 'lock_release', lambda: lock.release())
    step(out, 'lock_is_acquired_after_release', lambda: lock.is_acquired())
    step(out, 'lock_other_acquire_after_release', lambda: other.acquire(timeout=5))
    step(out, 'lock_other_release', lambda: other.release())
    with client.lock('ctx', ttl=30) as held:
        out['lock_context_held'] = held.is_acquired()
    out['lock_context_released'] = held.is_acquired()


def cluster_steps(client, out, member_name, port):
    members = list(client.members)
    out['members'] = [{
        'id_nonzero': m.id != 0,
        'name': m.name == member_name,
        'client_urls': list(m.client_urls) == ['http://127.0.0.1:%d' % port],
        'peer_urls': [u.rsplit(':', 1)[0] for u in m.peer_urls],
    } for m in members]
    status = client.status()
    version = status.version.split('.')
    out['status'] = {
        'version_major': version[0],
        'version_parts': len(version),
        'db_size_positive': status.db_size > 0,
        'leader_is_member': status.leader is not None and status.leader.id == members[0].id,
        'raft_index_positive': status.raft_index > 0,
        'raft_term_positive': status.raft_term > 0,
    }
    # Each write is one raft entry, a read none: how far the index moves is the same on both.
    before = client.status().raft_index
    client.get('foo')
    after_read = client.status().raft_index
    client.put('status/key', 'v')
    after_put = client.status().raft_index
    out['status_raft_index_steps'] = [after_read - before, after_put - after_read]
    step(out, 'remove_unknown_member', lambda: client.remove_member(12345))
    step(out, 'update_unknown_member', lambda: client.update_member(12345, ['http://127.0.0.1:1']))
    step(out, 'list_alarms', lambda: list(client.list_alarms()))
    step(out, 'defragment', lambda: client.defragment())
    step(out, 'hash_is_int', lambda: isinstance(client.hash(), int))

    class Sink(object):
        size = 0

        def write(self, blob):
            self.size += len(blob)

    sink = Sink()
    step(out, 'snapshot', lambda: client.snapshot(sink))
    out['snapshot_nonempty'] = sink.size > 0


def compact_steps(client, out):
    """python-etcd3's get takes no revision (get_range drops it): history is read through watches."""
    client.put('c/key', 'v1')
    first = client.get_response('c/key').header.revision
    client.put('c/key', 'v2')
    client.put('c/key', 'v3')
    current = client.get_response('c/key').header.revision
    out['compact_revision'] = current - 1
    step(out, 'compact', lambda: client.compact(current - 1))
    step(out, 'compact_again', lambda: client.compact(current - 1))
    step(out, 'compact_older', lambda: client.compact(first))
    step(out, 'compact_future', lambda: client.compact(current + 100))
    events, cancel = client.watch('c/key', start_revision=first)
    out['watch_compacted'] = Collector(events).result(1, cancel)
    events, cancel = client.watch('c/key', start_revision=current - 1)
    out['watch_at_compact_revision'] = Collector(events).result(2, cancel)
    compacted = []
    step(out, 'add_watch_callback_compacted',
         lambda: isinstance(client.add_watch_callback('c/key', compacted.append, start_revision=first), int))
    wait_until(lambda: len(compacted) > 0, WATCH_WAIT_S)
    out['add_watch_callback_compacted_got'] = [
        error(r) if isinstance(r, Exception) else [event(ev) for ev in r.events] for r in compacted]
    # watch_once hands the RevisionCompactedError its callback got to `.events`: an AttributeError.
    step(out, 'watch_once_compacted', lambda: event(client.watch_once('c/key', timeout=WATCH_WAIT_S,
                                                                       start_revision=first)))
    step(out, 'compact_physical', lambda: client.compact(current, physical=True))


def size_steps(client, out):
    """Values and responses spanning many HTTP/2 frames and flow-control windows, and the limits."""
    value = bytes(bytearray(i % 251 for i in range(LARGE_VALUE_BYTES)))
    step(out, 'large_put', lambda: plain(client.put('big/one', value)))
    step(out, 'large_get', lambda: client.get('big/one')[0] == value)
    for i in range(LARGE_RANGE_KEYS):
        client.put('big/many/%03d' % i, value[:LARGE_RANGE_VALUE_BYTES])
    step(out, 'large_range', lambda: [len(v) for v, _ in client.get_prefix('big/many/')])
    step(out, 'too_large_request', lambda: plain(client.put('big/two', value + value[:TOO_LARGE_EXTRA_BYTES])))
    step(out, 'too_large_message', lambda: plain(client.put('big/two', value * 4)))


def concurrent_steps(client, out):
    """Puts from several threads on the one channel: many streams at a time."""
    failures = []

    def writer(n):
        try:
            for i in range(CONCURRENT_PUTS):
                client.put('conc/%d/%03d' % (n, i), str(i))
        except Exception as exc:  # noqa: BLE001 - recorded, compared
            failures.append(error(exc))

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(CONCURRENT_WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WATCH_WAIT_S * 3)
    out['concurrent_failures'] = failures
    out['concurrent_all_done'] = not any(thread.is_alive() for thread in threads)
    step(out, 'concurrent_count', lambda: len(list(client.get_prefix('conc/', keys_only=True))))
    step(out, 'concurrent_delete', lambda: plain(client.delete_prefix('conc/')))


def alarm_steps(client, out):
    step(out, 'alarm_create', lambda: [[a.alarm_type, a.member_id] for a in client.create_alarm()])
    step(out, 'alarm_list', lambda: [[a.alarm_type, a.member_id] for a in client.list_alarms()])
    step(out, 'alarm_put', lambda: plain(client.put('alarm/key', 'v')))
    step(out, 'alarm_get', lambda: kv(*client.get('alarm/key')))
    step(out, 'alarm_disarm', lambda: [[a.alarm_type, a.member_id] for a in client.disarm_alarm()])
    step(out, 'alarm_put_after_disarm', lambda: plain(client.put('alarm/key', 'v')))


def main():
    host, port, member_name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = etcd3.client(host=host, port=port, timeout=CALL_TIMEOUT_S)
    out = {}
    kv_steps(client, out)
    txn_steps(client, out)
    lease_steps(client, out)
    watch_steps(client, out)
    lock_steps(client, out)
    cluster_steps(client, out, member_name, port)
    compact_steps(client, out)
    size_steps(client, out)
    concurrent_steps(client, out)
    alarm_steps(client, out)
    out['final_revision'] = client.get_response('x').header.revision
    print(json.dumps(out, sort_keys=True))
    sys.stdout.flush()


if __name__ == '__main__':
    main()
