//! Runs a command in its own process group, watched by a small shell guard that kills the
//! whole group as soon as the test process is gone — however it went (normal exit, panic,
//! Ctrl-C, SIGKILL). `Drop` also kills the group at once. Statics are never dropped in
//! Rust, so the watchdog is what cleans up a stack shared by a whole test binary.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `$1` = parent pid to watch; the rest is the command. The guard ignores TERM itself so
/// that it survives its own group-wide TERM and can follow up with KILL.
const GUARD: &str = r#"
parent=$1; shift
trap '' TERM
"$@" &
child=$!
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.3; done
kill -TERM -- -$$ 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$child" 2>/dev/null || break; sleep 0.3; done
kill -KILL -- -$$ 2>/dev/null
"#;

pub struct Guarded {
    child: Child,
    pgid: i32,
}

impl Guarded {
    /// The process group every process of this child belongs to.
    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// Spawns `program args…` with stdout and stderr appended to `log`.
    pub fn spawn(
        program: &str,
        args: &[&str],
        dir: &Path,
        envs: &[(&str, &str)],
        log: &Path,
    ) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(GUARD)
            .arg("guard")
            .arg(std::process::id().to_string())
            .arg(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn()?;
        let pgid = child.id() as i32;
        Ok(Self { child, pgid })
    }

    /// The guard's pid (the guarded command is its child).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the guarded command (or at least its guard) is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Terminates the whole process tree: TERM, a grace period, then KILL.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals a process group we created.
        unsafe { libc::kill(-self.pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            // Group gone when signal 0 fails.
            if unsafe { libc::kill(-self.pgid, 0) } != 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}
