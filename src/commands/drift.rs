use std::path::PathBuf;

use anyhow::{Context, bail};
use scorestream_operators::drift::ReferenceProfile;
use scorestream_pipeline::config::load_file;
use scorestream_tools::drift_report::write_report;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Render an HTML page (self-contained, SVG charts): per feature the
    /// reference histogram against the newest windows', and each statistic
    /// over time.
    Report(ReportArgs),
}

#[derive(clap::Args)]
pub(crate) struct ReportArgs {
    /// The job config: its `sink.path` holds the drift table, its `[drift]`
    /// names the profile and the thresholds drawn on the charts.
    #[arg(long, conflicts_with = "path", required_unless_present = "path")]
    job: Option<PathBuf>,
    /// The job's output directory instead (then --profile is needed too).
    #[arg(long, requires = "profile")]
    path: Option<PathBuf>,
    /// The reference profile (default: the job's `drift.profile`).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Where to write the page.
    #[arg(long, default_value = "drift-report.html")]
    out: PathBuf,
    /// Windows read and drawn: the most recent ones (older ones stay in
    /// the table for `scorestream query`).
    #[arg(long, default_value_t = 200)]
    last: usize,
}

pub(crate) fn run(command: Command) -> anyhow::Result<()> {
    let Command::Report(args) = command;
    if args.last == 0 {
        bail!("--last: must be at least 1 window");
    }
    let (output, drift) = match (&args.job, &args.path) {
        (Some(job), _) => {
            let config = load_file(job)?;
            let Some(drift) = config.drift else {
                bail!(
                    "{} has no [drift] section: the job records no drift",
                    job.display()
                );
            };
            let Some(root) = config.sink.path.local() else {
                bail!(
                    "{} is an object store: `drift report` reads a local output; query the \
                     drift table with `scorestream query --job {}` instead",
                    config.sink.path,
                    job.display()
                );
            };
            (root.to_owned(), Some(drift))
        }
        (None, Some(path)) => (path.clone(), None),
        (None, None) => bail!("pass --job JOB.toml, or --path DIR with --profile PROFILE.json"),
    };
    let profile_path = match (&args.profile, &drift) {
        (Some(p), _) => p.clone(),
        (None, Some(d)) => d.profile.clone(),
        (None, None) => bail!("--profile is needed with --path"),
    };
    let profile = ReferenceProfile::load(&profile_path)?;
    let summary = write_report(&output, &profile, drift.as_ref(), args.last, &args.out)
        .with_context(|| format!("rendering the drift report of {}", output.display()))?;
    println!(
        "{}: {} window(s), {} feature(s), {} breached row(s)",
        args.out.display(),
        summary.windows,
        summary.features,
        summary.breaches
    );
    if summary.older > 0 {
        println!(
            "  {} older window(s) not drawn (--last {})",
            summary.older, args.last
        );
    }
    Ok(())
}
