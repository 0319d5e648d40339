//! Socket owners from a BPF `task_file` iterator: one `read` returns
//! `(socket inode, pid)` for every socket fd of every process, where the
//! `/proc/<pid>/fd` scan needs one `readlink` per fd. Needs root
//! (CAP_BPF + CAP_PERFMON), kernel BTF and the initial pid namespace; when
//! any of that is missing, [`OwnerIter::load`] fails and the collector scans
//! `/proc` instead.

use super::btf;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_ITER_CREATE: libc::c_long = 33;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_ITER: u32 = 28;
const BPF_FUNC_SEQ_WRITE: i32 = 127;
/// `sizeof(union bpf_attr)` as of the uapi we were written against.
const ATTR_LEN: usize = 144;
/// Inode number of the initial pid namespace (`PROC_PID_INIT_INO`).
const INIT_PID_NS: &str = "pid:[4026531836]";

/// Why the iterator could not be set up or read.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("not in the initial pid namespace")]
    PidNamespace,
    #[error("cannot read kernel BTF: {0}")]
    BtfRead(io::Error),
    #[error(transparent)]
    Btf(#[from] btf::BtfError),
    #[error("{call}: {source} (verifier: {log})")]
    Verifier {
        call: &'static str,
        #[source]
        source: io::Error,
        log: String,
    },
    #[error("{call}: {source}")]
    Os {
        call: &'static str,
        #[source]
        source: io::Error,
    },
}

impl BpfError {
    /// True for a failure that can pass: the fd table or the kernel's
    /// memory full for a moment (EMFILE, ENFILE, ENOMEM, ...), where the
    /// iterator is worth trying again later. A verifier refusal, missing
    /// BTF, no permission or another pid namespace stay as they are.
    pub fn is_transient(&self) -> bool {
        let errno = match self {
            BpfError::Os { source, .. } | BpfError::BtfRead(source) => source.raw_os_error(),
            BpfError::Verifier { .. } | BpfError::Btf(_) | BpfError::PidNamespace => None,
        };
        matches!(
            errno,
            Some(
                libc::EMFILE
                    | libc::ENFILE
                    | libc::ENOMEM
                    | libc::ENOBUFS
                    | libc::EAGAIN
                    | libc::EINTR
                    | libc::EBUSY
            )
        )
    }
}

/// A loaded and attached `task_file` iterator program.
pub struct OwnerIter {
    link: OwnedFd,
    buf: Vec<u8>,
}

pub(super) fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut i = [0u8; 8];
    i[0] = code;
    i[1] = (dst & 0xf) | (src << 4);
    i[2..4].copy_from_slice(&off.to_ne_bytes());
    i[4..8].copy_from_slice(&imm.to_ne_bytes());
    i
}

/// The program: for each `(task, fd, file)` whose inode is a socket,
/// `bpf_seq_write` 16 bytes: inode (u64), tgid (u64).
fn program(f_inode: i16, i_mode: i16, i_ino: i16, tgid: i16) -> Vec<u8> {
    const LDX_DW: u8 = 0x79;
    const LDX_W: u8 = 0x61;
    const LDX_H: u8 = 0x69;
    const STX_DW: u8 = 0x7b;
    const MOV_X: u8 = 0xbf;
    const MOV_K: u8 = 0xb7;
    const AND_K: u8 = 0x57;
    const ADD_K: u8 = 0x07;
    const JEQ_K: u8 = 0x15;
    const JNE_K: u8 = 0x55;
    const CALL: u8 = 0x85;
    const EXIT: u8 = 0x95;
    let p = [
        insn(MOV_X, 6, 1, 0, 0),                 // 0: r6 = ctx
        insn(LDX_DW, 2, 6, 24, 0),               // 1: r2 = ctx->file
        insn(JEQ_K, 2, 0, 17, 0),                // 2: if !file goto 20
        insn(LDX_DW, 3, 6, 8, 0),                // 3: r3 = ctx->task
        insn(JEQ_K, 3, 0, 15, 0),                // 4: if !task goto 20
        insn(LDX_DW, 4, 2, f_inode, 0),          // 5: r4 = file->f_inode
        insn(JEQ_K, 4, 0, 13, 0),                // 6: if !inode goto 20
        insn(LDX_H, 5, 4, i_mode, 0),            // 7: r5 = inode->i_mode
        insn(AND_K, 5, 0, 0, 0xf000),            // 8: r5 &= S_IFMT
        insn(JNE_K, 5, 0, 10, 0xc000),           // 9: if r5 != S_IFSOCK goto 20
        insn(LDX_DW, 8, 4, i_ino, 0),            // 10: r8 = inode->i_ino
        insn(LDX_W, 9, 3, tgid, 0),              // 11: r9 = task->tgid
        insn(STX_DW, 10, 8, -16, 0),             // 12: stack[-16] = ino
        insn(STX_DW, 10, 9, -8, 0),              // 13: stack[-8] = tgid
        insn(LDX_DW, 7, 6, 0, 0),                // 14: r7 = ctx->meta
        insn(LDX_DW, 1, 7, 0, 0),                // 15: r1 = meta->seq
        insn(MOV_X, 2, 10, 0, 0),                // 16: r2 = fp
        insn(ADD_K, 2, 0, 0, -16),               // 17: r2 -= 16
        insn(MOV_K, 3, 0, 0, 16),                // 18: r3 = 16
        insn(CALL, 0, 0, 0, BPF_FUNC_SEQ_WRITE), // 19
        insn(MOV_K, 0, 0, 0, 0),                 // 20: r0 = 0
        insn(EXIT, 0, 0, 0, 0),                  // 21
    ];
    p.concat()
}

