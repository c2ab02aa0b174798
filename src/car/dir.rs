//! UnixFS directories: a basic node, or a HAMT when the profile says so.
//!
//! [`DirBuilder`] gathers (name, CID, cumulative size) entries; `finish`
//! sorts them by name bytes, applies the profile's [`ShardRule`] and emits
//! the directory's block(s). Names must be non-empty, unique, and free of
//! `/` and NUL; `.` and `..` are refused.

use super::block::{cid_of_block, BlockSink, DAG_PB};
use super::dagpb::{self, PbLink};
use super::error::{CarError, Result};
use super::file::Built;
use super::hamt;
use super::profile::{Profile, ShardRule};
use super::unixfs::{Data, DataType};
use cid::Cid;

/// Collects a directory's entries and encodes it.
#[derive(Debug, Clone)]
pub struct DirBuilder {
    profile: Profile,
    entries: Vec<PbLink>,
}

/// Refuse names that cannot be a single path component.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(CarError::Invalid(format!(
            "bad directory entry name {name:?}"
        )));
    }
    Ok(())
}

impl DirBuilder {
    /// An empty directory for `profile`.
    pub fn new(profile: Profile) -> Self {
        DirBuilder {
            profile,
            entries: Vec::new(),
        }
    }

    /// Number of entries so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add an entry: its name, root CID and cumulative DAG size.
    pub fn add(&mut self, name: &str, cid: Cid, dag_size: u64) -> Result<()> {
        check_name(name)?;
        self.entries.push(PbLink {
            cid,
            name: name.to_owned(),
            tsize: dag_size,
        });
        Ok(())
    }

    /// Whether `entries` (sorted) must be a HAMT under `rule`.
    fn needs_hamt(rule: ShardRule, entries: &[PbLink], basic_len: impl FnOnce() -> usize) -> bool {
        match rule {
            ShardRule::EntriesOver(n) => entries.len() > n,
            ShardRule::LinksBytesOver(n) => {
                entries
                    .iter()
                    .map(|l| l.name.len() + l.cid.encoded_len())
                    .sum::<usize>()
                    > n
            }
            ShardRule::BlockBytesOver(n) => basic_len() > n,
        }
    }

    /// Emit the directory into `sink` and return its root.
    pub fn finish(mut self, sink: &mut dyn BlockSink) -> Result<Built> {
        self.entries
            .sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        if let Some(w) = self.entries.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(CarError::Invalid(format!(
                "duplicate directory entry {:?}",
                w[0].name
            )));
        }
        let v0 = self.profile.cid_v0();
        let dir_data = Data::new(DataType::Directory).encode();
        let entries = self.entries;
        if Self::needs_hamt(self.profile.shard_rule(), &entries, || {
            dagpb::encoded_len(&entries, dir_data.len())
        }) {
            let (cid, dag_size) = hamt::build(entries, v0, sink)?;
            return Ok(Built {
                cid,
                size: 0,
                dag_size,
            });
        }
        let bytes = dagpb::encode(&entries, &dir_data);
        let cid = cid_of_block(v0, DAG_PB, &bytes);
        sink.put(&cid, &bytes)?;
        let dag_size = bytes.len() as u64 + entries.iter().map(|l| l.tsize).sum::<u64>();
        Ok(Built {
            cid,
            size: 0,
            dag_size,
        })
    }
}

/// Emit a UnixFS symlink node pointing at `target`.
pub fn symlink(profile: Profile, target: &[u8], sink: &mut dyn BlockSink) -> Result<Built> {
    let mut data = Data::new(DataType::Symlink);
    data.data = Some(target.to_vec());
    let bytes = dagpb::encode(&[], &data.encode());
    let cid = cid_of_block(profile.cid_v0(), DAG_PB, &bytes);
    sink.put(&cid, &bytes)?;
    Ok(Built {
        cid,
        size: 0,
        dag_size: bytes.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::car::block::Discard;

    #[test]
    fn empty_directory_matches_published_cids_when_finished() {
        let v1 = DirBuilder::new(Profile::UnixfsV1_2025)
            .finish(&mut Discard)
            .unwrap();
        assert_eq!(
            v1.cid.to_string(),
            "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
        );
        let v0 = DirBuilder::new(Profile::UnixfsV0_2015)
            .finish(&mut Discard)
            .unwrap();
        assert_eq!(
            v0.cid.to_string(),
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
        );
    }

    #[test]
    fn refuses_entry_when_name_is_bad_or_duplicate() {
        let mut d = DirBuilder::new(Profile::IpfsCar);
        let cid = v_cid();
        assert!(d.add("a/b", cid, 1).is_err());
        assert!(d.add("..", cid, 1).is_err());
        d.add("x", cid, 1).unwrap();
        d.add("x", cid, 1).unwrap();
        assert!(d.finish(&mut Discard).is_err());
    }

    fn v_cid() -> Cid {
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
            .parse()
            .unwrap()
    }
}
