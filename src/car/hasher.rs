//! Parallel leaf hashing: a small pool of worker threads that turn file
//! chunks into hashed leaf blocks while the caller keeps reading input.
//!
//! Invariants: results come back in submission order; at most the number of
//! jobs the caller submitted are in flight (the caller bounds that, and with
//! it memory); dropping the pool stops and joins its threads.

use super::block::sha256;
use super::error::{CarError, Result};
use super::leaf::leaf_node;
use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A chunk turned into a leaf block.
#[derive(Debug)]
pub struct HashedLeaf {
    /// The chunk's bytes (the block itself for raw leaves).
    pub chunk: Vec<u8>,
    /// The dag-pb leaf node, for profiles without raw leaves.
    pub node: Option<Vec<u8>>,
    /// sha2-256 of the block.
    pub digest: [u8; 32],
}

/// Hash one chunk as a raw leaf or a dag-pb leaf.
pub fn hash_leaf(chunk: Vec<u8>, raw: bool) -> HashedLeaf {
    if raw {
        let digest = sha256(&chunk);
        HashedLeaf {
            chunk,
            node: None,
            digest,
        }
    } else {
        let node = leaf_node(&chunk);
        let digest = sha256(&node);
        HashedLeaf {
            chunk,
            node: Some(node),
            digest,
        }
    }
}

type Job = (u64, Vec<u8>);

/// Worker threads hashing chunks in parallel.
pub struct Pool {
    jobs: Option<Sender<Job>>,
    results: Receiver<(u64, HashedLeaf)>,
    workers: Vec<JoinHandle<()>>,
    next_in: u64,
    next_out: u64,
    early: BTreeMap<u64, HashedLeaf>,
}

impl Pool {
    /// Start `threads` workers hashing raw or dag-pb leaves.
    pub fn new(threads: usize, raw: bool) -> Self {
        let (jobs, job_rx) = channel::<Job>();
        let (done_tx, results) = channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads.max(1))
            .map(|_| {
                let rx = Arc::clone(&job_rx);
                let tx = done_tx.clone();
                std::thread::spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => break,
                    };
                    let Ok((seq, chunk)) = job else { break };
                    if tx.send((seq, hash_leaf(chunk, raw))).is_err() {
                        break;
                    }
                })
            })
            .collect();
        Pool {
            jobs: Some(jobs),
            results,
            workers,
            next_in: 0,
            next_out: 0,
            early: BTreeMap::new(),
        }
    }

    /// Queue a chunk.
    pub fn submit(&mut self, chunk: Vec<u8>) -> Result<()> {
        let seq = self.next_in;
        self.next_in += 1;
        self.jobs
            .as_ref()
            .and_then(|j| j.send((seq, chunk)).ok())
            .ok_or_else(|| CarError::Io(std::io::Error::other("hashing worker stopped")))
    }

    /// Jobs submitted and not yet returned by [`Pool::next`].
    pub fn in_flight(&self) -> u64 {
        self.next_in - self.next_out
    }

    /// The next result in submission order (blocks), or `None` if nothing is in flight.
    pub fn next(&mut self) -> Result<Option<HashedLeaf>> {
        if self.in_flight() == 0 {
            return Ok(None);
        }
        loop {
            if let Some(leaf) = self.early.remove(&self.next_out) {
                self.next_out += 1;
                return Ok(Some(leaf));
            }
            let (seq, leaf) = self
                .results
                .recv()
                .map_err(|_| CarError::Io(std::io::Error::other("hashing worker stopped")))?;
            self.early.insert(seq, leaf);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
