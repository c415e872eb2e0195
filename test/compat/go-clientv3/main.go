// Command go-clientv3 drives one etcd server through etcd's own Go client library (clientv3 and
// clientv3/concurrency of etcd 3.4, built from Debian's golang-etcd-server-dev) and prints a
// transcript: one line per step, "<step> | <result>". test/compat/go-clientv3.test.ts runs it
// against the real etcd and against etcd-ts and compares the two transcripts line by line.
//
// Usage: go-clientv3 ENDPOINT   (e.g. 127.0.0.1:2379; one member, empty at the start)
//
// Only what must be equal on two servers is printed: keys, values, counts, flags, error strings
// and codes, and revisions relative to the revision read at the start ("+N"). Lease ids are named
// in the order the transcript first meets them ("lease-1", ...); remaining TTLs are printed as
// "within the granted TTL"; member and cluster ids, raft terms, sizes, hashes and the server's
// version are not printed. Every call runs under its own deadline, so nothing hangs; a step whose
// call fails prints the error, and the program exits 0 once all steps ran.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	"go.etcd.io/etcd/mvcc/mvccpb"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/status"
)

const (
	callTimeout = 10 * time.Second
	waitTimeout = 15 * time.Second
	dialTimeout = 10 * time.Second
	pollEvery   = 50 * time.Millisecond
	// etcd's default --max-txn-ops.
	txnOpsMax = 128
	// Above etcd's default --max-request-bytes (1.5 MiB), below clientv3's 2 MiB send limit.
	tooLargeBytes = 1600 * 1024
	largeBytes    = 1024 * 1024
	confChangeGap = 300 * time.Millisecond
)

var (
	endpoint string
	base     int64
	leases   = map[clientv3.LeaseID]string{}
	steps    = map[string]bool{}
)

// out prints one transcript line; a step name is used once.
func out(step string, format string, args ...interface{}) {
	if steps[step] {
		fmt.Fprintf(os.Stderr, "step %q printed twice\n", step)
		os.Exit(2)
	}
	steps[step] = true
	fmt.Printf("%s | %s\n", step, fmt.Sprintf(format, args...))
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), callTimeout)
}

// call runs one call that answers only with an error, under its own deadline, and prints the
// error (or "ok").
func call(step string, f func(context.Context) error) {
	cx, cancel := ctx()
	defer cancel()
	out(step, "%s", errText(f(cx)))
}

// rev is a revision relative to the one read at the start.
func rev(r int64) string {
	if r == 0 {
		return "0"
	}
	return fmt.Sprintf("%+d", r-base)
}

func lease(id clientv3.LeaseID) string {
	if id == 0 {
		return "0"
	}
	if name, ok := leases[id]; ok {
		return name
	}
	name := fmt.Sprintf("lease-%d", len(leases)+1)
	leases[id] = name
	return name
}

// errText is an error as clientv3 surfaces it: its gRPC code, its etcd description and its text.
func errText(err error) string {
	if err == nil {
		return "ok"
	}
	code := status.Code(err).String()
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code().String()
	}
	desc := rpctypes.ErrorDesc(err)
	if desc == err.Error() {
		return fmt.Sprintf("error code=%s %q", code, desc)
	}
	return fmt.Sprintf("error code=%s desc=%q err=%q", code, desc, err.Error())
}

// text is s as it is when it is plain ASCII, else quoted.
func text(s []byte) string {
	for _, b := range s {
		if b <= ' ' || b > '~' || b == '"' {
			return fmt.Sprintf("%q", s)
		}
	}
	return string(s)
}

func kv(k *mvccpb.KeyValue) string {
	if k == nil {
		return "nil"
	}
	return fmt.Sprintf("%s=%q c=%s m=%s v=%d l=%s", text(k.Key), k.Value, rev(k.CreateRevision), rev(k.ModRevision), k.Version, lease(clientv3.LeaseID(k.Lease)))
}

