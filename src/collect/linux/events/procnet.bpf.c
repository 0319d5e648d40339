// SPDX-License-Identifier: MIT
//
// procnet tier T0: socket lifecycle and owners from kernel events.
//
// Built by build.rs with clang (-target bpf, CO-RE) and loaded by libbpf
// (src/collect/linux/events/mod.rs). No vmlinux.h: the few kernel struct
// members read are declared below with preserve_access_index, so libbpf
// relocates them against the running kernel's BTF.
//
// What it does:
// Only BTF tracepoints (tp_btf) are used: they need no kprobes and no
// ftrace trampolines (fentry/fexit), which some kernels refuse or lack.
//
// - The owner of a socket (tgid, comm, start time) is taken in process
//   context: at connect (the SYN_SENT transition runs in the connecting
//   task) and at every send/receive (sock_send_length/sock_recv_length:
//   the task doing the I/O; an accepted socket gets its owner at its
//   first read). It lives in socket-local storage, so it goes away with
//   the socket.
// - When a TCP socket reaches TCP_CLOSE, one record with its endpoints,
//   owner and the socket's own absolute counters goes to the ring buffer:
//   a connection that lived a millisecond still has its process on both
//   ends and its exact bytes.
// - UDP keeps no byte counters in the kernel: the bytes each send/receive
//   call really moved (the return value, never the size argument) are
//   added up per socket in `udp_socks`.
// - A record that does not fit in the ring buffer is counted in `lost`;
//   user space then reconciles with a full walk.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define TCP_SYN_SENT 2
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_LISTEN 10
#define SOCK_DONE 1 /* enum sock_flags: a FIN was received */
#define MSG_PEEK 2

struct in6_addr {
	__u8 u6_addr8[16];
} __attribute__((preserve_access_index));

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct sock_common {
	possible_net_t skc_net;
	volatile unsigned char skc_state;
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
	unsigned long skc_flags; /* sk->sk_flags */
} __attribute__((preserve_access_index));

typedef struct {
	__u32 val;
} kuid_t;

struct file;
struct sk_buff;

struct socket {
	struct file *file;
} __attribute__((preserve_access_index));

struct inode {
	unsigned long i_ino;
} __attribute__((preserve_access_index));

/* A socket's inode is allocated with it (net/socket.c sock_alloc_inode). */
struct socket_alloc {
	struct socket socket;
	struct inode vfs_inode;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
	struct socket *sk_socket;
	kuid_t sk_uid;
} __attribute__((preserve_access_index));

struct tcp_sock {
	__u64 bytes_received;
	__u64 bytes_sent;
	__u64 bytes_retrans;
	__u32 srtt_us;
	__u32 total_retrans;
	__u32 snd_nxt; /* the next byte to transmit */
	__u32 write_seq; /* one past the last byte the process queued */
} __attribute__((preserve_access_index));

struct task_struct {
	__u64 start_boottime;
	struct task_struct *group_leader;
	char comm[16];
} __attribute__((preserve_access_index));

/* What a socket's storage holds. */
struct owner {
	__u32 tgid;
	/* A send left bytes queued, or its record was skipped by the
	   back-off: the ACK hook below writes this socket's counters as the
	   kernel transmits, until all it was given is out. */
	__u32 draining;
	__u64 start_ns; /* the process's start, ns since boot */
	char comm[16];
	/* The local port: the kernel clears it (inet_put_port) just before
	   the TCP_CLOSE transition fires, so it is kept from earlier ones. */
	__u16 sport;
	__u16 _pad2[3];
	/* When this socket last wrote its activity record (kind 4) into
	   tcp_active, bpf_ktime_get_ns(): the back-off below. */
	__u64 last_emit_ns;
};

/* One record to user space; layout mirrored in events/record.rs. */
struct record {
	__u8 kind; /* 1: TCP closed, 2: UDP, 3: TCP state, 4: TCP activity,
		      5: TCP listener closed */
	__u8 family;
	__u8 old_state;
	__u8 has_owner;
	__u32 tgid;
	__u64 start_ns;
	char comm[16];
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* host order */
	__u16 dport; /* host order */
	__u32 retrans;
	__u64 sent;
	__u64 received;
	__u32 srtt_us; /* 8 x smoothed RTT, as the kernel keeps it */
	__u32 fin_received;
	__u64 inode; /* 0: no file refers to the socket (yet) */
	__u32 uid;
	__u8 state; /* the TCP state after this record's event */
	__u8 _pad3[3];
	__u64 ts_ns; /* bpf_ktime_get_ns() at the event (CLOCK_MONOTONIC) */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct owner);
} owners SEC(".maps");

/* UDP sockets that moved bytes, by socket cookie: endpoints, owner and
   byte counts in the record layout. User space reads it every sample
   (live UDP bytes) and reports an entry whose socket left the dump as
   closed, then deletes it. LRU: bounded, the oldest idle go first. */
