//! The Parquet index file of a bucket (`<bucket>_vfs.parquet`): the only
//! parquet/arrow code in the project.
//!
//! One row per file, sorted by `path`. Columns: the old Python tool's
//! (`file_id`, `bucket_name`, `name`, `path`, `vfs_path`, `mount_point`,
//! `cid`, `size_bytes`, `mime_type`, `uploaded_at`, `bucket_version`) so its
//! readers keep working, then ours (`mtime`, `etag`, `cid_profile`, `kind`,
//! `dag_size`). ZSTD pages, page-level statistics (min/max per page, so a
//! path-prefix query skips pages), a bloom filter on `cid` (so a CID lookup
//! skips row groups), and the journal sequence number it includes in the
//! key-value metadata (`ipfs_kit.journal_seq`). pyarrow and DuckDB read it
//! as it is.

use super::error::{BucketError, Result};
use super::row::{Row, KIND_FILE};
use crate::car::Profile;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::path::Path;
use std::sync::Arc;

/// Key-value metadata key holding the last journal sequence number the file includes.
pub const SEQ_KEY: &str = "ipfs_kit.journal_seq";
/// Rows per record batch written: bounds the writer's memory per batch.
const BATCH_ROWS: usize = 65_536;
/// Rows per row group: 128 Ki rows keeps a group a few MiB compressed, so
/// the bloom filter and statistics prune in useful steps.
const GROUP_ROWS: usize = 131_072;
/// Rows per data page: small pages make page statistics selective for
/// path-prefix queries.
const PAGE_ROWS: usize = 8_192;
/// ZSTD level 3: zstd's default, a good size/speed balance.
const ZSTD_LEVEL: i32 = 3;

/// What the index file says about itself beyond its rows.
#[derive(Debug, Clone)]
pub struct IndexInfo {
    pub bucket: String,
    /// The bucket's virtual path (its mount point under the FUSE mount).
    pub mount_point: String,
    pub profile: Profile,
    /// Last journal entry included.
    pub seq: u64,
}

fn schema() -> Arc<Schema> {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("file_id", DataType::Utf8, false),
        Field::new("bucket_name", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("vfs_path", DataType::Utf8, false),
        Field::new("mount_point", DataType::Utf8, false),
        Field::new("cid", DataType::Utf8, false),
        Field::new("size_bytes", DataType::Int64, false),
        Field::new("mime_type", DataType::Utf8, false),
        Field::new("uploaded_at", ts.clone(), false),
        Field::new("bucket_version", DataType::Int64, false),
        Field::new("mtime", ts, true),
        Field::new("etag", DataType::Utf8, true),
        Field::new("cid_profile", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("dag_size", DataType::Int64, false),
    ]))
}

/// A stable id for a file: 128-bit XXH3 of bucket and path, in hex.
fn file_id(bucket: &str, path: &str) -> String {
    let mut key = Vec::with_capacity(bucket.len() + path.len() + 1);
    key.extend_from_slice(bucket.as_bytes());
    key.push(0);
    key.extend_from_slice(path.as_bytes());
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&key))
}

fn vfs_path(mount_point: &str, path: &str) -> String {
    format!("{}/{}", mount_point.trim_end_matches('/'), path)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn batch(rows: &[Row], info: &IndexInfo) -> Result<RecordBatch> {
    let n = rows.len();
    let version = to_i64(info.seq);
    let utc = |v: Vec<Option<i64>>| TimestampMillisecondArray::from(v).with_timezone("UTC");
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| file_id(&info.bucket, &r.path)),
        )),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            info.bucket.as_str(),
            n,
        ))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.name()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.path))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| vfs_path(&info.mount_point, &r.path)),
        )),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            info.mount_point.as_str(),
            n,
        ))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.cid))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| to_i64(r.size)))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| {
            mime_guess::from_path(&r.path)
                .first_raw()
                .unwrap_or("application/octet-stream")
        }))),
        Arc::new(utc(rows.iter().map(|r| Some(r.indexed_ms)).collect())),
        Arc::new(Int64Array::from_iter_values(std::iter::repeat_n(version, n))),
        Arc::new(utc(rows.iter().map(|r| r.mtime_ms).collect())),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.etag.as_deref()).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            info.profile.name(),
            n,
        ))),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(KIND_FILE, n))),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| to_i64(r.dag_size)),
        )),
    ];
    RecordBatch::try_new(schema(), cols).map_err(|e| BucketError::Failed {
        bucket: info.bucket.clone(),
        message: format!("building the index batch: {e}"),
    })
}

fn properties(info: &IndexInfo) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default(),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_bloom_filter_enabled(ColumnPath::from("cid"), true)
        .set_max_row_group_size(GROUP_ROWS)
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            SEQ_KEY.to_string(),
            info.seq.to_string(),
        )]))
        .build()
}

/// Encodes `rows` (sorted by path) as a Parquet file in memory.
pub fn encode(rows: &[Row], info: &IndexInfo) -> Result<Vec<u8>> {
    let fail = |e: parquet::errors::ParquetError| BucketError::Failed {
        bucket: info.bucket.clone(),
        message: format!("writing the index: {e}"),
    };
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema(), Some(properties(info))).map_err(fail)?;
    for chunk in rows.chunks(BATCH_ROWS) {
        w.write(&batch(chunk, info)?).map_err(fail)?;
    }
    if rows.is_empty() {
        w.write(&batch(&[], info)?).map_err(fail)?;
    }
    w.close().map_err(fail)?;
    Ok(out)
}

