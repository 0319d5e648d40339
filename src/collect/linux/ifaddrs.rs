//! This host's interfaces and addresses, from `getifaddrs(3)`.

use crate::snapshot::{canonical_ip, Interface};
use std::ffi::CStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every interface (in kernel order) with its IPv4 and IPv6 addresses.
/// Interfaces without addresses are listed with an empty list.
pub fn interfaces() -> io::Result<Vec<Interface>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head that we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out: Vec<Interface> = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let addr = if ifa.ifa_addr.is_null() {
            None
        } else {
            // SAFETY: ifa_addr points at a sockaddr whose family says
            // which larger struct it is.
            unsafe { sockaddr_ip(ifa.ifa_addr) }
        };
        let idx = match out.iter().position(|i| i.name == name) {
            Some(idx) => idx,
            None => {
                out.push(Interface {
                    name,
                    addresses: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let Some(ip) = addr {
            let list = &mut out[idx].addresses;
            if !list.contains(&ip) {
                list.push(ip);
            }
        }
    }
    // SAFETY: head came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// # Safety
/// `sa` must point at a valid `sockaddr` of the size its family implies.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    match i32::from((*sa).sa_family) {
        libc::AF_INET => {
            let sin = &*(sa as *const libc::sockaddr_in);
            Some(IpAddr::V4(Ipv4Addr::from(
                sin.sin_addr.s_addr.to_ne_bytes(),
            )))
        }
        libc::AF_INET6 => {
            let sin6 = &*(sa as *const libc::sockaddr_in6);
            Some(canonical_ip(IpAddr::V6(Ipv6Addr::from(
                sin6.sin6_addr.s6_addr,
            ))))
        }
        _ => None,
    }
}

/// All addresses of all interfaces, deduplicated, in interface order.
pub fn local_addresses(ifaces: &[Interface]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in ifaces.iter().flat_map(|i| i.addresses.iter()) {
        if !out.contains(ip) {
            out.push(*ip);
        }
    }
    out
}