struct udp_sock_info {
	struct record ends;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct udp_sock_info);
} udp_socks SEC(".maps");

/* 2 MiB: a queue emptied as records arrive by a reader thread (RingReader
 * in mod.rs), not a whole sampling interval's storage. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 << 20);
} records SEC(".maps");

/* TCP sockets that did I/O since user space last drained this map (one
   batch read and delete per sample), by socket cookie: the latest record of
   each, with the socket's own absolute counters. This is the per-socket
   rate limit: however many calls a socket makes, user space reads one
   record per sample, and an idle socket costs nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct record);
} tcp_active SEC(".maps");

/* [0]: records that did not fit in the ring buffer (or tcp_active);
   [1]: UDP send/receive calls counted, so user space can tell that
   nothing changed without reading udp_socks. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* [0]: the least time between two activity records (kind 4) of one
   socket, ns; 0: one per send/receive call. User space raises it when the
   programs' own run time is over budget and lowers it again (see
   events/meter.rs). State changes and closes are never skipped, so a
   socket's counters are exact when it closes. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} activity_gap SEC(".maps");

/* The network namespace procnet's walks see (its own), set by user space
   before loading: sockets of other namespaces (containers) are not in the
   walks, so they are not reported here either. 0: every namespace. */
const volatile __u32 target_netns = 0;

static __always_inline int other_netns(struct sock *sk)
{
	return target_netns && BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) != target_netns;
}

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Makes the current task the socket's owner; the storage either way.
   `*changed` (when given) is set when the owner was another process. */
static __always_inline struct owner *take_owner_of(struct sock *sk, int *changed)
{
	struct owner *o = bpf_sk_storage_get(&owners, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!o)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == 0 || o->tgid == tgid)
		return o;
	if (changed)
		*changed = 1;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	o->tgid = tgid;
	o->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	/* The thread group leader's name, as /proc/<pid>/stat shows it. */
	BPF_CORE_READ_STR_INTO(&o->comm, task, group_leader, comm);
	return o;
}

static __always_inline struct owner *take_owner(struct sock *sk)
{
	return take_owner_of(sk, 0);
}

/* Whether this call's activity record is skipped: the socket wrote one
   less than `activity_gap` ago and the process doing the I/O is the same
   (a new one is said at once: the socket's bytes are credited to it). */
static __always_inline int backed_off(struct owner *o, int owner_changed)
{
	if (!o)
		return 0;
	__u32 zero = 0;
	__u64 *gap = bpf_map_lookup_elem(&activity_gap, &zero);
	__u64 now = bpf_ktime_get_ns();
	if (gap && *gap && !owner_changed && now - o->last_emit_ns < *gap)
		return 1;
	o->last_emit_ns = now;
	return 0;
}

static __always_inline void fill_ends(struct record *r, struct sock *sk)
{
	r->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	r->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	r->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (r->family == AF_INET6) {
		BPF_CORE_READ_INTO(&r->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&r->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		BPF_CORE_READ_INTO((__u32 *)r->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)r->daddr, sk, __sk_common.skc_daddr);
	}
}

