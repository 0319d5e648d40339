//! Which service each process belongs to: pre-fork workers and backends
//! (nginx master + workers, postmaster + backends, gunicorn and php-fpm
//! pools) fold under the process that heads them, so the UI can draw one
//! service node with a count instead of one node per pid.
//!
//! A process belongs to its parent's service when the parent runs the same
//! program: the same executable, and for an interpreter (python, node,
//! ruby, …) also the same script, so `python3 a.py` that starts
//! `python3 b.py` stays two services. The head of a service is the topmost
//! ancestor in such a chain; a process with no such parent heads its own.
//! Only the parent chain decides: two unrelated `nginx` instances are two
//! services. Pure: it reads the processes of one snapshot.

use crate::snapshot::Process;
use std::collections::HashMap;

/// How far up a parent chain is followed (a guard against a corrupt
/// snapshot whose ppids form a loop; real chains are a few levels deep).
const MAX_DEPTH: usize = 64;

/// Executables that run a script: for these the script, not the
/// executable, tells one program from another.
fn is_interpreter(base: &str) -> bool {
    const NAMES: [&str; 9] = [
        "python", "node", "nodejs", "ruby", "perl", "php", "bash", "sh", "dash",
    ];
    let stem = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    NAMES.contains(&stem) || base.starts_with("python")
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The script an interpreter runs, as the program's second half. A
/// command line retitled by the process (`gunicorn: worker [app]`, one
/// argument with spaces, as setproctitle writes it) names the program
/// before its first `:` or space; otherwise it is the first argument that
/// is not an option (the module after `-m`).
fn script_of(cmdline: &[String]) -> Option<&str> {
    let args: Vec<&str> = cmdline
        .iter()
        .map(String::as_str)
        .filter(|a| !a.is_empty())
        .collect();
    if let [title] = args.as_slice() {
        if title.contains(' ') || title.contains(':') {
            let head = title.split([':', ' ']).next().unwrap_or(title);
            return Some(basename(head));
        }
    }
    let mut rest = args.iter().skip(1);
    while let Some(a) = rest.next() {
        if *a == "-m" {
            return rest.next().copied();
        }
        if *a == "-c" {
            // inline code: the code itself is the "script"
            return rest.next().copied();
        }
        if !a.starts_with('-') {
            return Some(basename(a));
        }
    }
    None
}

/// What makes two processes the same program: the executable (its name
/// when the path cannot be read) and, for interpreters, the script.
#[derive(PartialEq, Eq)]
struct Program<'p> {
    exe: &'p str,
    script: Option<&'p str>,
}

fn program_of(p: &Process) -> Program<'_> {
    let exe = p.exe.as_deref().unwrap_or(&p.name);
    let script = if is_interpreter(basename(exe)) {
        script_of(&p.cmdline)
    } else {
        None
    };
    Program { exe, script }
}

/// The head of every process's service, by pid: the topmost ancestor that
/// runs the same program without a break in the chain (a parent missing
/// from the snapshot ends it), else the process itself.
pub fn service_heads(processes: &[Process]) -> HashMap<u32, u32> {
    let by_pid: HashMap<u32, &Process> = processes.iter().map(|p| (p.pid, p)).collect();
    let mut heads = HashMap::with_capacity(processes.len());
    for p in processes {
        let prog = program_of(p);
        let mut head = p;
        for _ in 0..MAX_DEPTH {
            let parent = match head.ppid.and_then(|pp| by_pid.get(&pp)) {
                Some(&parent) if parent.pid != head.pid && program_of(parent) == prog => parent,
                _ => break,
            };
            head = parent;
        }
        heads.insert(p.pid, head.pid);
    }
    heads
}

