//! Which process a FUSE request came from: the kernel names the calling
//! thread, and a handle belongs to the whole process that opened it.
//!
//! Owns [`process_of`]. The write path uses it to tell a close by the
//! process that opened a file from a close by a child that inherited the
//! descriptor when it forked (see `Fs::flush_from` in `write.rs`).

/// The thread-group id (the process id) of thread `tid`, read from
/// `/proc/<tid>/status`; `None` when it cannot be told: `tid` 0 (the
/// caller is outside our pid namespace), a thread that is gone, or no
/// `/proc`.
pub fn process_of(tid: u32) -> Option<u32> {
    if tid == 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_belongs_to_its_process_and_unknown_callers_to_none() {
        let me = std::process::id();
        assert_eq!(process_of(me), Some(me));
        // A second thread of this process, alive while it is looked up: its
        // own thread id, our process id.
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            tid_tx.send(nix::unistd::gettid().as_raw() as u32).unwrap();
            let _ = done_rx.recv();
        });
        let tid = tid_rx.recv().unwrap();
        assert_ne!(tid, me);
        assert_eq!(process_of(tid), Some(me));
        done_tx.send(()).unwrap();
        thread.join().unwrap();
        assert_eq!(process_of(0), None);
        assert_eq!(process_of(u32::MAX), None);
    }
}
