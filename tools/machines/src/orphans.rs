//! What a machine leaves behind when its runner dies without ending its MCP servers (a
//! SIGKILL, a crash): on Fly the VM goes with it; here those processes would outlive the
//! machine (each server runs in a process group of its own, so the runner's group is not
//! enough). This service is their child subreaper: an orphan of any machine becomes our
//! child, and every direct child that is not a runner is such an orphan, killed with its
//! group and reaped.

use std::time::Duration;

/// Makes this process the subreaper of everything it starts (Linux `prctl`).
pub fn adopt() {
    // SAFETY: prctl(2) with integer arguments only; no memory is passed.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r != 0 {
        eprintln!("catwalk-machines: cannot become a child subreaper; orphaned MCP servers of dead machines may outlive them");
    }
}

/// (pid, parent pid, process group, command name) from `/proc/{pid}/stat`.
fn stat(pid: u32) -> Option<(u32, u32, i32, String)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = s.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let mut f = rest.split_whitespace();
    let _state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((pid, ppid, pgrp, comm))
}

/// Kills and reaps every direct child of ours that is not a runner (the runners are
/// tokio's to wait for). Returns how many it found.
pub fn reap() -> usize {
    let me = std::process::id();
    // SAFETY: getpgrp(2) takes nothing and cannot fail.
    let my_group = unsafe { libc::getpgrp() };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut found = 0;
    for (pid, _, pgrp, _) in entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .filter(|(_, ppid, _, comm)| *ppid == me && comm != "catwalk-runner")
    {
        found += 1;
        // SAFETY: kill(2) and waitpid(2) on a process that is our own child; a null
        // status pointer is allowed.
        unsafe {
            if pgrp != my_group && pgrp > 1 {
                libc::kill(-pgrp, libc::SIGKILL);
            }
            libc::kill(pid as i32, libc::SIGKILL);
            libc::waitpid(pid as i32, std::ptr::null_mut(), libc::WNOHANG);
        }
    }
    found
}

/// Reaps orphans every second, for as long as the service runs.
pub fn spawn_reaper() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            reap();
        }
    });
}
