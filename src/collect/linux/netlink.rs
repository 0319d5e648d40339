//! The netlink `NETLINK_SOCK_DIAG` socket: sends dump requests and feeds
//! the replies to the pure decoder in [`super::inet_diag`].

use super::inet_diag::{self, DiagError, DiagSocket, Progress};
use crate::snapshot::Proto;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Size of one receive. The kernel fills at most ~32 KiB per dump
/// datagram; a larger buffer costs nothing and never truncates.
const RECV_BUF: usize = 128 * 1024;

/// Why a dump failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// A system call on the netlink socket failed.
    #[error("{call}: {source}")]
    Os {
        call: &'static str,
        #[source]
        source: io::Error,
    },
    /// The reply could not be decoded, or the kernel refused the request.
    #[error(transparent)]
    Diag(#[from] DiagError),
}

impl NetlinkError {
    /// True when the kernel has no sock_diag support for this request
    /// (module not loaded, protocol or family not built in).
    pub fn is_unsupported(&self) -> bool {
        let errno = match self {
            NetlinkError::Os { source, .. } => source.raw_os_error(),
            NetlinkError::Diag(DiagError::Kernel { errno }) => Some(*errno),
            NetlinkError::Diag(_) => None,
        };
        matches!(
            errno,
            Some(libc::EPROTONOSUPPORT)
                | Some(libc::EAFNOSUPPORT)
                | Some(libc::ENOENT)
                | Some(libc::EOPNOTSUPP)
                | Some(libc::EINVAL)
        )
    }
}

/// An open `NETLINK_SOCK_DIAG` socket with its receive buffer.
pub struct DiagSocketConn {
    fd: OwnedFd,
    buf: Vec<u8>,
    /// Sockets of the datagram being decoded.
    chunk: Vec<DiagSocket>,
    seq: u32,
}

impl DiagSocketConn {
    /// Opens the socket. Fails with `EPROTONOSUPPORT` (see
    /// [`NetlinkError::is_unsupported`]) on kernels without sock_diag.
    pub fn open() -> Result<DiagSocketConn, NetlinkError> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(NetlinkError::Os {
                call: "socket(AF_NETLINK, NETLINK_SOCK_DIAG)",
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: fd is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(DiagSocketConn {
            fd,
            buf: vec![0u8; RECV_BUF],
            chunk: Vec::with_capacity(256),
            seq: std::process::id().wrapping_mul(7919),
        })
    }

    /// Dumps every `proto` socket of `family` (`AF_INET`/`AF_INET6`) in
    /// every state, handing each to `sink` as it is decoded (so the caller
    /// never holds a second copy of a big table).
    pub fn dump(
        &mut self,
        family: u8,
        proto: Proto,
        sink: &mut impl FnMut(DiagSocket),
    ) -> Result<(), NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let req = inet_diag::build_request(family, proto, seq);
        // SAFETY: an all-zero sockaddr_nl is valid; family set below.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: req and kernel outlive the call; lengths match.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    req.as_ptr().cast(),
                    req.len(),
                    0,
                    (&kernel as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(NetlinkError::Os {
                    call: "sendto(NETLINK_SOCK_DIAG)",
                    source: err,
                });
            }
        }
        loop {
            let (fd, buf) = (self.fd.as_raw_fd(), &mut self.buf);
            // SAFETY: buf is valid for buf.len() writable bytes.
            let n = super::retry_eintr(|| unsafe {
                libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0)
            })
            .map_err(|source| NetlinkError::Os {
                call: "recv(NETLINK_SOCK_DIAG)",
                source,
            })?;
            let n = n.min(self.buf.len());
            if n == 0 {
                return Err(DiagError::Truncated {
                    what: "netlink datagram",
                    offset: 0,
                    len: 0,
                }
                .into());
            }
            self.chunk.clear();
            let progress =
                inet_diag::parse_datagram(&self.buf[..n], proto, family, seq, &mut self.chunk)?;
            self.chunk.drain(..).for_each(&mut *sink);
            if progress == Progress::Done {
                return Ok(());
            }
        }
    }
}
