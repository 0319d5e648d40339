//! Windows collector: sockets and their owner pids from the IP Helper
//! tables (`GetExtendedTcpTable` / `GetExtendedUdpTable`, IPv4 and IPv6),
//! process details from a Toolhelp32 snapshot plus
//! `OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION)`, per-connection bytes
//! from TCP extended statistics when elevated, and local addresses from
//! `GetAdaptersAddresses`.
//!
//! Works without admin: processes that cannot be opened keep their Toolhelp
//! name (or `?`) and are counted in `processes_denied`; byte counters are
//! `None` unless the process is elevated (Windows only collects them once
//! someone with admin rights switches collection on per connection).
//! The table decoding is pure and lives in [`rows`].

// Pure decoders, also compiled into `tests/collect_windows.rs` on every OS.
pub(crate) mod rows;

use crate::collect::{now_ms, CollectError};
use crate::snapshot::{
    Diagnostics, Interface, Process, Snapshot, Socket, SocketState, UnknownReason,
};
use rows::{parse_table, wide_to_string, RawRow, TableKind};
use std::collections::{HashMap, HashSet};
use std::ffi::c_void;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use windows_sys::Wdk::System::Threading::{
    NtQueryInformationProcess, ProcessCommandLineInformation,
};
use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, ERROR_ACCESS_DENIED, ERROR_BUFFER_OVERFLOW,
    ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_PARAMETER, FILETIME, HANDLE, INVALID_HANDLE_VALUE,
    NO_ERROR,
};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    GetAdaptersAddresses, GetExtendedTcpTable, GetExtendedUdpTable, GetPerTcp6ConnectionEStats,
    GetPerTcpConnectionEStats, SetPerTcp6ConnectionEStats, SetPerTcpConnectionEStats,
    TCP_ESTATS_DATA_ROD_v0, TCP_ESTATS_DATA_RW_v0, TcpConnectionEstatsData, GAA_FLAG_SKIP_ANYCAST,
    GAA_FLAG_SKIP_DNS_SERVER, GAA_FLAG_SKIP_MULTICAST, IP_ADAPTER_ADDRESSES_LH,
    IP_ADAPTER_UNICAST_ADDRESS_LH, MIB_TCP6ROW, MIB_TCPROW_LH, MIB_TCPROW_LH_0,
    TCP_TABLE_OWNER_PID_ALL, UDP_TABLE_OWNER_PID,
};
use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6, AF_UNSPEC, IN6_ADDR, IN6_ADDR_0};
use windows_sys::Win32::Security::{
    GetLengthSid, GetTokenInformation, LookupAccountSidW, TokenElevation, TokenUser,
    TOKEN_ELEVATION, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Process32FirstW, Process32NextW, PROCESSENTRY32W, TH32CS_SNAPPROCESS,
};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetProcessTimes, OpenProcess, OpenProcessToken, QueryFullProcessImageNameW,
    PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// How long the interface list is reused before `GetAdaptersAddresses`
/// runs again.
const INTERFACE_REFRESH: Duration = Duration::from_secs(10);
/// Upper bound for any buffer the OS asks us to grow to.
const MAX_TABLE_BYTES: usize = 256 << 20;
/// Grow-and-retry attempts (the table can grow between two calls).
const MAX_TRIES: usize = 8;

/// A process handle closed on drop.
struct OwnedHandle(HANDLE);

impl OwnedHandle {
    fn new(h: HANDLE) -> Option<OwnedHandle> {
        if h.is_null() || h == INVALID_HANDLE_VALUE {
            None
        } else {
            Some(OwnedHandle(h))
        }
    }
}

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: the handle was returned open by the OS and is closed once.
        unsafe {
            CloseHandle(self.0);
        }
    }
}

/// Details of one process, kept while the same (pid, start time) owns
/// sockets.
struct CachedProcess {
    start_time: u64,
    process: Process,
}

/// Windows implementation behind [`crate::collect::Collector`].
pub struct PlatformCollector {
    /// Details by pid, valid while the start time matches.
    processes: HashMap<u32, CachedProcess>,
    /// `DOMAIN\user` by SID bytes.
    users: HashMap<Vec<u8>, Option<String>>,
    /// Whether this process runs elevated (needed to switch on per-connection
    /// statistics).
    elevated: bool,
    /// Set once the extended statistics calls turn out to be unsupported.
    estats_unsupported: bool,
    /// Running under Wine (its tables report every owner as pid 0).
    under_wine: bool,
    interfaces: Option<(Instant, Vec<Interface>)>,
}