pub(super) fn bpf(
    cmd: libc::c_long,
    attr: &mut [u8; ATTR_LEN],
    call: &'static str,
) -> Result<OwnedFd, BpfError> {
    // SAFETY: attr is a valid, fully initialised bpf_attr of ATTR_LEN bytes;
    // pointers inside it point at buffers that outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), ATTR_LEN) };
    if r < 0 {
        return Err(BpfError::Os {
            call,
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

pub(super) fn put_u32(a: &mut [u8], at: usize, v: u32) {
    a[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

pub(super) fn put_u64(a: &mut [u8], at: usize, v: u64) {
    a[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

pub(super) fn offset(v: u32) -> Result<i16, BpfError> {
    i16::try_from(v).map_err(|_| BpfError::Btf(btf::BtfError::Missing("small member offset")))
}

const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The kernel's BTF, which both iterator programs need to find struct
/// member offsets: mapped read-only where the kernel allows it (Linux
/// 6.16+; no copy of its ~5 MB), else read into memory.
pub enum VmlinuxBtf {
    Mapped { ptr: *const u8, len: usize },
    Read(Vec<u8>),
}

impl std::ops::Deref for VmlinuxBtf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            // SAFETY: a private read-only mapping of `len` bytes that lives
            // as long as self; the kernel never changes its BTF.
            VmlinuxBtf::Mapped { ptr, len } => unsafe { std::slice::from_raw_parts(*ptr, *len) },
            VmlinuxBtf::Read(v) => v,
        }
    }
}

impl Drop for VmlinuxBtf {
    fn drop(&mut self) {
        if let VmlinuxBtf::Mapped { ptr, len } = *self {
            // SAFETY: unmapping the mapping made in read_vmlinux_btf.
            unsafe { libc::munmap(ptr as *mut libc::c_void, len) };
        }
    }
}

/// Maps or reads `/sys/kernel/btf/vmlinux`.
pub fn read_vmlinux_btf() -> Result<VmlinuxBtf, BpfError> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(VMLINUX_BTF).map_err(BpfError::BtfRead)?;
    let len = file.metadata().map_err(BpfError::BtfRead)?.len() as usize;
    if len > 0 {
        // SAFETY: a new private read-only mapping of an open file; the
        // result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr != libc::MAP_FAILED {
            return Ok(VmlinuxBtf::Mapped {
                ptr: ptr as *const u8,
                len,
            });
        }
    }
    std::fs::read(VMLINUX_BTF)
        .map(VmlinuxBtf::Read)
        .map_err(BpfError::BtfRead)
}

impl OwnerIter {
    /// Loads and attaches the iterator program.
    pub fn load() -> Result<OwnerIter, BpfError> {
        let vmlinux = read_vmlinux_btf()?;
        OwnerIter::load_from(&btf::Btf::parse(&vmlinux)?)
    }

    /// Like [`OwnerIter::load`], with kernel BTF already parsed.
    pub fn load_from(btf: &btf::Btf<'_>) -> Result<OwnerIter, BpfError> {
        check_pid_namespace()?;
        let func_id = btf.func_id("bpf_iter_task_file")?;
        let o = btf.member_offsets(&[
            ("file", "f_inode"),
            ("inode", "i_mode"),
            ("inode", "i_ino"),
            ("task_struct", "tgid"),
        ])?;
        let prog = program(offset(o[0])?, offset(o[1])?, offset(o[2])?, offset(o[3])?);
        let link = attach(&prog, func_id)?;
        Ok(OwnerIter {
            link,
            buf: vec![0u8; 1 << 20],
        })
    }

    /// Runs the iterator once, appending `(socket inode, pid)` pairs.
    pub fn read(&mut self, out: &mut Vec<(u64, u32)>) -> Result<(), BpfError> {
        read_records(&self.link, &mut self.buf, 16, |recs| {
            decode_records(recs, out)
        })
    }
}

/// Checks that this process can see every socket and process a BPF
/// iterator walks (iterators report the initial namespaces' view).
pub fn check_pid_namespace() -> Result<(), BpfError> {
    if std::fs::read_link("/proc/self/ns/pid")
        .map(|l| l.as_os_str() != INIT_PID_NS)
        .unwrap_or(true)
    {
        return Err(BpfError::PidNamespace);
    }
    Ok(())
}

/// Loads `prog` as a `BPF_TRACE_ITER` program for the iterator whose BTF
/// function id is `func_id`, and attaches it; returns the link. When the
/// verifier refuses the program, the error carries the end of its log.
pub(super) fn attach(prog: &[u8], func_id: u32) -> Result<OwnedFd, BpfError> {
    let license = b"GPL\0";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = [0u8; ATTR_LEN];
    put_u32(&mut attr, 0, BPF_PROG_TYPE_TRACING);
    put_u32(&mut attr, 4, (prog.len() / 8) as u32);
    put_u64(&mut attr, 8, prog.as_ptr() as u64);
    put_u64(&mut attr, 16, license.as_ptr() as u64);
    put_u32(&mut attr, 24, 1); // log_level: the verifier says why it refuses
    put_u32(&mut attr, 28, log.len() as u32);
    put_u64(&mut attr, 32, log.as_mut_ptr() as u64);
    attr[48..56].copy_from_slice(b"procnet\0");
    put_u32(&mut attr, 68, BPF_TRACE_ITER);
    put_u32(&mut attr, 108, func_id);
    let prog_fd = bpf(BPF_PROG_LOAD, &mut attr, "bpf(BPF_PROG_LOAD)").map_err(|e| {
        let end = log.iter().position(|&c| c == 0).unwrap_or(log.len());
        let text = String::from_utf8_lossy(&log[..end]);
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        match (e, tail.is_empty()) {
            (BpfError::Os { call, source }, false) => BpfError::Verifier {
                call,
                source,
                log: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
            },
            (e, _) => e,
        }
    })?;

    let mut attr = [0u8; ATTR_LEN];
    put_u32(&mut attr, 0, prog_fd.as_raw_fd() as u32);
    put_u32(&mut attr, 8, BPF_TRACE_ITER);
    bpf(BPF_LINK_CREATE, &mut attr, "bpf(BPF_LINK_CREATE)")
}

/// Runs the iterator behind `link` once and hands every whole run of
/// `rec_len`-byte records to `each` (a record split across two reads is
/// carried over). `buf` is reused between runs.
pub(super) fn read_records(
    link: &OwnedFd,
    buf: &mut [u8],
    rec_len: usize,
    mut each: impl FnMut(&[u8]),
) -> Result<(), BpfError> {
    let mut attr = [0u8; ATTR_LEN];
    put_u32(&mut attr, 0, link.as_raw_fd() as u32);
    let iter = bpf(BPF_ITER_CREATE, &mut attr, "bpf(BPF_ITER_CREATE)")?;
    let mut carry = 0usize;
    loop {
        let tail = &mut buf[carry..];
        // SAFETY: reading into `tail`, valid for tail.len() writable bytes.
        let n = super::retry_eintr(|| unsafe {
            libc::read(iter.as_raw_fd(), tail.as_mut_ptr().cast(), tail.len())
        })
        .map_err(|source| BpfError::Os {
            call: "read(bpf iterator)",
            source,
        })?;
        if n == 0 {
            return Ok(());
        }
        let have = carry + n.min(buf.len() - carry);
        let whole = have - have % rec_len;
        each(&buf[..whole]);
        buf.copy_within(whole..have, 0);
        carry = have - whole;
    }
}

/// Decodes 16-byte `(inode u64, tgid u64)` records; a partial tail is
/// ignored.
pub fn decode_records(buf: &[u8], out: &mut Vec<(u64, u32)>) {
    for rec in buf.chunks_exact(16) {
        let mut ino = [0u8; 8];
        ino.copy_from_slice(&rec[..8]);
        let mut pid = [0u8; 8];
        pid.copy_from_slice(&rec[8..]);
        let pid = u64::from_ne_bytes(pid);
        if let Ok(pid) = u32::try_from(pid) {
            out.push((u64::from_ne_bytes(ino), pid));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_shape() {
        let p = program(40, 0, 64, 1000);
        assert_eq!(p.len(), 22 * 8);
        assert_eq!(p[21 * 8], 0x95);
        let mut out = Vec::new();
        let mut rec = 77u64.to_ne_bytes().to_vec();
        rec.extend_from_slice(&12u64.to_ne_bytes());
        rec.push(1);
        decode_records(&rec, &mut out);
        assert_eq!(out, [(77, 12)]);
    }
}
