//! The strace judge of `P<n>.8`: which traced calls reached beyond the scratch dir.

use std::collections::BTreeMap;
use std::path::Path;

/// The traced calls that left `roots` (the runtime's dir, and its part of the short
/// socket dir: the session's cwd and the control dir): an inet address, or a successful write, create, rename or removal of a
/// path outside them. Every path is judged resolved: against the descriptor strace names
/// before it (`-y`), else against its process's cwd — `start` (the session's, where the
/// traced pi starts) unless the trace shows a `chdir`, an `fchdir` or a cwd strace named,
/// inherited by the children it shows — and with `.` and `..` taken out, so
/// `work/../../x` is judged as the `x` it is. An open's result path (`= 5</…>`) is judged
/// too, so a link inside pointing outside counts.
pub fn escapes(trace: &str, start: &Path, roots: &[&Path]) -> Vec<String> {
    const WRITES: [&str; 5] = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"];
    const CHANGES: [&str; 14] = [
        "mkdir(",
        "mkdirat(",
        "rename(",
        "renameat(",
        "renameat2(",
        "unlink(",
        "unlinkat(",
        "rmdir(",
        "symlink(",
        "symlinkat(",
        "link(",
        "linkat(",
        "truncate(",
        "creat(",
    ];
    let harmless = [
        "/dev/null",
        "/dev/tty",
        "/dev/pts/",
        "/proc/",
        "/dev/urandom",
    ];
    let inside = |p: &str| {
        roots.iter().any(|r| {
            let r = r.to_string_lossy();
            p == r
                || p.strip_prefix(r.as_ref())
                    .is_some_and(|rest| rest.starts_with('/'))
        }) || harmless.iter().any(|h| p.starts_with(h))
    };
    let start = start.to_string_lossy().into_owned();
    let mut cwd: BTreeMap<&str, String> = BTreeMap::new();
    let mut found = Vec::new();
    for line in trace.lines() {
        let (pid, call) = line.split_once(' ').unwrap_or(("", line));
        let here = cwd.get(pid).cloned().unwrap_or_else(|| start.clone());
        // What the trace says about cwds: named by strace, changed, or inherited.
        if let Some(named) = call
            .split("AT_FDCWD</")
            .nth(1)
            .and_then(|r| r.split_once('>'))
        {
            cwd.insert(pid, named.0.to_owned());
        }
        let succeeded = result(call).is_some_and(|r| !r.starts_with('-'));
        if succeeded && call.starts_with("chdir(") {
            if let Some((path, _)) = args_with_base(call).first() {
                cwd.insert(pid, resolve(&here, path));
            }
            continue;
        }
        if succeeded && call.starts_with("fchdir(") {
            if let Some(dir) = call.split_once('<').and_then(|(_, r)| r.split_once(">)")) {
                cwd.insert(pid, dir.0.to_owned());
            }
            continue;
        }
        if call.contains("clone") || call.contains("fork(") {
            if let Some(child) = result(call).filter(|r| r.bytes().all(|b| b.is_ascii_digit())) {
                let inherited = cwd.get(pid).cloned().unwrap_or_else(|| start.clone());
                cwd.insert(child, inherited);
            }
            continue;
        }
        let failed = call.contains(") = -1 ");
        // Any try counts, a failed or pending one too (a non-blocking connect answers
        // EINPROGRESS): only creating an inet socket is not reaching anything.
        let reaches = ["connect(", "sendto(", "sendmsg(", "bind("]
            .iter()
            .any(|c| call.contains(c));
        if reaches && call.contains("AF_INET") {
            found.push(line.to_owned());
            continue;
        }
        let writes = call.contains("open") && WRITES.iter().any(|w| call.contains(w));
        let changes = CHANGES.iter().any(|c| call.starts_with(c));
        if failed || !(writes || changes) {
            continue;
        }
        let mut judged: Vec<String> = args_with_base(call)
            .into_iter()
            .map(|(path, base)| resolve(base.unwrap_or(&here), path))
            .collect();
        if writes {
            judged.extend(
                result(call)
                    .and_then(|r| r.split_once('<'))
                    .and_then(|(_, p)| p.strip_suffix('>'))
                    .map(|p| resolve("/", p)),
            );
        }
        if judged.iter().any(|p| !inside(p)) {
            found.push(line.to_owned());
        }
    }
    found
}

