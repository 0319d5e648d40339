//! Sockets the kernel destroys between two samples, from sock_diag's
//! destroy multicast groups. A connection that opens and closes within one
//! interval never shows up in a dump; its destroy notification still brings
//! its endpoints and final `tcp_info` byte counters. Subscribing needs
//! CAP_NET_ADMIN; without it procnet says so once and carries on.

use super::inet_diag::parse_diag_msg;
use crate::snapshot::{Proto, Socket, UnknownReason};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The payloads of the `SOCK_DIAG_BY_FAMILY` messages in one datagram.
fn notifications(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    let mut off = 0usize;
    std::iter::from_fn(move || loop {
        let header = buf.get(off..off + 16)?;
        let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = u16::from_ne_bytes([header[4], header[5]]);
        let body = buf.get(off + 16..off.checked_add(len)?)?;
        if len < 16 {
            return None;
        }
        off += (len + 3) & !3;
        if kind == SOCK_DIAG_BY_FAMILY {
            return Some(body);
        }
    })
}

/// `SKNLGRP_INET_TCP_DESTROY`, `…_UDP_…`, `SKNLGRP_INET6_TCP_DESTROY`, `…_UDP_…`.
const GROUPS: u32 = 0b1111;
/// At most this many closed sockets wait for the next sample; beyond it
/// they are counted as dropped (a flood of short connections must not
/// grow memory without bound).
const MAX_PENDING: usize = 200_000;

/// A background subscription to socket-destroy notifications.
pub struct DestroyListener {
    pending: Arc<Mutex<Vec<Socket>>>,
    dropped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn subscribe() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed sockaddr_nl is valid; we set family and groups.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = GROUPS;
    // SAFETY: addr outlives the call; the length is exact.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 200_000,
    };
    let size: libc::c_int = 8 * 1024 * 1024;
    // SAFETY: valid option values of the right size; failures are harmless.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &timeout as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    Ok(fd)
}

impl DestroyListener {
    /// Subscribes; fails with EPERM without CAP_NET_ADMIN.
    pub fn start() -> io::Result<DestroyListener> {
        let fd = subscribe()?;
        let pending = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (pending, dropped, stop) = (pending.clone(), dropped.clone(), stop.clone());
            std::thread::Builder::new()
                .name("procnet-destroyed".into())
                .spawn(move || listen(fd, &pending, &dropped, &stop))?
        };
        Ok(DestroyListener {
            pending,
            dropped,
            stop,
            thread: Some(thread),
        })
    }

    /// The sockets destroyed since the last call, and how many were lost
    /// (queue full or kernel buffer overrun) since then.
    /// Whether a notification waits (without taking it).
    pub fn has_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
            || self.dropped.load(Ordering::Relaxed) > 0
    }

    pub fn drain(&self) -> (Vec<Socket>, u64) {
        let sockets = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        (sockets, self.dropped.swap(0, Ordering::Relaxed))
    }
}

impl Drop for DestroyListener {
    fn drop(&mut self) {
        // Not joined: the thread notices `stop` within its receive timeout
        // and exits by itself; waiting for it would add up to that timeout
        // to every exit of a one-shot `procnet snapshot`.
        self.stop.store(true, Ordering::Relaxed);
        drop(self.thread.take());
    }
}

fn listen(fd: OwnedFd, pending: &Mutex<Vec<Socket>>, dropped: &AtomicU64, stop: &AtomicBool) {
    let mut buf = vec![0u8; 256 * 1024];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: buf is a valid writable buffer of its length.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOBUFS) {
                // The kernel dropped notifications: we cannot know how many.
                dropped.fetch_add(1, Ordering::Relaxed);
            }
            continue; // timeout or interrupted: check `stop` again
        }
        let mut queue = pending.lock().unwrap_or_else(|e| e.into_inner());
        for msg in notifications(&buf[..n as usize]) {
            // The protocol is in each message (INET_DIAG_PROTOCOL).
            let Some(Ok(d)) = msg
                .first()
                .map(|&family| parse_diag_msg(msg, Proto::Tcp, family))
            else {
                dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let mut s = super::to_socket(d);
            if s.remote.is_none() {
                continue; // a listener or an unconnected socket closed: no connection
            }
            if queue.len() >= MAX_PENDING {
                dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            s.closed = true;
            // On an orderly close the peer's FIN counts as one received byte.
            s.bytes_received = s.bytes_received.map(|b| b.saturating_sub(1));
            s.unowned_reason = Some(UnknownReason::Exited);
            queue.push(s);
        }
    }
}
