"""Drives a server through python3-etcd3gw (the grpc-gateway JSON client) and prints what it saw.

Usage: etcd3gw_client.py HOST PORT [API_PATH]

etcd3gw speaks to /v3alpha/ unless told otherwise (API_PATH, e.g. /v3beta/ for etcd 3.4).
Prints one JSON object: the results of put/get/delete/txn/lease/watch calls, with nothing
that differs between two clusters (ids, revisions are kept: both servers start empty).
"""
import json
import sys
import threading

import etcd3gw

WATCH_TIMEOUT_S = 10


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    client = etcd3gw.client(host=host, port=port)
    if len(sys.argv) > 3:
        client.api_path = sys.argv[3]
    out = {}

    out['put'] = client.put('foo', 'bar')
    out['get'] = [v.decode() for v in client.get('foo')]
    out['get_missing'] = client.get('nope')
    out['create_new'] = client.create('created', 'x')
    out['create_existing'] = client.create('created', 'y')
    out['replace_wrong'] = client.replace('foo', 'not-bar', 'baz')
    out['replace_right'] = client.replace('foo', 'bar', 'baz')
    client.put('dir/a', '1')
    client.put('dir/b', '2')
    prefix = client.get_prefix('dir/')
    out['get_prefix'] = [[v.decode(), m['key'].decode(), m['mod_revision'], m['version']] for v, m in prefix]
    out['delete'] = client.delete('foo')
    out['delete_missing'] = client.delete('foo')
    out['delete_prefix'] = client.delete_prefix('dir/')
    out['get_after_delete'] = client.get('foo')

    lease = client.lease(ttl=30)
    out['lease_ttl'] = 0 < lease.ttl() <= 30
    client.put('leased', 'v', lease=lease)
    out['lease_keys'] = [k.decode() for k in lease.keys()]
    out['lease_refresh'] = lease.refresh()
    out['lease_revoke'] = lease.revoke()
    out['leased_after_revoke'] = client.get('leased')
    out['lease_ttl_after_revoke'] = lease.ttl()

    events, cancel = client.watch('watched')
    seen = []
    first = threading.Event()
    done = threading.Event()

    def collect():
        for event in events:
            first.set()
            value = event['kv'].get('value', b'').decode()
            if value == 'probe':
                continue
            seen.append([event.get('type', 'PUT'), event['kv']['key'].decode(), value])
            if len(seen) == 3:
                done.set()
                return

    threading.Thread(target=collect, daemon=True).start()
    # etcd3gw tells nothing when the watch is in place: writes that are seen tell.
    for _ in range(50):
        client.put('watched', 'probe')
        if first.wait(0.2):
            break
    client.put('watched', 'one')
    client.put('watched', 'two')
    client.delete('watched')
    done.wait(WATCH_TIMEOUT_S)
    cancel()
    out['watch'] = seen[:3]

    out['watch_once'] = None
    result = {}

    def once():
        result['event'] = client.watch_once('once', timeout=WATCH_TIMEOUT_S)

    waiter = threading.Thread(target=once, daemon=True)
    waiter.start()
    for _ in range(50):
        if not waiter.is_alive():
            break
        client.put('once', 'fired')
        waiter.join(0.1)
    event = result.get('event')
    if event is not None:
        out['watch_once'] = [event['kv']['key'].decode(), event['kv']['value'].decode()]

    members = client.members()
    out['members'] = [sorted(m.keys()) for m in members]
    status = client.status()
    out['status_fields'] = sorted(k for k in status.keys())
    print(json.dumps(out, sort_keys=True))


if __name__ == '__main__':
    main()