/// A process node's `service`: the node id of its service's head
/// (`pid:<pid>`), so the UI groups by it and labels the group after it.
pub fn service_id(head_pid: u32) -> String {
    format!("pid:{head_pid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, ppid: u32, name: &str, exe: &str, cmdline: &[&str]) -> Process {
        Process {
            pid,
            start_time: Some(1_700_000_000),
            name: name.into(),
            cmdline: cmdline.iter().map(|s| s.to_string()).collect(),
            exe: (!exe.is_empty()).then(|| exe.to_string()),
            uid: None,
            user: None,
            ppid: Some(ppid),
            container_id: None,
        }
    }

    fn recorded() -> Vec<Process> {
        let text = include_str!("../../tests/fixtures/services_nginx_postgres.json");
        let snap: crate::snapshot::Snapshot = serde_json::from_str(text).expect("fixture parses");
        snap.processes
    }

    /// Recorded from Debian's nginx (`master_process on; worker_processes
    /// 4;`, workers as `nobody`) and PostgreSQL 15 with three psql clients:
    /// the master heads its 4 workers, the postmaster its 3 backends, and
    /// each psql (a child of a shell, not of another psql) is its own.
    #[test]
    fn recorded_nginx_and_postgres_fold_under_master_and_postmaster() {
        let procs = recorded();
        let heads = service_heads(&procs);
        let name = |pid: u32| procs.iter().find(|p| p.pid == pid).unwrap().name.as_str();
        let nginx_master = procs
            .iter()
            .find(|p| p.name == "nginx" && p.cmdline[0].starts_with("nginx: master"))
            .unwrap()
            .pid;
        let postmaster = procs
            .iter()
            .find(|p| p.name == "postgres" && p.cmdline.len() > 1 && p.cmdline[1] == "-D")
            .unwrap()
            .pid;
        let members = |head: u32| {
            let mut v: Vec<u32> = heads
                .iter()
                .filter(|(_, &h)| h == head)
                .map(|(&p, _)| p)
                .collect();
            v.sort();
            v
        };
        assert_eq!(members(nginx_master).len(), 5, "master + 4 workers");
        assert!(members(nginx_master).iter().all(|&p| name(p) == "nginx"));
        assert_eq!(members(postmaster).len(), 4, "postmaster + 3 backends");
        assert!(members(postmaster).iter().all(|&p| name(p) == "postgres"));
        for p in procs.iter().filter(|p| p.name == "psql") {
            assert_eq!(heads[&p.pid], p.pid, "psql {} is its own service", p.pid);
        }
        assert_eq!(service_id(nginx_master), format!("pid:{nginx_master}"));
    }

    /// The graph's process nodes carry the service (what the UI groups by).
    #[test]
    fn graph_nodes_carry_their_service() {
        use crate::graph::{build_graph, ContainerLabels, GraphOptions, Inputs};
        let text = include_str!("../../tests/fixtures/services_nginx_postgres.json");
        let snap: crate::snapshot::Snapshot = serde_json::from_str(text).expect("fixture parses");
        let g = build_graph(
            &Inputs {
                snapshot: &snap,
                rules: &crate::rules::RuleSet::default(),
                options: &GraphOptions::default(),
                containers: &ContainerLabels::default(),
                traffic: None,
            },
            1,
        );
        let master = snap
            .processes
            .iter()
            .find(|p| p.cmdline[0].starts_with("nginx: master"))
            .unwrap()
            .pid;
        let nginx: Vec<_> = g
            .nodes
            .iter()
            .filter(|n| n.name.as_deref() == Some("nginx"))
            .collect();
        assert_eq!(nginx.len(), 5);
        for n in nginx {
            assert_eq!(
                n.service.as_deref(),
                Some(format!("pid:{master}").as_str()),
                "{}",
                n.id
            );
        }
        for n in g.nodes.iter().filter(|n| n.name.as_deref() == Some("psql")) {
            assert_eq!(n.service.as_deref(), Some(n.id.as_str()));
        }
        assert!(g
            .nodes
            .iter()
            .filter(|n| n.kind != crate::graph::model::NodeKind::Process)
            .all(|n| n.service.is_none()));
    }

    /// Recorded from gunicorn 23 (`-w 3`, with setproctitle: the master is
    /// `gunicorn: master [app:app]`, `comm` `gunicorn: maste`; the workers
    /// `gunicorn: worker [app:app]`, `comm` `gunicorn: worke`), all under
    /// the python interpreter, and a python client of it.
    #[test]
    fn recorded_gunicorn_folds_under_its_master() {
        let text = include_str!("../../tests/fixtures/services_gunicorn.json");
        let snap: crate::snapshot::Snapshot = serde_json::from_str(text).expect("fixture parses");
        let heads = service_heads(&snap.processes);
        let master = snap
            .processes
            .iter()
            .find(|p| p.cmdline[0].starts_with("gunicorn: master"))
            .unwrap()
            .pid;
        let workers: Vec<u32> = snap
            .processes
            .iter()
            .filter(|p| p.cmdline[0].starts_with("gunicorn: worker"))
            .map(|p| p.pid)
            .collect();
        assert_eq!(workers.len(), 3);
        for w in &workers {
            assert_eq!(heads[w], master, "worker {w}");
        }
        let client = snap
            .processes
            .iter()
            .find(|p| p.cmdline.iter().any(|a| a.contains("18773")))
            .unwrap();
        assert_eq!(
            heads[&client.pid], client.pid,
            "a python client is its own service"
        );
    }

    /// gunicorn retitled by setproctitle (`gunicorn: master [app]`) and as
    /// plain python (`python3 /usr/bin/gunicorn -w 2 app:app`), both
    /// running under the python interpreter.
    #[test]
    fn gunicorn_pools_fold_whether_retitled_or_not() {
        let py = "/usr/bin/python3.11";
        let plain = [
            "/usr/bin/python3",
            "/usr/bin/gunicorn",
            "-w",
            "2",
            "app:app",
        ];
        let procs = vec![
            proc(10, 1, "gunicorn", py, &["gunicorn: master [app:app]"]),
            proc(11, 10, "gunicorn", py, &["gunicorn: worker [app:app]"]),
            proc(12, 10, "gunicorn", py, &["gunicorn: worker [app:app]"]),
            proc(20, 1, "gunicorn", py, &plain),
            proc(21, 20, "gunicorn", py, &plain),
            proc(22, 20, "gunicorn", py, &plain),
        ];
        let heads = service_heads(&procs);
        for (pid, head) in [(10, 10), (11, 10), (12, 10), (20, 20), (21, 20), (22, 20)] {
            assert_eq!(heads[&pid], head, "pid {pid}");
        }
    }

    #[test]
    fn php_fpm_pool_folds_under_its_master() {
        let exe = "/usr/sbin/php-fpm8.2";
        let procs = vec![
            proc(
                30,
                1,
                "php-fpm8.2",
                exe,
                &["php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)"],
            ),
            proc(31, 30, "php-fpm8.2", exe, &["php-fpm: pool www"]),
            proc(32, 30, "php-fpm8.2", exe, &["php-fpm: pool www"]),
        ];
        let heads = service_heads(&procs);
        assert_eq!((heads[&31], heads[&32], heads[&30]), (30, 30, 30));
    }

    /// What must not fold: another program under the same interpreter, a
    /// child of another executable, an unrelated instance of the same
    /// executable, and a chain broken by a parent missing from the snapshot.
    #[test]
    fn different_programs_and_broken_chains_stay_apart() {
        let py = "/usr/bin/python3.11";
        let procs = vec![
            proc(40, 1, "python3", py, &["python3", "supervisor.py"]),
            proc(41, 40, "python3", py, &["python3", "-u", "worker.py"]),
            proc(42, 40, "sleep", "/usr/bin/sleep", &["sleep", "1"]),
            proc(
                50,
                1,
                "nginx",
                "/usr/sbin/nginx",
                &["nginx: master process nginx"],
            ),
            proc(
                60,
                1,
                "nginx",
                "/usr/sbin/nginx",
                &["nginx: master process nginx -c b.conf"],
            ),
            proc(
                61,
                999,
                "nginx",
                "/usr/sbin/nginx",
                &["nginx: worker process"],
            ),
            proc(70, 1, "node", "/usr/bin/node", &["node", "-m", "x"]),
            proc(71, 70, "node", "/usr/bin/node", &["node", "-m", "x"]),
        ];
        let heads = service_heads(&procs);
        assert_eq!(heads[&41], 41, "another script under the same interpreter");
        assert_eq!(heads[&42], 42, "another executable");
        assert_eq!((heads[&50], heads[&60]), (50, 60), "two nginx instances");
        assert_eq!(heads[&61], 61, "parent not in the snapshot");
        assert_eq!(heads[&71], 70, "same module under the same interpreter");
    }

    /// A loop of ppids (a corrupt or hand-written snapshot) ends, and a
    /// process without a readable exe is compared by name.
    #[test]
    fn ppid_loops_end_and_names_stand_in_for_unreadable_exes() {
        let procs = vec![
            proc(80, 81, "loop", "", &["loop"]),
            proc(81, 80, "loop", "", &["loop"]),
            proc(90, 1, "postgres", "", &["postgres", "-D", "/x"]),
            proc(91, 90, "postgres", "", &["postgres: backend"]),
            proc(92, 90, "psql", "", &["psql"]),
        ];
        let heads = service_heads(&procs);
        assert!(heads[&80] == 80 || heads[&80] == 81);
        assert_eq!(heads[&91], 90);
        assert_eq!(heads[&92], 92);
    }
}