impl PlatformCollector {
    pub fn new() -> Result<PlatformCollector, CollectError> {
        let under_wine = running_under_wine();
        Ok(PlatformCollector {
            processes: HashMap::new(),
            users: HashMap::new(),
            elevated: is_elevated(),
            // Wine 8's GetPerTcpConnectionEStats is a stub that aborts the
            // process when called.
            estats_unsupported: under_wine,
            under_wine,
            interfaces: None,
        })
    }

    pub fn sample(&mut self) -> Result<Snapshot, CollectError> {
        let mut diag = Diagnostics {
            backend: "iphlpapi".into(),
            ..Diagnostics::default()
        };

        let mut rows: Vec<RawRow> = Vec::new();
        let mut first_error = None;
        let mut tables_ok = 0;
        for kind in [
            TableKind::Tcp4,
            TableKind::Tcp6,
            TableKind::Udp4,
            TableKind::Udp6,
        ] {
            match read_table(kind) {
                Ok(buf) => {
                    tables_ok += 1;
                    let parsed = parse_table(kind, &buf);
                    if parsed.truncated {
                        diag.warnings.push(format!(
                            "{} was shorter than its row count",
                            kind.describe()
                        ));
                    }
                    rows.extend(parsed.rows);
                }
                Err(e) => {
                    diag.warnings.push(format!("{}: {e}", kind.describe()));
                    first_error.get_or_insert(e);
                }
            }
        }
        if tables_ok == 0 {
            if let Some(e) = first_error {
                return Err(e);
            }
        }

        let toolhelp = match toolhelp_processes() {
            Ok(m) => m,
            Err(e) => {
                diag.warnings.push(format!("process list: {e}"));
                HashMap::new()
            }
        };

        // Process details for every real owner pid.
        let owner_pids: HashSet<u32> = rows
            .iter()
            .filter(|r| rows::unowned_reason(r.pid, r.state()).is_none())
            .map(|r| r.pid)
            .collect();
        let mut processes: HashMap<u32, Process> = HashMap::new();
        let mut vanished: HashSet<u32> = HashSet::new();
        for &pid in &owner_pids {
            match self.process_details(pid, toolhelp.get(&pid), &mut diag) {
                Some(p) => {
                    processes.insert(pid, p);
                }
                None => {
                    vanished.insert(pid);
                }
            }
        }
        self.processes.retain(|pid, _| processes.contains_key(pid));

        let mut sockets: Vec<Socket> = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut s = row.to_socket();
            if let Some(&pid) = s.owners.first() {
                if vanished.contains(&pid) {
                    s.owners.clear();
                    s.unowned_reason = Some(UnknownReason::Exited);
                }
            }
            if s.proto == crate::snapshot::Proto::Tcp && s.remote.is_some() && has_tcb(s.state) {
                if let Some((out, inb)) = self.connection_bytes(row, &mut diag) {
                    s.bytes_sent = Some(out);
                    s.bytes_received = Some(inb);
                }
            }
            if let Some(reason) = s.unowned_reason {
                diag.count_unowned(reason);
            }
            sockets.push(s);
        }
        if self.under_wine && diag.unowned_unknown > 0 {
            diag.warnings
                .push("running under Wine: socket tables report no owner pids".into());
        }

        let interfaces = self.interfaces(&mut diag);
        let mut local_addresses: Vec<IpAddr> = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        for a in interfaces.iter().flat_map(|i| i.addresses.iter()) {
            if !local_addresses.contains(a) {
                local_addresses.push(*a);
            }
        }