func kvList(kvs []*mvccpb.KeyValue) string {
	parts := make([]string, len(kvs))
	for i, k := range kvs {
		parts[i] = kv(k)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func keys(kvs []*mvccpb.KeyValue) string {
	parts := make([]string, len(kvs))
	for i, k := range kvs {
		parts[i] = text(k.Key)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func get(c *clientv3.Client, step, key string, opts ...clientv3.OpOption) *clientv3.GetResponse {
	cx, cancel := ctx()
	defer cancel()
	r, err := c.Get(cx, key, opts...)
	if err != nil {
		out(step, "%s", errText(err))
		return nil
	}
	out(step, "rev=%s count=%d more=%t kvs=%s", rev(r.Header.Revision), r.Count, r.More, kvList(r.Kvs))
	return r
}

func put(c *clientv3.Client, step, key, val string, opts ...clientv3.OpOption) *clientv3.PutResponse {
	cx, cancel := ctx()
	defer cancel()
	r, err := c.Put(cx, key, val, opts...)
	if err != nil {
		out(step, "%s", errText(err))
		return nil
	}
	out(step, "rev=%s prev=%s", rev(r.Header.Revision), kv(r.PrevKv))
	return r
}

func del(c *clientv3.Client, step, key string, opts ...clientv3.OpOption) {
	cx, cancel := ctx()
	defer cancel()
	r, err := c.Delete(cx, key, opts...)
	if err != nil {
		out(step, "%s", errText(err))
		return
	}
	out(step, "rev=%s deleted=%d prev=%s", rev(r.Header.Revision), r.Deleted, kvList(r.PrevKvs))
}

// mustPut writes without printing; a failure is a broken run.
func mustPut(c *clientv3.Client, key, val string, opts ...clientv3.OpOption) int64 {
	cx, cancel := ctx()
	defer cancel()
	r, err := c.Put(cx, key, val, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "put %s: %v\n", key, err)
		os.Exit(1)
	}
	return r.Header.Revision
}

func currentRev(c *clientv3.Client) int64 {
	cx, cancel := ctx()
	defer cancel()
	r, err := c.Get(cx, "rev-probe")
	if err != nil {
		fmt.Fprintf(os.Stderr, "get: %v\n", err)
		os.Exit(1)
	}
	return r.Header.Revision
}

func kvSteps(c *clientv3.Client) {
	put(c, "kv.put", "kv/a", "1")
	get(c, "kv.get", "kv/a")
	put(c, "kv.put.prev-kv", "kv/a", "2", clientv3.WithPrevKV())
	put(c, "kv.put.prev-kv.new-key", "kv/b", "z", clientv3.WithPrevKV())
	mustPut(c, "kv/c", "y")
	mustPut(c, "kv/c", "x")
	mustPut(c, "kv/c", "w")
	mustPut(c, "kv/d", "x")
	mustPut(c, "kv/e", "v")
	mustPut(c, "kv/b", "u")
	get(c, "kv.get.prefix", "kv/", clientv3.WithPrefix())
	get(c, "kv.get.prefix.limit", "kv/", clientv3.WithPrefix(), clientv3.WithLimit(2))
	get(c, "kv.get.prefix.limit-all", "kv/", clientv3.WithPrefix(), clientv3.WithLimit(5))
	targets := []struct {
		name   string
		target clientv3.SortTarget
	}{
		{"key", clientv3.SortByKey}, {"version", clientv3.SortByVersion}, {"create", clientv3.SortByCreateRevision},
		{"mod", clientv3.SortByModRevision}, {"value", clientv3.SortByValue},
	}
	for _, t := range targets {
		for _, o := range []struct {
			name  string
			order clientv3.SortOrder
		}{{"ascend", clientv3.SortAscend}, {"descend", clientv3.SortDescend}} {
			cx, cancel := ctx()
			r, err := c.Get(cx, "kv/", clientv3.WithPrefix(), clientv3.WithSort(t.target, o.order))
			cancel()
			step := "kv.get.sort." + t.name + "." + o.name
			if err != nil {
				out(step, "%s", errText(err))
			} else {
				out(step, "%s", keys(r.Kvs))
			}
		}
	}
	get(c, "kv.get.sort.value.descend.limit", "kv/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend), clientv3.WithLimit(3))
	get(c, "kv.get.keys-only", "kv/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	get(c, "kv.get.count-only", "kv/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	get(c, "kv.get.from-key", "kv/c", clientv3.WithFromKey())
	get(c, "kv.get.range", "kv/b", clientv3.WithRange("kv/d"))
	get(c, "kv.get.rev", "kv/a", clientv3.WithRev(base+1))
	get(c, "kv.get.rev.prefix", "kv/", clientv3.WithPrefix(), clientv3.WithRev(base+4))
	get(c, "kv.get.serializable", "kv/a", clientv3.WithSerializable())
	get(c, "kv.get.missing", "kv/missing")
	get(c, "kv.get.min-mod-rev", "kv/", clientv3.WithPrefix(), clientv3.WithMinModRev(base+7))
	get(c, "kv.get.max-mod-rev", "kv/", clientv3.WithPrefix(), clientv3.WithMaxModRev(base+6))
	get(c, "kv.get.min-create-rev", "kv/", clientv3.WithPrefix(), clientv3.WithMinCreateRev(base+4))
	get(c, "kv.get.max-create-rev", "kv/", clientv3.WithPrefix(), clientv3.WithMaxCreateRev(base+3))
	get(c, "kv.get.mod-rev-window.count", "kv/", clientv3.WithPrefix(), clientv3.WithMinModRev(base+5), clientv3.WithMaxModRev(base+8), clientv3.WithCountOnly())
	get(c, "kv.get.first-key", "kv/", clientv3.WithFirstKey()...)
	get(c, "kv.get.last-create", "kv/", clientv3.WithLastCreate()...)
	get(c, "kv.get.all.count", "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
	get(c, "kv.get.prefix.empty-key", "", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	get(c, "kv.get.limit.negative", "kv/", clientv3.WithPrefix(), clientv3.WithLimit(-1), clientv3.WithCountOnly())

	mustPut(c, "kv/del/a", "1")
	mustPut(c, "kv/del/b", "2")
	mustPut(c, "kv/del/c", "3")
	del(c, "kv.delete", "kv/del/c")
	del(c, "kv.delete.missing", "kv/del/c")
	del(c, "kv.delete.prefix.prev-kv", "kv/del/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	del(c, "kv.delete.prefix.empty", "kv/del/", clientv3.WithPrefix())

	put(c, "kv.put.ignore-value.missing", "kv/ign", "", clientv3.WithIgnoreValue())
	put(c, "kv.put.ignore-value", "kv/e", "", clientv3.WithIgnoreValue(), clientv3.WithPrevKV())
	get(c, "kv.get.after-ignore-value", "kv/e")
	put(c, "kv.put.ignore-lease.missing", "kv/ign", "x", clientv3.WithIgnoreLease())
	put(c, "kv.put.ignore-lease", "kv/e", "t", clientv3.WithIgnoreLease())
	put(c, "kv.put.ignore-value-and-lease", "kv/e", "", clientv3.WithIgnoreValue(), clientv3.WithIgnoreLease())
	put(c, "kv.put.empty-key", "", "v")
	get(c, "kv.get.empty-key", "")
	del(c, "kv.delete.empty-key", "")
	put(c, "kv.put.empty-value", "kv/empty", "")
	get(c, "kv.get.empty-value", "kv/empty")
	put(c, "kv.put.binary", "kv/bin\x00\xff", "\x00\x01\xfe")
	get(c, "kv.get.binary", "kv/bin\x00\xff")
}

func txnResp(r *clientv3.TxnResponse) string {
	parts := []string{}
	for _, op := range r.Responses {
		switch {
		case op.GetResponseRange() != nil:
			rr := op.GetResponseRange()
			parts = append(parts, fmt.Sprintf("range(count=%d more=%t kvs=%s)", rr.Count, rr.More, kvList(rr.Kvs)))
		case op.GetResponsePut() != nil:
			parts = append(parts, fmt.Sprintf("put(prev=%s)", kv(op.GetResponsePut().PrevKv)))
		case op.GetResponseDeleteRange() != nil:
			dr := op.GetResponseDeleteRange()
			parts = append(parts, fmt.Sprintf("delete(deleted=%d prev=%s)", dr.Deleted, kvList(dr.PrevKvs)))
		case op.GetResponseTxn() != nil:
			parts = append(parts, "txn("+txnResp((*clientv3.TxnResponse)(op.GetResponseTxn()))+")")
		default:
			parts = append(parts, "empty")
		}
	}
	// Runs of equal responses (a txn of 128 puts) as one "<response> x<n>".
	runs := []string{}
	for i := 0; i < len(parts); {
		j := i
		for j < len(parts) && parts[j] == parts[i] {
			j++
		}
		if j-i > 1 {
			runs = append(runs, fmt.Sprintf("%s x%d", parts[i], j-i))
		} else {
			runs = append(runs, parts[i])
		}
		i = j
	}
	return fmt.Sprintf("succeeded=%t rev=%s [%s]", r.Succeeded, rev(r.Header.Revision), strings.Join(runs, "; "))
}

func txn(c *clientv3.Client, step string, cmps []clientv3.Cmp, then []clientv3.Op, els []clientv3.Op) {
	cx, cancel := ctx()
	defer cancel()
	r, err := c.Txn(cx).If(cmps...).Then(then...).Else(els...).Commit()
	if err != nil {
		out(step, "%s", errText(err))
		return
	}
	out(step, "%s", txnResp(r))
}

func txnSteps(c *clientv3.Client) {
	aRev := mustPut(c, "txn/a", "1")
	mustPut(c, "txn/b", "2")
	mustPut(c, "txn/b", "3")
	cmp := clientv3.Compare
	V, Ver, C, M := clientv3.Value, clientv3.Version, clientv3.CreateRevision, clientv3.ModRevision
	get2 := clientv3.OpGet("txn/", clientv3.WithPrefix())
	txn(c, "txn.value.eq", []clientv3.Cmp{cmp(V("txn/a"), "=", "1")},
		[]clientv3.Op{clientv3.OpPut("txn/a", "2", clientv3.WithPrevKV()), clientv3.OpGet("txn/b")},
		[]clientv3.Op{clientv3.OpGet("txn/a")})
	txn(c, "txn.value.eq.false", []clientv3.Cmp{cmp(V("txn/a"), "=", "1")},
		[]clientv3.Op{clientv3.OpPut("txn/a", "x")}, []clientv3.Op{clientv3.OpGet("txn/a")})
	txn(c, "txn.value.gt", []clientv3.Cmp{cmp(V("txn/b"), ">", "2")}, []clientv3.Op{get2}, nil)
	txn(c, "txn.value.lt", []clientv3.Cmp{cmp(V("txn/b"), "<", "2")}, []clientv3.Op{get2}, []clientv3.Op{clientv3.OpGet("txn/b")})
	txn(c, "txn.value.ne", []clientv3.Cmp{cmp(V("txn/b"), "!=", "3")}, nil, []clientv3.Op{clientv3.OpGet("txn/b")})
	txn(c, "txn.version", []clientv3.Cmp{cmp(Ver("txn/b"), "=", 2), cmp(Ver("txn/a"), ">", 1)}, []clientv3.Op{get2}, nil)
	txn(c, "txn.version.missing", []clientv3.Cmp{cmp(Ver("txn/missing"), "=", 0)}, []clientv3.Op{clientv3.OpPut("txn/c", "c")}, nil)
	txn(c, "txn.value.missing", []clientv3.Cmp{cmp(V("txn/missing"), "=", "")}, []clientv3.Op{clientv3.OpGet("txn/a")}, []clientv3.Op{clientv3.OpGet("txn/b")})
	txn(c, "txn.create-revision", []clientv3.Cmp{cmp(C("txn/a"), "=", aRev)}, []clientv3.Op{clientv3.OpDelete("txn/c", clientv3.WithPrevKV())}, nil)
	txn(c, "txn.mod-revision", []clientv3.Cmp{cmp(M("txn/a"), "<", aRev+1)}, nil, []clientv3.Op{clientv3.OpGet("txn/a", clientv3.WithKeysOnly())})
	txn(c, "txn.mod-revision.missing", []clientv3.Cmp{cmp(M("txn/missing"), "=", 0)}, []clientv3.Op{clientv3.OpGet("txn/missing")}, nil)
	txn(c, "txn.prefix.version", []clientv3.Cmp{cmp(Ver("txn/"), ">", 0).WithPrefix()}, []clientv3.Op{get2}, nil)
	txn(c, "txn.prefix.value.false", []clientv3.Cmp{cmp(V("txn/"), "=", "2").WithPrefix()}, nil, []clientv3.Op{clientv3.OpGet("txn/", clientv3.WithPrefix(), clientv3.WithCountOnly())})
	txn(c, "txn.range.mod-revision", []clientv3.Cmp{cmp(M("txn/a"), ">", 0).WithRange("txn/c")}, []clientv3.Op{clientv3.OpGet("txn/a", clientv3.WithRange("txn/c"), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))}, nil)

	cx, cancel := ctx()
	g, err := c.Grant(cx, 60)
	cancel()
	if err != nil {
		out("txn.lease.grant", "%s", errText(err))
	} else {
		out("txn.lease.grant", "lease=%s ttl=%d", lease(g.ID), g.TTL)
		mustPut(c, "txn/l", "leased", clientv3.WithLease(g.ID))
		txn(c, "txn.lease", []clientv3.Cmp{cmp(clientv3.LeaseValue("txn/l"), "=", g.ID)}, []clientv3.Op{clientv3.OpGet("txn/l")}, nil)
		txn(c, "txn.lease.none", []clientv3.Cmp{cmp(clientv3.LeaseValue("txn/a"), "=", clientv3.NoLease)}, []clientv3.Op{clientv3.OpGet("txn/a")}, nil)
		txn(c, "txn.lease.false", []clientv3.Cmp{cmp(clientv3.LeaseValue("txn/l"), "=", clientv3.NoLease)}, nil, []clientv3.Op{clientv3.OpGet("txn/l", clientv3.WithCountOnly())})
		call("txn.lease.revoke", func(cx context.Context) error { _, err := c.Revoke(cx, g.ID); return err })
	}

	nested := clientv3.OpTxn([]clientv3.Cmp{cmp(V("txn/a"), "=", "2")},
		[]clientv3.Op{clientv3.OpPut("txn/n", "inner"), clientv3.OpGet("txn/n")},
		[]clientv3.Op{clientv3.OpGet("txn/a")})
	txn(c, "txn.nested", nil, []clientv3.Op{nested, clientv3.OpGet("txn/b")}, nil)
	nestedElse := clientv3.OpTxn([]clientv3.Cmp{cmp(V("txn/a"), "=", "nope")}, nil,
		[]clientv3.Op{clientv3.OpDelete("txn/n", clientv3.WithPrevKV())})
	txn(c, "txn.nested.else", []clientv3.Cmp{cmp(V("txn/a"), "=", "nope")}, nil, []clientv3.Op{nestedElse})
	txn(c, "txn.empty", nil, nil, nil)
	txn(c, "txn.duplicate-put", nil, []clientv3.Op{clientv3.OpPut("txn/d", "1"), clientv3.OpPut("txn/d", "2")}, nil)
	txn(c, "txn.put-and-delete", nil, []clientv3.Op{clientv3.OpPut("txn/d", "1"), clientv3.OpDelete("txn/", clientv3.WithPrefix())}, nil)
	txn(c, "txn.duplicate-in-else.untaken", nil, []clientv3.Op{clientv3.OpPut("txn/d", "1")}, []clientv3.Op{clientv3.OpPut("txn/d", "1"), clientv3.OpPut("txn/d", "2")})
	txn(c, "txn.duplicate-nested", nil, []clientv3.Op{clientv3.OpPut("txn/d", "1"), clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("txn/d", "2")}, nil)}, nil)
	txn(c, "txn.get-then-put-same", nil, []clientv3.Op{clientv3.OpGet("txn/d"), clientv3.OpPut("txn/d", "1"), clientv3.OpGet("txn/d")}, nil)
	many := make([]clientv3.Op, txnOpsMax+1)
	for i := range many {
		many[i] = clientv3.OpPut(fmt.Sprintf("txn/many/%03d", i), "v")
	}
	txn(c, "txn.too-many-ops", nil, many, nil)
	txn(c, "txn.max-ops", nil, many[:txnOpsMax], nil)
	get(c, "txn.max-ops.count", "txn/many/", clientv3.WithPrefix(), clientv3.WithCountOnly())
}

// ttlText is a remaining TTL as "within the granted TTL" (the countdown may differ by a second).
func ttlText(ttl, granted int64) string {
	switch {
	case ttl >= granted-3 && ttl <= granted:
		return "ttl=within-3s-of-granted"
	default:
		return fmt.Sprintf("ttl=%d", ttl)
	}
}

func leaseSteps(c *clientv3.Client) {
	const ttl = 60
	cx, cancel := ctx()
	g, err := c.Grant(cx, ttl)
	cancel()
	if err != nil {
		out("lease.grant", "%s", errText(err))
		return
	}
	out("lease.grant", "lease=%s ttl=%d error=%q", lease(g.ID), g.TTL, g.Error)
	put(c, "lease.put.a", "lease/a", "1", clientv3.WithLease(g.ID))
	put(c, "lease.put.b", "lease/b", "2", clientv3.WithLease(g.ID))
	get(c, "lease.get", "lease/", clientv3.WithPrefix())
	put(c, "lease.put.ignore-lease", "lease/a", "1b", clientv3.WithIgnoreLease(), clientv3.WithPrevKV())
	put(c, "lease.put.c", "lease/c", "3", clientv3.WithLease(g.ID))
	put(c, "lease.put.c.detach", "lease/c", "3b", clientv3.WithPrevKV())
	get(c, "lease.get.after-detach", "lease/", clientv3.WithPrefix())

	cx, cancel = ctx()
	tl, err := c.TimeToLive(cx, g.ID, clientv3.WithAttachedKeys())
	cancel()
	if err != nil {
		out("lease.ttl.keys", "%s", errText(err))
	} else {
		ks := []string{}
		for _, k := range tl.Keys {
			ks = append(ks, string(k))
		}
		sort.Strings(ks)
		out("lease.ttl.keys", "lease=%s granted=%d %s keys=%v", lease(tl.ID), tl.GrantedTTL, ttlText(tl.TTL, tl.GrantedTTL), ks)
	}
	cx, cancel = ctx()
	tl, err = c.TimeToLive(cx, g.ID)
	cancel()
	if err != nil {
		out("lease.ttl", "%s", errText(err))
	} else {
		out("lease.ttl", "lease=%s granted=%d %s keys=%d", lease(tl.ID), tl.GrantedTTL, ttlText(tl.TTL, tl.GrantedTTL), len(tl.Keys))
	}

	cx, cancel = ctx()
	ls, err := c.Leases(cx)
	cancel()
	if err != nil {
		out("lease.leases", "%s", errText(err))
	} else {
		names := []string{}
		for _, l := range ls.Leases {
			names = append(names, lease(l.ID))
		}
		sort.Strings(names)
		out("lease.leases", "%v", names)
	}

	cx, cancel = ctx()
	ka, err := c.KeepAliveOnce(cx, g.ID)
	cancel()
	if err != nil {
		out("lease.keep-alive-once", "%s", errText(err))
	} else {
		out("lease.keep-alive-once", "lease=%s %s", lease(ka.ID), ttlText(ka.TTL, ttl))
	}

	kctx, kcancel := context.WithTimeout(context.Background(), waitTimeout)
	ch, err := c.KeepAlive(kctx, g.ID)
	if err != nil {
		out("lease.keep-alive", "%s", errText(err))
	} else {
		select {
		case r, ok := <-ch:
			if !ok || r == nil {
				out("lease.keep-alive", "channel closed")
			} else {
				out("lease.keep-alive", "lease=%s %s", lease(r.ID), ttlText(r.TTL, ttl))
			}
		case <-kctx.Done():
			out("lease.keep-alive", "timed out")
		}
	}
	kcancel()

	call("lease.revoke", func(cx context.Context) error { _, err := c.Revoke(cx, g.ID); return err })
	get(c, "lease.get.after-revoke", "lease/", clientv3.WithPrefix())

	cx, cancel = ctx()
	tl, err = c.TimeToLive(cx, g.ID)
	cancel()
	if err != nil {
		out("lease.ttl.revoked", "%s", errText(err))
	} else {
		out("lease.ttl.revoked", "lease=%s granted=%d ttl=%d", lease(tl.ID), tl.GrantedTTL, tl.TTL)
	}
	call("lease.keep-alive-once.revoked", func(cx context.Context) error { _, err := c.KeepAliveOnce(cx, g.ID); return err })
	call("lease.revoke.revoked", func(cx context.Context) error { _, err := c.Revoke(cx, g.ID); return err })
	put(c, "lease.put.revoked", "lease/c", "3", clientv3.WithLease(g.ID))
	const unknown = clientv3.LeaseID(0x7fff0000)
	call("lease.revoke.unknown", func(cx context.Context) error { _, err := c.Revoke(cx, unknown); return err })
	cx, cancel = ctx()
	tl, err = c.TimeToLive(cx, unknown, clientv3.WithAttachedKeys())
	cancel()
	if err != nil {
		out("lease.ttl.unknown", "%s", errText(err))
	} else {
		out("lease.ttl.unknown", "granted=%d ttl=%d keys=%d", tl.GrantedTTL, tl.TTL, len(tl.Keys))
	}
	call("lease.keep-alive-once.unknown", func(cx context.Context) error { _, err := c.KeepAliveOnce(cx, unknown); return err })
	cx, cancel = ctx()
	zero, err := c.Grant(cx, 0)
	cancel()
	if err != nil {
		out("lease.grant.zero", "%s", errText(err))
	} else {
		out("lease.grant.zero", "lease=%s ttl=%d", lease(zero.ID), zero.TTL)
		call("lease.grant.zero.revoke", func(cx context.Context) error { _, err := c.Revoke(cx, zero.ID); return err })
	}

	// A 2 s lease that nobody keeps alive: its key is gone within a few seconds.
	cx, cancel = ctx()
	short, err := c.Grant(cx, 2)
	cancel()
	if err != nil {
		out("lease.short.grant", "%s", errText(err))
		return
	}
	out("lease.short.grant", "lease=%s ttl=%d", lease(short.ID), short.TTL)
	put(c, "lease.short.put", "lease/short", "x", clientv3.WithLease(short.ID))
	deadline := time.Now().Add(waitTimeout)
	expired := false
	for time.Now().Before(deadline) {
		cx, cancel = ctx()
		r, err := c.Get(cx, "lease/short", clientv3.WithCountOnly())
		cancel()
		if err == nil && r.Count == 0 {
			expired = true
			break
		}
		time.Sleep(pollEvery)
	}
	out("lease.short.expired", "%t", expired)
	cx, cancel = ctx()
	tl, err = c.TimeToLive(cx, short.ID)
	cancel()
	if err != nil {
		out("lease.short.ttl", "%s", errText(err))
	} else {
		out("lease.short.ttl", "ttl=%d", tl.TTL)
	}
}

func eventText(ev *clientv3.Event) string {
	s := fmt.Sprintf("%s %s", ev.Type, kv(ev.Kv))
	if ev.PrevKv != nil {
		s += " prev(" + kv(ev.PrevKv) + ")"
	}
	return s
}

// watchEvents reads from ch until n events arrived (or the wait runs out) and prints them.
func watchEvents(step string, ch clientv3.WatchChan, n int) {
	evs := []string{}
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for len(evs) < n {
		select {
		case r, ok := <-ch:
			if !ok {
				out(step, "closed after %v", evs)
				return
			}
			if err := r.Err(); err != nil {
				out(step, "%s compact=%s canceled=%t after %v", errText(err), rev(r.CompactRevision), r.Canceled, evs)
				return
			}
			for _, ev := range r.Events {
				evs = append(evs, eventText(ev))
			}
		case <-timer.C:
			out(step, "timed out after %v", evs)
			return
		}
	}
	out(step, "%s", strings.Join(evs, "; "))
}

// firstResponse is the next watch response, or nil once the wait ran out or the channel closed.
func firstResponse(ch clientv3.WatchChan) (*clientv3.WatchResponse, string) {
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, "closed"
		}
		return &r, ""
	case <-time.After(waitTimeout):
		return nil, "timed out"
	}
}

func watchSteps(c *clientv3.Client) {
	start := mustPut(c, "watch/a", "1")
	mustPut(c, "watch/a", "2")
	del(c, "watch.setup.delete", "watch/a")
	mustPut(c, "watch/b", "1")

	wctx, wcancel := context.WithCancel(context.Background())
	watchEvents("watch.history", c.Watch(wctx, "watch/", clientv3.WithPrefix(), clientv3.WithRev(start)), 4)
	watchEvents("watch.history.key", c.Watch(wctx, "watch/a", clientv3.WithRev(start), clientv3.WithPrevKV()), 3)
	watchEvents("watch.history.no-delete", c.Watch(wctx, "watch/", clientv3.WithPrefix(), clientv3.WithRev(start), clientv3.WithFilterDelete()), 3)
	watchEvents("watch.history.no-put", c.Watch(wctx, "watch/", clientv3.WithPrefix(), clientv3.WithRev(start), clientv3.WithFilterPut()), 1)
	watchEvents("watch.history.range", c.Watch(wctx, "watch/a", clientv3.WithRange("watch/b"), clientv3.WithRev(start+1)), 2)
	watchEvents("watch.history.from-key", c.Watch(wctx, "watch/b", clientv3.WithFromKey(), clientv3.WithRev(start)), 1)
	wcancel()

	// A live watch: created notification first, then events as they happen.
	wctx, wcancel = context.WithCancel(context.Background())
	ch := c.Watch(wctx, "watch/live/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	r, why := firstResponse(ch)
	if r == nil {
		out("watch.live.created", "%s", why)
	} else {
		out("watch.live.created", "created=%t events=%d rev=%s", r.Created, len(r.Events), rev(r.Header.Revision))
	}
	mustPut(c, "watch/live/x", "1")
	mustPut(c, "watch/live/x", "2")
	mustPut(c, "watch/other", "ignored")
	del(c, "watch.live.delete", "watch/live/x")
	watchEvents("watch.live.events", ch, 3)
	wcancel()
	closed := false
	timer := time.NewTimer(waitTimeout)
	for !closed {
		select {
		case _, ok := <-ch:
			closed = !ok
		case <-timer.C:
			closed = true
			out("watch.live.cancel", "timed out")
		}
	}
	timer.Stop()
	if !steps["watch.live.cancel"] {
		out("watch.live.cancel", "channel closed")
	}

	// A watch from a revision not written yet: the events from that revision on, when they come.
	future := currentRev(c) + 2
	wctx, wcancel = context.WithCancel(context.Background())
	fch := c.Watch(wctx, "watch/future", clientv3.WithRev(future))
	mustPut(c, "watch/future", "1")
	mustPut(c, "watch/future", "2")
	mustPut(c, "watch/future", "3")
	watchEvents("watch.future", fch, 2)
	wcancel()

	// A progress notification on request, on a separate watcher.
	w := clientv3.NewWatcher(c)
	pctx, pcancel := context.WithCancel(context.Background())
	pch := w.Watch(pctx, "watch/progress", clientv3.WithCreatedNotify())
	r, why = firstResponse(pch)
	if r == nil {
		out("watch.progress.created", "%s", why)
	} else {
		out("watch.progress.created", "created=%t", r.Created)
	}
	cx, cancel := ctx()
	err := w.RequestProgress(cx)
	cancel()
	out("watch.progress.request", "%s", errText(err))
	r, why = firstResponse(pch)
	if r == nil {
		out("watch.progress.notify", "%s", why)
	} else {
		out("watch.progress.notify", "progress=%t events=%d rev=%s", r.IsProgressNotify(), len(r.Events), rev(r.Header.Revision))
	}
	pcancel()
	w.Close()

	// Two watches on the same key through one client share a stream; both see the event.
	wctx, wcancel = context.WithCancel(context.Background())
	c1 := c.Watch(wctx, "watch/shared")
	c2 := c.Watch(wctx, "watch/shared", clientv3.WithPrevKV())
	// The watches are registered before the put: created notifications were not asked for, so
	// wait for the server to have them by a round trip through a third, created-notify watch.
	r, _ = firstResponse(c.Watch(wctx, "watch/sync", clientv3.WithCreatedNotify()))
	_ = r
	mustPut(c, "watch/shared", "s")
	watchEvents("watch.shared.1", c1, 1)
	watchEvents("watch.shared.2", c2, 1)
	wcancel()
}

func compactSteps(c *clientv3.Client) {
	now := currentRev(c)
	target := base + 6
	cx, cancel := ctx()
	_, err := c.Compact(cx, target)
	cancel()
	out("compact", "rev=%s %s", rev(target), errText(err))
	get(c, "compact.get.compacted", "kv/a", clientv3.WithRev(target-1))
	get(c, "compact.get.at-compact", "kv/", clientv3.WithPrefix(), clientv3.WithRev(target), clientv3.WithKeysOnly())
	get(c, "compact.get.future", "kv/a", clientv3.WithRev(now+100))
	call("compact.again", func(cx context.Context) error { _, err := c.Compact(cx, target); return err })
	call("compact.older", func(cx context.Context) error { _, err := c.Compact(cx, target-2); return err })
	call("compact.future", func(cx context.Context) error { _, err := c.Compact(cx, now+100); return err })
	cx, cancel = ctx()
	_, err = c.Compact(cx, target+1, clientv3.WithCompactPhysical())
	cancel()
	out("compact.physical", "rev=%s %s", rev(target+1), errText(err))

	wctx, wcancel := context.WithCancel(context.Background())
	ch := c.Watch(wctx, "kv/", clientv3.WithPrefix(), clientv3.WithRev(base+2))
	r, why := firstResponse(ch)
	if r == nil {
		out("compact.watch", "%s", why)
	} else {
		out("compact.watch", "%s compact=%s canceled=%t events=%d", errText(r.Err()), rev(r.CompactRevision), r.Canceled, len(r.Events))
	}
	wcancel()
	wctx, wcancel = context.WithCancel(context.Background())
	watchEvents("compact.watch.at-compact", c.Watch(wctx, "kv/b", clientv3.WithRev(target+1)), 1)
	wcancel()
}

func concurrencySteps(c *clientv3.Client) {
	s1, err := concurrency.NewSession(c, concurrency.WithTTL(10))
	if err != nil {
		out("session.1", "%s", errText(err))
		return
	}
	defer s1.Close()
	out("session.1", "lease=%s", lease(s1.Lease()))
	s2, err := concurrency.NewSession(c, concurrency.WithTTL(10))
	if err != nil {
		out("session.2", "%s", errText(err))
		return
	}
	defer s2.Close()
	out("session.2", "lease=%s", lease(s2.Lease()))
	cx, cancel := ctx()
	tl, err := c.TimeToLive(cx, s1.Lease())
	cancel()
	if err != nil {
		out("session.1.ttl", "%s", errText(err))
	} else {
		out("session.1.ttl", "granted=%d %s", tl.GrantedTTL, ttlText(tl.TTL, 10))
	}

	// Two sessions, one mutex: the second Lock waits for the first Unlock.
	var mu sync.Mutex
	order := []string{}
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	m1 := concurrency.NewMutex(s1, "lock/m")
	m2 := concurrency.NewMutex(s2, "lock/m")
	cx, cancel = ctx()
	err = m1.Lock(cx)
	cancel()
	out("mutex.1.lock", "%s", errText(err))
	note("1 locked")
	get(c, "mutex.holders", "lock/m", clientv3.WithPrefix(), clientv3.WithCountOnly())
	done := make(chan error, 1)
	go func() {
		cx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		err := m2.Lock(cx)
		note("2 locked")
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	get(c, "mutex.waiters", "lock/m", clientv3.WithPrefix(), clientv3.WithCountOnly())
	note("1 unlocking")
	cx, cancel = ctx()
	err = m1.Unlock(cx)
	cancel()
	out("mutex.1.unlock", "%s", errText(err))
	select {
	case err = <-done:
		out("mutex.2.lock", "%s", errText(err))
	case <-time.After(waitTimeout):
		out("mutex.2.lock", "timed out")
	}
	mu.Lock()
	out("mutex.order", "%s", strings.Join(order, ", "))
	mu.Unlock()
	cx, cancel = ctx()
	r, err := c.Get(cx, m2.Key())
	cancel()
	if err != nil {
		out("mutex.2.key", "%s", errText(err))
	} else {
		out("mutex.2.key", "count=%d lease=%s owner=%t", r.Count, lease(clientv3.LeaseID(r.Kvs[0].Lease)), strings.HasPrefix(m2.Key(), "lock/m/"))
	}
	cx, cancel = ctx()
	err = m2.Unlock(cx)
	cancel()
	out("mutex.2.unlock", "%s", errText(err))
	get(c, "mutex.after", "lock/m", clientv3.WithPrefix(), clientv3.WithCountOnly())

	// Elections.
	e1 := concurrency.NewElection(s1, "elect/e")
	e2 := concurrency.NewElection(s2, "elect/e")
	cx, cancel = ctx()
	_, err = e1.Leader(cx)
	cancel()
	out("election.leader.none", "%s", errText(err))
	cx, cancel = ctx()
	err = e1.Campaign(cx, "v1")
	cancel()
	out("election.1.campaign", "%s", errText(err))
	leader := func(step string) {
		cx, cancel := ctx()
		defer cancel()
		r, err := e2.Leader(cx)
		if err != nil {
			out(step, "%s", errText(err))
			return
		}
		out(step, "value=%q lease=%s", r.Kvs[0].Value, lease(clientv3.LeaseID(r.Kvs[0].Lease)))
	}
	leader("election.leader.1")
	octx, ocancel := context.WithTimeout(context.Background(), waitTimeout)
	obs := e2.Observe(octx)
	select {
	case r, ok := <-obs:
		if ok && len(r.Kvs) > 0 {
			out("election.observe.first", "value=%q", r.Kvs[0].Value)
		} else {
			out("election.observe.first", "closed")
		}
	case <-octx.Done():
		out("election.observe.first", "timed out")
	}
	cx, cancel = ctx()
	err = e1.Proclaim(cx, "v2")
	cancel()
	out("election.1.proclaim", "%s", errText(err))
	leader("election.leader.proclaimed")
	cx, cancel = ctx()
	err = e2.Proclaim(cx, "x")
	cancel()
	out("election.2.proclaim.not-leader", "%s", errText(err))
	campaigned := make(chan error, 1)
	go func() {
		cx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		campaigned <- e2.Campaign(cx, "v3")
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err = <-campaigned:
		out("election.2.waits", "no: %s", errText(err))
	default:
		out("election.2.waits", "yes")
	}
	cx, cancel = ctx()
	err = e1.Resign(cx)
	cancel()
	out("election.1.resign", "%s", errText(err))
	select {
	case err = <-campaigned:
		out("election.2.campaign", "%s", errText(err))
	case <-time.After(waitTimeout):
		out("election.2.campaign", "timed out")
	}
	leader("election.leader.2")
	seen := []string{}
	for found := false; !found; {
		select {
		case r, ok := <-obs:
			if !ok {
				found = true
				break
			}
			if len(r.Kvs) > 0 {
				v := string(r.Kvs[0].Value)
				if len(seen) == 0 || seen[len(seen)-1] != v {
					seen = append(seen, v)
				}
				found = v == "v3"
			}
		case <-octx.Done():
			found = true
		}
	}
	out("election.observe.until-v3", "last=%q", seen[len(seen)-1:])
	ocancel()
	cx, cancel = ctx()
	err = e2.Resign(cx)
	cancel()
	out("election.2.resign", "%s", errText(err))

	// A software transaction whose first attempt conflicts with a write behind its back.
	mustPut(c, "stm/x", "1")
	mustPut(c, "stm/y", "10")
	attempts := 0
	cx, cancel = context.WithTimeout(context.Background(), waitTimeout)
	tr, err := concurrency.NewSTM(c, func(s concurrency.STM) error {
		attempts++
		x := s.Get("stm/x")
		y := s.Get("stm/y")
		if attempts == 1 {
			mustPut(c, "stm/x", "2")
		}
		s.Put("stm/x", x+"+")
		s.Put("stm/y", y+"-"+x)
		return nil
	}, concurrency.WithAbortContext(cx))
	cancel()
	if err != nil {
		out("stm", "attempts=%d %s", attempts, errText(err))
	} else {
		out("stm", "attempts=%d succeeded=%t rev=%s", attempts, tr.Succeeded, rev(tr.Header.Revision))
	}
	get(c, "stm.after", "stm/", clientv3.WithPrefix())
	for _, iso := range []struct {
		name string
		iso  concurrency.Isolation
	}{{"serializable-snapshot", concurrency.SerializableSnapshot}, {"serializable", concurrency.Serializable}, {"repeatable-reads", concurrency.RepeatableReads}, {"read-committed", concurrency.ReadCommitted}} {
		cx, cancel = context.WithTimeout(context.Background(), waitTimeout)
		tr, err := concurrency.NewSTM(c, func(s concurrency.STM) error {
			s.Put("stm/iso/"+iso.name, s.Get("stm/y"))
			s.Del("stm/iso/missing")
			return nil
		}, concurrency.WithAbortContext(cx), concurrency.WithIsolation(iso.iso))
		cancel()
		if err != nil {
			out("stm."+iso.name, "%s", errText(err))
		} else {
			out("stm."+iso.name, "succeeded=%t", tr.Succeeded)
		}
	}
	get(c, "stm.iso.after", "stm/iso/", clientv3.WithPrefix())

	cx, cancel = ctx()
	err = s1.Close()
	cancel()
	out("session.1.close", "%s", errText(err))
	cx, cancel = ctx()
	tl, err = c.TimeToLive(cx, s1.Lease())
	cancel()
	if err != nil {
		out("session.1.ttl.closed", "%s", errText(err))
	} else {
		out("session.1.ttl.closed", "ttl=%d", tl.TTL)
	}
	select {
	case <-s1.Done():
		out("session.1.done", "true")
	case <-time.After(waitTimeout):
		out("session.1.done", "timed out")
	}
}

// confChangePause comes before each membership change. etcd's raft drops a configuration change
// proposed while the previous one is not yet applied in raft's own bookkeeping (it becomes an
// empty entry), and etcd 3.4 then never answers the call: with changes back to back, etcd itself
// now and then times out ("context deadline exceeded") where it otherwise answers.
func confChangePause() { time.Sleep(confChangeGap) }

func maintenanceSteps(c *clientv3.Client) {
	cx, cancel := ctx()
	st, err := c.Status(cx, endpoint)
	cancel()
	if err != nil {
		out("status", "%s", errText(err))
	} else {
		out("status", "db-size>0=%t in-use<=size=%t leader-is-self=%t raft-index>0=%t applied>0=%t version-3.x=%t errors=%v learner=%t",
			st.DbSize > 0, st.DbSizeInUse <= st.DbSize, st.Leader == st.Header.MemberId, st.RaftIndex > 0, st.RaftAppliedIndex > 0,
			strings.HasPrefix(st.Version, "3."), st.Errors, st.IsLearner)
	}
	cx, cancel = ctx()
	al, err := c.AlarmList(cx)
	cancel()
	if err != nil {
		out("alarm.list", "%s", errText(err))
	} else {
		out("alarm.list", "alarms=%d", len(al.Alarms))
	}
	call("defragment", func(cx context.Context) error { _, err := c.Defragment(cx, endpoint); return err })
	get(c, "defragment.get", "kv/a")
	cx, cancel = ctx()
	hk, err := c.HashKV(cx, endpoint, 0)
	cancel()
	if err != nil {
		out("hash-kv", "%s", errText(err))
	} else {
		out("hash-kv", "compact=%s", rev(hk.CompactRevision))
	}
	cx, cancel = ctx()
	hk2, err := c.HashKV(cx, endpoint, 0)
	cancel()
	if err != nil || hk == nil {
		out("hash-kv.again", "%s", errText(err))
	} else {
		out("hash-kv.again", "same=%t", hk.Hash == hk2.Hash)
	}
	cx, cancel = context.WithTimeout(context.Background(), waitTimeout)
	rc, err := c.Snapshot(cx)
	if err != nil {
		out("snapshot", "%s", errText(err))
	} else {
		n, err := io.Copy(ioutil.Discard, rc)
		rc.Close()
		out("snapshot", "size>0=%t %s", n > 0, errText(err))
	}
	cancel()
	cx, cancel = ctx()
	ml, err := c.MemberList(cx)
	cancel()
	if err != nil {
		out("member.list", "%s", errText(err))
	} else {
		parts := []string{}
		for _, m := range ml.Members {
			parts = append(parts, fmt.Sprintf("name=%s client-urls=%d peer-urls=%d learner=%t", m.Name, len(m.ClientURLs), len(m.PeerURLs), m.IsLearner))
		}
		out("member.list", "members=%d %v", len(ml.Members), parts)
	}
	call("alarm.disarm.none", func(cx context.Context) error { _, err := c.AlarmDisarm(cx, &clientv3.AlarmMember{}); return err })
	call("move-leader.unknown", func(cx context.Context) error { _, err := c.MoveLeader(cx, 0x1234); return err })
	confChangePause()
	call("member.remove.unknown", func(cx context.Context) error { _, err := c.MemberRemove(cx, 0x1234); return err })
	confChangePause()
	call("member.update.unknown", func(cx context.Context) error {
		_, err := c.MemberUpdate(cx, 0x1234, []string{"http://127.0.0.1:1"})
		return err
	})
	confChangePause()
	call("member.promote.unknown", func(cx context.Context) error { _, err := c.MemberPromote(cx, 0x1234); return err })

	// A learner that never starts: it does not count for the quorum, cannot be promoted while
	// it is not in sync, and is removed again.
	confChangePause()
	cx, cancel = ctx()
	added, err := c.MemberAddAsLearner(cx, []string{"http://127.0.0.1:9"})
	cancel()
	if err != nil {
		out("member.add-learner", "%s", errText(err))
		return
	}
	learners := 0
	for _, m := range added.Members {
		if m.IsLearner {
			learners++
		}
	}
	out("member.add-learner", "members=%d learners=%d new-is-learner=%t new-peer-urls=%v new-name=%q",
		len(added.Members), learners, added.Member.IsLearner, added.Member.PeerURLs, added.Member.Name)
	// Another set of peer URLs, so that the new member's id (a hash of the URLs and the time in
	// seconds) differs from the learner's and the URL that is in use already is what fails.
	confChangePause()
	call("member.add-learner.url-in-use", func(cx context.Context) error {
		_, err := c.MemberAddAsLearner(cx, []string{"http://127.0.0.1:10", "http://127.0.0.1:9"})
		return err
	})
	confChangePause()
	call("member.promote.not-in-sync", func(cx context.Context) error { _, err := c.MemberPromote(cx, added.Member.ID); return err })
	put(c, "member.learner.put", "member/k", "v")
	confChangePause()
	call("member.remove.learner", func(cx context.Context) error { _, err := c.MemberRemove(cx, added.Member.ID); return err })
	cx, cancel = ctx()
	ml, err = c.MemberList(cx)
	cancel()
	if err != nil {
		out("member.list.after-remove", "%s", errText(err))
	} else {
		out("member.list.after-remove", "members=%d", len(ml.Members))
	}
}

func errorSteps(c *clientv3.Client) {
	put(c, "error.too-large", "err/big", strings.Repeat("x", tooLargeBytes))
	call("error.large-ok", func(cx context.Context) error {
		_, err := c.Put(cx, "err/large", strings.Repeat("y", largeBytes))
		return err
	})
	cx, cancel := ctx()
	r, err := c.Get(cx, "err/large")
	cancel()
	if err != nil {
		out("error.large-get", "%s", errText(err))
	} else {
		out("error.large-get", "count=%d len=%d", r.Count, len(r.Kvs[0].Value))
	}
	txn(c, "error.txn.too-large", nil, []clientv3.Op{clientv3.OpPut("err/t1", strings.Repeat("a", 800*1024)), clientv3.OpPut("err/t2", strings.Repeat("b", 800*1024))}, nil)
	txn(c, "error.txn.empty-key", nil, []clientv3.Op{clientv3.OpPut("", "v")}, nil)
	put(c, "error.put.unknown-lease", "err/l", "v", clientv3.WithLease(0x7fff0001))
	call("error.get.negative-rev", func(cx context.Context) error {
		_, err := c.Do(cx, clientv3.OpGet("err/x", clientv3.WithRev(-1)))
		return err
	})
}

func newClient(user, password string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: dialTimeout,
		Username:    user,
		Password:    password,
	})
}

func authSteps(c *clientv3.Client) {
	call("auth.role.add", func(cx context.Context) error { _, err := c.RoleAdd(cx, "app"); return err })
	call("auth.role.add.again", func(cx context.Context) error { _, err := c.RoleAdd(cx, "app"); return err })
	call("auth.role.grant", func(cx context.Context) error {
		_, err := c.RoleGrantPermission(cx, "app", "auth/app/", clientv3.GetPrefixRangeEnd("auth/app/"), clientv3.PermissionType(clientv3.PermReadWrite))
		return err
	})
	call("auth.role.grant.read", func(cx context.Context) error {
		_, err := c.RoleGrantPermission(cx, "app", "auth/ro", "", clientv3.PermissionType(clientv3.PermRead))
		return err
	})
	cx, cancel := ctx()
	rg, err := c.RoleGet(cx, "app")
	cancel()
	if err != nil {
		out("auth.role.get", "%s", errText(err))
	} else {
		perms := []string{}
		for _, p := range rg.Perm {
			perms = append(perms, fmt.Sprintf("%s[%q,%q)", p.PermType, p.Key, p.RangeEnd))
		}
		out("auth.role.get", "%v", perms)
	}
	call("auth.role.get.missing", func(cx context.Context) error { _, err := c.RoleGet(cx, "nope"); return err })
	call("auth.user.add", func(cx context.Context) error { _, err := c.UserAdd(cx, "alice", "pw"); return err })
	call("auth.user.add.again", func(cx context.Context) error { _, err := c.UserAdd(cx, "alice", "pw"); return err })
	call("auth.user.add.empty", func(cx context.Context) error { _, err := c.UserAdd(cx, "", "pw"); return err })
	call("auth.user.grant", func(cx context.Context) error { _, err := c.UserGrantRole(cx, "alice", "app"); return err })
	call("auth.user.grant.missing-role", func(cx context.Context) error { _, err := c.UserGrantRole(cx, "alice", "nope"); return err })
	call("auth.user.grant.missing-user", func(cx context.Context) error { _, err := c.UserGrantRole(cx, "nobody", "app"); return err })
	call("auth.enable.no-root", func(cx context.Context) error { _, err := c.AuthEnable(cx); return err })
	call("auth.root.add", func(cx context.Context) error { _, err := c.UserAdd(cx, "root", "rootpw"); return err })
	call("auth.enable.no-root-role", func(cx context.Context) error { _, err := c.AuthEnable(cx); return err })
	call("auth.root.grant", func(cx context.Context) error { _, err := c.UserGrantRole(cx, "root", "root"); return err })
	cx, cancel = ctx()
	ug, err := c.UserGet(cx, "alice")
	cancel()
	if err != nil {
		out("auth.user.get", "%s", errText(err))
	} else {
		out("auth.user.get", "roles=%v", ug.Roles)
	}
	cx, cancel = ctx()
	ul, err := c.UserList(cx)
	cancel()
	if err != nil {
		out("auth.user.list", "%s", errText(err))
	} else {
		out("auth.user.list", "%v", ul.Users)
	}
	cx, cancel = ctx()
	rl, err := c.RoleList(cx)
	cancel()
	if err != nil {
		out("auth.role.list", "%s", errText(err))
	} else {
		out("auth.role.list", "%v", rl.Roles)
	}
	mustPut(c, "auth/app/pre", "p")
	call("auth.enable", func(cx context.Context) error { _, err := c.AuthEnable(cx); return err })

	root, err := newClient("root", "rootpw")
	if err != nil {
		out("auth.root.client", "%s", errText(err))
		// Whatever failed, auth must not stay on; the unauthenticated client cannot turn it off.
		return
	}
	defer root.Close()
	out("auth.root.client", "ok")
	defer func() {
		cx, cancel := ctx()
		defer cancel()
		out("auth.disable", "%s", errText(func() error { _, err := root.AuthDisable(cx); return err }()))
		put(c, "auth.disabled.put", "auth/free", "f")
	}()

	put(c, "auth.anonymous.put", "auth/app/anon", "x")
	get(c, "auth.anonymous.get", "auth/app/pre")
	alice, err := newClient("alice", "pw")
	if err != nil {
		out("auth.alice.client", "%s", errText(err))
	} else {
		defer alice.Close()
		out("auth.alice.client", "ok")
		put(alice, "auth.alice.put.allowed", "auth/app/x", "1")
		get(alice, "auth.alice.get.allowed", "auth/app/", clientv3.WithPrefix())
		put(alice, "auth.alice.put.denied", "other/x", "1")
		get(alice, "auth.alice.get.denied", "other/x")
		get(alice, "auth.alice.get.read-only", "auth/ro")
		put(alice, "auth.alice.put.read-only", "auth/ro", "1")
		del(alice, "auth.alice.delete.allowed", "auth/app/x")
		txn(alice, "auth.alice.txn.denied", nil, []clientv3.Op{clientv3.OpPut("auth/app/y", "1"), clientv3.OpPut("other/y", "1")}, nil)
		wctx, wcancel := context.WithCancel(context.Background())
		r, why := firstResponse(alice.Watch(wctx, "other/x"))
		if r == nil {
			out("auth.alice.watch.denied", "%s", why)
		} else {
			out("auth.alice.watch.denied", "%s canceled=%t", errText(r.Err()), r.Canceled)
		}
		wcancel()
		// Changes to permissions reach a client that holds a token already.
		cx, cancel := ctx()
		_, err = root.RoleGrantPermission(cx, "app", "other/", clientv3.GetPrefixRangeEnd("other/"), clientv3.PermissionType(clientv3.PermWrite))
		cancel()
		out("auth.root.grant-other", "%s", errText(err))
		put(alice, "auth.alice.put.granted", "other/x", "2")
		get(alice, "auth.alice.get.write-only", "other/x")
		cx, cancel = ctx()
		_, err = root.RoleRevokePermission(cx, "app", "other/", clientv3.GetPrefixRangeEnd("other/"))
		cancel()
		out("auth.root.revoke-other", "%s", errText(err))
		put(alice, "auth.alice.put.revoked", "other/x", "3")
		cx, cancel = ctx()
		_, err = root.RoleRevokePermission(cx, "app", "other/", clientv3.GetPrefixRangeEnd("other/"))
		cancel()
		out("auth.root.revoke-other.again", "%s", errText(err))
		cx, cancel = ctx()
		_, err = alice.UserAdd(cx, "mallory", "pw")
		cancel()
		out("auth.alice.user-add", "%s", errText(err))
		cx, cancel = ctx()
		_, err = alice.Grant(cx, 30)
		cancel()
		out("auth.alice.lease-grant", "%s", errText(err))
	}
	bad, err := newClient("alice", "wrong")
	if err == nil {
		defer bad.Close()
		put(bad, "auth.wrong-password", "auth/app/z", "1")
	} else {
		out("auth.wrong-password", "%s", errText(err))
	}
	unknown, err := newClient("nobody", "pw")
	if err == nil {
		defer unknown.Close()
		put(unknown, "auth.unknown-user", "auth/app/z", "1")
	} else {
		out("auth.unknown-user", "%s", errText(err))
	}
	put(root, "auth.root.put", "other/root", "r")
	get(root, "auth.root.get", "auth/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	cx, cancel = ctx()
	_, err = root.UserRevokeRole(cx, "alice", "app")
	cancel()
	out("auth.alice.revoke-role", "%s", errText(err))
	if alice != nil {
		get(alice, "auth.alice.get.role-revoked", "auth/app/pre")
	}
	cx, cancel = ctx()
	_, err = root.UserChangePassword(cx, "alice", "pw2")
	cancel()
	out("auth.alice.change-password", "%s", errText(err))
	if again, err := newClient("alice", "pw2"); err != nil {
		out("auth.alice.new-password", "%s", errText(err))
	} else {
		get(again, "auth.alice.new-password", "auth/app/pre")
		again.Close()
	}
	if old, err := newClient("alice", "pw"); err != nil {
		out("auth.alice.old-password", "%s", errText(err))
	} else {
		get(old, "auth.alice.old-password", "auth/app/pre")
		old.Close()
	}
	cx, cancel = ctx()
	_, err = root.UserDelete(cx, "root")
	cancel()
	out("auth.root.delete", "%s", errText(err))
	cx, cancel = ctx()
	_, err = root.UserRevokeRole(cx, "root", "root")
	cancel()
	out("auth.root.revoke-root", "%s", errText(err))
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go-clientv3 ENDPOINT")
		os.Exit(2)
	}
	endpoint = os.Args[1]
	clientv3.SetLogger(grpclog.NewLoggerV2(ioutil.Discard, ioutil.Discard, os.Stderr))
	c, err := newClient("", "")
	if err != nil {
		fmt.Fprintf(os.Stderr, "connect %s: %v\n", endpoint, err)
		os.Exit(1)
	}
	defer c.Close()
	base = currentRev(c)
	out("rev-base", "read")
	kvSteps(c)
	txnSteps(c)
	leaseSteps(c)
	watchSteps(c)
	compactSteps(c)
	concurrencySteps(c)
	maintenanceSteps(c)
	errorSteps(c)
	authSteps(c)
	out("end", "%d steps", len(steps)+1)
}
