//! How scored and dead-letter files are encoded: compression, row groups,
//! statistics, and which columns go without a dictionary.

use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{Compression, ParquetSinkConfig};

pub(super) fn compression(c: Compression) -> PqCompression {
    match c {
        Compression::Zstd => PqCompression::ZSTD(ZstdLevel::default()),
        Compression::Snappy => PqCompression::SNAPPY,
        Compression::None => PqCompression::UNCOMPRESSED,
    }
}

/// How scored files are written: the sink's compression and row groups,
/// page statistics; shared with compaction so merged files match.
pub fn writer_properties(config: &ParquetSinkConfig) -> WriterProperties {
    writer_properties_with_plain(config, &[])
}

/// [`writer_properties`], with `plain` columns written without a dictionary.
pub(super) fn writer_properties_with_plain(
    config: &ParquetSinkConfig,
    plain: &[String],
) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(compression(config.compression))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(config.row_group.rows.max(1)))
        .set_created_by(format!("scorestream {}", env!("CARGO_PKG_VERSION")));
    for column in plain {
        b = b.set_column_dictionary_enabled(ColumnPath::from(column.as_str()), false);
    }
    b.build()
}