        let mut processes: Vec<Process> = processes.into_values().collect();
        processes.sort_by_key(|p| p.pid);
        Ok(Snapshot {
            taken_at_ms: now_ms(),
            local_addresses,
            interfaces,
            processes,
            sockets: sockets.into(),
            diagnostics: diag,
            captured: Vec::new(),
        })
    }

    /// Name, exe, command line, start time and user of `pid`; `None` when it
    /// no longer exists. A process that cannot be opened keeps its Toolhelp
    /// name (or `?`) and is counted as denied.
    fn process_details(
        &mut self,
        pid: u32,
        toolhelp: Option<&(String, u32)>,
        diag: &mut Diagnostics,
    ) -> Option<Process> {
        let th_name = toolhelp.map(|t| t.0.clone());
        let ppid = toolhelp.map(|t| t.1);
        // SAFETY: plain call; the handle is owned by `OwnedHandle`.
        let raw = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        let Some(handle) = OwnedHandle::new(raw) else {
            // SAFETY: reads this thread's last error.
            let err = unsafe { GetLastError() };
            if err == ERROR_INVALID_PARAMETER && toolhelp.is_none() {
                diag.processes_vanished += 1;
                return None;
            }
            if err == ERROR_ACCESS_DENIED || toolhelp.is_some() {
                diag.processes_denied += 1;
            }
            return Some(Process {
                pid,
                name: th_name.unwrap_or_else(|| "?".into()),
                ppid,
                ..Process::default()
            });
        };

        let start_time = process_start_time(&handle);
        if let (Some(start), Some(cached)) = (start_time, self.processes.get(&pid)) {
            if cached.start_time == start {
                return Some(cached.process.clone());
            }
        }

        let exe = process_image(&handle);
        let name = th_name
            .or_else(|| {
                exe.as_deref()
                    .and_then(|e| e.rsplit(['\\', '/']).next())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "?".into());
        let cmdline = process_command_line(&handle)
            .or_else(|| process_command_line_from_peb(pid))
            .map(|c| rows::split_command_line(&c))
            .unwrap_or_default();
        let user = self.process_user(&handle);
        let process = Process {
            pid,
            start_time,
            name,
            cmdline,
            exe,
            uid: None,
            user,
            ppid,
            container_id: None,
        };
        if let Some(start) = start_time {
            self.processes.insert(
                pid,
                CachedProcess {
                    start_time: start,
                    process: process.clone(),
                },
            );
        }
        Some(process)
    }

    /// `DOMAIN\user` owning the process token, cached by SID.
    fn process_user(&mut self, process: &OwnedHandle) -> Option<String> {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: `token` receives a handle that `OwnedHandle` closes.
        if unsafe { OpenProcessToken(process.0, TOKEN_QUERY, &mut token) } == 0 {
            return None;
        }
        let token = OwnedHandle::new(token)?;
        let buf = token_information(&token, TokenUser)?;
        // SAFETY: the buffer holds a TOKEN_USER (checked size) whose SID
        // pointer points into the same buffer.
        unsafe {
            if buf.len() * 8 < std::mem::size_of::<TOKEN_USER>() {
                return None;
            }
            let tu = &*(buf.as_ptr() as *const TOKEN_USER);
            let sid = tu.User.Sid;
            if sid.is_null() {
                return None;
            }
            let sid_len = GetLengthSid(sid) as usize;
            let key = std::slice::from_raw_parts(sid as *const u8, sid_len.min(68)).to_vec();
            if let Some(u) = self.users.get(&key) {
                return u.clone();
            }
            let mut name = [0u16; 256];
            let mut domain = [0u16; 256];
            let mut name_len = name.len() as u32;
            let mut domain_len = domain.len() as u32;
            let mut use_ = 0;
            let ok = LookupAccountSidW(
                std::ptr::null(),
                sid,
                name.as_mut_ptr(),
                &mut name_len,
                domain.as_mut_ptr(),
                &mut domain_len,
                &mut use_,
            );
            let user = (ok != 0).then(|| {
                let n = wide_to_string(&name);
                let d = wide_to_string(&domain);
                if d.is_empty() {
                    n
                } else {
                    format!("{d}\\{n}")
                }
            });
            self.users.insert(key, user.clone());
            user
        }
    }

    /// Bytes out/in of one TCP connection from its extended statistics, or
    /// `None` when unknown. When elevated, switches collection on for
    /// connections that do not have it yet (their counters then start at
    /// that moment and are reported from the next sample on).
    fn connection_bytes(&mut self, row: &RawRow, diag: &mut Diagnostics) -> Option<(u64, u64)> {
        if self.estats_unsupported {
            return None;
        }
        let mut rw = TCP_ESTATS_DATA_RW_v0::default();
        let mut rod = TCP_ESTATS_DATA_ROD_v0::default();
        let rw_size = std::mem::size_of::<TCP_ESTATS_DATA_RW_v0>() as u32;
        let rod_size = std::mem::size_of::<TCP_ESTATS_DATA_ROD_v0>() as u32;
        let rw_ptr = &mut rw as *mut TCP_ESTATS_DATA_RW_v0 as *mut u8;
        let rod_ptr = &mut rod as *mut TCP_ESTATS_DATA_ROD_v0 as *mut u8;
        let enable = TCP_ESTATS_DATA_RW_v0 {
            EnableCollection: true,
        };
        let enable_ptr = &enable as *const TCP_ESTATS_DATA_RW_v0 as *const u8;
        let (rc, set_rc) = match row.kind {
            TableKind::Tcp4 => {
                let r = tcp4_row(row);
                // SAFETY: all pointers are to live locals of the sizes given.
                let rc = unsafe {
                    GetPerTcpConnectionEStats(
                        &r,
                        TcpConnectionEstatsData,
                        rw_ptr,
                        0,
                        rw_size,
                        std::ptr::null_mut(),
                        0,
                        0,
                        rod_ptr,
                        0,
                        rod_size,
                    )
                };
                let set_rc = (rc == NO_ERROR && !rw.EnableCollection && self.elevated).then(|| {
                    // SAFETY: as above.
                    unsafe {
                        SetPerTcpConnectionEStats(
                            &r,
                            TcpConnectionEstatsData,
                            enable_ptr,
                            0,
                            rw_size,
                            0,
                        )
                    }
                });
                (rc, set_rc)
            }
            TableKind::Tcp6 => {
                let r = tcp6_row(row);
                // SAFETY: all pointers are to live locals of the sizes given.
                let rc = unsafe {
                    GetPerTcp6ConnectionEStats(
                        &r,
                        TcpConnectionEstatsData,
                        rw_ptr,
                        0,
                        rw_size,
                        std::ptr::null_mut(),
                        0,
                        0,
                        rod_ptr,
                        0,
                        rod_size,
                    )
                };
                let set_rc = (rc == NO_ERROR && !rw.EnableCollection && self.elevated).then(|| {
                    // SAFETY: as above.
                    unsafe {
                        SetPerTcp6ConnectionEStats(
                            &r,
                            TcpConnectionEstatsData,
                            enable_ptr,
                            0,
                            rw_size,
                            0,
                        )
                    }
                });
                (rc, set_rc)
            }
            TableKind::Udp4 | TableKind::Udp6 => return None,
        };
        // ERROR_NOT_SUPPORTED (50) / ERROR_CALL_NOT_IMPLEMENTED (120): stop trying.
        if rc == 50 || rc == 120 {
            self.estats_unsupported = true;
            diag.warnings.push(
                "per-connection TCP statistics are not supported here; byte counters unknown"
                    .into(),
            );
            return None;
        }
        if rc != NO_ERROR || !rw.EnableCollection {
            if let Some(code) = set_rc.filter(|&c| c != NO_ERROR) {
                let msg = format!("could not enable per-connection TCP statistics (error {code})");
                if !diag.warnings.contains(&msg) {
                    diag.warnings.push(msg);
                }
            }
            return None;
        }
        Some((rod.DataBytesOut, rod.DataBytesIn))
    }

    /// Interfaces and their unicast addresses, refreshed every
    /// [`INTERFACE_REFRESH`].
    fn interfaces(&mut self, diag: &mut Diagnostics) -> Vec<Interface> {
        if let Some((at, list)) = &self.interfaces {
            if at.elapsed() < INTERFACE_REFRESH {
                return list.clone();
            }
        }
        match adapter_addresses() {
            Ok(list) => {
                self.interfaces = Some((Instant::now(), list.clone()));
                list
            }
            Err(e) => {
                diag.warnings.push(format!("interfaces: {e}"));
                Vec::new()
            }
        }
    }
}