static __always_inline void count_udp_io(void)
{
	__u32 one = 1;
	__u64 *n = bpf_map_lookup_elem(&lost, &one);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* The socket's inode number, 0 before accept() gave it a file. */
static __always_inline __u64 sock_inode(struct sock *sk)
{
	struct socket *sock = BPF_CORE_READ(sk, sk_socket);
	if (!sock)
		return 0;
	return BPF_CORE_READ((struct socket_alloc *)sock, vfs_inode.i_ino);
}

static __always_inline void copy_owner(struct record *r, struct owner *o)
{
	if (!o || o->tgid == 0)
		return;
	r->has_owner = 1;
	r->tgid = o->tgid;
	r->start_ns = o->start_ns;
	__builtin_memcpy(r->comm, o->comm, sizeof(r->comm));
}

/* A TCP socket's own counters, identity and owner into `r`. */
static __always_inline void fill_tcp(struct record *r, struct sock *sk, struct owner *o)
{
	fill_ends(r, sk);
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u64 sent = BPF_CORE_READ(tp, bytes_sent);
	__u64 retrans = BPF_CORE_READ(tp, bytes_retrans);
	r->sent = sent > retrans ? sent - retrans : 0;
	r->received = BPF_CORE_READ(tp, bytes_received);
	r->retrans = BPF_CORE_READ(tp, total_retrans);
	r->srtt_us = BPF_CORE_READ(tp, srtt_us);
	r->fin_received = (BPF_CORE_READ(sk, __sk_common.skc_flags) >> SOCK_DONE) & 1;
	r->inode = sock_inode(sk);
	r->uid = BPF_CORE_READ(sk, sk_uid.val);
	r->ts_ns = bpf_ktime_get_ns();
	copy_owner(r, o);
	if (r->sport == 0 && o)
		r->sport = o->sport;
}

/* Writes the socket's activity record (kind 4: its latest counters) into
   tcp_active, where user space reads it at the next sample. */
static __always_inline void put_activity(struct sock *sk, struct owner *o)
{
	struct record r;
	__builtin_memset(&r, 0, sizeof(r));
	r.kind = 4;
	r.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	fill_tcp(&r, sk, o);
	__u64 cookie = bpf_get_socket_cookie(sk);
	if (bpf_map_update_elem(&tcp_active, &cookie, &r, BPF_ANY))
		count_lost();
}

/* Whether bytes the process wrote are still queued, not yet transmitted
   (`bytes_sent` grows as they go out, not when they are acked). */
static __always_inline int unsent(struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	return BPF_CORE_READ(tp, snd_nxt) != BPF_CORE_READ(tp, write_seq);
}

/* Every state a TCP socket enters goes to user space (kind 3: the socket
   table there is kept from these, not walked), and its end (kind 1, or 5
   for a listener, which is no connection to report as closed). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state, struct sock *sk, int oldstate, int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP || other_netns(sk))
		return 0;
	struct owner *o;
	if (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN) {
		/* connect() and listen(): run in the owning task. */
		o = take_owner(sk);
	} else {
		o = bpf_sk_storage_get(&owners, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	}
	if (newstate != TCP_CLOSE) {
		/* Remember the local port: the kernel clears it (inet_put_port)
		   before some TCP_CLOSE transitions fire. */
		__u16 num = BPF_CORE_READ(sk, __sk_common.skc_num);
		if (o && num != 0)
			o->sport = num;
	}
	struct record *r = bpf_ringbuf_reserve(&records, sizeof(*r), 0);
	if (!r) {
		count_lost();
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	if (newstate != TCP_CLOSE)
		r->kind = 3;
	else if (oldstate == TCP_LISTEN)
		r->kind = 5;
	else
		r->kind = 1;
	r->old_state = oldstate;
	r->state = newstate;
	fill_tcp(r, sk, o);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* The process doing I/O on a socket (sock_sendmsg/sock_recvmsg, every
   protocol, in process context) owns it; UDP also counts the bytes each
   call really moved (its return value). */
static __always_inline void on_io(struct sock *sk, int ret, int flags, int sending)
{
	if (!sk || other_netns(sk))
		return;
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);
	if (proto == IPPROTO_TCP) {
		int changed = 0;
		struct owner *o = take_owner_of(sk, &changed);
		int skipped = backed_off(o, changed);
		if (!skipped)
			put_activity(sk, o);
		/* A send returns once its bytes are queued; the kernel transmits
		   them later, as ACKs come back, with no call of the process to
		   see it: the ACK hook takes over such a socket's counters. */
		if (sending && o)
			o->draining = skipped || unsent(sk);
		return;
	}
	if (proto != IPPROTO_UDP)
		return;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return;
	__u64 cookie = bpf_get_socket_cookie(sk);
	struct udp_sock_info *u = bpf_map_lookup_elem(&udp_socks, &cookie);
	if (!u) {
		struct udp_sock_info fresh = {};
		bpf_map_update_elem(&udp_socks, &cookie, &fresh, BPF_NOEXIST);
		u = bpf_map_lookup_elem(&udp_socks, &cookie);
		if (!u)
			return;
	}
	/* The endpoints can change (connect after bind): read them again. */
	struct record *r = &u->ends;
	r->kind = 2;
	fill_ends(r, sk);
	struct owner *o = take_owner(sk);
	copy_owner(r, o);
	count_udp_io();
	if (ret <= 0 || (flags & MSG_PEEK))
		return;
	if (sending)
		__sync_fetch_and_add(&r->sent, ret);
	else
		__sync_fetch_and_add(&r->received, ret);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(on_send, struct sock *sk, int ret, int flags)
{
	on_io(sk, ret, flags, 1);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(on_receive, struct sock *sk, int ret, int flags)
{
	on_io(sk, ret, flags, 0);
	return 0;
}

/* At each incoming segment of an established connection (tcp:tcp_probe,
   in softirq: no process context, the owner comes from the socket's
   storage; the segment itself is not yet processed). Only sockets a send
   left draining do anything here: their activity record follows the
   transmission of the queued bytes (within the back-off), and the first
   segment after the last byte went out (its ACK at the latest) always
   writes it, so the counters are exact once the data is out even if the
   process makes no further call. Optional: where the kernel lacks the
   tracepoint the program is not loaded, and those counters wait for the
   socket's next call, its state change or the reconcile walk. */
SEC("tp_btf/tcp_probe")
int BPF_PROG(on_ack, struct sock *sk, struct sk_buff *skb)
{
	struct owner *o = bpf_sk_storage_get(&owners, sk, 0, 0);
	if (!o || !o->draining)
		return 0;
	if (!unsent(sk))
		o->draining = 0;
	else if (backed_off(o, 0))
		return 0;
	put_activity(sk, o);
	return 0;
}