/// What a traced call returned (`= 5</path>`, `= 0`, `= -1 ENOENT …`), when the line
/// has it.
pub fn result(call: &str) -> Option<&str> {
    call.rsplit_once(") = ").map(|(_, r)| r.trim())
}

/// The quoted paths of a call, each with the directory strace names just before it
/// (`AT_FDCWD</cwd>`, `5</dir>`), if any.
pub fn args_with_base(call: &str) -> Vec<(&str, Option<&str>)> {
    let mut found = Vec::new();
    let mut rest = call;
    while let Some((before, after)) = rest.split_once('"') {
        let Some((quoted, tail)) = after.split_once('"') else {
            break;
        };
        let base = before
            .trim_end()
            .strip_suffix(',')
            .map(str::trim_end)
            .and_then(|b| b.strip_suffix('>'))
            .and_then(|b| b.rsplit_once('<'))
            .map(|(_, dir)| dir);
        found.push((quoted, base));
        rest = tail;
    }
    found
}

/// `path` made absolute against `base`, `.` and `..` taken out (as the kernel would,
/// links aside: an open's result path covers those).
pub fn resolve(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{base}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_judge_flags_inet_and_writes_outside_only() {
        let roots = [Path::new("/tmp/smoke/pi-1"), Path::new("/tmp/short-1")];
        let start = Path::new("/tmp/smoke/pi-1/work");
        let judge = |lines: &[&str]| escapes(&lines.join("\n"), start, &roots);
        let inside = [
            r#"12 bind(22<socket:[9]>, {sa_family=AF_UNIX, sun_path="/tmp/smoke/pi-1/home/.pi/entwurf-control/x.sock"}, 110) = 0"#,
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "/tmp/smoke/pi-1/agent/sessions/a.jsonl", O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, 0666) = 23</tmp/smoke/pi-1/agent/sessions/a.jsonl>"#,
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "/etc/ssl/openssl.cnf", O_RDONLY|O_CLOEXEC) = 24</etc/ssl/openssl.cnf>"#,
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "/root/.npmrc", O_WRONLY|O_CREAT, 0666) = -1 EACCES (Permission denied)"#,
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "/dev/null", O_RDWR|O_CLOEXEC) = 25</dev/null>"#,
            r#"12 unlink("/tmp/short-1/x.sock") = 0"#,
            // Relative to the cwd strace names, to a directory descriptor, to the start.
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "relative.txt", O_WRONLY|O_CREAT, 0666) = 27</tmp/smoke/pi-1/work/relative.txt>"#,
            r#"12 mkdirat(7</tmp/smoke/pi-1/agent>, "sessions", 0777) = 0"#,
            r#"13 mkdir("cache", 0777) = 0"#,
        ];
        assert_eq!(judge(&inside), Vec::<String>::new());
        let outside = [
            r#"12 connect(26<socket:[5]>, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("1.2.3.4")}, 16) = -1 EINPROGRESS (Operation now in progress)"#,
            r#"12 mkdir("/root/.cache/jiti", 0777) = 0"#,
            r#"12 unlink("/tmp/smoke/pi-10/x.sock") = 0"#,
            // Relative paths that leave: through `..`, another descriptor, a later cwd.
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "../../../x", O_WRONLY|O_CREAT, 0666) = 3</tmp/x>"#,
            r#"12 unlinkat(9</root/.cache>, "stale", 0) = 0"#,
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "link", O_WRONLY, 0666) = 4</etc/passwd>"#,
        ];
        for line in outside {
            assert_eq!(judge(&[line]), [line.to_owned()], "{line}");
        }
        // A cwd changed by chdir (and inherited by a child) resolves later relative calls.
        let moved = [
            r#"12 chdir("/root") = 0"#,
            r#"12 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD) = 14"#,
            r#"14 mkdir("notes", 0777) = 0"#,
        ];
        assert_eq!(judge(&moved), [moved[2].to_owned()]);
        assert_eq!(resolve("/a/b", "../../../c/./d"), "/c/d");
    }
}