/// TCP states in which the connection still has a TCB with statistics.
fn has_tcb(state: SocketState) -> bool {
    !matches!(
        state,
        SocketState::Listen | SocketState::TimeWait | SocketState::Close | SocketState::Unknown
    )
}

fn tcp4_row(row: &RawRow) -> MIB_TCPROW_LH {
    let a = |b: &[u8; 16]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    MIB_TCPROW_LH {
        Anonymous: MIB_TCPROW_LH_0 {
            dwState: row.state_dw,
        },
        dwLocalAddr: a(&row.local_addr),
        dwLocalPort: row.local_port_dw,
        dwRemoteAddr: a(&row.remote_addr),
        dwRemotePort: row.remote_port_dw,
    }
}

fn tcp6_row(row: &RawRow) -> MIB_TCP6ROW {
    let a = |b: &[u8; 16]| IN6_ADDR {
        u: IN6_ADDR_0 { Byte: *b },
    };
    MIB_TCP6ROW {
        State: row.state_dw as _,
        LocalAddr: a(&row.local_addr),
        dwLocalScopeId: row.local_scope,
        dwLocalPort: row.local_port_dw,
        RemoteAddr: a(&row.remote_addr),
        dwRemoteScopeId: row.remote_scope,
        dwRemotePort: row.remote_port_dw,
    }
}

