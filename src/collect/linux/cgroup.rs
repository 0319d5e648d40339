//! Which container a process runs in, from the text of its
//! `/proc/<pid>/cgroup`: a pure decoder, read with the process's other
//! details by the collector. What the container is (its name, its
//! published ports) is the engine's answer, interpreted in
//! `graph::containers`.

/// The container id in a `/proc/<pid>/cgroup` file, or `None` when the
/// process is not in a container (or is a container's monitor, `conmon`).
///
/// Knows the cgroup v1 (`N:controllers:/path`) and v2 (`0::/path`) forms of
/// Docker (`docker-<id>.scope`, `/docker/<id>`), Podman
/// (`libpod-<id>[.scope]`; `libpod-conmon-…` is the monitor, not the
/// container), Kubernetes (`/kubepods/…/pod<uid>/<id>`,
/// `cri-containerd-<id>.scope`, `crio-<id>.scope`) and containerd. When
/// containers nest, the outermost id is the one returned: it is the one the
/// host's engine knows.
pub fn container_id_from_cgroup(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        path.split('/').find_map(container_id_from_segment)
    })
}

/// Engine prefixes of a cgroup directory named after a container.
const ID_PREFIXES: [&str; 5] = [
    "docker-",
    "libpod-",
    "cri-containerd-",
    "crio-",
    "containerd-",
];

fn container_id_from_segment(segment: &str) -> Option<String> {
    let name = segment.strip_suffix(".scope").unwrap_or(segment);
    if is_container_id(name) {
        return Some(name.to_string());
    }
    if name.contains("conmon-") {
        return None;
    }
    ID_PREFIXES.iter().find_map(|prefix| {
        let id = name.strip_prefix(prefix)?;
        is_container_id(id).then(|| id.to_string())
    })
}

/// A full container id: 64 lower-case hex digits.
fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4bba34ccf3e836d9a8b2dd480ef79174566776de6382ac8a833ba310747991f5";

    fn cg(text: &str) -> Option<String> {
        container_id_from_cgroup(&text.replace("<ID>", ID))
    }

    #[test]
    fn cgroup_v2_systemd_docker_scope() {
        assert_eq!(
            cg("0::/system.slice/docker-<ID>.scope\n").as_deref(),
            Some(ID)
        );
    }

    #[test]
    fn cgroup_v1_docker_cgroupfs() {
        let text = "12:pids:/docker/<ID>\n11:memory:/docker/<ID>\n1:name=systemd:/docker/<ID>\n0::/system.slice/containerd.service\n";
        assert_eq!(cg(text).as_deref(), Some(ID));
    }

    #[test]
    fn cgroup_podman_libpod_forms() {
        // systemd cgroup manager (v2) and cgroupfs manager (hybrid, as
        // recorded in this project's test VM).
        assert_eq!(
            cg("0::/machine.slice/libpod-<ID>.scope\n").as_deref(),
            Some(ID)
        );
        let hybrid = "9:name=systemd:/libpod_parent/libpod-<ID>\n4:memory:/libpod_parent/libpod-<ID>\n0::/libpod_parent/libpod-<ID>\n";
        assert_eq!(cg(hybrid).as_deref(), Some(ID));
        // A container in a pod.
        assert_eq!(
            cg("0::/machine.slice/machine-libpod_pod_0d8e2c0e1f8a4b8f9d2b7e8c6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b.slice/libpod-<ID>.scope\n").as_deref(),
            Some(ID)
        );
        // A container running systemd nests its own scopes under the container's.
        assert_eq!(
            cg("0::/machine.slice/libpod-<ID>.scope/init.scope\n").as_deref(),
            Some(ID)
        );
    }

    #[test]
    fn cgroup_conmon_is_not_the_container() {
        assert_eq!(cg("0::/machine.slice/libpod-conmon-<ID>.scope\n"), None);
        assert_eq!(cg("0::/machine.slice/crio-conmon-<ID>.scope\n"), None);
        assert_eq!(cg("0::/libpod_parent/conmon\n"), None);
    }

    #[test]
    fn cgroup_kubernetes_forms() {
        let v1 = "11:cpuset:/kubepods/besteffort/pod8d1c2f0e-3b0a-4d1e-9a8e-2a4b5c6d7e8f/<ID>\n";
        assert_eq!(cg(v1).as_deref(), Some(ID));
        let containerd = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8d1c2f0e_3b0a_4d1e_9a8e_2a4b5c6d7e8f.slice/cri-containerd-<ID>.scope\n";
        assert_eq!(cg(containerd).as_deref(), Some(ID));
        let crio = "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod8d1c2f0e_3b0a_4d1e_9a8e_2a4b5c6d7e8f.slice/crio-<ID>.scope\n";
        assert_eq!(cg(crio).as_deref(), Some(ID));
    }

    #[test]
    fn cgroup_host_processes_have_none() {
        assert_eq!(cg("0::/user.slice/user-1000.slice/session-2.scope\n"), None);
        assert_eq!(cg("0::/\n"), None);
        assert_eq!(cg("0::/system.slice/docker.service\n"), None);
        assert_eq!(cg(""), None);
        assert_eq!(cg("garbage"), None);
        // Not 64 hex digits.
        assert_eq!(cg("0::/system.slice/docker-abc123.scope\n"), None);
        assert_eq!(
            cg("0::/docker/4BBA34CCF3E836D9A8B2DD480EF79174566776DE6382AC8A833BA310747991F5\n"),
            None
        );
    }

    #[test]
    fn cgroup_nested_takes_the_outermost() {
        let inner = "a".repeat(64);
        let text = format!("0::/docker/{ID}/docker/{inner}\n");
        assert_eq!(container_id_from_cgroup(&text).as_deref(), Some(ID));
    }
}