/// Decodes an index file's bytes into rows and the journal sequence number
/// it includes. `path` only names the file in errors.
pub fn decode(bytes: Bytes, path: &Path) -> Result<(Vec<Row>, u64)> {
    decode_with_profile(bytes, path).map(|(rows, seq, _)| (rows, seq))
}

/// [`decode`], plus the CID profile the rows name (`cid_profile`; the
/// first one that differs from `unixfs-v1-2025` when they are mixed, None
/// when there are no rows).
pub fn decode_with_profile(bytes: Bytes, path: &Path) -> Result<(Vec<Row>, u64, Option<String>)> {
    let corrupt = |message: String| BucketError::Corrupt {
        what: "index",
        path: path.to_path_buf(),
        message,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| corrupt(e.to_string()))?;
    let seq = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == SEQ_KEY))
        .and_then(|k| k.value.as_deref())
        .map(|v| v.parse::<u64>().map_err(|e| corrupt(format!("{SEQ_KEY}: {e}"))))
        .transpose()?
        .unwrap_or(0);
    let reader = builder.build().map_err(|e| corrupt(e.to_string()))?;
    let mut rows = Vec::new();
    let mut profile: Option<String> = None;
    for b in reader {
        let b = b.map_err(|e| corrupt(e.to_string()))?;
        let col = |name: &str| {
            b.column_by_name(name)
                .cloned()
                .ok_or_else(|| corrupt(format!("no column {name:?}")))
        };
        let strs = |name: &'static str| -> Result<StringArray> {
            col(name)?
                .as_string_opt::<i32>()
                .cloned()
                .ok_or_else(|| corrupt(format!("column {name:?} is not text")))
        };
        let ints = |name: &'static str| -> Result<Int64Array> {
            col(name)?
                .as_primitive_opt::<Int64Type>()
                .cloned()
                .ok_or_else(|| corrupt(format!("column {name:?} is not int64")))
        };
        let times = |name: &'static str| -> Result<TimestampMillisecondArray> {
            col(name)?
                .as_primitive_opt::<TimestampMillisecondType>()
                .cloned()
                .ok_or_else(|| corrupt(format!("column {name:?} is not a timestamp")))
        };
        let (paths, cids, etags) = (strs("path")?, strs("cid")?, strs("etag")?);
        let profiles = strs("cid_profile")?;
        let (sizes, dag) = (ints("size_bytes")?, ints("dag_size")?);
        let (mtimes, indexed) = (times("mtime")?, times("uploaded_at")?);
        use arrow_array::Array;
        for i in 0..b.num_rows() {
            let p = profiles.value(i);
            if profile
                .as_deref()
                .is_none_or(|q| q == Profile::default().name() && p != q)
            {
                profile = Some(p.to_string());
            }
            rows.push(Row {
                path: paths.value(i).to_string(),
                cid: cids.value(i).to_string(),
                size: u64::try_from(sizes.value(i)).map_err(|_| corrupt("negative size".into()))?,
                dag_size: u64::try_from(dag.value(i)).map_err(|_| corrupt("negative dag_size".into()))?,
                mtime_ms: (!mtimes.is_null(i)).then(|| mtimes.value(i)),
                etag: (!etags.is_null(i)).then(|| etags.value(i).to_string()),
                indexed_ms: indexed.value(i),
            });
        }
    }
    if rows.windows(2).any(|w| w[0].path >= w[1].path) {
        return Err(corrupt("rows are not sorted by path or repeat a path".into()));
    }
    Ok((rows, seq, profile))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> IndexInfo {
        IndexInfo {
            bucket: "media".into(),
            mount_point: "/buckets/media".into(),
            profile: Profile::UnixfsV1_2025,
            seq: 42,
        }
    }

    #[test]
    fn rows_round_trip_through_parquet_with_their_seq() {
        let rows = vec![
            Row {
                path: "a.txt".into(),
                cid: "bafkreia".into(),
                size: 5,
                dag_size: 5,
                mtime_ms: Some(7),
                etag: None,
                indexed_ms: 9,
            },
            Row {
                path: "d/b.bin".into(),
                cid: "bafkreib".into(),
                size: 1 << 40,
                dag_size: (1 << 40) + 100,
                mtime_ms: None,
                etag: Some("\"abc\"".into()),
                indexed_ms: 10,
            },
        ];
        let bytes = encode(&rows, &info()).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        let (back, seq) = decode(Bytes::from(bytes), Path::new("x")).unwrap();
        assert_eq!(back, rows);
        assert_eq!(seq, 42);
        let (none, _) = decode(Bytes::from(encode(&[], &info()).unwrap()), Path::new("x")).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn decode_names_the_file_when_bytes_are_not_parquet() {
        let bytes = encode(&[], &info()).unwrap();
        let cut = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
        let err = decode(cut, Path::new("/x/media_vfs.parquet")).unwrap_err();
        assert!(err.to_string().contains("/x/media_vfs.parquet"), "{err}");
        assert!(decode(Bytes::from_static(b"hello"), Path::new("y")).is_err());
    }
}