/// One owner-pid table as raw bytes, with the grow-and-retry loop on
/// `ERROR_INSUFFICIENT_BUFFER`.
fn read_table(kind: TableKind) -> Result<Vec<u8>, CollectError> {
    let (af, call) = match kind {
        TableKind::Tcp4 => (AF_INET, "GetExtendedTcpTable(AF_INET)"),
        TableKind::Tcp6 => (AF_INET6, "GetExtendedTcpTable(AF_INET6)"),
        TableKind::Udp4 => (AF_INET, "GetExtendedUdpTable(AF_INET)"),
        TableKind::Udp6 => (AF_INET6, "GetExtendedUdpTable(AF_INET6)"),
    };
    let mut size: u32 = 16 * 1024;
    for _ in 0..MAX_TRIES {
        // u32 storage keeps the table 4-byte aligned.
        let mut buf = vec![0u32; (size as usize).div_ceil(4)];
        let mut got = (buf.len() * 4) as u32;
        let p = buf.as_mut_ptr() as *mut c_void;
        // SAFETY: `p` points to `got` writable bytes.
        let rc = unsafe {
            match kind {
                TableKind::Tcp4 | TableKind::Tcp6 => {
                    GetExtendedTcpTable(p, &mut got, 0, af as u32, TCP_TABLE_OWNER_PID_ALL, 0)
                }
                TableKind::Udp4 | TableKind::Udp6 => {
                    GetExtendedUdpTable(p, &mut got, 0, af as u32, UDP_TABLE_OWNER_PID, 0)
                }
            }
        };
        match rc {
            NO_ERROR => {
                let bytes: Vec<u8> = buf.iter().flat_map(|d| d.to_le_bytes()).collect();
                let n = (got as usize).min(bytes.len());
                return Ok(bytes[..n].to_vec());
            }
            ERROR_INSUFFICIENT_BUFFER => {
                // Some room for rows that appear before the next call.
                size = got.max(size).saturating_add(got / 8 + 4096);
                if size as usize > MAX_TABLE_BYTES {
                    break;
                }
            }
            code => {
                return Err(CollectError::Os {
                    call,
                    source: std::io::Error::from_raw_os_error(code as i32),
                })
            }
        }
    }
    Err(CollectError::Malformed {
        what: "socket table",
        detail: format!("{call} kept asking for a larger buffer (last {size} bytes)"),
    })
}

/// pid → (image name, parent pid) for every process, from one Toolhelp32
/// snapshot.
fn toolhelp_processes() -> Result<HashMap<u32, (String, u32)>, CollectError> {
    // SAFETY: plain call; the handle is owned by `OwnedHandle`.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) };
    let snap = OwnedHandle::new(snap).ok_or_else(|| CollectError::Os {
        call: "CreateToolhelp32Snapshot",
        source: std::io::Error::last_os_error(),
    })?;
    let mut out = HashMap::new();
    let mut entry = PROCESSENTRY32W {
        dwSize: std::mem::size_of::<PROCESSENTRY32W>() as u32,
        ..PROCESSENTRY32W::default()
    };
    // SAFETY: `entry` is a PROCESSENTRY32W with dwSize set.
    let mut ok = unsafe { Process32FirstW(snap.0, &mut entry) };
    while ok != 0 {
        out.insert(
            entry.th32ProcessID,
            (wide_to_string(&entry.szExeFile), entry.th32ParentProcessID),
        );
        // SAFETY: as above.
        ok = unsafe { Process32NextW(snap.0, &mut entry) };
    }
    Ok(out)
}

