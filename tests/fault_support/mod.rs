//! Fault injection for the `fault_*` tests: a TCP proxy in front of the S3
//! test server that the test takes down (new and open connections are cut:
//! a server that refuses), stalls (connections are accepted and then hang:
//! a server that stopped answering) and brings back up; the server behind
//! it keeps its contents throughout.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const UP: u8 = 0;
const DOWN: u8 = 1;
const STALLED: u8 = 2;

/// How often an idle pump looks at the proxy's mode.
const POLL: Duration = Duration::from_millis(50);

/// A TCP proxy on 127.0.0.1 to `127.0.0.1:upstream`.
pub struct Proxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    /// Every socket of every connection, to cut them when going down.
    socks: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Starts forwarding to `upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let p = Proxy {
            port,
            mode: Arc::new(AtomicU8::new(UP)),
            stop: Arc::new(AtomicBool::new(false)),
            socks: Default::default(),
        };
        let (mode, stop, socks) = (p.mode.clone(), p.stop.clone(), p.socks.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                match mode.load(Ordering::SeqCst) {
                    DOWN => {
                        let _ = client.shutdown(Shutdown::Both);
                    }
                    _ => {
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        };
                        {
                            let mut s = socks.lock().unwrap();
                            s.push(client.try_clone().unwrap());
                            s.push(server.try_clone().unwrap());
                        }
                        pump(
                            client.try_clone().unwrap(),
                            server.try_clone().unwrap(),
                            mode.clone(),
                        );
                        pump(server, client, mode.clone());
                    }
                }
            }
        });
        p
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forward again (connections stalled meanwhile resume).
    pub fn up(&self) {
        self.mode.store(UP, Ordering::SeqCst);
    }

    /// Refuse: open connections are cut, new ones closed at once.
    pub fn down(&self) {
        self.mode.store(DOWN, Ordering::SeqCst);
        for s in self.socks.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Hang: connections are accepted, nothing is forwarded either way.
    pub fn stall(&self) {
        self.mode.store(STALLED, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.down();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to` on its own thread while the proxy is up; holds the
/// bytes while stalled; ends when either side closes or the proxy goes down.
fn pump(mut from: TcpStream, mut to: TcpStream, mode: Arc<AtomicU8>) {
    thread::spawn(move || {
        let _ = from.set_read_timeout(Some(POLL));
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match mode.load(Ordering::SeqCst) {
                DOWN => break,
                STALLED => {
                    thread::sleep(POLL);
                    continue;
                }
                _ => {}
            }
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // Bytes read just as a stall began wait for the stall to end.
                    while mode.load(Ordering::SeqCst) == STALLED {
                        thread::sleep(POLL);
                    }
                    if mode.load(Ordering::SeqCst) == DOWN || to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    });
}
