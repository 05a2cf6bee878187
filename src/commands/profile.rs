use std::path::PathBuf;

use scorestream_operators::drift::ColumnProfile;
use scorestream_tools::profile::{ProfileOptions, build_profile, save_profile};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Training data: a Parquet file or a directory of Parquet files. A
    /// `score` column (a scored reference) is profiled like the others.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the profile (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Columns to profile, comma-separated (default: every numeric,
    /// boolean and string column).
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Quantile bins per numeric column.
    #[arg(long, default_value_t = 10)]
    bins: usize,
    /// Most frequent categories kept per string column; the rest are `other`.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Reference values sampled per numeric column (for KS and Wasserstein).
    #[arg(long, default_value_t = 10_000)]
    sample: usize,
    /// Seed of the sample, so a profile can be rebuilt identically.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let opts = ProfileOptions {
        input: args.input,
        columns: args.columns,
        bins: args.bins,
        top: args.top,
        sample: args.sample,
        seed: args.seed,
    };
    let profile = build_profile(&opts).await?;
    save_profile(&profile, &args.out)?;
    println!(
        "{}: {} rows, {} columns",
        args.out.display(),
        profile.rows,
        profile.columns.len()
    );
    for (name, c) in &profile.columns {
        match c {
            ColumnProfile::Numeric(n) => println!(
                "  {name:<24} numeric      {} bins, {} sampled, {:.2}% missing",
                n.counts.len(),
                n.sample.len(),
                100.0 * n.missing as f64 / n.total.max(1) as f64
            ),
            ColumnProfile::Categorical(c) => println!(
                "  {name:<24} categorical  {} categories + other ({} rows), {:.2}% missing",
                c.categories.len(),
                c.other,
                100.0 * c.missing as f64 / c.total.max(1) as f64
            ),
        }
    }
    Ok(())
}