/// Creation time of the process, seconds since the Unix epoch.
fn process_start_time(h: &OwnedHandle) -> Option<u64> {
    let mut times = [FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    }; 4];
    let [c, e, k, u] = &mut times;
    // SAFETY: four writable FILETIMEs.
    if unsafe { GetProcessTimes(h.0, c, e, k, u) } == 0 {
        return None;
    }
    let ticks = ((times[0].dwHighDateTime as u64) << 32) | times[0].dwLowDateTime as u64;
    rows::filetime_to_unix_secs(ticks)
}

/// Full Win32 path of the process image.
fn process_image(h: &OwnedHandle) -> Option<String> {
    let mut buf = vec![0u16; 1024];
    for _ in 0..3 {
        let mut len = buf.len() as u32;
        // SAFETY: `buf` has `len` writable u16s.
        if unsafe {
            QueryFullProcessImageNameW(h.0, PROCESS_NAME_WIN32, buf.as_mut_ptr(), &mut len)
        } != 0
        {
            return Some(String::from_utf16_lossy(
                &buf[..(len as usize).min(buf.len())],
            ));
        }
        // SAFETY: reads this thread's last error.
        if unsafe { GetLastError() } != ERROR_INSUFFICIENT_BUFFER {
            return None;
        }
        let n = buf.len() * 4;
        buf.resize(n, 0);
    }
    None
}

/// The command line through `NtQueryInformationProcess` with
/// `ProcessCommandLineInformation` (Windows 8.1+): needs only
/// `PROCESS_QUERY_LIMITED_INFORMATION`, no reading of the other process's
/// memory.
fn process_command_line(h: &OwnedHandle) -> Option<String> {
    const STATUS_INFO_LENGTH_MISMATCH: i32 = 0xC000_0004_u32 as i32;
    const STATUS_BUFFER_TOO_SMALL: i32 = 0xC000_0023_u32 as i32;
    const STATUS_BUFFER_OVERFLOW: i32 = 0x8000_0005_u32 as i32;
    let mut size: u32 = 2048;
    for _ in 0..4 {
        // u64 storage keeps the UNICODE_STRING header aligned.
        let mut buf = vec![0u64; (size as usize).div_ceil(8)];
        let mut ret: u32 = 0;
        // SAFETY: `buf` has `size` writable bytes.
        let status = unsafe {
            NtQueryInformationProcess(
                h.0,
                ProcessCommandLineInformation,
                buf.as_mut_ptr() as *mut c_void,
                (buf.len() * 8) as u32,
                &mut ret,
            )
        };
        if status >= 0 {
            // SAFETY: reinterpreting our own initialised u64 buffer as bytes.
            let bytes =
                unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, buf.len() * 8) };
            return rows::unicode_string_in(bytes, buf.as_ptr() as usize);
        }
        if !matches!(
            status,
            STATUS_INFO_LENGTH_MISMATCH | STATUS_BUFFER_TOO_SMALL | STATUS_BUFFER_OVERFLOW
        ) || ret as usize > 1 << 20
        {
            return None;
        }
        size = ret.max(size * 2);
    }
    None
}

