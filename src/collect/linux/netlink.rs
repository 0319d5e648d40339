//! The netlink `NETLINK_SOCK_DIAG` socket: sends dump requests and feeds
//! the replies to the pure decoder in [`super::inet_diag`].

use super::inet_diag::{dump_request, parse_batch, DecodeError};
use crate::collect::CollectError;
use crate::snapshot::{Proto, Socket};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An open sock_diag netlink socket, reused across samples.
pub struct DiagSocket {
    fd: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
}

/// Size of one receive; the kernel fills up to this per `recv`.
const RECV_BUF: usize = 256 * 1024;

impl DiagSocket {
    /// Opens the socket; fails with the OS error when sock_diag is missing.
    pub fn open() -> io::Result<DiagSocket> {
        // SAFETY: plain socket(2) call; the result is checked below.
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
        // SAFETY: fd is a fresh, valid descriptor that we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let size: libc::c_int = 4 * 1024 * 1024;
        // SAFETY: setsockopt with a valid int option; failure is harmless.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &size as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        Ok(DiagSocket {
            fd,
            buf: vec![0u8; RECV_BUF],
            seq: 0,
        })
    }

    /// Dumps every socket of one family and protocol into `out`.
    pub fn dump(
        &mut self,
        family: u8,
        proto: Proto,
        out: &mut Vec<Socket>,
    ) -> Result<(), CollectError> {
        self.seq = self.seq.wrapping_add(1);
        let req = dump_request(family, proto, self.seq);
        // SAFETY: sockaddr_nl zeroed is a valid "kernel" destination.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: req and kernel outlive the call; lengths are exact.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                req.as_ptr() as *const libc::c_void,
                req.len(),
                0,
                &kernel as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(CollectError::Os {
                call: "sendto(NETLINK_SOCK_DIAG)",
                source: io::Error::last_os_error(),
            });
        }
        loop {
            // SAFETY: buf is a valid writable buffer of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr() as *mut libc::c_void,
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(CollectError::Os {
                    call: "recv(NETLINK_SOCK_DIAG)",
                    source: e,
                });
            }
            if n == 0 {
                return Ok(());
            }
            let batch = parse_batch(&self.buf[..n as usize], proto).map_err(|e| match e {
                DecodeError::Errno(errno) => CollectError::Os {
                    call: "sock_diag dump",
                    source: io::Error::from_raw_os_error(errno),
                },
                other => CollectError::Malformed {
                    what: "sock_diag reply",
                    detail: other.to_string(),
                },
            })?;
            out.extend(batch.sockets);
            if batch.done {
                return Ok(());
            }
        }
    }
}