/// The command line read from the process's PEB (`ProcessParameters` →
/// `CommandLine`), for systems without `ProcessCommandLineInformation`
/// (before Windows 8.1, Wine). Needs `PROCESS_VM_READ`, so it works for
/// the caller's own processes only unless elevated. 64-bit layout.
#[cfg(target_pointer_width = "64")]
fn process_command_line_from_peb(pid: u32) -> Option<String> {
    use windows_sys::Wdk::System::Threading::ProcessBasicInformation;
    use windows_sys::Win32::System::Diagnostics::Debug::ReadProcessMemory;
    use windows_sys::Win32::System::Threading::{
        PROCESS_BASIC_INFORMATION, PROCESS_QUERY_INFORMATION, PROCESS_VM_READ,
    };
    const PEB_PROCESS_PARAMETERS: usize = 0x20;
    const PARAMS_COMMAND_LINE: usize = 0x70;

    // SAFETY: plain call; the handle is owned by `OwnedHandle`.
    let h = OwnedHandle::new(unsafe {
        OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ, 0, pid)
    })?;
    let read = |addr: usize, out: &mut [u8]| -> bool {
        let mut got = 0usize;
        // SAFETY: `out` is writable for its length; the OS checks `addr`.
        let ok = unsafe {
            ReadProcessMemory(
                h.0,
                addr as *const c_void,
                out.as_mut_ptr() as *mut c_void,
                out.len(),
                &mut got,
            )
        };
        ok != 0 && got == out.len()
    };
    // SAFETY: all-zero is a valid PROCESS_BASIC_INFORMATION.
    let mut pbi: PROCESS_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    let mut ret = 0u32;
    // SAFETY: `pbi` is writable for its size.
    let status = unsafe {
        NtQueryInformationProcess(
            h.0,
            ProcessBasicInformation,
            &mut pbi as *mut PROCESS_BASIC_INFORMATION as *mut c_void,
            std::mem::size_of::<PROCESS_BASIC_INFORMATION>() as u32,
            &mut ret,
        )
    };
    if status < 0 || pbi.PebBaseAddress.is_null() {
        return None;
    }
    let mut ptr = [0u8; 8];
    if !read(
        pbi.PebBaseAddress as usize + PEB_PROCESS_PARAMETERS,
        &mut ptr,
    ) {
        return None;
    }
    let params = u64::from_le_bytes(ptr) as usize;
    let mut us = [0u8; 16];
    if params == 0 || !read(params + PARAMS_COMMAND_LINE, &mut us) {
        return None;
    }
    let len = u16::from_le_bytes([us[0], us[1]]) as usize;
    let buf_ptr = u64::from_le_bytes(us[8..16].try_into().ok()?) as usize;
    if len == 0 || buf_ptr == 0 {
        return Some(String::new());
    }
    let mut text = vec![0u8; len & !1];
    if !read(buf_ptr, &mut text) {
        return None;
    }
    let units: Vec<u16> = text
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Some(String::from_utf16_lossy(&units))
}

#[cfg(not(target_pointer_width = "64"))]
fn process_command_line_from_peb(_pid: u32) -> Option<String> {
    None
}

/// A token information class as an 8-byte aligned buffer.
fn token_information(token: &OwnedHandle, class: i32) -> Option<Vec<u64>> {
    let mut need: u32 = 0;
    // SAFETY: size query with a null buffer.
    unsafe { GetTokenInformation(token.0, class, std::ptr::null_mut(), 0, &mut need) };
    if need == 0 || need > 64 * 1024 {
        return None;
    }
    let mut buf = vec![0u64; (need as usize).div_ceil(8)];
    // SAFETY: `buf` has at least `need` writable bytes.
    let ok = unsafe {
        GetTokenInformation(
            token.0,
            class,
            buf.as_mut_ptr() as *mut c_void,
            (buf.len() * 8) as u32,
            &mut need,
        )
    };
    (ok != 0).then_some(buf)
}

/// Whether this process's token is elevated.
fn is_elevated() -> bool {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo handle of the current process needs no closing.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return false;
    }
    let Some(token) = OwnedHandle::new(token) else {
        return false;
    };
    let mut elev = TOKEN_ELEVATION::default();
    let mut len = 0u32;
    // SAFETY: `elev` is a writable TOKEN_ELEVATION.
    let ok = unsafe {
        GetTokenInformation(
            token.0,
            TokenElevation,
            &mut elev as *mut TOKEN_ELEVATION as *mut c_void,
            std::mem::size_of::<TOKEN_ELEVATION>() as u32,
            &mut len,
        )
    };
    ok != 0 && elev.TokenIsElevated != 0
}

/// Whether ntdll exports `wine_get_version`, i.e. we run under Wine.
pub fn running_under_wine() -> bool {
    // SAFETY: NUL-terminated names; the module handle needs no release.
    unsafe {
        let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr() as *const u8);
        !ntdll.is_null()
            && GetProcAddress(ntdll, c"wine_get_version".as_ptr() as *const u8).is_some()
    }
}

/// Every adapter's friendly name and unicast addresses.
fn adapter_addresses() -> Result<Vec<Interface>, CollectError> {
    let flags = GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER;
    let mut size: u32 = 16 * 1024;
    for _ in 0..MAX_TRIES {
        let mut buf = vec![0u64; (size as usize).div_ceil(8)];
        let mut got = (buf.len() * 8) as u32;
        let first = buf.as_mut_ptr() as *mut IP_ADAPTER_ADDRESSES_LH;
        // SAFETY: `first` points to `got` writable, 8-byte aligned bytes.
        let rc = unsafe {
            GetAdaptersAddresses(AF_UNSPEC as u32, flags, std::ptr::null(), first, &mut got)
        };
        match rc {
            NO_ERROR => {
                let mut out = Vec::new();
                let mut p = first as *const IP_ADAPTER_ADDRESSES_LH;
                // SAFETY: the OS filled a linked list inside `buf`, which
                // stays alive for the walk; strings are NUL-terminated.
                unsafe {
                    while !p.is_null() && out.len() < 4096 {
                        let a = &*p;
                        let name = if a.FriendlyName.is_null() {
                            String::new()
                        } else {
                            let mut n = 0;
                            while n < 512 && *a.FriendlyName.add(n) != 0 {
                                n += 1;
                            }
                            String::from_utf16_lossy(std::slice::from_raw_parts(a.FriendlyName, n))
                        };
                        let mut addresses = Vec::new();
                        let mut u = a.FirstUnicastAddress as *const IP_ADAPTER_UNICAST_ADDRESS_LH;
                        while !u.is_null() && addresses.len() < 1024 {
                            let ua = &*u;
                            let sa = ua.Address.lpSockaddr as *const u8;
                            let len = ua.Address.iSockaddrLength;
                            if !sa.is_null() && (0..=128).contains(&len) {
                                let bytes = std::slice::from_raw_parts(sa, len as usize);
                                if let Some(ip) = rows::sockaddr_ip(bytes) {
                                    addresses.push(ip);
                                }
                            }
                            u = ua.Next;
                        }
                        out.push(Interface { name, addresses });
                        p = a.Next;
                    }
                }
                return Ok(out);
            }
            ERROR_BUFFER_OVERFLOW => {
                size = got.max(size).saturating_add(4096);
                if size as usize > MAX_TABLE_BYTES {
                    break;
                }
            }
            code => {
                return Err(CollectError::Os {
                    call: "GetAdaptersAddresses",
                    source: std::io::Error::from_raw_os_error(code as i32),
                })
            }
        }
    }
    Err(CollectError::Malformed {
        what: "adapter list",
        detail: "GetAdaptersAddresses kept asking for a larger buffer".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        MIB_TCP6ROW_OWNER_PID, MIB_TCPROW_OWNER_PID, MIB_UDP6ROW_OWNER_PID, MIB_UDPROW_OWNER_PID,
    };

    #[test]
    fn row_sizes_match_the_sdk() {
        assert_eq!(
            std::mem::size_of::<MIB_TCPROW_OWNER_PID>(),
            rows::TCP4_ROW_LEN
        );
        assert_eq!(
            std::mem::size_of::<MIB_TCP6ROW_OWNER_PID>(),
            rows::TCP6_ROW_LEN
        );
        assert_eq!(
            std::mem::size_of::<MIB_UDPROW_OWNER_PID>(),
            rows::UDP4_ROW_LEN
        );
        assert_eq!(
            std::mem::size_of::<MIB_UDP6ROW_OWNER_PID>(),
            rows::UDP6_ROW_LEN
        );
    }

    #[test]
    fn own_process_details_read() {
        let mut c = PlatformCollector::new().unwrap();
        let mut diag = Diagnostics::default();
        let me = std::process::id();
        let p = c.process_details(me, None, &mut diag).expect("own process");
        assert!(p.start_time.is_some(), "{p:?}");
        assert!(
            p.exe
                .as_deref()
                .unwrap_or("")
                .to_lowercase()
                .ends_with(".exe"),
            "{p:?}"
        );
        assert!(!p.cmdline.is_empty(), "{p:?}");
        assert!(p.name.to_lowercase().contains(".exe"), "{p:?}");
        // Second call hits the cache.
        let q = c.process_details(me, None, &mut diag).unwrap();
        assert_eq!(p, q);
    }

    #[test]
    fn tables_read() {
        for kind in [TableKind::Tcp4, TableKind::Udp4] {
            let buf = read_table(kind).expect("table");
            assert!(buf.len() >= 4);
            assert!(!parse_table(kind, &buf).truncated);
        }
        assert!(!toolhelp_processes().unwrap().is_empty());
    }
}
